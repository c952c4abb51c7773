"""Call attribution: which source a call to a tracking number came from, and how sure we are.

A pure function over plain Python values (no AWS, no PynamoDB), shared by the voice webhook and
the DNI tests:

    attribute(number_row, lease_row, now_epoch, late_window_minutes=120) -> Attribution

- static number: the number's channel / campaign / medium, confidence 1.0.
- pool number, lease live at ``now``: the session's attribution (keyword, click ids, utm,
  landing page, referrer), confidence 1.0 — or the lease's own ``confidence`` when the DNI
  side marked it lower (an exhausted pool handed the number to several sessions).
- pool number, lease ended ``gap`` minutes ago (released_at, else expires_at): still the last
  session, confidence falling linearly from ``LATE_START`` at gap 0 to ``LATE_END`` at the
  account's ``dni.late_call_window_minutes``.
- beyond that window, no lease, or a lease of another account: the pool's channel / campaign
  without session data, confidence ``POOL_ONLY``.
- an exhausted pool showed the number to other sessions too (lease row ``shared_until`` up to
  the call plus the late window, or ``kind`` "overflow"): the session's confidence times
  ``SHARED_CONFIDENCE`` (same value as ``calltrack.models.dni.SHARED_CONFIDENCE``, which is not
  imported here to keep PynamoDB off the webhook's import path).
- the number's lease row names a previous holder (``prev_released_at``, ``prev_session_id``:
  the session that held it before this lease) and the call comes within the late-call window of
  that holder's release: the call may be the previous session's late call, so the confidence is
  at most ``1 - (1 - AMBIGUOUS_START) * exp(-since / (window * AMBIGUOUS_DECAY))`` (0.6 right
  after the release, 0.95 a fifth of the window later, never 1.0 inside the window: late calls
  thin out fast, see bench P7's calibration), and ``previous_session_id`` names the other one.
- a repeat caller (``earlier``: the caller's last call to the account, ``earlier_call`` of their
  redial item, read with their callers row) who called this same pool number within the late-call
  window, attributed to a session that no longer holds it (the number went to another session
  after that call): the call is attributed as the earlier one was (basis ``repeat_caller``,
  confidence at most ``LATE_START``; ``previous_session_id`` names the number's holder now). A
  redial after a missed call reaches the number the caller saw, whoever it was handed to since;
  that is also why a number whose holder called may go to the next visitor first
  (``dni_lease.leasing``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

LATE_START = 0.9
LATE_END = 0.5
POOL_ONLY = 0.2
SHARED_CONFIDENCE = 0.5
AMBIGUOUS_START = 0.6
AMBIGUOUS_DECAY = 0.04  # the cap's time constant, as a share of the late-call window
# ad platforms' browser ids captured by dni.js (conversions, issue 16); also top-level attributes of
# a lease row: a renewal adds those the lease began without (dni_lease.store.renew)
AD_BROWSER_IDS = ("ga_client_id", "ga_session_id", "fbp", "fbc")
SESSION_KEYS = (
    "keyword",
    "gclid",
    "gbraid",
    "wbraid",
    "fbclid",
    "yclid",
    "msclkid",
    "landing_page",
    "referrer",
    *AD_BROWSER_IDS,
)


# The attributes ``last#<account>``: the caller's last pool call to the account. They live on the
# caller's redial item of the callers table (``redial_key``), not on the callers row: it expires
# (``REDIAL_KEEP_S``, DynamoDB TTL), so a copy of the call's attribution is kept only as long as a
# redial can use it, not for as long as the caller is remembered.
EARLIER_CALL_PREFIX = "last#"
REDIAL_PREFIX = "redial#"
REDIAL_KEEP_S = 7 * 86400 + 3600  # the longest late-call window (dni.late_call_window_minutes), and an hour


def redial_key(caller: str) -> str:
    """The callers-table key of the caller's redial item (read with the callers row)."""
    return f"{REDIAL_PREFIX}{caller}"


