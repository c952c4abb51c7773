"""The report functions' composition roots: what the report API and the rollup consumer use.

``NEEDS`` per Lambda equals its wiring's grants (tests/infra compares them); settings are read and
checked on the first invocation, never at import.
"""

from __future__ import annotations

from calltrack.settings import Needs, Settings

API_NEEDS = Needs(
    tables=("calls", "spend", "rollups", "crm_leads", "accounts", "tokens", "recordings", "job_runs"),
    buckets=("recordings", "exports"),
    secrets=("admin_token",),
)
ROLLUP_NEEDS = Needs(tables=("rollups", "rollup_markers", "accounts"))


def start_api() -> Settings:
    from calltrack.models import start

    return start(API_NEEDS)
