"""Leasing a pool number to a visitor session: the pure core of POST /dni/lease.

``lease_number(store, config, request, now)`` takes its ports as arguments (a ``LeaseStore``
and a clock value) and returns a ``LeaseResult`` whose ``attempts`` counts the conditional
writes it made, which the benchmark reads.

Algorithm (one batch read of the pool's leases rows, then conditional writes):
1. match the visitor to a pool (``calltrack.dni_match``); no pool -> no number, no lease;
   a heartbeat that names its number and ``lease_id`` (dni.js sends both) is ONE conditional
   write, no pool read: ``renew`` (``session_id = :sid AND lease_id = :lid AND expires_at >=
   :now``); only when that fails (another session took the number, or the lease was released or
   lapsed) does the session go on to step 2. A page shown again after its release takes its number
   back as a new lease through the pool read, where the address cap is counted (a renewal would
   take it back past the cap, and the cap would then revoke a lease taken within it);
2. a live lease of this session -> renew it (heartbeat of an older script: push ``expires_at``);
3. otherwise try free numbers (no row, or ``expires_at < now``) in this order: this session's
   own expired number, then least recently released first — never-used numbers, then by the
   moment each was released, oldest first (a number's previous holder may still call it: the
   longer it rested, the less likely; a holder who already called does not count, see
   ``rested_since``). The number the page shows (request hint) goes first only
   when it has no lease row (no session has held it); once another session has held it since
   this page's lease, it waits its turn like any number: handing it straight back to a returning
   page would cut that session's rest short, and its late call would go to the returning one. Each
   session tries the never-used numbers, and each run of numbers released within ``SPREAD_S``
   seconds of each other, in its own pseudo-random order (a keyed hash of the number): sessions
   arriving together spread over them instead of all trying the same number first. Each try is
   one conditional UpdateItem
   (``attribute_not_exists(number) OR expires_at < :now OR session_id = :sid``); a failure
   means another session won that number, so move to the next. After a full round of failures
   the rows are read again once. The address cap comes first: a request whose client address
   (``address_key``: a hash of the IPv4 address or IPv6 /64 with the account and pool, stored on
   the lease row as ``client_key`` while the lease lives, never the address) already holds
   ``address_cap`` live leases of the pool while numbers are free gets NO number: the page keeps
   the site's own number, no other session's number is shown or marked shared, and the answer is
   counted as ``address_capped`` (no request address: no cap). The count is taken from the same
   batch read, so requests of one address racing each other can pass it together; any later read
   of the pool (every new lease reads it) revokes an address's leases beyond the cap, newest first
   (``LeaseStore.revoke``: their heartbeats fail);
4. exhausted (every number held by a live session): hand out, WITHOUT a lease, the number the
   page already shows if it is one of the pool's, else the overflow number, else the number
   whose lease was renewed longest ago; mark its row ``shared_until`` so calls to it get
   a lower confidence, write a "shared" history item and count the exhaustion.

A new lease's row carries ``prev_released_at`` / ``prev_session_id`` (the previous holder's end,
from the row read): a call within the late-call window of that end is ambiguous between the two
sessions (``calltrack.attribution``). The previous holder's history item gets its real end then
(heartbeats on the fast path no longer touch history). ``release_number`` ends a lease early
(dni.js on ``visibilitychange`` hidden / ``pagehide``, via ``sendBeacon``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from calltrack.attribution import CALLED_AT, CALLED_SESSION, lease_end
from calltrack.dni_match import AD_COOKIE_KEYS, DEFAULT_LEASE_MINUTES, match_pool, session_attribution
from calltrack.models.dni import ADDRESS_CAPPED, EXHAUSTIONS, HISTORY_TTL_DAYS, SHARED_CONFIDENCE
from dni_lease.store import LeaseStore, Row
from dni_lease.validation import LeaseRequest

MAX_ROUNDS = 2
# The default address cap: a quarter of the pool's numbers (rounded up), at least 2 (a household
# or an office: two visitors behind one address at once), at most 10.
ADDRESS_CAP_MIN, ADDRESS_CAP_MAX = 2, 10
ADDRESS_KEY = "client_key"  # the lease row's attribute: address_key() of the client that took it
EXHAUSTED, ADDRESS_CAP = "exhausted", "address_cap"  # why a lease answer has no lease


@dataclass
class LeaseResult:
    number: str | None
    pool: str | None = None
    channel: str | None = None
    lease_id: str | None = None
    expires_at: float | None = None
    leased: bool = False  # True: this session holds the number exclusively
    renewed: bool = False
    shared: bool = False  # exhausted pool: number shown without a lease
    confidence: float | None = None
    attempts: int = 0  # conditional lease writes made (benchmark)
    reason: str | None = None  # why no lease: EXHAUSTED (shared number) or ADDRESS_CAP (no number)
    lease_seconds: int = 0
    replace: list[str] = field(default_factory=list)


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def site_numbers(config: Mapping[str, Any]) -> list[str]:
    """The business's own numbers shown on the site (site.numbers, else forward_to)."""
    site = config.get("site") or {}
    numbers = [n for n in (site.get("numbers") or []) if n]
    if not numbers and config.get("forward_to"):
        numbers = [config["forward_to"]]
    return list(dict.fromkeys(numbers))