# A lease row's marks, set when a call to the number ends: the session it was attributed to, while
# that session is still the row's holder, and when. A holder who called is the safest to follow:
# their redial is recognised by the caller (``earlier``), so the number need not rest for them.
CALLED_SESSION, CALLED_AT = "called_session", "called_at"
# A call marks its holder only when it is sure enough to be theirs: not a shared number's, not one
# right after the previous holder left (the ambiguity cap is below this for ~3 minutes of a 2-hour
# window), not a late call long after the page closed. A holder wrongly marked loses their rest.
CALLED_MARK_CONFIDENCE = 0.8


def marks_holder(call: Mapping[str, Any]) -> bool:
    """Whether a pool call, as stored, marks its session's lease row when it ends (the voice
    webhook) and counts as that session having called (the pools report): a caller number (their
    redial can be recognised), not a test call, attributed to a session with enough confidence."""
    details = _json(call.get("attribution"))
    confidence = _num(call.get("confidence"))
    return bool(
        call.get("caller_kind") == "number" and not call.get("test")
        and details.get("basis") in ("lease", "late") and details.get("session_id")
        and confidence is not None and confidence >= CALLED_MARK_CONFIDENCE
    )


@dataclass
class Attribution:
    channel: str | None = None
    campaign: str | None = None
    medium: str | None = None
    keyword: str | None = None
    gclid: str | None = None
    gbraid: str | None = None
    wbraid: str | None = None
    fbclid: str | None = None
    yclid: str | None = None
    msclkid: str | None = None
    ga_client_id: str | None = None
    ga_session_id: str | None = None
    fbp: str | None = None
    fbc: str | None = None
    utm: dict[str, str] = field(default_factory=dict)
    landing_page: str | None = None
    referrer: str | None = None
    session_id: str | None = None
    visitor_id: str | None = None
    lease_id: str | None = None
    pool: str | None = None
    kind: str = "static"  # static | pool
    basis: str = "static"  # static | lease | late | repeat_caller | pool | unknown
    gap_minutes: float | None = None
    previous_session_id: str | None = None  # set when the call may also be this session's
    redial_of_at: float | None = None  # repeat_caller: the start of the first of the caller's calls
    confidence: float = 1.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def details(self) -> dict[str, Any]:
        """What goes into Call.attribution (JSON): everything except the top-level columns."""
        out = {
            k: v
            for k, v in asdict(self).items()
            if k not in ("channel", "campaign", "keyword", "confidence") and v not in (None, {}, "")
        }
        return out


_FIELDS = frozenset(Attribution.__dataclass_fields__)


def _num(value: Any) -> float | None:
    try:
        return None if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return None


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str) and value:
        try:
            loaded = json.loads(value)
        except ValueError:
            return {}
        return loaded if isinstance(loaded, dict) else {}
    return {}


def _utm(raw: Mapping[str, Any]) -> dict[str, str]:
    utm = raw.get("utm")
    out: dict[str, str] = {}
    if isinstance(utm, Mapping):
        for key, value in utm.items():
            if value not in (None, ""):
                name = str(key)
                out[name[4:] if name.startswith("utm_") else name] = str(value)
    for key in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"):
        if raw.get(key) not in (None, "") and key[4:] not in out:
            out[key[4:]] = str(raw[key])
    return out


def lease_end(lease: Mapping[str, Any]) -> float | None:
    """When the lease stopped being live: released_at if it was released early, else expires_at."""
    released = _num(lease.get("released_at")) or 0.0
    expires = _num(lease.get("expires_at"))
    if released > 0 and (expires is None or released < expires):
        return released
    return expires


