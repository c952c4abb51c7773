"""CSV for humans (Excel in Japan: UTF-8 with BOM, header row, ISO dates) and for Athena.

``calls_csv`` is used by GET /v1/calls.csv (Excel) and the daily QuickSight export (Athena,
no BOM, no formula escaping). Caller numbers are masked to the last four digits whenever the
reader is a marketer, and always in the export.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from calltrack.phone import mask
from calltrack.records import json_object

BOM = "\ufeff"
CALL_COLUMNS = (
    "call_sid",
    "started_at",
    "started_at_local",
    "tracking_number",
    "caller",
    "status",
    "ring_seconds",
    "talk_seconds",
    "first_time",
    "channel",
    "campaign",
    "keyword",
    "landing_page",
    "confidence",
    "stage",
    "value",
    "agent",
    "tags",
    "score",
)
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def _cell(value: Any, *, excel: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value == int(value):
        value = int(value)
    text = str(value)
    # Formula injection: a cell starting with = + - @ is a formula to Excel.
    if excel and text and text[0] in "=+-@\t\r" and not _NUMBER.match(text):
        text = "'" + text
    return text


def write_csv(header: Sequence[str], rows: Iterable[Sequence[Any]], *, excel: bool = True) -> str:
    buf = io.StringIO()
    if excel:
        buf.write(BOM)
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(v, excel=excel) for v in row])
    return buf.getvalue()


def local_iso(started_at: str | None, tz: str) -> str:
    from report.rollup import parse_started_at, zone

    parsed = parse_started_at(started_at)
    return parsed.astimezone(zone(tz)).isoformat() if parsed else ""


def utc_iso(started_at: str | None) -> str:
    from datetime import UTC

    from report.rollup import parse_started_at

    parsed = parse_started_at(started_at)
    return parsed.astimezone(UTC).isoformat().replace("+00:00", "Z") if parsed else ""


def call_row(call: Mapping[str, Any], *, tz: str, mask_caller: bool) -> list[Any]:
    attribution = json_object(call.get("attribution"))
    tags = call.get("tags") or []
    caller = call.get("caller")
    return [
        call.get("call_sid"),
        utc_iso(call.get("started_at")),
        local_iso(call.get("started_at"), tz),
        call.get("tracking_number"),
        mask(caller) if mask_caller else caller,
        call.get("status"),
        call.get("ring_seconds"),
        call.get("talk_seconds"),
        call.get("first_time"),
        call.get("channel"),
        call.get("campaign"),
        call.get("keyword") or attribution.get("keyword"),
        attribution.get("landing_page"),
        call.get("confidence"),
        call.get("stage"),
        call.get("value"),
        call.get("agent"),
        ";".join(str(t) for t in tags),
        call.get("score"),
    ]


def calls_csv(calls: Iterable[Mapping[str, Any]], *, tz: str, mask_caller: bool, excel: bool = True) -> str:
    return write_csv(CALL_COLUMNS, (call_row(c, tz=tz, mask_caller=mask_caller) for c in calls), excel=excel)


def call_as_dict(call: Any) -> dict[str, Any]:
    """A PynamoDB Call (or a plain dict) as a plain dict of its attributes."""
    if isinstance(call, Mapping):
        return dict(call)
    out: dict[str, Any] = {}
    for name in call.get_attributes():
        out[name] = getattr(call, name, None)
    return out


def now_stamp(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ")
