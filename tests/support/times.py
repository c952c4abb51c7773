"""Instants on the wall clock of the tests' accounts (Asia/Tokyo), in 2026."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

TOKYO = ZoneInfo("Asia/Tokyo")


def tokyo(month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    """``2026-month-day hour:minute`` in Tokyo (noon unless an hour is given)."""
    return datetime(2026, month, day, hour, minute, tzinfo=TOKYO)


def utc_now_iso() -> str:
    """Now on the wall clock, ISO 8601 UTC to the second (when a job must run "now")."""
    from datetime import UTC

    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