def _live(row: Row | None, now: float) -> bool:
    return row is not None and row.get("expires_at") is not None and float(row["expires_at"]) >= now


def address_prefix(source_ip: str | None) -> str | None:
    """What one client is told apart by: an IPv4 address in full, an IPv6 address by its /64 (one
    subscriber usually owns a /64); an IPv4-mapped IPv6 address as its IPv4 address."""
    text = (source_ip or "").strip()
    if not text:
        return None
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return text  # not an address (API Gateway always sends one): the text itself
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def address_key(account: str, pool: str, source_ip: str | None) -> str | None:
    """The client key a lease row carries (``client_key``): 16 hex digits of a SHA-256 over the
    account, the pool and ``address_prefix`` — never the address. Keyed per pool, so one address
    has unrelated keys in two pools or accounts. None without a source address (no cap)."""
    prefix = address_prefix(source_ip)
    if prefix is None:
        return None
    material = "\x00".join(("calltrack-dni-client-v1", account, pool, prefix))
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def address_cap(config: Mapping[str, Any], pool_size: int) -> int:
    """How many of a pool's numbers one client address may hold at once: the account's
    ``dni.max_numbers_per_address``, else a quarter of the pool (rounded up), at least
    ``ADDRESS_CAP_MIN``, at most ``ADDRESS_CAP_MAX``."""
    configured = (config.get("dni") or {}).get("max_numbers_per_address")
    if configured:
        return max(1, int(configured))
    return max(ADDRESS_CAP_MIN, min(ADDRESS_CAP_MAX, math.ceil(pool_size / 4)))


def _held_by_address(rows: Mapping[str, Row], now: float) -> dict[str, list[str]]:
    """Client key -> the numbers whose live lease it took, oldest lease first."""
    held: dict[str, list[tuple[float, str, str]]] = {}
    for n, row in rows.items():
        key = row.get(ADDRESS_KEY)
        if key and row.get("lease_id") and _live(row, now):
            held.setdefault(str(key), []).append((float(row.get("leased_at") or 0), str(row["lease_id"]), n))
    return {key: [n for _, _, n in sorted(leases)] for key, leases in held.items()}


def _revoke_over_cap(store: LeaseStore, rows: dict[str, Row], now: float, cap: int) -> dict[str, list[str]]:
    """Revoke every address's live leases beyond ``cap``, newest first (requests of one address
    that raced past the cap together), and update ``rows`` to match. Returns the live leases each
    address still holds. No write unless some address is over its cap."""
    held = _held_by_address(rows, now)
    ended = now - 0.001  # just before now: the request that revokes a number may take it
    for key, numbers in held.items():
        for n in numbers[cap:]:
            row = rows[n]
            if store.revoke(n, str(row["session_id"]), str(row["lease_id"]), ended):
                if row.get("leased_at") is not None:
                    store.extend_history(n, row["leased_at"], ended)
                rows[n] = {k: v for k, v in row.items() if k not in ("lease_id", ADDRESS_KEY)}
                rows[n].update(expires_at=ended, released_at=ended)
        held[key] = numbers[:cap]
    return held


