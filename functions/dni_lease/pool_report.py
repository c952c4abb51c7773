"""GET /v1/reports/pools: per pool peak concurrency, utilisation, exhaustion and sizing.

Pure computation over lease_history items (``kind`` lease / shared) and the daily exhaustion
counters, so it is unit-tested without AWS:

- ``peak_concurrent_leases``: most leases held at one instant (at most the pool size);
- ``peak_concurrent_sessions``: most sessions shown a number of the pool at one instant,
  including sessions of an exhausted pool that got a shared number — the real demand;
- ``utilisation``: peak_concurrent_leases / size; ``average_utilisation``: leased
  number-seconds / (size x window seconds);
- ``exhaustions``: hand-outs without a lease in the window (the ADD counters);
- ``recommended_size``: ceil(peak_concurrent_sessions / 0.75) (numbers busy at most 75% of the
  time at peak): enough numbers for the sessions, not for their late calls;
- ``estimated_accuracy``: the share of calls attributed to the right session over the window, from
  how long each number rested before its next lease (``dni_lease.pool_sizing``);
- ``recommended_size_for_accuracy``: the smallest size whose estimate reaches 99% on the window's
  ``busiest_day`` (local date; ``busiest_day_leases`` leases started that day).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from calltrack.days import parse_day
from calltrack.errors import BadRequest
from dni_lease.leasing import recommended_size
from dni_lease.pool_sizing import busiest_day, estimated_accuracy, size_for_accuracy
from dni_lease.store import LeaseStore, Row

MAX_DAYS = 92


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


# Leases of the hour before a day only warm its replay up: a late call comes within minutes.
WARM_UP_S = 3600.0


def pool_stats(
    pool: Mapping[str, Any],
    items: Sequence[Row],
    exhaustions: int,
    start: float,
    end: float,
    timezone: str = "UTC",
) -> dict[str, Any]:
    numbers = list(dict.fromkeys(pool.get("numbers") or []))
    size = len(numbers)
    leases: list[tuple[float, float]] = []
    by_session: dict[str, list[tuple[float, float]]] = {}
    lease_count = 0
    # every session shown a number, unclipped (sizing); a shared session's heartbeats overlap
    demand_by_session: dict[str, list[tuple[float, float]]] = {}
    for item in items:
        if item.get("kind") in ("lease", "shared") and float(item["leased_at"]) < end:
            begun = float(item["leased_at"])
            demand_by_session.setdefault(str(item.get("session_id")), []).append(
                (begun, float(item.get("ended_at") or begun))
            )
        span = _clip(item, start, end)
        if span is None:
            continue
        if item.get("kind") == "lease":
            leases.append(span)
            if float(item["leased_at"]) >= start:
                lease_count += 1
        by_session.setdefault(str(item.get("session_id")), []).append(span)
    sessions = [iv for spans in by_session.values() for iv in _merge(spans)]
    peak_leases = peak_concurrency(leases)
    peak_sessions = max(peak_concurrency(sessions), peak_leases)
    busy = sum(e - s for s, e in leases)
    window = max(end - start, 1.0)
    demand = sorted(span for spans in demand_by_session.values() for span in _merge(spans))
    accuracy = estimated_accuracy(demand, size, count_from=start)
    busiest = busiest_day(demand, start, end)
    for_accuracy, day = 0, None
    if busiest is not None:
        day_start, _ = busiest
        that_day = [d for d in demand if day_start - WARM_UP_S <= d[0] < day_start + 86400]
        for_accuracy = size_for_accuracy(that_day, count_from=day_start)
        day = datetime.fromtimestamp(day_start + 43200, ZoneInfo(timezone)).date().isoformat()
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
        "recommended_size": recommended_size(peak_sessions),
        "estimated_accuracy": None if accuracy is None else round(accuracy, 4),
        "recommended_size_for_accuracy": for_accuracy,
        "busiest_day": day,
        "busiest_day_leases": busiest[1] if busiest else 0,
    }


def window(frm: str | None, to: str | None, timezone: str, today: date) -> tuple[date, date, float, float]:
    """Inclusive local dates -> (from, to, start epoch, end epoch). Default: the last 30 days."""

    to_d = parse_day(to, "to") if to else today
    from_d = parse_day(frm, "from") if frm else to_d - timedelta(days=29)
    if from_d > to_d:
        raise BadRequest("from: must not be after to", field="from")
    if (to_d - from_d).days >= MAX_DAYS:
        raise BadRequest(f"from: the window is at most {MAX_DAYS} days", field="from")
    tz = ZoneInfo(timezone)
    start = datetime(from_d.year, from_d.month, from_d.day, tzinfo=tz).timestamp()
    end_d = to_d + timedelta(days=1)
    end = datetime(end_d.year, end_d.month, end_d.day, tzinfo=tz).timestamp()
    return from_d, to_d, start, end


def pools_report(
    store: LeaseStore, config: Mapping[str, Any], start: float, end: float, *, lookback_s: float = 86400
) -> list[dict[str, Any]]:
    """Stats for every pool of the account's config over [start, end)."""
    from calltrack.attribution import lease_end

    account = str(config.get("account"))
    out = []
    for pool in config.get("pools") or []:
        numbers = list(dict.fromkeys(pool.get("numbers") or []))
        extra = [pool["overflow_number"]] if pool.get("overflow_number") else []
        # A lease's history item ends where it was first due to: heartbeats (one write) and
        # releases move only the leases row, so the number's current lease ends where its row says.
        rows = store.get_rows(numbers) if numbers else {}
        items: list[Row] = []
        for n in numbers + [x for x in extra if x not in numbers]:
            row = rows.get(n) or {}
            for item in store.history(n, start - lookback_s, end):
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
                items.append({**item, "ended_at": ended} if ended is not None else item)
        hour0 = int(start // 3600) * 3600
        exhaustions = store.exhaustions(account, str(pool.get("id")), hour0, int(end))
        out.append(pool_stats(pool, items, exhaustions, start, end, str(config.get("timezone") or "UTC")))
    return out