def _previous_session(
    lease_row: Mapping[str, Any], raw: Mapping[str, Any], now_epoch: float, late_window_minutes: float
) -> tuple[str, float] | None:
    """(previous holder, confidence cap) when the call falls in the previous holder's late window."""
    prev_end = _num(lease_row.get("prev_released_at"))
    prev_session = lease_row.get("prev_session_id")
    current = raw.get("session_id") or lease_row.get("session_id")
    if prev_end is None or not prev_session or prev_session == current or late_window_minutes <= 0:
        return None
    since = (now_epoch - prev_end) / 60.0
    if since > late_window_minutes:
        return None
    tau = late_window_minutes * AMBIGUOUS_DECAY
    cap = 1.0 - (1.0 - AMBIGUOUS_START) * math.exp(-max(0.0, since) / tau)
    return str(prev_session), min(cap, 0.999)  # stays below 1.0 after rounding to 3 places


def earlier_call_attribute(account: str) -> str:
    """The redial-item attribute holding the caller's last pool call to ``account`` (JSON)."""
    return f"{EARLIER_CALL_PREFIX}{account}"


def earlier_call_value(call: Mapping[str, Any], started_epoch: float) -> str | None:
    """What a pool call leaves on its caller's redial item for a repeat call (``earlier_call``): the
    number, when, and the call's attribution; None for a call no session was attributed."""
    details = _json(call.get("attribution"))
    if call.get("source_kind") != "pool" or not details.get("session_id") or not call.get("tracking_number"):
        return None
    # a redial keeps the start of the call it follows: the number changed hands after that one
    first = _num(details.get("redial_of_at")) if details.get("basis") == "repeat_caller" else None
    return json.dumps(
        {
            "number": call["tracking_number"],
            "at": round(started_epoch, 3),
            "first_at": round(first if first is not None else started_epoch, 3),
            "channel": call.get("channel"),
            "campaign": call.get("campaign"),
            "keyword": call.get("keyword"),
            "confidence": call.get("confidence"),
            "attribution": details,
        },
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    )


def earlier_call(callers_row: Mapping[str, Any] | None, account: Any) -> dict[str, Any] | None:
    """The caller's last pool call to ``account`` from what the webhook read of the caller (their
    redial item's attributes; None: none, or unreadable)."""
    if not callers_row or not account:
        return None
    value = _json(callers_row.get(earlier_call_attribute(str(account))))
    return value if value.get("number") and _num(value.get("at")) is not None else None


def _repeat_call(
    base: Attribution,
    number_row: Mapping[str, Any],
    lease_row: Mapping[str, Any] | None,
    earlier: Mapping[str, Any] | None,
    now_epoch: float,
    late_window_minutes: float,
) -> Attribution | None:
    """The earlier call's attribution when this call is its caller's repeat call to a number that
    went to another session since (see the module docstring). The number changed hands after the
    first call of the caller's calls to it (``first_at``: a redial's own call keeps it); the window
    runs from their last call, or from their session's release of the number when that came later
    (a page left open after the call: the number rested for nobody from the call on)."""
    if not earlier or not lease_row or earlier.get("number") != number_row.get("number"):
        return None
    details = _json(earlier.get("attribution"))
    session, at = details.get("session_id"), _num(earlier.get("at"))
    holder, leased_at = lease_row.get("session_id"), _num(lease_row.get("leased_at"))
    if not session or at is None or session == holder or leased_at is None:
        return None
    first_at = _num(earlier.get("first_at"))
    first_at = at if first_at is None else min(first_at, at)
    if leased_at < first_at:
        return None
    released = at
    if lease_row.get("prev_session_id") == session:
        released = max(at, _num(lease_row.get("prev_released_at")) or at)
    since = (now_epoch - at) / 60.0
    if since < 0 or (now_epoch - released) / 60.0 > late_window_minutes:
        return None
    out = Attribution(**{k: v for k, v in details.items() if k in _FIELDS and k not in ("kind", "basis")})
    out.channel = earlier.get("channel") or base.channel
    out.campaign = earlier.get("campaign") or base.campaign
    out.keyword = earlier.get("keyword") or out.keyword
    out.kind, out.basis, out.gap_minutes = base.kind, "repeat_caller", round(since, 2)
    out.previous_session_id = str(holder) if holder else None
    out.redial_of_at = first_at
    own = _num(earlier.get("confidence"))
    out.confidence = round(min(LATE_START, own if own is not None else LATE_START), 3)
    return out


