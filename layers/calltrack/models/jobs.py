"""Scheduled-job runs (owned by the scheduled reviews): one row per job x account x period."""

from __future__ import annotations

from pynamodb.attributes import JSONAttribute, UnicodeAttribute
from pynamodb.models import Model

from calltrack.models.base import table_meta


class JobRun(Model):
    Meta = table_meta("job_runs")
    run_key = UnicodeAttribute(hash_key=True)  # f"{job}#{account}#{period}"
    decided = UnicodeAttribute()  # published / nothing-to-say / failed
    detail = JSONAttribute(null=True)


MODELS = [JobRun]
