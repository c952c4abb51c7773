"""How many pool numbers a pool's own lease history needs for accurate call attribution.

A late caller (one who calls after the visit ended) reaches its session only if nobody has taken
the number since, so what limits a pool is how long a released number rests before the next
session takes it (bench P7, issue 24), not how many sessions hold numbers at once: the 75% rule on
peak concurrency (``recommended_size``) recommended 70 numbers where P7's simulated 5,000-visitor
day needs 124 for 99% accuracy, and 70 gave 95.8%.

``estimated_accuracy(leases, size)`` replays the pool's real lease intervals (lease history items,
shared hand-outs included: they are demand too) on ``size`` numbers handed out least recently
released first, as ``dni_lease.leasing`` does, and adds up, for every lease that takes a number
another session released ``rest`` seconds before, the share of that session's calls made after
``rest`` (``lost(rest)``): they go to the new holder. A session that finds every number held gets
a shared number: counted as wrong. Calls made with the page open are right (the holder is live).

``size_for_accuracy(leases, target)`` is the smallest size whose estimate reaches ``target``.

Where ``lost`` comes from: ``learn_late_calls`` learns it from the pool's own calls (their
attribution's basis, lease and gap) and releases, as events under censoring
(``LearnedLateCalls``); until a pool has ``MIN_LATE_CALLS`` late calls it is bench P7's traffic
model (``LateCalls``, ``bench/p7_pool_efficiency.TrafficModel``): assumptions, since no public
data on when visitors call after a visit was found. On P7's simulated days the estimate lands
within a few numbers (under 5%) of the smallest pool the full simulation finds at 99%, both from
the model and learned from the day's calls (P7's "pools report" rows).
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

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

    def lost(self, rest_s: float) -> float:
        """Share of a session's calls made more than ``rest_s`` seconds after its release: the
        calls a number taken after that rest sends to the wrong session."""
        return self.share * self.after(rest_s)

    def as_dict(self) -> dict[str, Any]:
        return {"source": "model", **asdict(self)}


LATE_CALLS = LateCalls()


class LateCurve(Protocol):
    def lost(self, rest_s: float) -> float: ...

    def as_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Release:
    """A lease of the pool's history as the learning sees it: when its session let the number go
    (``released``) and until when a late call of that session would still reach it (``until``:
    the number's next lease, the late-call window, or the end of the history)."""

    lease_id: str
    released: float
    until: float


# Learn only from this many late calls: the size for 99% rests on the late calls' tail (the few
# percent made after a number's rest), which a smaller sample cannot show.
MIN_LATE_CALLS = 200
STEP_S = 30.0


@dataclass(frozen=True)
class LearnedLateCalls:
    """Late calls as an account's own calls and leases show them. A late call is seen only while
    its number is not leased again (afterwards it goes to the next session), so the late calls
    made after a rest are estimated as events under censoring (Nelson-Aalen, a visitor may call
    more than once; in ``STEP_S`` steps): at each step, the late calls made then over the releases
    still watched then (released that long ago and not leased again since); summed from step ``k``
    on, the late calls per lease after that rest, over calls per lease: ``lost_after[k]``."""

    calls: int  # the pool's calls attributed to a session whose release is watched
    late_calls: int  # of them, made after the session released its number
    leases: int
    lost_after: tuple[float, ...]

    @property
    def enough(self) -> bool:
        return self.late_calls >= MIN_LATE_CALLS

    def lost(self, rest_s: float) -> float:
        """Linear within a step: the whole step's calls would overstate the tail by a step's worth
        (at 10 minutes, about 8% of it)."""
        k, into = divmod(max(0.0, rest_s), STEP_S)
        i = int(k)
        if i >= len(self.lost_after):
            return 0.0
        after = self.lost_after[i + 1] if i + 1 < len(self.lost_after) else 0.0
        return self.lost_after[i] - (self.lost_after[i] - after) * into / STEP_S

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": "calls",
            "calls": self.calls,
            "late_calls": self.late_calls,
            "leases": self.leases,
            "share": round(self.lost_after[0], 4) if self.lost_after else 0.0,
            "after_10_minutes": round(self.lost(600), 4),
            "after_20_minutes": round(self.lost(1200), 4),
        }


