"""Callbacks of missed calls (issue 18): GET /v1/callbacks, PATCH /v1/callbacks/{call_sid} and
GET /v1/reports/callbacks (callback rate and median time to callback per channel).

A callback is not a row of its own: every missed or busy call of a real caller (voicemails
included; test calls and hidden numbers excluded) *is* an open callback, whose id is the call's
CallSid, until someone calls back and closes it (``callback_status: done`` on the call, written
through ``calltrack.call_items`` like every call write, so the calls stream carries it). See
docs/decisions.md (2026-11-30, "Callbacks live on the call").
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel, ConfigDict, Field

from call_records.calls import call_to_json, callback_view
from call_records.crm import ONE_LINE
from call_records.ports import ports
from calltrack import api, days
from calltrack.api import ERRORS, current_caller, json_response
from calltrack.errors import BadRequest, Conflict

router = Router()


def seconds_between(opened_at: str | None, done: datetime) -> int | None:
    from calltrack.days import parse_started_at

    opened = parse_started_at(opened_at)
    return max(0, int((done - opened).total_seconds())) if opened else None


def callbacks(calls: Iterable[Mapping[str, Any]], status: str | None) -> list[dict[str, Any]]:
    """The callbacks among ``calls`` (optionally only ``status``), oldest first."""
    out = []
    for call in calls:
        view = callback_view(call)
        if view is not None and (status is None or view["status"] == status):
            out.append((call, view))
    return [{"id": c["call_sid"], **view, "call": c} for c, view in out]


def channel_figures(calls: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per channel: callbacks opened, done, callback rate and median seconds to callback."""
    rows: dict[str, dict[str, Any]] = {}
    for call in calls:
        view = callback_view(call)
        if view is None:
            continue
        row = rows.setdefault(str(call.get("channel") or "(none)"), {"opened": 0, "done": 0, "seconds": []})
        row["opened"] += 1
        if view["status"] == "done":
            row["done"] += 1
            if view["seconds_to_callback"] is not None:
                row["seconds"].append(view["seconds_to_callback"])
    return [
        {
            "channel": channel,
            "callbacks": row["opened"],
            "called_back": row["done"],
            "callback_rate": round(row["done"] / row["opened"], 4) if row["opened"] else None,
            "median_seconds_to_callback": statistics.median(row["seconds"]) if row["seconds"] else None,
        }
        for channel, row in sorted(rows.items())
    ]


def _calls(from_: str | None, to: str | None, caller: Any) -> tuple[list[dict[str, Any]], int]:
    """The caller's account's calls between the requested local dates, and the items read."""
    start, end = days.parse_range(from_, to, today=caller.today())
    lo, hi = days.local_day_bounds(start, end, caller.timezone)
    counter = [0]
    return list(ports(router).calls.between(caller.account, lo, hi, counter=counter)), counter[0]


@router.get("/v1/callbacks", responses=ERRORS, summary="Callbacks of missed calls")
def get_callbacks(
    from_: api.FromParam = None,
    to: api.ToParam = None,
    status: Annotated[Literal["open", "done"] | None, Query(description="open or done")] = None,
    account: api.AccountParam = None,
) -> Response[Any]:
    caller = current_caller(router)
    calls, read = _calls(from_, to, caller)
    items = callbacks(calls, status)
    body = {
        "items": [
            {
                **{k: v for k, v in i.items() if k != "call"},
                "call": call_to_json(i["call"], mask_caller=caller.masks_callers),
            }
            for i in items
        ]
    }
    return json_response(body, items_read=read)


class CallbackPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["done", "open"]
    agent: str | None = Field(default=None, min_length=1, max_length=128, pattern=ONE_LINE)


@router.patch("/v1/callbacks/<call_sid>", responses=ERRORS, summary="Close (or reopen) a callback")
def patch_callback(call_sid: str, body: CallbackPatch) -> Response[Any]:
    from calltrack import clock

    caller = current_caller(router, "admin", "manager")
    if not call_sid.startswith("CA") or len(call_sid) > 64:
        raise BadRequest("call_sid: not a Twilio CallSid", field="call_sid")
    store = ports(router).calls
    call = store.get_in_account(caller.account, call_sid)
    view = callback_view(call)
    if view is None:
        raise Conflict(
            "call_sid: this call has no callback (it was not missed, or is a test call)", field="call_sid"
        )
    if view["status"] == body.status:  # closing a closed callback again keeps its first close
        return json_response({"id": call_sid, **view})
    now = clock.now()
    if body.status == "done":
        changes: dict[str, Any] = {
            "callback_status": "done",
            "callback_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "callback_agent": body.agent,
            "callback_seconds": seconds_between(view["opened_at"], now),
        }
    else:
        changes = {
            "callback_status": None,
            "callback_at": None,
            "callback_agent": None,
            "callback_seconds": None,
        }
    updated = store.amend(caller.account, call_sid, changes)
    return json_response({"id": call_sid, **(callback_view(updated) or {})})


@router.get(
    "/v1/reports/callbacks", responses=ERRORS, summary="Callback rate and median time to callback per channel"
)
def get_callback_report(
    from_: api.FromParam = None, to: api.ToParam = None, account: api.AccountParam = None
) -> Response[Any]:
    caller = current_caller(router)
    calls, read = _calls(from_, to, caller)
    return json_response({"rows": channel_figures(calls)}, items_read=read)
