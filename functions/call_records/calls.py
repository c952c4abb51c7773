"""GET /v1/calls, /v1/calls.csv and /v1/calls/{call_sid}: reading the calls (issue 3).

``call_to_json(call, mask_caller=...)`` is the one CALL shape; CSV, exports and CRM reuse it.
Listing reads the calls table's ``by-account`` index between the UTC bounds of the requested
local dates (account time zone), newest first; the cursor is the opaque (base64url JSON)
LastEvaluatedKey of the last call returned.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from call_records.ports import ports
from calltrack import api, days
from calltrack.api import ERRORS, csv_response, current_caller, json_response
from calltrack.errors import BadRequest

router = Router()

ROLES = ("admin", "manager", "marketer")
STATUSES = ("ringing", "answered", "missed", "busy", "failed", "canceled")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# Transcript search (?q=): who may search what callers said, and how many calls one request reads
# before it answers with what it found and a cursor to continue from.
SEARCH_ROLES = ("admin", "manager")
SEARCH_MAX_READ = 2000
MAX_QUERY = 100

CALL_KEYS = (
    "call_sid",
    "account",
    "tracking_number",
    "caller",
    "started_at",
    "status",
    "ring_seconds",
    "talk_seconds",
    "first_time",
    "channel",
    "campaign",
    "keyword",
    "gclid",
    "utm",
    "landing_page",
    "referrer",
    "confidence",
    "recording",
    "stage",
    "value",
    "tags",
    "agent",
)


def _json_value(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _plain_call(call: Any) -> dict[str, Any]:
    """A Call model or a plain dict (as ``calltrack.call_items`` reads it) -> plain dict."""
    if hasattr(call, "attribute_values"):
        return dict(call.attribute_values)
    return dict(call)


def call_to_json(call: Mapping[str, Any] | Any, *, mask_caller: bool) -> dict[str, Any]:
    """The public CALL object (snake_case keys; caller masked for marketers)."""
    from calltrack.phone import mask

    c = _plain_call(call)
    attribution = _json_value(c.get("attribution")) or {}
    if not isinstance(attribution, dict):
        attribution = {}
    recording = _json_value(c.get("recording"))
    caller = c.get("caller")
    tags = c.get("tags")
    out: dict[str, Any] = {
        "call_sid": c.get("call_sid"),
        "account": c.get("account"),
        "tracking_number": c.get("tracking_number"),
        "caller": (mask(caller) or None) if (mask_caller and caller) else caller,
        "started_at": c.get("started_at"),
        "status": c.get("status") or "ringing",
        "ring_seconds": c.get("ring_seconds"),
        "talk_seconds": c.get("talk_seconds"),
        "first_time": c.get("first_time"),
        "channel": c.get("channel"),
        "campaign": c.get("campaign"),
        "keyword": c.get("keyword"),
        "gclid": attribution.get("gclid"),
        "utm": attribution.get("utm") if isinstance(attribution.get("utm"), dict) else {},
        "landing_page": attribution.get("landing_page"),
        "referrer": attribution.get("referrer"),
        "confidence": c.get("confidence"),
        "recording": recording if isinstance(recording, dict) else None,
        "stage": c.get("stage"),
        "value": c.get("value"),
        "tags": list(tags) if isinstance(tags, (list, set, tuple)) else [],
        "agent": c.get("agent"),
        # beyond the contract's minimum
        "medium": c.get("medium"),
        "gbraid": attribution.get("gbraid"),
        "wbraid": attribution.get("wbraid"),
        "source_kind": c.get("source_kind"),
        "pool": c.get("pool"),
        "attribution_basis": attribution.get("basis"),
        "outcome_reason": c.get("outcome_reason"),
        "ended_at": c.get("ended_at"),
        "caller_name": None if mask_caller else c.get("caller_name"),
        "caller_city": c.get("caller_city"),
        "caller_state": c.get("caller_state"),
        "caller_country": c.get("caller_country"),
        "score": c.get("score"),
        # conversation intelligence (transcripts): which call rules hit, and the transcript's state
        # only (its text is GET /v1/calls/{call_sid}/transcript, admin and manager only)
        "rule_hits": _json_value(c.get("rule_hits")) or {},
        "transcript": transcript_summary(_json_value(c.get("transcript"))),
        # call flows (issue 18)
        "test": bool(c.get("test")),
        "flow": c.get("flow"),
        "flow_branch": c.get("flow_branch"),
        "target": c.get("target"),
        "menu_choice": c.get("menu_choice"),
        "voicemail": bool(c.get("voicemail")),
        "callback": callback_view(c),
        # grows with every change of the call: a webhook receiver keeps the highest (events may
        # arrive late and out of order: retries, a replay after a storage outage)
        "version": int(c["version"]) if c.get("version") is not None else None,
    }
    return out


def transcript_summary(transcript: Any) -> dict[str, Any] | None:
    """What every role may see of a call's transcript: its status and size, never its text."""
    if not isinstance(transcript, dict):
        return None
    return {
        "status": transcript.get("status"),
        "language": transcript.get("language"),
        "segments": len(segments) if isinstance(segments := transcript.get("segments"), list) else 0,
        "truncated": bool(transcript.get("truncated")),
    }


