"""The ops_jobs function's composition root: its ports, built once per process."""

from __future__ import annotations

from calltrack.settings import Needs, Settings
from ops_jobs.common import JobPorts

NEEDS = Needs(
    tables=("job_runs", "accounts", "calls", "spend", "rollups"),
    buckets=("exports",),
    queues=("webhooks",),
    ops_topic=True,
)

_built: tuple[Settings, JobPorts] | None = None


def ports() -> JobPorts:
    """Built on the first invocation, again only if the settings were reset (tests)."""
    global _built
    from calltrack.models import start

    settings = start(NEEDS)
    if _built is None or _built[0] is not settings:
        from ops_jobs.ports import aws_ports

        _built = (settings, aws_ports(settings))
    return _built[1]


def reset() -> None:
    global _built
    _built = None
