"""CSV for humans (Excel in Japan: UTF-8 with BOM, header row, ISO dates) and for Athena.

``calls_csv`` is GET /v1/calls.csv (Excel; one account per token, so no account column);
``export_csv`` is the daily QuickSight export (Athena: no BOM, no formula escaping), the same
columns after an ``account`` column, since QuickSight reads every account's files as one dataset.
Caller numbers are masked to the last four digits whenever the reader is a marketer, and always
in the export.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from calltrack.csv_text import write_csv
from calltrack.days import local_iso, utc_iso
from calltrack.phone import mask
from calltrack.records import json_object

# The CSV contract (GET /v1/calls.csv and, after "account", the QuickSight export), in column order.
CALL_COLUMNS = (
    "call_sid", "started_at", "started_at_local", "tracking_number", "caller", "status", "ring_seconds",
    "talk_seconds", "first_time", "channel", "campaign", "keyword", "landing_page", "confidence", "stage",
    "value", "agent", "tags", "score",
)
EXPORT_COLUMNS = ("account", *CALL_COLUMNS)


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


def export_csv(calls: Iterable[Mapping[str, Any]], *, account: str, tz: str) -> str:
    """One account's rows of the QuickSight/Athena export: ``account`` first, caller masked, no BOM;
    each call's local time in the zone it was stamped with (as the rollups count it), else ``tz``."""
    from calltrack.days import call_timezone

    rows = ([account, *call_row(c, tz=call_timezone(c, tz), mask_caller=True)] for c in calls)
    return write_csv(EXPORT_COLUMNS, rows, excel=False)


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
