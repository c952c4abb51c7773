"""What the voice webhook does for each Twilio request. Ports (storage, clock, metrics, logger)
come in through ``Deps`` so unit tests hand it fakes.

Forwarding is the first duty: every failure of ours on the incoming-call path is logged, counted
(``WebhookFailures``) and answered with a <Dial> to the forward-to number — from the fresh read,
else this process's cache of number routing, else ``CALLTRACK_FALLBACK_FORWARD_TO``.

Keeping the record true is the second: a callback whose storage work failed is handed to the
durable outbox (``Deps.outbox``, see ``voice_webhook.outbox``) and replayed once storage is back.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from calltrack.attribution import attribute, earlier_call, earlier_call_value, marks_holder
from calltrack.call_flows import branch as flow_branch
from calltrack.call_flows import sticky_attribute
from calltrack.call_items import CALL_TIMEZONE, DEFAULT_CALLS_DAYS, TTL_ATTRIBUTE, expire_at
from calltrack.phone import ANONYMOUS_CALLER_IDS, is_e164, mask
from calltrack.twilio_edge import (
    DialPlan,
    TwilioRequest,
    dial_twiml,
    empty_twiml,
    hangup_twiml,
    say_twiml,
    url_with_query,
    voicemail_twiml,
)
from voice_webhook import flow_twiml
from voice_webhook.store import LEASE_UNREAD, UNKNOWN, CallersRow, LeaseRow, Storage, is_first_call

CALL_SID = re.compile(r"^CA[0-9A-Za-z]{8,40}$")
# After a read this slow, a route hands its writes to the outbox instead of making them: a request
# that hangs costs up to 4 s (voice_webhook.dynamo), so read + write + hand-off stay inside the
# function's 12 s timeout, which would otherwise cut the caller off (Twilio waits 15 s).
WRITE_AFTER_S = 2.0
# A lease row that began more than this after the call's start is a later visitor's (the leasing
# Lambda's clock may run a little ahead of the webhook's).
LEASE_SKEW_S = 1.0
CACHE_MAX = 5000

CHANNEL_NAMES_JA = {
    "google-ads": "Google広告",
    "yahoo-ads": "Yahoo!広告",
    "facebook": "Facebook広告",
    "instagram": "Instagram広告",
    "microsoft-ads": "Microsoft広告",
    "line": "LINE広告",
    "flyer": "チラシ",
    "newspaper": "新聞折込",
    "signboard": "看板",
    "radio": "ラジオ",
    "tv": "テレビ",
    "organic": "自然検索",
    "direct": "直接",
    "referral": "紹介サイト",
}

MESSAGES = {
    "ja": {
        "announcement": "この通話はサービス向上のため録音させていただきます。",
        "unknown": "おかけになった電話番号は現在使われておりません。お手数ですが番号をお確かめください。",
        "unavailable": "ただいま電話をおつなぎできません。しばらくしてからおかけ直しください。",
        "voicemail": "ただいま電話に出ることができません。発信音のあとにメッセージをお話しください。",
        "no_answer": "ただいま電話に出ることができません。しばらくしてからおかけ直しください。",
        "whisper": "{channel}からのお電話です",
    },
    "en": {
        "announcement": "This call will be recorded to improve our service.",
        "unknown": "The number you have dialled is not in service. Please check the number and try again.",
        "unavailable": "We cannot connect your call right now. Please call again later.",
        "voicemail": "We cannot take your call right now. Please leave a message after the tone.",
        "no_answer": "We cannot take your call right now. Please call again later.",
        "whisper": "Call from {channel}",
    },
}


def message(language: str, key: str) -> str:
    return MESSAGES["ja" if language.lower().startswith("ja") else "en"][key]


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class MetricSink:
    """Counts per invocation; the handler flushes them as one EMF line (Powertools Metrics)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def count(self, name: str, value: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + value


@dataclass
class RoutingCache:
    """Number rows seen by this process (warm fallback when storage is down)."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict)

    def put(self, number: str, row: dict[str, Any]) -> None:
        if len(self.rows) >= CACHE_MAX and number not in self.rows:
            self.rows.pop(next(iter(self.rows)))
        self.rows[number] = row

    def get(self, number: str) -> dict[str, Any] | None:
        return self.rows.get(number)


@dataclass
class Deps:
    public_url: str
    storage: Storage | None
    metrics: MetricSink
    log: Any
    cache: RoutingCache
    now: Callable[[], float] = time.time
    fallback_forward_to: str = ""
    # (request, received epoch) -> None: hands a callback whose storage work failed to the outbox.
    outbox: Callable[[TwilioRequest, float], None] | None = None
    # number -> its row from the routing snapshot (S3), when storage is down and nothing is cached.
    snapshot: Callable[[str], dict[str, Any] | None] | None = None
    # The outbox's replay, minutes after the call: the number may have been leased again since.
    replaying: bool = False
    # When a write happens (the call's ``updated_at``): ``now`` live; the wall clock in a replay,
    # whose ``now`` is the callback's time (the daily export refreshes days whose calls were
    # written after their file, so a late write must not carry an early time).
    written_at: Callable[[], float] | None = None


def _written(deps: Deps, now: float) -> str:
    return iso(deps.written_at() if deps.written_at is not None else now)


class RetryLater(Exception):
    """Raised by the replay's outbox: storage is still failing, so SQS should deliver it again."""


def _hand_off(deps: Deps, req: TwilioRequest, now: float, why: str) -> None:
    """Hand the callback to the outbox so its record is written once storage is back."""
    if deps.outbox is None:
        return
    try:
        deps.outbox(req, now)
    except RetryLater:
        raise
    except Exception as exc:  # the outbox too: the record of this callback is lost, say so loudly
        deps.metrics.count("WebhookCallbacksLost")
        deps.log.error(
            "callback not recorded and not handed off", extra={"why": why, "error": type(exc).__name__}
        )
        return
    deps.metrics.count("WebhookCallbacksHandedOff")
    deps.log.warning("callback handed to the outbox", extra={"why": why})


# ------------------------------------------------------------------ helpers


def routing_of(number_row: dict[str, Any]) -> dict[str, Any]:
    from calltrack.records import json_object

    return json_object(number_row.get("routing"))


def caller_of(params: dict[str, str]) -> tuple[str | None, str]:
    """(caller E.164 or None, kind: number | anonymous | invalid | missing)."""
    raw = (params.get("From") or params.get("Caller") or "").strip()
    if not raw:
        return None, "missing"
    if raw.lower() in ANONYMOUS_CALLER_IDS or raw.lstrip("+") in {
        a.lstrip("+") for a in ANONYMOUS_CALLER_IDS
    }:
        return None, "anonymous"
    if is_e164(raw):
        return raw, "number"
    return None, "invalid"


def tracking_number_of(params: dict[str, str]) -> str:
    return (params.get("To") or params.get("Called") or "").strip()


def _clean(value: str | None, limit: int = 120) -> str | None:
    if not value:
        return None
    text = "".join(ch for ch in value if ch.isprintable()).strip()
    return text[:limit] or None


def _late_window(routing: dict[str, Any]) -> float:
    for source in (routing.get("dni"), routing):
        if isinstance(source, dict) and source.get("late_call_window_minutes") is not None:
            try:
                return float(source["late_call_window_minutes"])
            except (TypeError, ValueError):
                pass
    return 120.0


def origin_fields(
    params: dict[str, str],
    number_row: dict[str, Any],
    lease_row: dict[str, Any] | None,
    *,
    start_epoch: float,
    created_by: str,
    callers_row: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The call's origin attributes (account, number, caller, source) as Call model fields.
    ``callers_row``: the caller's row as read with the number, their redial item's ``last#``
    joined (a redial of a pool number is attributed as the caller's earlier call was)."""
    caller, caller_kind = caller_of(params)
    routing = routing_of(number_row)
    earlier = earlier_call(callers_row, number_row.get("account"))
    attr = attribute(number_row, lease_row, start_epoch, _late_window(routing), earlier)
    return {
        "account": number_row.get("account"),
        "tracking_number": number_row.get("number") or tracking_number_of(params),
        "caller": caller,
        "caller_kind": caller_kind,
        "caller_name": _clean(params.get("CallerName")),
        "caller_city": _clean(params.get("FromCity") or params.get("CallerCity")),
        "caller_state": _clean(params.get("FromState") or params.get("CallerState")),
        "caller_country": _clean(params.get("FromCountry") or params.get("CallerCountry"), 8),
        "started_at": iso(start_epoch),
        "created_by": created_by,
        "channel": attr.channel,
        "campaign": attr.campaign,
        "keyword": attr.keyword,
        "medium": attr.medium,
        "source_kind": attr.kind,
        "pool": attr.pool,
        "confidence": attr.confidence,
        "attribution": attr.details(),
        # a call from one of the account's test_callers: kept out of reports, reviews and alerts
        "test": True if caller and caller in (routing.get("test_callers") or ()) else None,
        # DynamoDB TTL: the account's retention.calls_days, riding on the origin write (no request)
        TTL_ATTRIBUTE: expire_at(start_epoch, routing.get("calls_days", DEFAULT_CALLS_DAYS)),
        # The account's zone now, from the routing (no request): the rollups bucket the call by
        # it for good, whatever zone the account moves to later (docs/decisions.md 2026-12-01)
        CALL_TIMEZONE: _zone_stamp(routing),
    }


def _zone_stamp(routing: dict[str, Any]) -> str | None:
    """The routing's time zone name when it is a text (None: a number row from before routing
    carried it; the call is then bucketed in the account's zone of the moment)."""
    tz = routing.get("timezone")
    return tz if isinstance(tz, str) and tz else None


def _read(
    deps: Deps, number: str, caller: str | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, bool | None, dict[str, Any] | None, bool]:
    """(number row, lease row, first-time caller (None: not known), callers row (None: none or not
    known), ok). On failure, or with the lease row left unread: cached row, ok False."""
    row, lease, callers, ok = _read_rows(deps, number, caller)
    if not isinstance(lease, dict | None):  # LEASE_UNREAD: only a pool number's call needs its lease
        if (row or {}).get("kind") == "pool":
            return row, None, None, None, False
        lease = None
    first_time = is_first_call(callers, (row or {}).get("account")) if ok else None
    return row, lease, first_time, callers if isinstance(callers, dict) else None, ok


Rows = tuple[dict[str, Any] | None, LeaseRow, CallersRow, bool]


def _read_rows(deps: Deps, number: str, caller: str | None) -> Rows:
    """(number row, lease row, callers row, ok) with the one BatchGetItem. On failure: cached row,
    ok False."""
    cached = deps.cache.get(number)
    if deps.storage is None:
        return cached or _from_snapshot(deps, number), None, UNKNOWN, False
    try:
        row, lease, callers = deps.storage.read_routing(number, caller)
    except Exception as exc:  # storage down / slow / throttled: fail open
        deps.metrics.count("WebhookFailures")
        deps.log.warning(
            "routing read failed; failing open", extra={"error": type(exc).__name__, "cached": bool(cached)}
        )
        return cached or _from_snapshot(deps, number), None, UNKNOWN, False
    if row is not None:
        deps.cache.put(number, row)
    return row, lease, callers, True


def _lease_at_start(
    deps: Deps, number: str, lease: dict[str, Any] | None, start: float
) -> dict[str, Any] | None:
    """The lease that was live when the call started. The lease row read now is it, unless another
    session leased the number since (a replay of the outbox, a callback rebuilding the call after an
    outage): then the lease history's (one Query, never on a live incoming call, whose read is at
    its start). The next visitor's click must not get this call."""
    try:
        leased_at = float((lease or {}).get("leased_at") or 0)
    except (TypeError, ValueError):
        return lease
    if leased_at <= start + LEASE_SKEW_S or deps.storage is None:
        return lease
    try:
        return deps.storage.lease_at(number, start)
    except Exception as exc:  # the pool's channel without the visitor, rather than the wrong one
        deps.log.warning("lease history read failed", extra={"error": type(exc).__name__})
        return None


def _from_snapshot(deps: Deps, number: str) -> dict[str, Any] | None:
    """The number's row from the routing snapshot (a cold process with storage down)."""
    if deps.snapshot is None:
        return None
    try:
        row = deps.snapshot(number)
    except Exception as exc:
        deps.log.warning("routing snapshot read failed", extra={"error": type(exc).__name__})
        return None
    if row is not None:
        deps.metrics.count("RoutingFromSnapshot")
        deps.cache.put(number, row)
    return row


def _write_origin(
    deps: Deps, call_sid: str, fields: dict[str, Any], first_time: bool | None, bump: str | None = None
) -> str:
    if deps.storage is None:
        return "skipped"
    try:
        return deps.storage.write_origin(
            call_sid,
            fields,
            caller=fields.get("caller"),
            first_time=first_time,
            now_iso=_written(deps, deps.now()),
            bump=bump,
        )
    except Exception as exc:
        deps.metrics.count("WebhookFailures")
        deps.log.warning("call write failed; failing open", extra={"error": type(exc).__name__})
        return "failed"


# ------------------------------------------------------------------ routes


def voice(req: TwilioRequest, deps: Deps) -> tuple[int, str]:
    params = req.params
    call_sid = params.get("CallSid", "")
    number = tracking_number_of(params)
    caller, caller_kind = caller_of(params)
    now = deps.now()
    deps.metrics.count("CallsReceived")

    row: dict[str, Any] | None = None
    read: LeaseRow = None
    callers: CallersRow = UNKNOWN
    read_ok = False
    if number:
        row, read, callers, read_ok = _read_rows(deps, number, caller)
    lease_unread = read is LEASE_UNREAD
    lease = read if isinstance(read, dict) else None
    if row is None:
        if read_ok:
            deps.metrics.count("UnknownNumber")
            deps.log.info(
                "unknown tracking number", extra={"tracking_number": number, "outcome": "unknown-number"}
            )
            return 200, say_twiml(
                message("ja", "unknown"), language="ja-JP", extra=[(message("en", "unknown"), "en-US")]
            )
        if call_sid and CALL_SID.match(call_sid):  # the last resort rang, not the flow: say so
            marked = replace(req, query=_with_marker(req.query, FAILED_OPEN, "last-resort"))
            _hand_off(deps, marked, now, "routing read failed")
        return 200, _last_resort(deps, number, caller)

    routing = routing_of(row)
    if not read_ok:
        deps.log.warning("answering from cache; call not recorded yet", extra={"tracking_number": number})
        if call_sid and CALL_SID.match(call_sid):
            # the replay must record what this call did (the flow's first target), not what the
            # flow would have done with storage up (hours, menu, the round-robin counter)
            marked = replace(req, query=_with_marker(req.query, FAILED_OPEN))
            _hand_off(deps, marked, now, "routing read failed")
        return 200, _dial_for(deps, row, routing, number, caller, now, degraded=True, call_sid=call_sid)
    sid = call_sid if CALL_SID.match(call_sid) else ""
    callers_row = callers if isinstance(callers, dict) else None
    failed_open = req.query_params().get(FAILED_OPEN)
    if failed_open:  # a replay of a call answered by the fail-open path
        step = _failed_open_step(routing, first_target=failed_open != "last-resort")
    else:
        step = _flow_step(deps, row, routing, number, caller, callers_row, now, sid)
    if call_sid and CALL_SID.match(call_sid):
        if deps.replaying:  # the live call read its lease at its start: two requests, no third
            lease = _lease_at_start(deps, number, lease, now)
        fields = origin_fields(
            params, row, lease, start_epoch=now, created_by="voice", callers_row=callers_row
        )
        if step is not None:
            fields.update(step.fields)
        first_time = is_first_call(callers, row.get("account"))
        if deps.now() - now > WRITE_AFTER_S:  # a slow read: the write could take the caller past
            outcome = "skipped"               # the function's timeout; the outbox writes it instead
        elif lease_unread and row.get("kind") == "pool":
            # the visitor (keyword, click id) is on the lease row the read left unprocessed: the
            # outbox's replay reads it again (at the call's start) rather than record "pool only"
            deps.metrics.count("LeaseUnread")
            outcome = "skipped"
        else:
            outcome = _write_origin(deps, call_sid, fields, first_time, step.bump if step else None)
        if outcome == "duplicate" and deps.replaying and step is not None and step.fields:
            outcome = _flow_after_rebuild(deps, call_sid, number, step)
        if outcome in ("failed", "skipped"):
            _hand_off(deps, req, now, "call write failed")
        deps.log.info(
            "incoming call",
            extra={
                "account": row.get("account"),
                "tracking_number": number,
                "caller": mask(caller),
                "caller_kind": caller_kind,
                "channel": fields.get("channel"),
                "confidence": fields.get("confidence"),
                "flow_branch": fields.get("flow_branch"),
                "write": outcome,
            },
        )
    else:
        deps.log.warning("incoming call without a usable CallSid; not recorded")
    if step is not None:
        return 200, step.twiml
    return 200, _dial_for(deps, row, routing, number, caller, now)


def _flow_after_rebuild(deps: Deps, call_sid: str, number: str, step: flow_twiml.Step) -> str:
    """A replayed incoming call found its call written already: a callback that reached storage
    first rebuilt the origin, without what the flow decided (flow, branch, target, voicemail) or
    the round-robin turn. Write them once (not over a live write's own: a true duplicate)."""
    if deps.storage is None:
        return "skipped"
    try:
        if not deps.storage.note_flow(call_sid, step.fields, now_iso=_written(deps, deps.now())):
            return "duplicate"
        if step.bump:
            deps.storage.bump(number, step.bump)
    except Exception as exc:
        deps.metrics.count("WebhookFailures")
        deps.log.warning("flow write after a rebuild failed", extra={"error": type(exc).__name__})
        return "failed"
    return "completed"


def _context(
    deps: Deps,
    row: dict[str, Any],
    routing: dict[str, Any],
    number: str,
    caller: str | None,
    started: float,
    call_sid: str = "",
    query: dict[str, str] | None = None,
) -> flow_twiml.CallContext:
    """What the call's TwiML needs. A follow-up (``query``: its action URL's, which Twilio signed)
    records as the call decided when it came in (``rec``), announced or not then: never by the
    number's row as it reads now (recording turned on since, or a process's older row); and offers
    the voicemail as the call came in (``vm``: an after-hours target with voicemail sets it for its
    call only)."""
    language = str(routing.get("language") or "ja-JP")
    rec = routing.get("recording")
    recording: dict[str, Any] = rec if isinstance(rec, dict) else {}
    decided = (query or {}).get("rec")
    record = decided == "1" if decided in ("0", "1") else bool(recording.get("enabled"))
    return flow_twiml.CallContext(
        base=deps.public_url.rstrip("/"),
        # The business sees the caller's own number; a hidden or invalid caller id would be rejected
        # by Twilio, so then the tracking number is shown instead.
        caller_id=caller or str(row.get("number") or number),
        language=language,
        started=int(started),
        record=record,
        announcement=(recording.get("announcement") or message(language, "announcement")) if record else None,
        whisper=whisper_text(routing.get("whisper"), row.get("channel"), row.get("campaign"), language),
        voicemail=query.get("vm") == "1" if query is not None else bool(routing.get("voicemail")),
        ring_timeout=int(routing.get("ring_timeout") or 20),
        call_sid=call_sid,
    )


def _local_time(routing: dict[str, Any], now: float) -> datetime:
    import zoneinfo

    try:
        tz = zoneinfo.ZoneInfo(str(routing.get("timezone") or "Asia/Tokyo"))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        tz = zoneinfo.ZoneInfo("Asia/Tokyo")
    return datetime.fromtimestamp(now, tz=tz)


def _sticky(callers: dict[str, Any] | None, account: Any) -> str | None:
    agent = (callers or {}).get(sticky_attribute(str(account))) if account else None
    return agent if isinstance(agent, str) else None


# Query marker on an outbox copy of /twilio/voice answered while storage was down (fail open).
FAILED_OPEN = "ct_failed_open"


def _with_marker(query: str, name: str, value: str = "1") -> str:
    return f"{query}&{name}={value}" if query else f"{name}={value}"


def _failed_open_step(routing: dict[str, Any], *, first_target: bool = True) -> flow_twiml.Step | None:
    """What the fail-open path did with a flow: its first target rang (from the cached routing), or
    the last resort (no routing at hand), without hours or menu."""
    flow = routing.get("flow")
    if not isinstance(flow, dict):
        return None
    target = flow.get("first") if first_target else None
    return flow_twiml.Step("", {"flow": flow.get("name"), "flow_branch": "fail-open", "target": target})


def _flow_step(
    deps: Deps,
    row: dict[str, Any],
    routing: dict[str, Any],
    number: str,
    caller: str | None,
    callers: dict[str, Any] | None,
    now: float,
    call_sid: str,
) -> flow_twiml.Step | None:
    """The number's call flow for a call at ``now`` (None: the number has no flow, or it is unusable)."""
    flow = routing.get("flow")
    if not isinstance(flow, dict):
        return None
    try:
        ctx = _context(deps, row, routing, number, caller, now, call_sid)
        branch = flow_branch(flow, _local_time(routing, now))
        sticky = _sticky(callers, row.get("account"))
        return flow_twiml.incoming(ctx, flow, branch, counters=row, sticky=sticky)
    except Exception as exc:  # a malformed flow must not cost the call: forward_to instead
        deps.metrics.count("WebhookFailures")
        deps.log.exception("call flow failed; forwarding to forward_to", extra={"error": type(exc).__name__})
        return None


def _last_resort(deps: Deps, number: str, caller: str | None) -> str:
    forward = deps.fallback_forward_to
    if forward:
        deps.metrics.count("FallbackForwards")
        deps.log.warning(
            "no routing available; forwarding to CALLTRACK_FALLBACK_FORWARD_TO",
            extra={"tracking_number": number},
        )
        # The <Dial> result comes back like any other call's: without it an answered call stays
        # "missed" (the status callback alone cannot tell an answered forward from a hang-up).
        base = deps.public_url.rstrip("/")
        action = url_with_query(f"{base}/twilio/dial-status", {"t": str(int(deps.now()))})
        plan = DialPlan(forward_to=forward, caller_id=caller or (number if is_e164(number) else None),
                        action_url=action)
        return dial_twiml(plan)
    deps.log.error(
        "no routing and no CALLTRACK_FALLBACK_FORWARD_TO; caller told to call again",
        extra={"tracking_number": number},
    )
    return say_twiml(
        message("ja", "unavailable"), language="ja-JP", extra=[(message("en", "unavailable"), "en-US")]
    )


def fail_open(deps: Deps, params: dict[str, str]) -> str:
    """TwiML for an unexpected failure on the incoming-call path: cached routing, else last resort."""
    number = tracking_number_of(params)
    caller, _ = caller_of(params)
    row = deps.cache.get(number) if number else None
    if row is not None:
        try:
            return _dial_for(
                deps,
                row,
                routing_of(row),
                number,
                caller,
                deps.now(),
                degraded=True,
                call_sid=params.get("CallSid", ""),
            )
        except Exception:
            deps.log.exception("dial from cache failed")
    return _last_resort(deps, number, caller)


def whisper_text(template: Any, channel: str | None, campaign: str | None, language: str) -> str | None:
    if not template:
        return None
    text = template if isinstance(template, str) else message(language, "whisper")
    display = (
        CHANNEL_NAMES_JA.get(channel or "", channel or "") if language.startswith("ja") else (channel or "")
    )
    text = text.replace("{channel}", display).replace("{campaign}", campaign or "")
    if channel and display != channel:
        # the admin side may have rendered the template with the channel id already: replace the id
        # where it stands alone, not inside a word ("line" in "online-sale", "tv" in "tvcm")
        text = re.sub(rf"(?<![A-Za-z0-9_-]){re.escape(channel)}(?![A-Za-z0-9_-])", display, text)
    return text


def _dial_for(
    deps: Deps,
    row: dict[str, Any],
    routing: dict[str, Any],
    number: str,
    caller: str | None,
    now: float,
    *,
    degraded: bool = False,
    call_sid: str = "",
) -> str:
    flow = routing.get("flow")
    if degraded and isinstance(flow, dict):  # storage down: the flow's first target, at once
        try:
            sid = call_sid if CALL_SID.match(call_sid) else ""
            return flow_twiml.fail_open(_context(deps, row, routing, number, caller, now, sid), flow)
        except Exception:
            deps.log.exception("call flow's first target failed; forwarding to forward_to")
    ctx = _context(deps, row, routing, number, caller, now)
    forward_to = str(routing.get("forward_to") or deps.fallback_forward_to or "")
    if not forward_to:
        deps.log.error("number has no forward_to", extra={"tracking_number": number})
        return say_twiml(message(ctx.language, "unavailable"), language=ctx.language)
    return flow_twiml.forward(ctx, forward_to)


def whisper(req: TwilioRequest, deps: Deps) -> tuple[int, str]:
    """The answering member's leg (<Number url>): speak the whisper; with ``agent``, record who
    answered on the parent call (and on the caller's row, so their next call goes to them first)."""
    query = req.query_params()
    text = (query.get("say") or "").strip()[:200]
    language = (query.get("lang") or "ja-JP").strip()[:10]
    agent = (query.get("agent") or "").strip()[:64]
    parent = req.params.get("ParentCallSid") or query.get("call") or ""
    if agent and parent and CALL_SID.match(parent):
        _record_agent(deps, req, parent, agent)
    if not text:
        return 200, empty_twiml()
    return 200, say_twiml(text, language=language, hangup=False)


def _record_agent(deps: Deps, req: TwilioRequest, call_sid: str, agent: str) -> None:
    now = deps.now()
    if deps.storage is None:
        _hand_off(deps, req, now, "agent not recorded")
        return
    try:
        deps.storage.record_agent(call_sid, agent, now_iso=_written(deps, now))
    except Exception as exc:
        deps.metrics.count("WebhookFailures")
        deps.log.warning("agent write failed", extra={"error": type(exc).__name__})
        _hand_off(deps, req, now, "agent write failed")
        return
    deps.metrics.count("AgentsAttributed")
    deps.log.info("answered by", extra={"agent": agent})


def _followup_rows(
    deps: Deps, req: TwilioRequest
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, str, str | None, bool]:
    """A follow-up request of a call already answered by /twilio/voice: (number row, callers row,
    number, caller, read ok). The fresh read (for the round-robin counter and the sticky agent),
    else the cache or the snapshot."""
    number = tracking_number_of(req.params)
    caller, _ = caller_of(req.params)
    row, _lease, callers, ok = _read_rows(deps, number, caller) if number else (None, None, UNKNOWN, False)
    return row, callers if isinstance(callers, dict) else None, number, caller, ok


def _started(query: dict[str, str], now: float) -> float:
    started = _int(query.get("t"))
    return float(started) if started is not None and started <= now else now


def menu(req: TwilioRequest, deps: Deps) -> tuple[int, str]:
    """The caller pressed a key in the flow's menu (or it timed out): ring the chosen target."""
    query = req.query_params()
    now = deps.now()
    row, callers, number, caller, read_ok = _followup_rows(deps, req)
    routing = routing_of(row) if row else {}
    flow = routing.get("flow")
    call_sid = req.params.get("CallSid", "")
    if row is None and not read_ok and deps.storage is not None and CALL_SID.match(call_sid):
        # the last resort rings, not the chosen target: the replay records that (a replay that
        # still cannot read is tried again until storage is back)
        marked = replace(req, query=_with_marker(req.query, FAILED_OPEN, "last-resort"))
        _hand_off(deps, marked, now, "routing read failed")
    if query.get(FAILED_OPEN) and row is not None and deps.storage is not None and CALL_SID.match(call_sid):
        # the replay of a choice the last resort answered: no target rang, no turn to advance
        choice = (req.params.get("Digits") or "").strip()[:1] or "timeout"
        try:
            fields = {"menu_choice": choice, "flow_branch": "fail-open"}
            deps.storage.note(call_sid, fields, now_iso=_written(deps, now))
        except Exception as exc:
            deps.log.warning("menu choice not written", extra={"error": type(exc).__name__})
            _hand_off(deps, req, now, "menu choice not written")
        return 200, empty_twiml()
    if row is None or not isinstance(flow, dict):
        return 200, _last_resort(deps, number, caller) if row is None else _dial_for(
            deps, row, routing, number, caller, now
        )
    digits = (req.params.get("Digits") or "").strip()[:1]
    ctx = _context(deps, row, routing, number, caller, _started(query, now), call_sid, query)
    step = flow_twiml.after_menu(ctx, flow, digits, counters=row, sticky=_sticky(callers, row.get("account")))
    if deps.storage is not None and CALL_SID.match(call_sid):
        # The replay records the choice (note, then bump) when storage failed a moment ago or is
        # slow: two more tries here could take the caller past the function's timeout.
        try:
            if not read_ok or deps.now() - now > WRITE_AFTER_S:
                raise TimeoutError("storage failing or slow: left to the replay")
            deps.storage.note(call_sid, step.fields, now_iso=_written(deps, now))
            if step.bump:
                if deps.now() - now > 1.5 * WRITE_AFTER_S:
                    raise TimeoutError("storage slow: the bump left to the replay")
                deps.storage.bump(number, step.bump)
        except Exception as exc:  # the call still rings the target
            deps.metrics.count("WebhookFailures")
            deps.log.warning("menu choice not written", extra={"error": type(exc).__name__})
            _hand_off(deps, req, now, "menu choice not written")
    deps.log.info("menu", extra={"choice": step.fields.get("menu_choice"), "target": step.fields["target"]})
    return 200, step.twiml


def ring_next(req: TwilioRequest, deps: Deps) -> tuple[int, str]:
    """A sequential / round-robin member's <Dial> ended: answered -> the <Dial> result as usual;
    else ring the next member (the last member's action is /twilio/dial-status itself)."""
    query = req.query_params()
    dial = (req.params.get("DialCallStatus") or "").strip().lower()
    caller_gone = (req.params.get("CallStatus") or "").strip().lower() in CALL_FINAL
    if dial in DIAL_ANSWERED or dial == "canceled" or caller_gone:  # answered, or nobody left to ring for
        return dial_status(req, deps)
    # the number's row as it is now (a process's cached row may be days older than the call's
    # group: removed members, another size); the cache or snapshot only when the read fails
    row, _callers, number, caller, _ok = _followup_rows(deps, req)
    routing = routing_of(row) if row else {}
    flow = routing.get("flow")
    target = query.get("g") or ""
    targets = flow.get("targets") if isinstance(flow, dict) else None
    group = ((targets or {}).get(target) or {}).get("ring_group")
    order = flow_twiml.parse_order(query.get("o") or "", len(group["members"])) if group else None
    index = _int(query.get("i"))
    if row is None or not isinstance(flow, dict) or order is None or index is None or index >= len(order):
        deps.log.warning("ring-next cannot continue the ring group; ending as a <Dial> result")
        return dial_status(req, deps)
    started = _started(query, deps.now())
    ctx = _context(deps, row, routing, number, caller, started, req.params.get("CallSid", ""), query)
    return 200, flow_twiml.dial_member(ctx, flow, target, order, index, announce=False)


def _int(value: str | None) -> int | None:
    try:
        return max(0, int(float(value))) if value not in (None, "") else None
    except (TypeError, ValueError, OverflowError):  # OverflowError: "inf", or 400 digits
        return None


def voicemail_done(req: TwilioRequest, deps: Deps) -> tuple[int, str]:
    """The voicemail's <Record> ended (the recording itself arrives at /twilio/recording): hang up."""
    return 200, hangup_twiml()


def _rebuild_if_missing(
    req: TwilioRequest,
    deps: Deps,
    call_sid: str,
    row: dict[str, Any] | None,
    start_epoch: float,
    created_by: str,
) -> dict[str, Any] | None:
    """Any callback rebuilds the call's origin when the voice write never landed; the origin it
    wrote (None: nothing rebuilt). A redial is recognised as on the live call (the caller's row
    and redial item are read with the number).

    First-time is decided now, not when the call started: if the caller's next call to the account
    was recorded in between, this one counts as the repeat (rare: it needs the voice write to fail
    and the caller to call again before this call's callback arrives)."""
    if row is None or row.get("account"):
        return None
    number = tracking_number_of(req.params)
    if not number:
        return None
    caller, _ = caller_of(req.params)
    number_row, lease, first_time, callers, ok = _read(deps, number, caller)
    if not ok or number_row is None:
        return None
    lease = _lease_at_start(deps, number, lease, start_epoch)
    fields = origin_fields(req.params, number_row, lease, start_epoch=start_epoch, created_by=created_by,
                           callers_row=callers)
    outcome = _write_origin(deps, call_sid, fields, first_time)
    deps.log.info("call rebuilt from a callback", extra={"via": created_by, "write": outcome})
    return fields if outcome == "created" else None


# A row a callback created whose origin never came (its number is not ours, or both the voice
# write and every rebuild failed) holds no account and no caller number; it expires after this.
ORPHAN_CALL_DAYS = 30


def _apply_outcome(
    deps: Deps,
    call_sid: str,
    fields: dict[str, Any],
    status_fields: dict[str, Any],
    *,
    via: str,
    rank: int,
    now: float,
) -> tuple[str, dict[str, Any] | None] | None:
    """Apply the outcome of the callback ``via`` (dial-status, call-status) once; its marker is
    ``via`` as an attribute name (dial_status). (outcome, new row), or None when the write failed
    (counted and logged; Twilio still gets its TwiML)."""
    if deps.storage is None:
        return None
    try:
        return deps.storage.apply_outcome(
            call_sid,
            fields,
            status_fields,
            rank=rank,
            marker=via.replace("-", "_"),
            now_iso=_written(deps, now),
            orphan_expire_at=expire_at(now, ORPHAN_CALL_DAYS),
        )
    except Exception as exc:
        deps.metrics.count("WebhookFailures")
        deps.log.warning(f"{via} write failed", extra={"error": type(exc).__name__})
        return None


DIAL_ANSWERED = {"completed", "answered"}
DIAL_MISSED = {"busy", "no-answer", "failed", "canceled"}


def dial_answered(params: dict[str, str]) -> bool:
    """The <Dial> this callback reports was answered (the conversation took place)."""
    return (params.get("DialCallStatus") or "").strip().lower() in DIAL_ANSWERED


def dial_status(req: TwilioRequest, deps: Deps) -> tuple[int, str]:
    params = req.params
    query = req.query_params()
    call_sid = params.get("CallSid", "")
    dial = (params.get("DialCallStatus") or "").strip().lower()
    now = deps.now()
    talk = _int(params.get("DialCallDuration"))
    started = _int(query.get("t"))
    answered = dial in DIAL_ANSWERED
    language = query.get("lang") or "ja-JP"
    if answered:
        twiml = hangup_twiml()
    elif query.get("vm") == "1":
        twiml = voicemail_twiml(
            message(language, "voicemail"),
            language=language,
            recording_callback_url=deps.public_url.rstrip("/") + "/twilio/recording",
            done_url=deps.public_url.rstrip("/") + "/twilio/voicemail-done",
        )
    elif dial in DIAL_MISSED:
        # nobody answered and no voicemail: the caller hears why before the line closes (a caller
        # who hung up meanwhile hears nothing: Twilio ignores the answer to an ended call)
        twiml = say_twiml(message(language, "no_answer"), language=language)
    else:
        twiml = hangup_twiml()
    if not (call_sid and CALL_SID.match(call_sid)) or dial not in DIAL_ANSWERED | DIAL_MISSED:
        deps.log.warning("dial-status not recorded", extra={"dial_status": dial[:20]})
        return 200, twiml
    ring = None
    if started is not None and started <= now:
        ring = max(0, int(now - started) - (talk or 0 if answered else 0))
    fields: dict[str, Any] = {"dial_status": dial, "ended_at": iso(now)}
    if not answered and query.get("vm") == "1":
        fields["voicemail"] = True  # offered: the recording-reconcile job looks for its message
    status_fields: dict[str, Any] = {
        "status": "answered" if answered else "missed",
        "outcome_reason": dial,
        "answered": answered,
        "talk_seconds": (talk or 0) if answered else 0,
        "ring_seconds": ring,
    }
    written = _apply_outcome(deps, call_sid, fields, status_fields, via="dial-status", rank=2, now=now)
    if written is None:
        _hand_off(deps, req, now, "dial-status write failed")
        return 200, twiml
    outcome, row = written
    if outcome == "applied":
        _count_dial_outcome(deps, answered, counted_missed=bool(row and row.get("call_status")))
    deps.log.info("dial status", extra={"dial_status": dial, "talk_seconds": talk, "write": outcome})
    start_epoch = float(started) if started is not None else now - (talk or 0)
    _rebuild_if_missing(req, deps, call_sid, row, start_epoch, "dial-status")
    return 200, twiml


def _count_dial_outcome(deps: Deps, answered: bool, *, counted_missed: bool) -> None:
    """Count the call once. When the status callback was applied first (the caller hung up while
    it rang, or the two callbacks raced) it has already counted the call as missed: a missed dial
    adds nothing, an answered one moves that count from missed to answered."""
    if not counted_missed:
        deps.metrics.count("CallsAnswered" if answered else "CallsMissed")
    elif answered:
        deps.metrics.count("CallsAnswered")
        deps.metrics.count("CallsMissed", -1)


CALL_FINAL = {
    "completed": "missed",
    "busy": "busy",
    "no-answer": "missed",
    "failed": "failed",
    "canceled": "canceled",
}


def _remember_pool_call(deps: Deps, call: dict[str, Any] | None, now: float) -> None:
    """A pool call ended (its first status callback): the caller's redial item keeps it, so their redial
    is attributed as this call was, then, when the call is surely its session's
    (``calltrack.attribution.marks_holder``), the number's lease row says its holder called, so the
    number may go to the next visitor first (``dni_lease.leasing``). Only for a caller whose redial
    can be recognised (a caller number), never for a test caller. Best effort: the call is written;
    a mark that fails only leaves the number to rest as any other and a redial to its lease."""
    if deps.storage is None or not call or call.get("test"):
        return
    if not (call.get("caller") and call.get("account")):
        return
    try:
        started = datetime.fromisoformat(str(call.get("started_at"))).timestamp()
    except ValueError:
        return
    earlier = earlier_call_value(call, started)
    if earlier is None:
        return  # not a pool call, or no session was attributed
    session = str((call.get("attribution") or {}).get("session_id"))
    try:
        deps.storage.remember_pool_call(
            str(call["caller"]), str(call["account"]), str(call["tracking_number"]), session, earlier,
            called_at=now, mark=marks_holder(call),
        )
    except Exception as exc:
        deps.metrics.count("WebhookFailures")
        deps.log.warning("pool call not remembered", extra={"error": type(exc).__name__})


def _timestamp(value: str | None, default: float) -> float:
    if not value:
        return default
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return default


def call_status(req: TwilioRequest, deps: Deps) -> tuple[int, str]:
    params = req.params
    call_sid = params.get("CallSid", "")
    status = (params.get("CallStatus") or "").strip().lower()
    now = deps.now()
    if not (call_sid and CALL_SID.match(call_sid)):
        return 200, empty_twiml()
    if status not in CALL_FINAL:
        deps.log.info("call status ignored", extra={"call_status": status[:20]})  # e.g. ringing, in-progress
        return 200, empty_twiml()
    duration = _int(params.get("CallDuration"))
    ended = _timestamp(params.get("Timestamp"), now)
    fields: dict[str, Any] = {"call_status": status, "call_duration": duration, "ended_at": iso(ended)}
    # Without a <Dial> result the call ended unanswered: the caller hung up while it rang (or the
    # call failed). The <Dial> action (rank 2), whenever it arrives, overrides this.
    status_fields: dict[str, Any] = {
        "status": CALL_FINAL[status],
        "outcome_reason": "caller-hangup" if status == "completed" else status,
        "answered": False,
        "talk_seconds": 0,
        "ring_seconds": duration,
    }
    written = _apply_outcome(deps, call_sid, fields, status_fields, via="call-status", rank=1, now=now)
    if written is None:
        _hand_off(deps, req, now, "call-status write failed")
        return 200, empty_twiml()
    outcome, row = written
    if outcome == "applied":
        deps.metrics.count("CallsMissed")
    deps.log.info("call status", extra={"call_status": status, "write": outcome})
    # a call whose origin this callback rebuilds is remembered as rebuilt
    rebuilt = _rebuild_if_missing(req, deps, call_sid, row, ended - (duration or 0), "call-status")
    _remember_pool_call(deps, rebuilt or row, now)
    return 200, empty_twiml()