def callback_view(c: Mapping[str, Any]) -> dict[str, Any] | None:
    """The call's callback task (``/v1/callbacks``; ``calltrack.call_items.callback_status``)."""
    from calltrack.call_items import callback_status

    status = callback_status(c)
    if status is None:
        return None
    return {
        "status": status,
        "opened_at": c.get("ended_at") or c.get("started_at"),
        "done_at": c.get("callback_at"),
        "agent": c.get("callback_agent"),
        "seconds_to_callback": c.get("callback_seconds"),
    }


# ----------------------------------------------------------------------------- query parsing


def utc_range(start: date, end: date, tz: str) -> tuple[str, str]:
    """started_at bounds (inclusive) covering local dates start..end in time zone ``tz``."""
    from calltrack.days import zone

    zi = zone(tz)
    lo = datetime(start.year, start.month, start.day, tzinfo=zi).astimezone(UTC)
    after = end + timedelta(days=1)
    hi = datetime(after.year, after.month, after.day, tzinfo=zi).astimezone(UTC) - timedelta(seconds=1)
    # 'lo' without a suffix sorts before every value of that second; '~' after every suffix of 'hi'.
    return lo.strftime("%Y-%m-%dT%H:%M:%S"), hi.strftime("%Y-%m-%dT%H:%M:%S") + "~"


