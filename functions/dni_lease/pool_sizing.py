"""How many pool numbers a pool's own lease history needs for accurate call attribution.

A late caller (one who calls after the visit ended) reaches its session only if nobody has taken
the number since, so what limits a pool is how long a released number rests before the next
session takes it (bench P7, issue 24), not how many sessions hold numbers at once: the 75% rule on
peak concurrency (``recommended_size``) recommended 70 numbers where P7's simulated 5,000-visitor
day needs 124 for 99% accuracy, and 70 gave 95.8%.

``estimated_accuracy(leases, size)`` replays the pool's real lease intervals (lease history items,
shared hand-outs included: they are demand too) on ``size`` numbers handed out least recently
released first, as ``dni_lease.leasing`` does, and adds up, for every lease that takes a number
another session released ``rest`` seconds before, the chance that this previous session's late
call comes after ``rest`` (``LateCalls.after``): that call goes to the new holder. A session that
finds every number held gets a shared number: counted as wrong. Calls made with the page open
are right (the holder is live).

``size_for_accuracy(leases, target)`` is the smallest size whose estimate reaches ``target``.

The late-call figures are bench P7's traffic model (``bench/p7_pool_efficiency.TrafficModel``):
assumptions, since no public data on when visitors call after a visit was found. Replayed on
P7's simulated days, the estimate lands within one or two numbers of the smallest pool the full
simulation finds at 99% (P7's "pools report" row).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

ACCURACY_TARGET = 0.99


@dataclass(frozen=True)
class LateCalls:
    """Of the calls from the website, the share made after the visit ended, and their delay after
    the page was hidden or closed (lognormal; bench P7's traffic model)."""

    share: float = 0.25
    delay_median_s: float = 180.0
    delay_sigma: float = 1.0

    def after(self, rest_s: float) -> float:
        """Share of late calls made more than ``rest_s`` seconds after the visit ended."""
        if rest_s <= 0:
            return 1.0
        z = math.log(rest_s / self.delay_median_s) / self.delay_sigma
        return 0.5 * math.erfc(z / math.sqrt(2))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


LATE_CALLS = LateCalls()


def estimated_accuracy(
    leases: Sequence[tuple[float, float]],
    size: int,
    late: LateCalls = LATE_CALLS,
    *,
    count_from: float = -math.inf,
) -> float | None:
    """Expected share of calls attributed to the right session had the pool held ``size`` numbers.
    ``leases`` are (start, end) intervals sorted by start; only leases starting at or after
    ``count_from`` are counted (earlier ones only warm the pool up). None when none is counted."""
    free: list[tuple[float, int]] = [(-math.inf, i) for i in range(max(size, 0))]  # (released, slot)
    held: list[tuple[float, int]] = []  # (end, slot)
    wrong = 0.0
    counted = 0
    for start, end in leases:
        while held and held[0][0] <= start:
            heapq.heappush(free, heapq.heappop(held))
        counts = start >= count_from
        counted += counts
        if not free:
            wrong += counts  # shared number: the call cannot be told apart
            continue
        released, slot = heapq.heappop(free)
        if counts and released > -math.inf:
            wrong += late.share * late.after(start - released)
        heapq.heappush(held, (max(end, start), slot))
    return None if not counted else 1.0 - wrong / counted


def size_for_accuracy(
    leases: Sequence[tuple[float, float]],
    target: float = ACCURACY_TARGET,
    late: LateCalls = LATE_CALLS,
    *,
    count_from: float = -math.inf,
) -> int:
    """Smallest pool size whose estimated accuracy reaches ``target`` (0 without leases). Every
    lease on a never-used number is right, so ``len(leases)`` numbers always reach it."""
    if not leases:
        return 0

    def ok(n: int) -> bool:
        acc = estimated_accuracy(leases, n, late, count_from=count_from)
        return acc is None or acc >= target

    high = 1
    while not ok(high):
        if high >= len(leases):
            return len(leases)
        high = min(high * 2, len(leases))
    low = high // 2  # missed (or 0)
    while high - low > 1:
        mid = (low + high) // 2
        if ok(mid):
            high = mid
        else:
            low = mid
    return high


def busiest_day(leases: Iterable[tuple[float, float]], start: float, end: float) -> tuple[float, int] | None:
    """(day start, leases) of the day of [start, end) with the most leases starting in it; days
    are 24-hour spans from ``start`` (a local midnight in the pools report)."""
    counts: dict[int, int] = {}
    for s, _ in leases:
        if start <= s < end:
            day = int((s - start) // 86400)
            counts[day] = counts.get(day, 0) + 1
    if not counts:
        return None
    day, n = max(counts.items(), key=lambda kv: (kv[1], -kv[0]))
    return start + day * 86400, n
