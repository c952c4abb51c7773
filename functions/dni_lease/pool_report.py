"""GET /v1/reports/pools: per pool peak concurrency, utilisation, exhaustion and sizing.

Pure computation over lease_history items (``kind`` lease / shared) and the daily exhaustion
counters, so it is unit-tested without AWS:

- ``peak_concurrent_leases``: most leases of the pool's current numbers held at one instant (at
  most the pool size);
- ``peak_concurrent_sessions``: most sessions shown a number of the pool at one instant,
  including sessions of an exhausted pool that got a shared number — the real demand;
- ``utilisation``: peak_concurrent_leases / size; ``average_utilisation``: leased
  number-seconds / (size x the window's seconds so far: a window ending today ends now);
- numbers an apply took out of the pool within the window (``former``, from the account's row)
  still count with the leases they had in the pool: in ``leases``, the sessions, the estimates and
  the recommended sizes (demand the pool had), not in the utilisation of the current numbers;
- ``exhaustions``: hand-outs without a lease in the window (the ADD counters);
- ``address_capped``: answers with no number because the client's address already held its cap of
  the pool's numbers (``dni.max_numbers_per_address``) while numbers were free (the hourly stats
  counter): not demand the pool's size answers, and no lease or history item, so not in the
  sessions and sizes below;
- ``recommended_size``: ceil(peak_concurrent_sessions / 0.75) (numbers busy at most 75% of the
  time at peak): enough numbers for the sessions, not for their late calls;
- ``estimated_accuracy``: the share of calls attributed to the right session over the window, from
  how long each number rested before its next lease (``dni_lease.pool_sizing``);
- ``recommended_size_for_accuracy``: the smallest size whose estimate reaches 99% on the window's
  ``busiest_day`` (local date; ``busiest_day_leases``: the sessions shown one of its numbers that
  day, an exhausted pool's shared hand-outs included, a page shown again counted once).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from calltrack.days import parse_day
from calltrack.errors import BadRequest
from calltrack.models.dni import ADDRESS_CAPPED, EXHAUSTIONS, HISTORY_TTL_DAYS
from dni_lease.leasing import recommended_size
from dni_lease.pool_sizing import (
    LATE_CALLS,
    MIN_LATE_CALLS,
    Demand,
    LateCurve,
    Release,
    busiest_day,
    estimated_accuracy,
    learn_late_calls,
    size_for_accuracy,
)
from dni_lease.store import LeaseStore, Row

MAX_DAYS = 92
# Lease history items one report may hold: read with only the attributes the report uses (about
# 1 KB each as rows), 200,000 stay within report_api's 512 MB and API Gateway's 29 s. More is a 400
# naming ``from`` (``TooMuchHistory``; the default window is shortened to fit instead), never a
# function that runs out of memory.
MAX_HISTORY_ITEMS = 200_000


class TooMuchHistory(BadRequest):
    """The window holds more lease history than one report reads; ``estimated``: about how many
    items all its pools' numbers hold (from the numbers read before the limit)."""

    def __init__(self, message: str, estimated: int) -> None:
        super().__init__(message, field="from")
        self.estimated = estimated

    def days_that_fit(self, days: int) -> int:
        """Of a window of ``days`` (and its day of look-back) that holds about ``estimated`` items,
        how many of its last days one report holds (four fifths of the limit: the estimate is rough)."""
        return max(1, min(days - 1, int((days + 1) * MAX_HISTORY_ITEMS * 0.8 // max(self.estimated, 1)) - 1))


def _merge(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def peak_concurrency(intervals: Iterable[tuple[float, float]]) -> int:
    """Most intervals covering one instant (an interval ending when another starts: no overlap)."""
    events: list[tuple[float, int]] = []
    for start, end in intervals:
        if end > start:
            events.append((start, 1))
            events.append((end, -1))
    events.sort(key=lambda e: (e[0], e[1]))  # ends (-1) before starts at the same instant
    peak = cur = 0
    for _, delta in events:
        cur += delta
        peak = max(peak, cur)
    return peak


def _clip(item: Row, start: float, end: float) -> tuple[float, float] | None:
    s = max(float(item["leased_at"]), start)
    e = min(float(item.get("ended_at") or item["leased_at"]), end)
    return (s, e) if e > s else None


# Marks a history item of a number an apply took out of the pool since (``pools_report``'s
# ``former``): demand and sizing count it, the utilisation of the pool's current numbers does not.
FORMER = "former_number"
# Leases of the hour before a day only warm its replay up: a late call comes within minutes.
WARM_UP_S = 3600.0
# Late calls after the account's late-call window are attributed to the pool only, so a pool
# learns its late calls only when the window covers their tail (else it keeps the model's).
LEARNING_WINDOW_S = 3600.0


def pool_stats(
    pool: Mapping[str, Any],
    items: Sequence[Row],
    exhaustions: int,
    start: float,
    end: float,
    timezone: str = "UTC",
    *,
    late: LateCurve = LATE_CALLS,
    address_capped: int = 0,
    until: float | None = None,
    called: Collection[tuple[str, str]] = (),
) -> dict[str, Any]:
    """One pool's figures over [start, end) (see the module doc); ``until``: now, when the window
    has not ended yet (average utilisation is over the time that has passed); ``called``: (session,
    number) of the calls that marked their number's lease row (the number need not rest for them)."""
    numbers = list(dict.fromkeys(pool.get("numbers") or []))
    size = len(numbers)
    leases: list[tuple[float, float]] = []
    by_session: dict[str, list[tuple[float, float]]] = {}
    lease_count = 0
    # every session shown a number, unclipped (sizing); a shared session's heartbeats overlap. A
    # session's leases of one number are one span of demand, hides included: a page shown again
    # takes a new lease of its number, and the visitor calls it (once) after the last release.
    demand_by_session: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for item in items:
        if item.get("kind") in ("lease", "shared") and float(item["leased_at"]) < end:
            begun = float(item["leased_at"])
            number = item.get("number") if item.get("kind") == "lease" else ""
            key = (str(item.get("session_id")), str(number or ""))
            demand_by_session.setdefault(key, []).append((begun, float(item.get("ended_at") or begun)))
        span = _clip(item, start, end)
        if span is None:
            continue
        if item.get("kind") == "lease":
            if not item.get(FORMER):  # the pool's utilisation is its current numbers'
                leases.append(span)
            if float(item["leased_at"]) >= start:
                lease_count += 1
        by_session.setdefault(str(item.get("session_id")), []).append(span)
    sessions = [iv for spans in by_session.values() for iv in _merge(spans)]
    peak_leases = peak_concurrency(leases)
    peak_sessions = max(peak_concurrency(sessions), peak_leases)
    busy = sum(e - s for s, e in leases)
    window = max(min(end, until if until is not None else end) - start, 1.0)
    called = frozenset(called)
    demand: list[Demand] = sorted(
        (*span, (session, number) in called)
        for (session, number), spans in demand_by_session.items()
        for span in ([(min(s for s, _ in spans), max(e for _, e in spans))] if number else _merge(spans))
    )
    accuracy = estimated_accuracy(demand, size, late, count_from=start)
    days = local_days(start, end, timezone)
    busiest = busiest_day(demand, days)
    for_accuracy, day, day_leases = 0, None, 0
    if busiest is not None:
        i, day_leases = busiest
        day_start, day_end = days[i], days[i + 1]
        # every session holding a number that day, also one that began before it (a page left open)
        that_day = [d for d in demand if d[1] > day_start - WARM_UP_S and d[0] < day_end]
        for_accuracy = size_for_accuracy(that_day, late=late, count_from=day_start)
        day = datetime.fromtimestamp(day_start, ZoneInfo(timezone)).date().isoformat()
    return {
        "pool": str(pool.get("id")),
        "channel": pool.get("channel"),
        "size": size,
        "overflow_number": pool.get("overflow_number"),
        "leases": lease_count,
        "peak_concurrent_leases": peak_leases,
        "peak_concurrent_sessions": peak_sessions,
        "utilisation": round(peak_leases / size, 4) if size else None,
        "average_utilisation": round(busy / (size * window), 4) if size else None,
        "exhaustions": exhaustions,
        "address_capped": address_capped,
        "recommended_size": recommended_size(peak_sessions),
        "estimated_accuracy": None if accuracy is None else round(accuracy, 4),
        "recommended_size_for_accuracy": for_accuracy,
        "advised_size": advised_size(size, peak_sessions, recommended_size(peak_sessions), for_accuracy),
        "busiest_day": day,
        "busiest_day_leases": day_leases,
        "late_calls": late.as_dict(),
    }


def advised_size(size: int, peak_sessions: int, for_peak: int, for_accuracy: int) -> int:
    """The size to have (what ``calltrack pools advise``, ``doctor`` and the console show): enough
    numbers for the peak sessions and for 99% of calls to reach their session, at least one; a pool
    with no session in the window keeps its size (that says nothing of demand: dni.js not live yet,
    or lease history older than it is kept)."""
    return max(for_peak, for_accuracy, 1) if peak_sessions else size


def local_days(start: float, end: float, timezone: str) -> list[float]:
    """Day boundaries of [start, end): ``start``, each local midnight after it, then ``end``."""
    tz = ZoneInfo(timezone)
    out = [start]
    day = datetime.fromtimestamp(start, tz).date()
    while True:
        day += timedelta(days=1)
        midnight = datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()
        if midnight >= end:
            return out + [end]
        out.append(midnight)


def window(frm: str | None, to: str | None, timezone: str, today: date) -> tuple[date, date, float, float]:
    """Inclusive local dates -> (from, to, start epoch, end epoch). Default: the last 30 days."""

    to_d = parse_day(to, "to") if to else today
    from_d = parse_day(frm, "from") if frm else to_d - timedelta(days=29)
    if from_d > to_d:
        raise BadRequest("from: must not be after to", field="from")
    if (to_d - from_d).days >= MAX_DAYS:
        raise BadRequest(f"from: the window is at most {MAX_DAYS} days", field="from")
    oldest = today - timedelta(days=HISTORY_TTL_DAYS - 1)
    if from_d < oldest:  # the hourly exhaustion counts last longer: a window before it would mix the two
        raise BadRequest(f"from: lease history is kept {HISTORY_TTL_DAYS} days; the earliest day a pools "
                         f"report can show is {oldest.isoformat()}", field="from")
    tz = ZoneInfo(timezone)
    start = datetime(from_d.year, from_d.month, from_d.day, tzinfo=tz).timestamp()
    end_d = to_d + timedelta(days=1)
    end = datetime(end_d.year, end_d.month, end_d.day, tzinfo=tz).timestamp()
    return from_d, to_d, start, end


def pools_report(
    store: LeaseStore,
    config: Mapping[str, Any],
    start: float,
    end: float,
    *,
    lookback_s: float = 86400,
    calls: Iterable[Mapping[str, Any]] = (),
    now: float | None = None,
    former: Mapping[str, Mapping[str, float]] | None = None,
    called: Mapping[str, Collection[tuple[str, str]]] | None = None,
) -> list[dict[str, Any]]:
    """Stats for every pool of the account's config over [start, end). ``calls``: the account's
    calls of the window (their ``attribution``), from which a pool with enough late calls of its own
    learns its late-call curve; the others use the traffic model's (``pool_sizing.LATE_CALLS``).
    ``former``: pool id -> number -> when an apply took it out of the pool
    (``StoredAccount.former_pool_numbers``): its leases before then count as the pool's demand.
    ``called``: pool id -> (session, number) of the calls that marked their number's lease row as
    they ended (the number need not rest for that session); by default those of ``calls`` that
    did (``calltrack.attribution.marks_holder``: it needs their caller_kind, test, confidence and
    tracking_number)."""
    from calltrack.attribution import lease_end

    account = str(config.get("account"))
    window_minutes = (config.get("dni") or {}).get("late_call_window_minutes")
    window_s = float(120 if window_minutes is None else window_minutes) * 60
    watched_until = min(end, now) if now is not None else end
    calls = list(calls)
    pool_calls = _pool_calls(calls)
    called_sessions = _called_sessions(calls) if called is None else called
    out = []
    held = 0  # history items read so far, all pools
    numbers_read = 0
    pools: list[tuple[Mapping[str, Any], list[str], dict[str, float]]] = []
    for pool in config.get("pools") or []:
        numbers = list(dict.fromkeys(pool.get("numbers") or []))
        extra = [pool["overflow_number"]] if pool.get("overflow_number") else []
        own = numbers + [x for x in extra if x not in numbers]
        # numbers an apply took out of the pool since the window began: their leases in the pool
        # were demand too (a pool shrunk after `pools advise` would otherwise look quieter and be
        # advised to shrink again)
        left = {n: float(t) for n, t in ((former or {}).get(str(pool.get("id"))) or {}).items()
                if float(t) > start - lookback_s and n not in own}
        pools.append((pool, own, left))
    numbers_total = sum(len(own) + len(left) for _, own, left in pools)
    for pool, own, left in pools:
        # A lease's history item ends where it was first due to: heartbeats (one write) and
        # releases move only the leases row, so the number's current lease ends where its row says.
        rows = store.get_rows(own + sorted(left)) if own or left else {}
        items: list[Row] = []
        for n in own + sorted(left):
            row = rows.get(n) or {}
            for item in store.history(n, start - lookback_s, min(end, left.get(n, end))):
                # the account's own items only: a number moved between accounts keeps its history
                theirs = item.get("account") not in (None, account)
                if theirs or item.get("pool") not in (None, pool.get("id")):
                    continue
                current = (
                    item.get("kind") == "lease"
                    and row.get("lease_id") == item.get("lease_id")
                    and row.get("leased_at") == item.get("leased_at")
                )
                ended = lease_end(row) if current else None
                if ended is not None:
                    item = {**item, "ended_at": ended}
                items.append({**item, FORMER: True} if n in left else item)
            numbers_read += 1
            if held + len(items) > MAX_HISTORY_ITEMS:
                days = max(1, round((end - start) / 86400))
                estimated = (held + len(items)) * max(numbers_total, 1) // numbers_read
                raise TooMuchHistory(
                    f"from: these {days} days hold more than {MAX_HISTORY_ITEMS:,} leases of the account's "
                    f"pools (about {estimated:,}), more than one report reads; ask for fewer days (from/to)",
                    estimated,
                )
        held += len(items)
        # the hourly counts whose hour begins in the window: in a zone whose midnight is not on a UTC
        # hour (+05:30, +09:30) the hour across it counts in one of two adjacent windows, not both
        hour0 = math.ceil(start / 3600) * 3600
        counted = store.stats(account, str(pool.get("id")), hour0, int(end))
        # the window's releases: the calls read are the window's
        every_release, part_of = _releases(items, window_s, watched_until)
        releases = [r for r in every_release if r.released >= start]
        own_calls = [(basis, part_of.get(lease_id, lease_id), gap)
                     for basis, lease_id, gap in pool_calls.get(str(pool.get("id")), [])]
        learned = learn_late_calls(releases, own_calls)
        learns = window_s >= LEARNING_WINDOW_S
        late = learned if learns and learned is not None and learned.enough else LATE_CALLS
        timezone = str(config.get("timezone") or "UTC")
        stats = pool_stats(pool, items, counted[EXHAUSTIONS], start, end, timezone, late=late,
                           address_capped=counted[ADDRESS_CAPPED], until=watched_until,
                           called=called_sessions.get(str(pool.get("id")), ()))
        if late is LATE_CALLS:  # how far the pool is from learning its own
            stats["late_calls"].update(
                late_calls_seen=learned.late_calls if learned else 0,
                learns_from=MIN_LATE_CALLS if learns else None,
            )
        out.append(stats)
    return out


def _pool_calls(calls: Iterable[Mapping[str, Any]]) -> dict[str, list[tuple[str, str, float]]]:
    """Pool id -> its calls attributed to a session, as (basis, lease_id, gap seconds)."""
    out: dict[str, list[tuple[str, str, float]]] = {}
    for call in calls:
        attribution = call.get("attribution")
        if not isinstance(attribution, Mapping) or attribution.get("basis") not in ("lease", "late"):
            continue
        try:
            gap = float(attribution.get("gap_minutes") or 0) * 60
        except (TypeError, ValueError):
            continue
        out.setdefault(str(attribution.get("pool")), []).append(
            (str(attribution["basis"]), str(attribution.get("lease_id") or ""), gap)
        )
    return out


def _called_sessions(calls: Iterable[Mapping[str, Any]]) -> Mapping[str, Collection[tuple[str, str]]]:
    """Pool id -> (session, number) of the calls that marked their number's lease row as they ended
    (the voice webhook marks as ``marks_holder`` says)."""
    from calltrack.attribution import marks_holder

    out: dict[str, set[tuple[str, str]]] = {}
    for call in calls:
        attribution = call.get("attribution")
        if isinstance(attribution, Mapping) and marks_holder(call):
            pair = (str(attribution["session_id"]), str(call.get("tracking_number") or ""))
            out.setdefault(str(attribution.get("pool")), set()).add(pair)
    return out


def _releases(
    items: Sequence[Row], window_s: float, watched_until: float
) -> tuple[list[Release], dict[str, str]]:
    """Each lease of the history as a release watched until its number's next hand-out (lease or
    shared), the late-call window's end, or now; and the leases that are not releases of their
    own -> the one they are part of: a page shown again takes a new lease of its number, and the
    session's leases of it in a row are one release, at the end of the last (its visitor calls
    once, after leaving)."""
    by_number: dict[str, list[Row]] = {}
    for item in items:
        if item.get("kind") in ("lease", "shared") and item.get("number"):
            by_number.setdefault(str(item["number"]), []).append(item)
    out = []
    part_of: dict[str, str] = {}
    for handed in by_number.values():
        handed.sort(key=lambda i: float(i["leased_at"]))
        last = ""
        for k in range(len(handed) - 1, -1, -1):  # from the end: each lease's last one in the row
            item, after = handed[k], handed[k + 1] if k + 1 < len(handed) else {}
            if item.get("kind") != "lease" or not item.get("lease_id"):
                continue
            again = after.get("kind") == "lease" and item.get("session_id") and \
                after.get("session_id") == item.get("session_id")
            last = last if again else str(item["lease_id"])
            if again:
                part_of[str(item["lease_id"])] = last
        for k, item in enumerate(handed):
            if item.get("kind") != "lease" or not item.get("lease_id") or str(item["lease_id"]) in part_of:
                continue
            released = float(item.get("ended_at") or item["leased_at"])
            nxt = float(handed[k + 1]["leased_at"]) if k + 1 < len(handed) else math.inf
            until = min(nxt, released + window_s, watched_until)
            if until > released:
                out.append(Release(str(item["lease_id"]), released, until))
    return out, part_of