def attribute(
    number_row: Mapping[str, Any],
    lease_row: Mapping[str, Any] | None,
    now_epoch: float,
    late_window_minutes: float = 120,
    earlier: Mapping[str, Any] | None = None,
) -> Attribution:
    """The call's attribution (see the module docstring); ``earlier``: the caller's last pool call
    to the account (``earlier_call``), for a repeat call."""
    kind = str(number_row.get("kind") or "static")
    base = Attribution(
        channel=number_row.get("channel"),
        campaign=number_row.get("campaign"),
        medium=number_row.get("medium"),
        pool=number_row.get("pool"),
        kind=kind,
    )
    if kind != "pool":
        return base
    base.basis, base.confidence = "pool", POOL_ONLY
    repeat = _repeat_call(base, number_row, lease_row, earlier, now_epoch, late_window_minutes)
    if repeat is not None:
        return repeat
    if not lease_row or (lease_row.get("account") and lease_row.get("account") != number_row.get("account")):
        return base
    if lease_row.get("pool") and number_row.get("pool") and lease_row.get("pool") != number_row.get("pool"):
        return base  # the number moved to another pool since: its visitor came through the old one
    if not lease_row.get("session_id") and not lease_row.get("attribution"):
        return base
    leased_at = _num(lease_row.get("leased_at"))
    if leased_at is not None and leased_at > now_epoch + 60:
        return base  # a lease from the future (clock skew or a test replay): do not trust it
    end = lease_end(lease_row)
    if end is None:
        return base
    gap_minutes = max(0.0, (now_epoch - end) / 60.0)
    if now_epoch <= end:
        basis, confidence, gap = "lease", 1.0, None
    elif gap_minutes <= late_window_minutes:
        frac = gap_minutes / late_window_minutes if late_window_minutes > 0 else 1.0
        basis, confidence, gap = "late", LATE_START - (LATE_START - LATE_END) * frac, round(gap_minutes, 2)
    else:
        return base
    raw = _json(lease_row.get("attribution"))
    for key in AD_BROWSER_IDS:  # set by a renewal after the lease began (dni_lease.store.renew)
        if not raw.get(key) and lease_row.get(key):
            raw[key] = lease_row[key]
    shared_until = _num(lease_row.get("shared_until"))
    if lease_row.get("kind") == "overflow" or (
        shared_until is not None and now_epoch <= shared_until + late_window_minutes * 60
    ):
        confidence *= SHARED_CONFIDENCE
    previous = _previous_session(lease_row, raw, now_epoch, late_window_minutes)
    if previous is not None:
        confidence = min(confidence, previous[1])
    own = _num(raw.get("confidence"))
    if own is not None:
        confidence = min(confidence, max(0.0, min(1.0, own)))
    out = Attribution(
        channel=base.channel,
        campaign=base.campaign,
        medium=base.medium,
        pool=base.pool or lease_row.get("pool"),
        kind=kind,
        basis=basis,
        gap_minutes=gap,
        confidence=round(confidence, 3),
        utm=_utm(raw),
        session_id=raw.get("session_id") or lease_row.get("session_id"),
        visitor_id=raw.get("visitor_id") or lease_row.get("visitor_id"),
        lease_id=lease_row.get("lease_id"),
        previous_session_id=previous[0] if previous else None,
    )
    for key in SESSION_KEYS:
        value = raw.get(key)
        if value not in (None, ""):
            setattr(out, key, str(value))
    if not out.keyword and out.utm.get("term"):
        out.keyword = out.utm["term"]
    # A session attribution may name its own channel/campaign (pool rules are coarser).
    if raw.get("channel"):
        out.channel = str(raw["channel"])
    if raw.get("campaign"):
        out.campaign = str(raw["campaign"])
    return out