def learn_late_calls(
    releases: Sequence[Release],
    calls: Iterable[tuple[str, str, float]],
) -> LearnedLateCalls | None:
    """The account's late-call curve from its releases and its calls to the pool, given as
    (basis, lease_id, gap seconds) with basis "lease" (the page was open) or "late". Only calls
    of a lease among ``releases`` count, every late call of it (a visitor may call again). None
    when no call joins a release. A curve of fewer than ``MIN_LATE_CALLS`` late calls is not
    ``enough`` to size a pool by (the pools report says how many it has seen, and uses the model's
    until then)."""
    by_lease = {r.lease_id: r for r in releases}
    joined = 0
    gaps: list[float] = []
    for basis, lease_id, gap in calls:
        release = by_lease.get(lease_id)
        if release is None or not math.isfinite(gap):
            continue
        joined += 1
        if basis != "late" or gap < 0 or release.released + gap > release.until + STEP_S:
            continue  # made with the page open, or after the watch ended (the next lease began)
        gaps.append(gap)
    if not joined:
        return None
    steps = int(max(r.until - r.released for r in releases) // STEP_S) + 1
    watched = [0] * (steps + 1)  # releases watched at step k: a difference array
    for r in releases:
        watched[0] += 1
        watched[min(int(max(0.0, r.until - r.released) // STEP_S), steps - 1) + 1] -= 1
    events = [0] * steps
    for gap in gaps:
        events[min(int(gap // STEP_S), steps - 1)] += 1
    rate = [0.0] * steps  # late calls per watched release at step k (calls may recur: no survival)
    at_risk = 0
    for k in range(steps):
        at_risk += watched[k]
        if at_risk > 0:
            rate[k] = events[k] / at_risk
    per_lease = joined / len(releases)
    tail, lost = 0.0, [0.0] * steps
    for k in range(steps - 1, -1, -1):
        tail += rate[k]
        lost[k] = tail / per_lease
    return LearnedLateCalls(joined, len(gaps), len(releases), tuple(lost))


# A session's demand on the pool: (start, end), or (start, end, called) when the session called.
Demand = tuple[float, float] | tuple[float, float, bool]


def estimated_accuracy(
    leases: Sequence[Demand],
    size: int,
    late: LateCurve = LATE_CALLS,
    *,
    count_from: float = -math.inf,
) -> float | None:
    """Expected share of calls attributed to the right session had the pool held ``size`` numbers.
    ``leases`` are (start, end) or (start, end, called) intervals sorted by start; only leases
    starting at or after ``count_from`` are counted (earlier ones only warm the pool up). None when
    none is counted. A lease whose session called (``called``) leaves its number resting from the
    release before it, as ``dni_lease.leasing.rested_since`` orders it: the caller's redial is
    recognised by their number, so their number need not rest for them."""
    free: list[tuple[float, int]] = [(-math.inf, i) for i in range(max(size, 0))]  # (released, slot)
    held: list[tuple[float, int, float | None]] = []  # (end, slot, rests from: a called lease's)
    wrong = 0.0
    counted = 0
    for start, end, *called in leases:
        while held and held[0][0] <= start:
            ended, free_slot, rests_from = heapq.heappop(held)
            heapq.heappush(free, (ended if rests_from is None else rests_from, free_slot))
        counts = start >= count_from
        counted += counts
        if not free:
            wrong += counts  # shared number: the call cannot be told apart
            continue
        released, slot = heapq.heappop(free)
        if counts and released > -math.inf:
            wrong += late.lost(start - released)
        heapq.heappush(held, (max(end, start), slot, released if called and called[0] else None))
    return None if not counted else 1.0 - wrong / counted


def size_for_accuracy(
    leases: Sequence[Demand],
    target: float = ACCURACY_TARGET,
    late: LateCurve = LATE_CALLS,
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


def busiest_day(leases: Iterable[Demand], days: Sequence[float]) -> tuple[int, int] | None:
    """(i, leases) of the day [days[i], days[i + 1]) in which the most leases started; ``days``
    are the window's day boundaries in order (local midnights in the pools report: a day of a
    daylight-saving change lasts 23 or 25 hours). None when no lease started in the window."""
    counts: dict[int, int] = {}
    for s, *_ in leases:
        i = bisect.bisect_right(days, s) - 1
        if 0 <= i < len(days) - 1:
            counts[i] = counts.get(i, 0) + 1
    if not counts:
        return None
    return max(counts.items(), key=lambda kv: (kv[1], -kv[0]))