# Sessions arriving together spread over the longest-rested numbers released within this many
# seconds of each other: as good as the same for a late caller (delays are minutes), and there are
# as many of them as the traffic that makes sessions arrive together.
SPREAD_S = 30.0


def rested_since(row: Row | None) -> float | None:
    """When a free number started resting: its last lease's end (``released_at``, else
    ``expires_at``), or ``shared_until`` when an exhausted pool showed it later; None when no
    session has held it. A number whose last holder called it (``called_session``, marked as the
    call ended) rests only for the holder before (``prev_released_at``; None without one): that
    caller's redial is recognised by their number (``calltrack.attribution``), whoever holds the
    number then, so a holder who called needs no rest."""
    row = row or {}
    called = row.get(CALLED_SESSION)
    lease = float(row.get("released_at") or row.get("expires_at") or 0)
    # the mark of this lease (a call that ended after it began), not one its session left earlier
    if called and called == row.get("session_id") and float(row.get(CALLED_AT) or 0) >= float(
        row.get("leased_at") or 0
    ):
        lease = float(row.get("prev_released_at") or 0)
    released = max(lease, float(row.get("shared_until") or 0))
    return released if released > 0 else None


def session_order(session_id: str, number: str) -> int:
    """A per-session pseudo-random rank of a number. A keyed hash, not CRC (CRC is affine: two
    sessions whose first picks collide would mostly collide on their second too)."""
    digest = hashlib.blake2b(number.encode(), digest_size=8, key=session_id.encode()[:64]).digest()
    return int.from_bytes(digest, "big")


def _free_in_order(
    numbers: Sequence[str], rows: Mapping[str, Row], now: float, session_id: str, hint: str | None
) -> Iterator[str]:
    """Free numbers in lease order (see the module docstring): the session's own expired number,
    the page's number if no session has held it, never-used numbers (in the session's own order),
    then the others least recently released first, each run released within ``SPREAD_S`` seconds
    in the session's own order. Hashed lazily: a session that wins its first try ranks only the
    first run."""
    first: list[str] = []
    never: list[str] = []
    rested: list[tuple[float, str]] = []
    for n in numbers:
        row = rows.get(n)
        if row is None:
            (first if n == hint else never).append(n)
            continue
        expires = row.get("expires_at")
        if expires is not None and float(expires) >= now:
            continue  # live
        if row.get("session_id") == session_id:
            first.insert(0, n)
            continue
        released = rested_since(row)
        if released is None:
            never.append(n)
        else:
            rested.append((released, n))
    yield from first
    yield from sorted(never, key=lambda n: session_order(session_id, n))
    rested.sort()
    run: list[str] = []
    run_start = 0.0
    for released, n in rested:
        if run and released - run_start > SPREAD_S:
            yield from sorted(run, key=lambda m: session_order(session_id, m))
            run = []
        if not run:
            run_start = released
        run.append(n)
    yield from sorted(run, key=lambda m: session_order(session_id, m))


def _order_free(
    numbers: Sequence[str], rows: Mapping[str, Row], now: float, session_id: str, hint: str | None
) -> list[str]:
    return list(_free_in_order(numbers, rows, now, session_id, hint))


