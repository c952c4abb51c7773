"""The funnel: PATCH /v1/calls/{call_sid}, CRM leads matched to calls, and the tagging rate.

Stage and value changes are written to the Call (bumping its ``version``); the calls stream
carries them into the rollups, so every report follows exactly.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from call_records.ports import ports
from calltrack import days
from calltrack.api import CONFLICT, ERRORS, current_caller, json_response
from calltrack.errors import BadRequest, Conflict, DomainError
from calltrack.phone import normalize, region_for_timezone

router = Router()

Stage = Literal["lead", "opportunity", "won", "lost"]
MAX_LEADS = 500
TAGGING_TARGET = 0.7


# ------------------------------------------------------------------ PATCH /v1/calls/{call_sid}


ONE_LINE = r"^[^\x00-\x1f\x7f]+$"  # no line break or other control character
ONE_TAG = r"^[^\x00-\x1f\x7f;]+$"


class CallPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: Stage | None = None
    value: float | None = Field(default=None, ge=0, le=1e12, allow_inf_nan=False)
    # one line each, and no ";" in a tag: the CSV and the exports join tags with ";"
    tags: list[Annotated[str, Field(min_length=1, max_length=64, pattern=ONE_TAG)]] | None = Field(
        default=None, max_length=50)
    score: float | None = Field(default=None, ge=0, le=100, allow_inf_nan=False)
    agent: str | None = Field(default=None, min_length=1, max_length=128, pattern=ONE_LINE)
    note: str | None = Field(default=None, max_length=2000)
    # Optional: the call's ``version`` the change was made on (GET /v1/calls/{sid}); a call changed
    # since (another user, the CRM, a call rule) answers 409 instead of the change overwriting it.
    version: int | None = Field(default=None, ge=0, le=2**53)

    @field_validator("value", "score")
    @classmethod
    def _round(cls, value: float | None) -> float | None:
        return None if value is None else round(value, 2)  # keeps DynamoDB's number range


def _number(value: float | None) -> float | int | None:
    if value is None:
        return None
    return int(value) if value == int(value) else value


def patch_changes(patch: CallPatch) -> dict[str, Any]:
    """Only the fields the request named; an explicit null removes the attribute."""
    if not patch.model_fields_set - {"version"}:
        raise BadRequest("body: name at least one of stage, value, tags, score, agent, note", field="body")
    changes: dict[str, Any] = {}
    for name in sorted(patch.model_fields_set - {"version"}):
        value = getattr(patch, name)
        changes[name] = _number(value) if name in ("value", "score") else value
    return changes


def call_json(call: Mapping[str, Any], *, mask_caller: bool) -> dict[str, Any]:
    """One shape for calls everywhere: GET /v1/calls/{sid}'s serialiser."""
    from call_records.calls import call_to_json

    return dict(call_to_json(call, mask_caller=mask_caller))


@router.patch("/v1/calls/<call_sid>", responses={**ERRORS, **CONFLICT},
              summary="Move a call through the funnel")
def patch_call(call_sid: str, body: CallPatch) -> Response[Any]:
    caller = current_caller(router, "admin", "manager")
    if not call_sid.startswith("CA") or len(call_sid) > 64:
        raise BadRequest("call_sid: not a Twilio CallSid", field="call_sid")
    changes = patch_changes(body)
    calls = ports(router).calls
    if body.version is None:
        call = calls.amend(caller.account, call_sid, changes)
    else:
        moved_on = calls.amend_at_version(caller.account, call_sid, body.version, changes)
        if moved_on is None:
            raise Conflict(f"version: the call changed since version {body.version}; read it again "
                           "(GET /v1/calls/{call_sid}) and make the change on what it says now",
                           field="version")
        call = moved_on
    return json_response(call_json(call, mask_caller=caller.masks_callers))


# ------------------------------------------------------------------ POST /v1/crm/leads


class LeadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_id: str = Field(min_length=1, max_length=128)
    phone: str = Field(min_length=1, max_length=40)
    created_at: datetime
    stage: Stage | None = None
    value: float | None = Field(default=None, ge=0, le=1e12, allow_inf_nan=False)

    @field_validator("value")
    @classmethod
    def _round(cls, value: float | None) -> float | None:
        return None if value is None else round(value, 2)


class LeadBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Each lead is validated on its own so one bad lead does not reject the batch.
    leads: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_LEADS)


