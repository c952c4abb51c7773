"""Scheduled-job runs (owned by the scheduled reviews): one row per job x account x period.

The row is both the idempotency claim and the record of what the run decided:
``decided`` is "running" while claimed, then "published" / "nothing-to-say" / "failed".
A "failed" run, or a "running" claim older than ``CLAIM_LEASE_SECONDS`` (a Lambda that died
mid-run), may be claimed again; anything else only with ``force``.
"""

from __future__ import annotations

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from calltrack.models.base import table_meta

CLAIM_LEASE_SECONDS = 900  # the ops_jobs Lambda times out well before this


class JobRun(Model):
    Meta = table_meta("job_runs", ttl="expire_at")
    run_key = UnicodeAttribute(hash_key=True)  # f"{job}#{account}#{period}"
    decided = UnicodeAttribute()  # running / published / nothing-to-say / failed
    job = UnicodeAttribute(null=True)
    account = UnicodeAttribute(null=True)
    period = UnicodeAttribute(null=True)  # "2026-W48", "2026-11", "2026-11-30T03"
    claimed_at = NumberAttribute(null=True)  # epoch seconds
    finished_at = UnicodeAttribute(null=True)  # ISO 8601 UTC
    error = UnicodeAttribute(null=True)
    detail = JSONAttribute(null=True)
    expire_at = NumberAttribute(null=True)  # TTL: hourly spike runs are kept 35 days, weekly 400


MODELS = [JobRun]