def encode_cursor(key: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


MAX_CURSOR_SID = 64  # a CallSid is 34 characters; DynamoDB refuses a hash key over 2,048 bytes
MAX_CURSOR_STARTED_AT = 40  # ... and a range key over 1,024 bytes (a ValidationException: a 500)


def _cursor_keys_fit(key: Mapping[str, Any]) -> bool:
    """Whether the cursor's call sid and started_at could be a stored call's: a call sid of 1 to
    64 characters and a timestamp (ISO 8601 with Z or an offset) of at most 40."""
    sid, started_at = key["call_sid"]["S"], key["started_at"]["S"]
    return (0 < len(sid) <= MAX_CURSOR_SID and len(started_at) <= MAX_CURSOR_STARTED_AT
            and days.parse_started_at(started_at) is not None)


def decode_cursor(cursor: str, account: str, bounds: tuple[str, str] | None = None) -> dict[str, Any]:
    """The ``by-account`` key a cursor carries; 400 unless this API returned it for this account and,
    with ``bounds`` (the query's started_at range), for this date range (DynamoDB refuses a start
    key outside the query's key condition: a 500 when ``from``/``to`` change while paging)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):  # deep nesting: RecursionError
        raise BadRequest("cursor: not a cursor this API returned", field="cursor") from None
    ok = (
        isinstance(key, dict)
        and set(key) == {"call_sid", "account", "started_at"}
        and all(isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str) for v in key.values())
    )
    if not ok or key["account"]["S"] != account or not _cursor_keys_fit(key):
        raise BadRequest("cursor: not a cursor this API returned for this account", field="cursor")
    if bounds is not None and not bounds[0] <= key["started_at"]["S"] <= bounds[1]:
        raise BadRequest("cursor: from another date range; start again without cursor", field="cursor")
    return key


def _limit(value: str | None) -> int:
    if value in (None, ""):
        return DEFAULT_LIMIT
    try:
        limit = int(str(value))
    except ValueError:
        raise BadRequest("limit: expected an integer", field="limit") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit: must be between 1 and {MAX_LIMIT}", field="limit")
    return limit


def _statuses(value: str | None) -> list[str]:
    if not value:
        return []
    wanted = [s.strip().lower() for s in value.split(",") if s.strip()]
    bad = [s for s in wanted if s not in STATUSES]
    if bad:
        raise BadRequest(f"status: unknown {bad[0][:20]!r} (one of {', '.join(STATUSES)})", field="status")
    return wanted


def _transcript_search(text: str | None, who: Any) -> Any:
    """``?q=``: keep calls whose transcript contains the text (normalised like the call rules:
    NFKC, case-folded, spaces ignored in Japanese). Admin and manager only: it reveals what was said."""
    if text is None:
        return None
    from calltrack.transcript_text import normalise, spoken

    wanted = text.strip()
    if not wanted or len(wanted) > MAX_QUERY:
        raise BadRequest(f"q: 1 to {MAX_QUERY} characters of transcript text", field="q")
    who.principal.require_role(*SEARCH_ROLES)

    language = who.config.language
    needle = normalise(wanted, language)

    def keep(call: dict[str, Any]) -> bool:
        transcript = _json_value(call.get("transcript"))
        return isinstance(transcript, dict) and any(
            needle in normalise(said, language) for said in spoken(transcript, "any")
        )

    return keep


STAGE_FILTERS = ("lead", "opportunity", "won", "lost", "none")


def _stage(value: str | None) -> str | None:
    """``?stage=``: a funnel stage, or ``none`` for calls not yet staged."""
    text = (value or "").strip().lower()
    if not text:
        return None
    if text not in STAGE_FILTERS:
        raise BadRequest(f"stage: must be one of {', '.join(STAGE_FILTERS)} (got {value!r})", field="stage")
    return text


# ----------------------------------------------------------------------------- routes


ChannelParam = Annotated[str | None, Query(description="Only this channel")]
StatusParam = Annotated[str | None, Query(description="Only these statuses, comma-separated: "
                                          + ", ".join(STATUSES))]
AgentParam = Annotated[str | None, Query(description="Only calls this agent (or forward-to line) took")]
TestParam = Annotated[str | None, Query(description="1: only test calls; 0: none of them")]
StageParam = Annotated[str | None, Query(description="Only this CRM stage: " + ", ".join(STAGE_FILTERS))]
SearchParam = Annotated[
    str | None, Query(description="Only calls whose transcript says this (admin, manager only)")]
LimitParam = Annotated[str | None, Query(description=f"Calls per page, 1 to {MAX_LIMIT}")]
CursorParam = Annotated[str | None, Query(description="The next_cursor of the page before")]


@router.get("/v1/calls", responses=ERRORS, summary="Calls, newest first, a page at a time")
def get_calls(  # the parameters are read as text and checked below: a 400 names the field
    from_: api.FromParam = None,
    to: api.ToParam = None,
    channel: ChannelParam = None,
    status: StatusParam = None,
    agent: AgentParam = None,
    test: TestParam = None,
    stage: StageParam = None,
    q: SearchParam = None,
    limit: LimitParam = None,
    cursor: CursorParam = None,
    account: api.AccountParam = None,
) -> Any:
    who = current_caller(router, *ROLES)
    today = who.today()
    from calltrack.days import parse_range  # one date-range rule for calls, CSV and reports

    start, end = parse_range(from_, to, today=today)
    page = _limit(limit)
    statuses = _statuses(status)
    channel = (channel or "").strip()[:64] or None
    agent = (agent or "").strip()[:64] or None
    only_test = api.query_flag(test, "test")
    wanted_stage = _stage(stage)
    keep = _transcript_search(q, who)
    lo, hi = utc_range(start, end, who.timezone)
    cursor_key = decode_cursor(cursor, who.account, (lo, hi)) if cursor else None
    items, next_key, read = ports(router).calls.newest_first(
        who.account,
        lo,
        hi,
        limit=page,
        channel=channel,
        statuses=statuses,
        cursor_key=cursor_key,
        keep=keep,
        max_read=SEARCH_MAX_READ if keep else None,
        agent=agent,
        test=only_test,
        stage=wanted_stage,
    )
    body = {
        "items": [call_to_json(c, mask_caller=who.masks_callers) for c in items],
        "next_cursor": encode_cursor(next_key) if next_key else None,
    }
    return json_response(body, items_read=read)


@router.get("/v1/calls/<call_sid>", responses=ERRORS)
def get_call(call_sid: str) -> Any:
    who = current_caller(router, *ROLES)
    call = ports(router).calls.get_in_account(who.account, call_sid)
    body = call_to_json(call, mask_caller=who.masks_callers)
    rows = ports(router).conversions.of_call(call_sid)
    body["conversions"] = [conversion_view(r) for r in sorted(rows, key=lambda r: str(r.get("key")))]
    return json_response(body, items_read=1 + len(rows))


def conversion_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """A call's conversion as ``GET /v1/calls/{sid}`` shows it (issue 16)."""
    return {
        "rule": row.get("rule"),
        "destination": row.get("destination"),
        "status": row.get("status"),
        "reason": row.get("reason"),
        "sent_at": row.get("sent_at"),
        "value": row.get("restated_value") if row.get("restated_value") is not None else row.get("value"),
        "currency": row.get("currency"),
        "note": row.get("note"),
    }


@router.get("/v1/calls.csv", responses=ERRORS, summary="Calls as CSV (UTF-8 with BOM)")
def get_calls_csv(
    from_: api.FromParam = None,
    to: api.ToParam = None,
    channel: ChannelParam = None,
    status: StatusParam = None,
    account: api.AccountParam = None,
) -> Response[Any]:
    from call_records.csv_out import calls_csv

    caller = current_caller(router)
    start, end = days.parse_range(from_, to, today=caller.today())
    statuses = _statuses(status)  # as /v1/calls: a comma list of known statuses, else 400
    lo, hi = days.local_day_bounds(start, end, caller.timezone)
    counter = [0]
    calls = [
        c
        for c in ports(router).calls.between(caller.account, lo, hi, counter=counter)
        if (channel is None or c.get("channel") == channel) and (not statuses or c.get("status") in statuses)
    ]
    text = calls_csv(calls, tz=caller.timezone, mask_caller=caller.masks_callers)
    return csv_response(text, f"calls-{start.isoformat()}-{end.isoformat()}.csv", items_read=counter[0])

