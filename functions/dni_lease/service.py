"""The HTTP-facing logic of dni_lease, with ports passed in (handler.py only routes).

CORS: a browser sends a preflight only for non-simple requests; dni.js posts its JSON as
``text/plain`` so it needs none. For other clients the preflight (which carries no account)
reflects the Origin; the POST enforces the account's ``site.origins`` (absent: any origin) and
answers a disallowed origin with 403 and no Access-Control-Allow-Origin.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from calltrack.accounts import Accounts
from calltrack.errors import Forbidden, TooManyRequests
from dni_lease.leasing import LeaseResult, iso, lease_number, release_number
from dni_lease.pool_report import TooMuchHistory, pools_report, window
from dni_lease.pool_sizing import ACCURACY_TARGET, LATE_CALLS
from dni_lease.ratelimit import IP_BURST, IP_PER_MINUTE, VISITOR_BURST, VISITOR_PER_MINUTE, RateLimiter
from dni_lease.store import LeaseStore
from dni_lease.validation import parse_lease_request

# (start, end) -> the account's calls of that span, each with its ``attribution``
CallsBetween = Callable[[datetime, datetime], Iterable[Mapping[str, Any]]]

PREFLIGHT_MAX_AGE_S = 600
SCRIPT_CACHE_CONTROL = "public, max-age=300, stale-while-revalidate=86400"


def origin_allowed(config: Mapping[str, Any], origin: str | None) -> bool:
    origins = [o.rstrip("/").lower() for o in ((config.get("site") or {}).get("origins") or [])]
    if not origins:
        return True
    return bool(origin) and origin.rstrip("/").lower() in origins  # type: ignore[union-attr]


def cors_headers(origin: str | None) -> dict[str, str]:
    if not origin:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def preflight_headers(origin: str | None) -> dict[str, str]:
    headers = cors_headers(origin)
    headers.update(
        {
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": "Content-Type",
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
        }
    )
    return headers


def display(number: str) -> str:
    """National format of a number, e.g. +81312340101 -> 03-1234-0101."""
    formats = number_formats(number)
    return formats["national"] if formats else number


@functools.lru_cache(maxsize=512)
def number_formats(number: str) -> dict[str, str] | None:
    """What dni.js needs to find and write ``number`` in a page's own style (None: not a number).

    +8613812345678 -> {"country_code": "86", "national_number": "13812345678",
    "national": "138 1234 5678", "international": "+86 138 1234 5678"}. ``national_number`` is
    the digits after the country code; the national format carries any trunk prefix (03-…).
    """
    import phonenumbers

    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    fmt = phonenumbers.PhoneNumberFormat
    return {
        "country_code": str(parsed.country_code),
        "national_number": str(phonenumbers.national_significant_number(parsed)),
        "national": str(phonenumbers.format_number(parsed, fmt.NATIONAL)),
        "international": str(phonenumbers.format_number(parsed, fmt.INTERNATIONAL)),
    }


def heartbeat_seconds(lease_seconds: int) -> int:
    """A third of the lease, so two heartbeats may be missed; at least 20 s (a one-minute lease
    renews every 20 s, before it runs out: dni.js looks every 30 s at most)."""
    return max(20, lease_seconds // 3)


def lease_body(result: LeaseResult, config: Mapping[str, Any]) -> dict[str, Any]:
    """The lease response. ``formats`` (E.164 -> number_formats) covers ``number`` and every
    number of ``replace``, so dni.js needs no numbering table of its own."""
    dni = config.get("dni") or {}
    leased = number_formats(result.number) if result.number else None
    formats = {n: dict(f) for n in [result.number, *result.replace] if n and (f := number_formats(n))}
    return {
        "number": result.number,
        "display": display(result.number) if result.number else None,
        "expires_at": iso(result.expires_at) if result.leased else None,
        "pool": result.pool,
        "lease_id": result.lease_id,
        "shared": result.shared,
        "confidence": result.confidence,
        "replace": result.replace,
        "heartbeat_seconds": heartbeat_seconds(result.lease_seconds) if result.leased else 300,
        "cookie_days": int(dni.get("cookie_days") or 30),
        "country_code": leased["country_code"] if leased else None,
        "formats": formats,
    }


class Limits:
    def __init__(self) -> None:
        self.ip = RateLimiter(IP_PER_MINUTE, IP_BURST)
        self.visitor = RateLimiter(VISITOR_PER_MINUTE, VISITOR_BURST)

    def check(self, source_ip: str | None, visitor_id: str | None, now: float) -> None:
        if source_ip and not self.ip.allow(source_ip, now):
            raise TooManyRequests("too many lease requests from this address; retry later", field="ip")
        if visitor_id is not None and not self.visitor.allow(visitor_id, now):
            raise TooManyRequests("too many lease requests for this visitor; retry later", field="visitor_id")


def handle_lease(
    raw_body: str | bytes | None,
    *,
    origin: str | None,
    source_ip: str | None,
    store: LeaseStore,
    accounts: Accounts,
    limits: Limits,
    now: float,
    outcome: Callable[[str, LeaseResult], None] | None = None,
) -> dict[str, Any]:
    """Validate, rate-limit, authorise the origin, lease. Raises DomainError for client errors.
    ``source_ip`` also keys the pool's per-address cap (``dni_lease.leasing``); ``outcome`` is
    told each lease's account and result (the handler's metrics: why an answer has no lease)."""
    request = parse_lease_request(raw_body)
    # a release is not charged to the visitor (a visitor switching tabs sends one per switch, and the
    # lease that follows must not be refused for it); its address still is
    limits.check(source_ip, None if request.release else request.visitor_id, now)
    config = accounts.get(request.account).model_dump(mode="json")
    if not origin_allowed(config, origin):
        raise Forbidden("origin: this site is not allowed to use this account's numbers", field="origin")
    if request.release:
        return {"released": release_number(store, config, request, now)}
    result = lease_number(store, config, request, now, source_ip=source_ip)
    if outcome is not None:
        outcome(request.account, result)
    return lease_body(result, config)


def handle_pools_report(
    account: str,
    params: Mapping[str, str],
    *,
    store: LeaseStore,
    accounts: Accounts,
    now: float,
    calls: CallsBetween | None = None,
    former: Mapping[str, Mapping[str, float]] | None = None,
) -> dict[str, Any]:
    """The pools report. ``calls(start, end)``: the account's calls of the window with their
    attribution, from which pools learn their own late calls (``pool_sizing.learn_late_calls``).
    ``former``: the numbers applies took out of the account's pools (``StoredAccount``)."""
    config = accounts.get(account).model_dump(mode="json")
    timezone = str(config["timezone"])
    today = datetime.fromtimestamp(now, ZoneInfo(timezone)).date()

    def report(frm: str | None) -> tuple[date, date, list[dict[str, Any]]]:
        from_d, to_d, start, end = window(frm, params.get("to"), timezone, today)
        span = (datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC))
        window_calls = calls(*span) if calls and config.get("pools") else ()
        pools = pools_report(store, config, start, end, calls=window_calls, now=now, former=former)
        return from_d, to_d, pools

    shortened = False
    try:
        from_d, to_d, pools = report(params.get("from"))
    except TooMuchHistory as err:
        if params.get("from"):
            raise
        # The default window of a busy account: as many of its last days as one report holds.
        from_d, to_d = window(None, params.get("to"), timezone, today)[:2]
        days = err.days_that_fit((to_d - from_d).days + 1)
        from_d, to_d, pools = report((to_d - timedelta(days=days - 1)).isoformat())
        shortened = True
    return {
        "account": account,
        "from": from_d.isoformat(),
        "to": to_d.isoformat(),
        # no `from` was given and the default 30 days held more lease history than one report reads
        **({"window_shortened": True} if shortened else {}),
        "target_utilisation": 0.75,
        "accuracy_target": ACCURACY_TARGET,
        # the assumptions of pools without enough late calls of their own (their "late_calls")
        "late_calls": LATE_CALLS.as_dict(),
        "pools": pools,
    }
