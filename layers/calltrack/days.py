"""Days in an account's time zone: the zone itself, stored timestamps, and the one date-range rule.

Every context that turns a call's ``started_at`` (UTC ISO 8601) into a local day, or reads a
``from``/``to`` range from a request, uses these (reports, call records, scheduled jobs, rollups).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from calltrack.call_items import CALL_TIMEZONE
from calltrack.errors import BadRequest

DEFAULT_TIMEZONE = "Asia/Tokyo"
MAX_RANGE_DAYS = 400
DEFAULT_RANGE_DAYS = 30


def zone(tz: str | None) -> ZoneInfo:
    """The IANA zone ``tz``; unknown or empty names fall back to the default (Asia/Tokyo)."""
    try:
        return ZoneInfo(tz or DEFAULT_TIMEZONE)
    except Exception:  # noqa: BLE001 - unknown zone names fall back to the default
        return ZoneInfo(DEFAULT_TIMEZONE)


def is_timezone(value: Any) -> bool:
    """Whether ``value`` is an IANA zone name this runtime knows (never raises)."""
    if not isinstance(value, str) or not value or value != value.strip():
        return False
    if ".." in value or value.startswith("/") or len(value) > 128:
        return False
    try:
        ZoneInfo(value)
    except Exception:  # noqa: BLE001 - ZoneInfoNotFoundError, ValueError, OSError on odd names
        return False
    return True


def has_zone_stamp(call: Mapping[str, Any]) -> bool:
    """Whether the call was stamped with a known zone name when it was created (calls from before
    2026-12-01 were not: they were counted in the zone the account had then)."""
    stamped = call.get(CALL_TIMEZONE)
    return isinstance(stamped, str) and is_timezone(stamped)


def call_timezone(call: Mapping[str, Any], account_tz: str) -> str:
    """The zone a call's local day and hour are taken in: the zone it was stamped with when it was
    created (``calltrack.call_items.CALL_TIMEZONE``) when that is a known zone name, else the
    account's (calls from before the stamp, or a stamp that is not a zone)."""
    return str(call[CALL_TIMEZONE]) if has_zone_stamp(call) else account_tz


def parse_started_at(value: Any) -> datetime | None:
    """A stored timestamp (ISO 8601 with an offset or Z) as an aware datetime; None otherwise."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed


def local_today(tz: str, now: datetime) -> date:
    return now.astimezone(zone(tz)).date()


def local_iso(started_at: str | None, tz: str) -> str:
    parsed = parse_started_at(started_at)
    return parsed.astimezone(zone(tz)).isoformat() if parsed else ""


def utc_iso(started_at: str | None) -> str:
    parsed = parse_started_at(started_at)
    return parsed.astimezone(UTC).isoformat().replace("+00:00", "Z") if parsed else ""


def local_day_bounds(start: date, end: date, tz: str) -> tuple[datetime, datetime]:
    """[lo, hi) in UTC covering the local days start..end (inclusive) in time zone ``tz``."""
    zi = zone(tz)
    lo = datetime(start.year, start.month, start.day, tzinfo=zi).astimezone(UTC)
    after = end + timedelta(days=1)
    hi = datetime(after.year, after.month, after.day, tzinfo=zi).astimezone(UTC)
    return lo, hi


MIN_YEAR, MAX_YEAR = 2000, 2100  # months and spend outside this are typos, not history
_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")  # [0-9]: \d takes ２０２６ too


def month_start(value: str) -> date | None:
    """The first day of calendar month ``YYYY-MM`` (years 2000-2100, the whole string), else None."""
    m = _MONTH.fullmatch(value) if isinstance(value, str) else None
    if m is None or not MIN_YEAR <= int(m.group(1)) <= MAX_YEAR:
        return None
    return date(int(m.group(1)), int(m.group(2)), 1)


def parse_month(value: str, field: str = "month") -> date:
    """``month_start`` or a 400 naming ``field``."""
    first = month_start(value)
    if first is None:
        raise BadRequest(f"{field}: must be YYYY-MM, years {MIN_YEAR}-{MAX_YEAR} (e.g. 2026-11)", field=field)
    return first


def parse_day(value: str | None, field: str) -> date:
    """A day ``YYYY-MM-DD`` of the years 2000-2100 (a day range's ends: earlier or later days
    are typos, and the calendar's own ends overflow a day's UTC bounds), else a 400 naming ``field``."""
    if value is None or value == "":
        raise BadRequest(f"{field}: required (YYYY-MM-DD)", field=field)
    try:
        if len(value) != 10:
            raise ValueError
        day = date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{field}: not a date (YYYY-MM-DD): {value[:40]!r}", field=field) from None
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise BadRequest(f"{field}: years {MIN_YEAR}-{MAX_YEAR} only: {value!r}", field=field)
    return day


def parse_range(from_: str | None, to: str | None, *, today: date) -> tuple[date, date]:
    """Inclusive day range; defaults to the 30 days ending today (account time zone)."""
    end = parse_day(to, "to") if to else today
    start = parse_day(from_, "from") if from_ else end - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    if start > end:
        raise BadRequest("from: must not be after to", field="from")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise BadRequest(f"to: range longer than {MAX_RANGE_DAYS} days", field="to")
    return start, end


_INSTANT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2})?Z?)?")


def parse_instant(value: str | None, field: str) -> datetime:
    """A day ``YYYY-MM-DD`` (its start) or a time ``YYYY-MM-DDTHH:MM[:SS][Z]``, UTC, that the
    calendar has (no 30 February, no hour 25), else a 400 naming ``field``: a bound compared as
    text against stored times would otherwise match nothing and answer as if nothing were there."""
    text = value if isinstance(value, str) else ""
    try:
        if not _INSTANT.fullmatch(text):
            raise ValueError(text)
        return datetime.fromisoformat(text.removesuffix("Z")).replace(tzinfo=UTC)
    except ValueError:
        raise BadRequest(f"{field}: not a day (YYYY-MM-DD) or a UTC time (YYYY-MM-DDTHH:MM:SSZ) "
                         f"the calendar has: {text[:40]!r}", field=field) from None
