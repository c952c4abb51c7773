"""Pool sizing for accuracy (issue 24): how long numbers rest before the next session takes them,
replayed from the pool's own lease history (``dni_lease.pool_sizing``)."""

from __future__ import annotations

import math

import pytest

from bench import p7_pool_efficiency as p7
from dni_lease.pool_report import pool_stats
from dni_lease.pool_sizing import LATE_CALLS, LateCalls, busiest_day, estimated_accuracy, size_for_accuracy


def steady_traffic(every_s: float, hold_s: float, hours: float) -> list[tuple[float, float]]:
    """A session every ``every_s`` seconds holding its number ``hold_s`` seconds."""
    return [(i * every_s, i * every_s + hold_s) for i in range(int(hours * 3600 / every_s))]


def test_late_calls_thin_out_with_the_rest():
    late = LateCalls()
    assert late.after(0) == 1.0
    assert late.after(late.delay_median_s) == pytest.approx(0.5)
    assert late.after(60) > late.after(600) > late.after(3600) > 0


def test_a_number_taken_soon_after_its_release_loses_that_sessions_late_call():
    # Given one session releasing the number at 100 s and another taking it 60 s later
    leases = [(0.0, 100.0), (160.0, 200.0)]
    # When the pool has one number, the first session's late call after 60 s goes to the second
    lost = LATE_CALLS.share * LATE_CALLS.after(60)
    assert estimated_accuracy(leases, 1) == pytest.approx(1 - lost / 2)
    # And with two numbers both sessions keep theirs
    assert estimated_accuracy(leases, 2) == 1.0


def test_a_session_finding_every_number_held_is_counted_wrong():
    leases = [(0.0, 100.0), (50.0, 150.0)]
    assert estimated_accuracy(leases, 1) == 0.5
    assert estimated_accuracy([], 3) is None


def test_leases_before_count_from_only_warm_the_pool_up():
    leases = [(0.0, 100.0), (160.0, 200.0)]
    assert estimated_accuracy(leases, 1, count_from=150) == pytest.approx(
        1 - LATE_CALLS.share * LATE_CALLS.after(60)
    )


def test_the_size_for_99_percent_is_the_smallest_whose_numbers_rest_long_enough():
    # Given a session every minute holding its number 30 s, replayed after two hours of warm-up
    leases = steady_traffic(60, 30, 26)
    count_from = 2 * 3600
    # Then with n numbers each rests n x 60 - 30 s before its next lease, least recently released first
    expected = next(n for n in range(1, 100) if 1 - LATE_CALLS.share * LATE_CALLS.after(60 * n - 30) >= 0.99)
    assert expected == 18
    assert size_for_accuracy(leases, count_from=count_from) == expected
    assert estimated_accuracy(leases, expected - 1, count_from=count_from) < 0.99
    # And a stricter target or longer late delays need more numbers
    assert size_for_accuracy(leases, 0.995, count_from=count_from) > expected
    slower = LateCalls(delay_median_s=360)
    assert size_for_accuracy(leases, late=slower, count_from=count_from) > expected
    assert size_for_accuracy([]) == 0


def test_the_busiest_day_is_the_one_with_most_leases():
    leases = steady_traffic(600, 30, 24) + [(86400 + i, 86400 + i + 10) for i in range(200)]
    assert busiest_day(sorted(leases), 0, 3 * 86400) == (86400, 200)
    assert busiest_day(leases, 5 * 86400, 6 * 86400) is None


def test_the_pools_report_recommends_enough_numbers_for_late_calls_not_only_for_concurrency():
    # Given a pool of 5 numbers and a day of a session a minute, each holding its number 30 s
    pool = {"id": "g", "channel": "google-ads", "numbers": [f"+8150000000{i:02d}" for i in range(5)]}
    start = 0.0
    items = [
        {"kind": "lease", "leased_at": s, "ended_at": e, "session_id": f"s{i}"}
        for i, (s, e) in enumerate(steady_traffic(60, 30, 24))
    ]
    # When the report reads its history
    stats = pool_stats(pool, items, exhaustions=0, start=start, end=start + 86400, timezone="Asia/Tokyo")
    # Then the 75% rule is content with one or two numbers, but late calls need about eighteen
    assert stats["recommended_size"] <= 2
    assert 17 <= stats["recommended_size_for_accuracy"] <= 18
    five_numbers = 1 - LATE_CALLS.share * LATE_CALLS.after(5 * 60 - 30)  # each rests 270 s
    assert stats["estimated_accuracy"] == pytest.approx(five_numbers, abs=2e-3)
    assert stats["busiest_day"] == "1970-01-01" and stats["busiest_day_leases"] == 1440


def test_a_shared_sessions_heartbeats_are_one_demand():
    pool = {"id": "g", "channel": "google-ads", "numbers": ["+1"]}
    items = [
        {"kind": "lease", "leased_at": 0, "ended_at": 100, "session_id": "a"},
        {"kind": "shared", "leased_at": 20, "ended_at": 60, "session_id": "c"},
        {"kind": "shared", "leased_at": 50, "ended_at": 90, "session_id": "c"},
    ]
    stats = pool_stats(pool, items, exhaustions=2, start=0, end=200)
    assert stats["estimated_accuracy"] == 0.5  # a's calls right, c's shared number not
    assert stats["recommended_size_for_accuracy"] == 2


def test_on_a_simulated_day_the_report_finds_what_the_full_replay_finds():
    # Given P7's simulated day of 1,000 visitors replayed on twice the pool it needs
    model = p7.TrafficModel()
    visits = p7.traffic(1000, model, seed=1024)
    wide = p7.simulate(visits, 52, p7.AFTER, model)
    recommended = wide.pools_report["recommended_size_for_accuracy"]
    # When the day is replayed again on the size the report recommends from that history
    at = p7.simulate(visits, recommended, p7.AFTER, model)
    fewer = p7.simulate(visits, recommended - 2, p7.AFTER, model)
    # Then it reaches 99% (within the replay's noise) and two numbers fewer do not
    assert at.accuracy >= 0.989 and fewer.accuracy < 0.99
    # And the report's estimate at that size is the replay's accuracy within half a point
    assert math.isclose(at.pools_report["estimated_accuracy"], at.accuracy, abs_tol=0.005)
    # And the 75% rule on peak concurrency would have cut the pool well below it
    assert wide.pools_report["recommended_size"] < recommended