CallsBetween = Callable[[datetime, datetime], Iterable[Mapping[str, Any]]]
UpdateCall = Callable[[str, Mapping[str, Any]], Mapping[str, Any]]


def _lead_error(external_id: Any, message: str, field: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "external_id": external_id if isinstance(external_id, str) else None,
        "call_sid": None, "channel": None, "campaign": None, "keyword": None, "confidence": None,
        "status": "error", "error": message,
    }
    if field:
        out["field"] = field
    return out


def parse_lead(raw: Mapping[str, Any], *, tz: str, region: str) -> tuple[LeadIn, str, datetime]:
    """-> (lead, E.164 phone, created_at UTC); raises BadRequest naming the field."""
    try:
        lead = LeadIn.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "lead"
        raise BadRequest(f"{field}: {first['msg']}", field=field) from None
    phone = normalize(lead.phone, region, field="phone")
    created = lead.created_at
    if not 2000 <= created.year <= 2100:
        raise BadRequest("created_at: a time between the years 2000 and 2100", field="created_at")
    if _is_date_only(raw.get("created_at")):
        # A CRM date field (kintone's "date", a spreadsheet): the lead came some time that day, so
        # every call of that local day is before it.
        created = created.replace(hour=23, minute=59, second=59, microsecond=0)
    if created.tzinfo is None:
        from calltrack.days import zone

        created = created.replace(tzinfo=zone(tz))
    return lead, phone, created.astimezone(UTC)


def _is_date_only(value: Any) -> bool:
    import re

    return isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value.strip()) is not None


def _clusters(items: list[tuple[int, datetime]], span: timedelta) -> Iterator[list[tuple[int, datetime]]]:
    """Consecutive (by time) items whose created_at lie within ``span`` of the first."""
    chunk: list[tuple[int, datetime]] = []
    for item in sorted(items, key=lambda x: x[1]):
        if chunk and item[1] - chunk[0][1] > span:
            yield chunk
            chunk = []
        chunk.append(item)
    if chunk:
        yield chunk


def match_confidence(gap: timedelta, window: timedelta, attribution_confidence: Any) -> float:
    """1.0 for a call just before the lead, down to 0.5 at the window's edge, x attribution confidence."""
    closeness = 1.0 - 0.5 * max(gap.total_seconds(), 0.0) / max(window.total_seconds(), 1.0)
    try:
        attribution = float(attribution_confidence) if attribution_confidence is not None else 1.0
    except (TypeError, ValueError):
        attribution = 1.0
    return round(max(0.0, min(1.0, closeness * min(max(attribution, 0.0), 1.0))), 2)


def match_leads(
    raw_leads: list[Any],
    *,
    tz: str,
    region: str,
    window_days: int,
    calls_between: CallsBetween,
    update_call: UpdateCall,
    save_lead: Callable[[dict[str, Any]], None],
) -> list[dict[str, Any]]:
    """Match each lead to the closest call before it by the same caller; apply stage/value."""
    from calltrack.days import parse_started_at

    window = timedelta(days=window_days)
    results: list[dict[str, Any] | None] = [None] * len(raw_leads)
    parsed: dict[int, tuple[LeadIn, str, datetime]] = {}
    for i, raw in enumerate(raw_leads):
        ext = raw.get("external_id") if isinstance(raw, Mapping) else None
        if not isinstance(raw, Mapping):
            results[i] = _lead_error(None, "lead: must be an object", "lead")
            continue
        try:
            parsed[i] = parse_lead(raw, tz=tz, region=region)
        except DomainError as err:
            results[i] = _lead_error(ext, err.message, err.field)
    for chunk in _clusters([(i, p[2]) for i, p in parsed.items()], timedelta(days=31)):
        lo, hi = chunk[0][1] - window, chunk[-1][1] + timedelta(seconds=1)
        by_caller: dict[str, list[tuple[datetime, Mapping[str, Any]]]] = {}
        for call in calls_between(lo, hi):
            started = parse_started_at(call.get("started_at"))
            if started is not None and call.get("caller"):
                by_caller.setdefault(str(call["caller"]), []).append((started, call))
        for calls in by_caller.values():
            calls.sort(key=lambda x: x[0])
        for i, created in chunk:
            lead, phone, _ = parsed[i]
            candidates = by_caller.get(phone, [])
            pos = bisect_right([c[0] for c in candidates], created)
            best = candidates[pos - 1] if pos else None
            if best is not None and created - best[0] > window:
                best = None
            try:
                results[i] = _apply_match(lead, phone, created, best, window, update_call, save_lead)
            except DomainError as err:  # e.g. the matched call was erased meanwhile: this lead only
                results[i] = _lead_error(lead.external_id, err.message, err.field)
    return [r for r in results if r is not None]


