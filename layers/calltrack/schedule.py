"""The scheduled-job event every scheduled Lambda receives, parsed in one place.

EventBridge's input transformer (and ``calltrack local run-job``) sends
``{"job": NAME, "time": "<ISO 8601 UTC>", "force": false}``, optionally ``"accounts": [...]``
to restrict a fan-out (ops re-runs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


def parse_instant(value: str | datetime) -> datetime:
    """An ISO 8601 instant (``Z`` or offset; naive = UTC) -> aware UTC datetime."""
    if isinstance(value, datetime):
        dt = value
    else:
        text = value.strip()
        if text.endswith("Z") or text.endswith("z"):
            text = text[:-1] + "+00:00"
        dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


@dataclass(frozen=True)
class JobEvent:
    job: str
    at: datetime
    force: bool = False
    accounts: tuple[str, ...] | None = None


def job_event(event: Mapping[str, Any], *, now: datetime | None = None) -> JobEvent:
    """Parse the event; ``time`` may be absent only when ``now`` is given (a manual invoke)."""
    raw = event.get("time")
    if not raw and now is None:
        raise ValueError("scheduled job event needs 'time'")
    only = event.get("accounts")
    return JobEvent(
        job=str(event.get("job", "")),
        at=parse_instant(str(raw)) if raw else parse_instant(now),  # type: ignore[arg-type]
        force=bool(event.get("force", False)),
        accounts=tuple(str(a) for a in only) if only else None,
    )