def lease_number(
    store: LeaseStore,
    config: Mapping[str, Any],
    request: LeaseRequest,
    now: float,
    *,
    new_id: Any = None,
    source_ip: str | None = None,
) -> LeaseResult:
    """Lease a number of the visitor's pool (see the module docstring). ``source_ip``: the
    request's client address, which the address cap counts by (None: no cap)."""
    account = str(config.get("account") or request.account)
    replace = site_numbers(config)
    visitor = session_attribution(request.attribution_fields())
    pool = match_pool(config.get("pools") or [], visitor)
    if pool is None:
        return LeaseResult(number=None, replace=replace)
    pool_id = str(pool.get("id"))
    channel = pool.get("channel")
    lease_s = int(round(float(pool.get("lease_minutes") or DEFAULT_LEASE_MINUTES) * 60))
    numbers = list(dict.fromkeys(pool.get("numbers") or []))
    sid, page = request.session_id, request.page_id
    client = address_key(account, pool_id, source_ip)
    cap = address_cap(config, len(numbers))
    make_id = new_id or (lambda: uuid.uuid4().hex)
    result = LeaseResult(number=None, pool=pool_id, channel=channel, lease_seconds=lease_s, replace=replace)
    now = round(now, 3)
    expires = round(now + lease_s, 3)

    # The session's part of a number's row: on the number it leases, or on the overflow number.
    session: Row = {
        "session_id": sid,
        "visitor_id": request.visitor_id,
        "leased_at": now,
        "expires_at": expires,
        "released_at": expires,
        "attribution": visitor,
    }

    # The ad platforms' browser ids this page has now: kept on a renewal (gtag and the pixel load
    # async and often set their cookies after the first lease).
    cookies = {key: str(visitor[key]) for key in AD_COOKIE_KEYS if visitor.get(key)}

    # 1. heartbeat naming its lease: one conditional write, no pool read.
    if request.lease_id and request.number and request.number in numbers:
        result.attempts += 1
        if store.renew(request.number, sid, request.lease_id, expires, cookies, now=now, page_id=page):
            result.number, result.lease_id, result.expires_at = request.number, request.lease_id, expires
            result.leased = result.renewed = True
            result.confidence = 1.0
            return result

    rows: dict[str, Row] = store.get_rows(numbers) if numbers else {}
    for _round in range(MAX_ROUNDS):
        held = _revoke_over_cap(store, rows, now, cap)
        # 2. heartbeat: this session's live lease.
        for n, row in rows.items():  # get_rows returns rows of the pool's numbers only
            if row.get("session_id") == sid and _live(row, now) and row.get("lease_id"):
                result.attempts += 1
                if store.renew(n, sid, row["lease_id"], expires, cookies, now=now, page_id=page):
                    if row.get("leased_at") is not None:
                        store.extend_history(n, row["leased_at"], expires)
                    result.number, result.lease_id, result.expires_at = n, row["lease_id"], expires
                    result.leased = result.renewed = True
                    result.confidence = 1.0
                    return result
        # 3. take a free number, least recently released first — unless this request's address
        # already holds as many as it may: then no number at all (the page keeps the site's).
        free = _free_in_order(numbers, rows, now, sid, request.number)
        if client is not None and len(held.get(client, ())) >= cap:
            if next(free, None) is None:
                break  # no free number: the pool is exhausted, for this address as for any
            store.add_to_stats(account, pool_id, int(now // 3600) * 3600, ADDRESS_CAPPED)
            result.reason = ADDRESS_CAP
            return result
        contested = False
        for n in free:
            lease_id = str(make_id())
            prev = rows.get(n) or {}
            previous = _previous_holder(prev, sid)
            row = {
                "account": account,
                "pool": pool_id,
                "kind": "pool",
                "lease_id": lease_id,
                ADDRESS_KEY: client,  # None (no address): the previous holder's key is removed
                "page_id": page,  # the page that took it (None: removed)
                # the browser ids a renewal kept on the row are the holder's: this session's own
                # or none (None removes the previous holder's; a call would send them as this one's)
                **{key: cookies.get(key) for key in AD_COOKIE_KEYS},
                **session,
                **previous,
            }
            result.attempts += 1
            if store.take(n, row, now):
                _close_previous_history(store, n, prev)
                store.put_history(
                    {
                        "number": n,
                        "leased_at": now,
                        "kind": "lease",
                        "account": account,
                        "pool": pool_id,
                        "lease_id": lease_id,
                        "session_id": sid,
                        "ended_at": expires,
                        "confidence": 1.0,
                        "attribution": visitor,
                        "expire_at": int(now) + HISTORY_TTL_DAYS * 86400,
                        # as on the row: a call replayed from the history is ambiguous alike
                        **previous,
                    }
                )
                result.number, result.lease_id, result.expires_at = n, lease_id, expires
                result.leased, result.confidence = True, 1.0
                return result
            contested = True
        if not contested:
            break
        rows = store.get_rows(numbers)

    # 4. exhausted. (A number another account's session still holds, moved here by an apply, is
    # never shared: its calls would carry that session.)
    overflow = pool.get("overflow_number")
    ours = [n for n in numbers if (rows.get(n) or {}).get("account") in (None, account)]
    if request.number and (request.number in ours or request.number == overflow):
        number = request.number
    elif overflow:
        number = str(overflow)
    elif ours:
        number = min(ours, key=lambda n: float((rows.get(n) or {}).get("expires_at") or 0))
    else:
        return LeaseResult(number=None, pool=pool_id, channel=channel, replace=replace)
    until = expires
    base: dict[str, Any] = {"account": account, "pool": pool_id}
    if number == overflow and number not in numbers:
        # The overflow row carries the last exhausted session (always shared).
        base.update({"kind": "overflow", **session})
    if not store.mark_shared(number, until, base):
        # another account's session took the row since it was read: show no pool number
        return LeaseResult(number=None, pool=pool_id, channel=channel, replace=replace)
    store.put_history(
        {
            "number": number,
            "leased_at": now,
            "kind": "shared",
            "account": account,
            "pool": pool_id,
            "session_id": sid,
            "ended_at": until,
            "confidence": SHARED_CONFIDENCE,
            "attribution": visitor,
            "expire_at": int(now) + HISTORY_TTL_DAYS * 86400,
        }
    )
    store.add_to_stats(account, pool_id, int(now // 3600) * 3600, EXHAUSTIONS)
    result.number, result.expires_at, result.shared, result.confidence = (
        number,
        until,
        True,
        SHARED_CONFIDENCE,
    )
    result.reason = EXHAUSTED
    return result


def _previous_holder(prev: Row, sid: str) -> Row:
    """What a new lease's row remembers of the session that held the number before."""
    if not prev.get("session_id") or prev.get("session_id") == sid:
        return {}
    end = lease_end(prev)
    return {"prev_released_at": end, "prev_session_id": prev.get("session_id")} if end else {}


def _close_previous_history(store: LeaseStore, number: str, prev: Row) -> None:
    """The previous lease's history item gets its real end (fast-path heartbeats and releases
    move only the leases row), also when the same session takes the number again after a release."""
    if prev.get("leased_at") is None or not prev.get("lease_id"):
        return
    end = lease_end(prev)
    if end is not None:
        store.extend_history(number, prev["leased_at"], end)


def release_number(store: LeaseStore, config: Mapping[str, Any], request: LeaseRequest, now: float) -> bool:
    """End this session's lease now (the page was hidden or closed). One conditional write; False
    when the session no longer holds the number (or it is not one of the account's pool numbers),
    or when another page of the session renewed it since (the page sends its ``page_id``: after
    this page's last take or renewal; a script from before it: after the answer it last had)."""
    if not (request.number and request.lease_id):
        return False
    pools = config.get("pools") or []
    if not any(request.number in (p.get("numbers") or []) for p in pools):
        return False
    # Another page of the session (a second tab, the next page loaded, a page restored from the
    # back/forward cache) renewed the shared lease since: the number is still on that page, so the
    # lease stays. A page that sends its id is told apart exactly (the row's ``page_id`` names the
    # page that took or renewed it last); a script from before it by its answer's time, whole
    # seconds, so a renewal within the same second is not told apart.
    renewed_after = None if request.seen_expires_at is None else request.seen_expires_at + 1
    return bool(
        store.release(request.number, request.session_id, request.lease_id, round(now, 3),
                      unless_renewed_after=renewed_after, page_id=request.page_id)
    )


def recommended_size(peak: int, target: float = 0.75) -> int:
    return int(math.ceil(peak / target)) if peak > 0 else 0