def _apply_match(
    lead: LeadIn,
    phone: str,
    created: datetime,
    best: tuple[datetime, Mapping[str, Any]] | None,
    window: timedelta,
    update_call: UpdateCall,
    save_lead: Callable[[dict[str, Any]], None],
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "external_id": lead.external_id, "call_sid": None, "channel": None, "campaign": None,
        "keyword": None, "confidence": None, "status": "unmatched",
    }
    if best is not None:
        started, call = best
        result.update(
            call_sid=call.get("call_sid"), channel=call.get("channel"), campaign=call.get("campaign"),
            keyword=call.get("keyword"), confidence=match_confidence(created - started, window,
                                                                     call.get("confidence")),
            status="matched",
        )
        changes: dict[str, Any] = {}
        if lead.stage is not None:
            changes["stage"] = lead.stage
        if lead.value is not None:
            changes["value"] = _number(lead.value)
        if changes:
            update_call(str(call["call_sid"]), changes)
    save_lead({
        "external_id": lead.external_id, "phone": phone,
        "created_at": created.isoformat().replace("+00:00", "Z"), "stage": lead.stage,
        "value": _number(lead.value), "call_sid": result["call_sid"], "channel": result["channel"],
        "campaign": result["campaign"], "keyword": result["keyword"], "confidence": result["confidence"],
    })
    return result


@router.post("/v1/crm/leads", responses=ERRORS, summary="Match CRM leads to calls")
def post_leads(
    body: Annotated[LeadIn | LeadBatch, Body(description="One lead, or {leads: [...]} up to 500")],
    account: Annotated[str | None, Query(description="Operator token only: the account")] = None,
) -> Response[Any]:
    caller = current_caller(router, "admin", "manager")
    calls, leads = ports(router).calls, ports(router).leads
    raw_event = router.current_event.json_body
    raw_leads = list(raw_event["leads"]) if isinstance(body, LeadBatch) else [raw_event]
    window_days = caller.config.crm.match_window_days
    tz = caller.timezone
    results = match_leads(
        raw_leads,
        tz=tz,
        region=region_for_timezone(tz),
        window_days=window_days,
        calls_between=lambda lo, hi: calls.between(caller.account, lo, hi),
        update_call=lambda sid, changes: calls.amend(caller.account, sid, changes),
        save_lead=lambda row: leads.save(caller.account, row),
    )
    summary = {s: sum(1 for r in results if r["status"] == s) for s in ("matched", "unmatched", "error")}
    return json_response({"results": results, **summary})


# ------------------------------------------------------------------ GET /v1/crm/tagging


def tagging(leads: Iterable[Mapping[str, Any]], start: Any, end: Any, tz: str) -> dict[str, Any]:
    from calltrack.days import parse_started_at, zone

    total = matched = tagged = 0
    for lead in leads:
        created = parse_started_at(lead.get("created_at"))
        if created is None or not (start <= created.astimezone(zone(tz)).date() <= end):
            continue
        total += 1
        if lead.get("call_sid"):
            matched += 1
            if lead.get("channel") not in (None, "", "(none)"):
                tagged += 1
    rate = round(tagged / total, 4) if total else None
    return {
        "from": start.isoformat(), "to": end.isoformat(), "leads": total, "matched": matched,
        "tagged": tagged, "untagged": total - tagged, "tagged_rate": rate, "target": TAGGING_TARGET,
        "meets_target": rate is not None and rate >= TAGGING_TARGET,
    }


@router.get("/v1/crm/tagging", responses=ERRORS, summary="How many CRM phone leads were tagged with a source")
def get_tagging(
    from_: Annotated[str | None, Query(alias="from", description="First day, YYYY-MM-DD")] = None,
    to: Annotated[str | None, Query(description="Last day, inclusive, YYYY-MM-DD")] = None,
    account: Annotated[str | None, Query(description="Operator token only: the account")] = None,
) -> Response[Any]:
    caller = current_caller(router)
    start, end = days.parse_range(from_, to, today=caller.today())
    leads = ports(router).leads.of_account(caller.account)
    return json_response(tagging(leads, start, end, caller.timezone), items_read=len(leads))
