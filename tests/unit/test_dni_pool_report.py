"""Pool sizing report: peak concurrency, utilisation, exhaustions, recommended size."""

from __future__ import annotations

from datetime import date

import pytest

from calltrack.errors import BadRequest
from dni_lease.leasing import lease_number, recommended_size
from dni_lease.pool_report import peak_concurrency, pool_stats, pools_report, window
from dni_lease.validation import LeaseRequest
from tests.support.lease_store import InMemoryLeaseStore


def test_peak_concurrency_counts_touching_intervals_as_not_overlapping():
    assert peak_concurrency([(0, 10), (5, 15), (10, 20)]) == 2
    assert peak_concurrency([]) == 0


@pytest.mark.parametrize("peak,size", [(0, 0), (3, 4), (6, 8), (7, 10), (75, 100)])
def test_recommended_size_follows_the_75_percent_rule(peak, size):
    assert recommended_size(peak) == size


def test_stats_count_demand_including_shared_sessions_once_per_session():
    pool = {"id": "g", "channel": "google-ads", "numbers": ["+1", "+2"]}
    items = [
        {"kind": "lease", "leased_at": 0, "ended_at": 100, "session_id": "a"},
        {"kind": "lease", "leased_at": 10, "ended_at": 100, "session_id": "b"},
        {"kind": "shared", "leased_at": 20, "ended_at": 60, "session_id": "c"},
        {"kind": "shared", "leased_at": 50, "ended_at": 90, "session_id": "c"},  # heartbeat of c
    ]
    s = pool_stats(pool, items, exhaustions=2, start=0, end=200)
    assert s["peak_concurrent_leases"] == 2 and s["peak_concurrent_sessions"] == 3
    assert s["utilisation"] == 1.0 and s["average_utilisation"] == pytest.approx(190 / 400)
    assert s["recommended_size"] == 4 and s["exhaustions"] == 2 and s["leases"] == 2


def test_window_defaults_and_validation():
    f, t, start, end = window(None, None, "Asia/Tokyo", date(2026, 11, 25))
    assert (f, t) == (date(2026, 10, 27), date(2026, 11, 25)) and end - start == 30 * 86400
    with pytest.raises(BadRequest) as err:
        window("2026-13-01", None, "Asia/Tokyo", date(2026, 11, 25))
    assert err.value.field == "from"
    with pytest.raises(BadRequest):
        window("2026-11-30", "2026-11-01", "Asia/Tokyo", date(2026, 11, 25))
    with pytest.raises(BadRequest) as err:  # the calendar's last day has no next day to end on
        window(None, "9999-12-31", "Asia/Tokyo", date(2026, 11, 25))
    assert err.value.field == "to"


def test_report_over_the_in_memory_store():
    store = InMemoryLeaseStore()
    cfg = {
        "account": "acme",
        "pools": [
            {
                "id": "g",
                "channel": "direct",
                "numbers": ["+815055550001", "+815055550002"],
                "match": {},
                "lease_minutes": 30,
            }
        ],
    }
    t0 = 1_800_000_000.0
    for i in range(3):  # two leases and one exhaustion
        lease_number(
            store,
            cfg,
            LeaseRequest(account="acme", visitor_id=f"visitor-{i:03d}", session_id=f"session-{i:03d}"),
            t0 + i,
        )
    [stats] = pools_report(store, cfg, t0 - 3600, t0 + 7200)
    assert stats["peak_concurrent_leases"] == 2 and stats["peak_concurrent_sessions"] == 3
    assert stats["exhaustions"] == 1 and stats["recommended_size"] == 4 and stats["size"] == 2


POOL = {"id": "g", "channel": "direct", "numbers": ["+815055550001", "+815055550002", "+815055550003"],
        "match": {}, "lease_minutes": 10}


def test_sessions_kept_alive_by_heartbeats_count_for_as_long_as_they_hold_their_number():
    # Given two sessions that overlap for an hour, each renewing its lease by heartbeats that name it
    store, cfg, t0 = InMemoryLeaseStore(), {"account": "acme", "pools": [POOL]}, 1_800_000_000.0
    held = {}
    for i, start in enumerate((t0, t0 + 1800)):
        sid = f"session-{i:03d}"
        first = lease_number(store, cfg, LeaseRequest(account="acme", visitor_id=f"visitor-{i:03d}",
                                                      session_id=sid), start)
        held[sid] = first
    for beat in range(1, 19):  # every 200 s for an hour
        for i, start in enumerate((t0, t0 + 1800)):
            sid = f"session-{i:03d}"
            req = LeaseRequest(account="acme", visitor_id=f"visitor-{i:03d}", session_id=sid,
                               number=held[sid].number, lease_id=held[sid].lease_id)
            assert lease_number(store, cfg, req, start + beat * 200).renewed
    # When the pools report covers the two hours
    [stats] = pools_report(store, cfg, t0, t0 + 7200)
    # Then both sessions held a number at once, for an hour each (not ten minutes)
    assert stats["peak_concurrent_leases"] == 2 and stats["recommended_size"] == 3
    held_s = 2 * (18 * 200 + 600)
    assert stats["average_utilisation"] == round(held_s / (3 * 7200), 4)


def test_a_number_that_moved_accounts_does_not_bring_its_history_into_the_new_accounts_report():
    # Given a number another account leased under a pool of the same id, before it moved here
    store, t0 = InMemoryLeaseStore(), 1_800_000_000.0
    other = {"account": "other", "pools": [POOL]}
    theirs = LeaseRequest(account="other", visitor_id="visitor-x1", session_id="session-x1")
    lease_number(store, other, theirs, t0)
    # When this account reports on the same window
    [stats] = pools_report(store, {"account": "acme", "pools": [POOL]}, t0 - 60, t0 + 3600)
    # Then the other account's lease is not in it
    assert stats["leases"] == 0 and stats["peak_concurrent_leases"] == 0


def test_numbers_taken_out_of_the_pool_count_with_the_leases_they_had_in_it_and_no_later_ones():
    # Given a pool of three numbers, each leased at once by one of three sessions
    store, t0 = InMemoryLeaseStore(), 1_800_000_000.0
    cfg = {"account": "acme", "pools": [POOL]}
    for i in range(3):
        lease_number(store, cfg, LeaseRequest(account="acme", visitor_id=f"visitor-{i:03d}",
                                              session_id=f"session-{i:03d}"), t0 + i)
    held = {row["session_id"]: n for n, row in store.rows.items()}
    # and, an hour later, an apply that took two numbers out (one of them leased later in another pool)
    left_at = t0 + 3600
    keep = held["session-000"]
    gone = sorted(set(POOL["numbers"]) - {keep})
    shrunk = {"account": "acme", "pools": [{**POOL, "numbers": [keep]}]}
    moved = {"account": "acme", "pools": [{**POOL, "id": "y", "numbers": [gone[0]]}]}
    lease_number(store, moved, LeaseRequest(account="acme", visitor_id="visitor-y", session_id="session-y"),
                 left_at + 60)
    # When the report covers both hours, knowing which numbers left the pool and when
    [stats] = pools_report(store, shrunk, t0 - 60, t0 + 7200, former={"g": {n: left_at for n in gone}})
    # Then the three sessions of the first hour are the pool's demand (the later lease in pool "y" is not)
    assert stats["size"] == 1 and stats["leases"] == 3 and stats["peak_concurrent_sessions"] == 3
    assert stats["recommended_size"] == 4 and stats["advised_size"] >= 3
    # And utilisation is the one number still in the pool's
    assert stats["peak_concurrent_leases"] == 1 and stats["utilisation"] == 1.0
    # And without what left, the pool looks like it had one session
    [blind] = pools_report(store, shrunk, t0 - 60, t0 + 7200)
    assert blind["peak_concurrent_sessions"] == 1
    # And numbers that left before the window (with its look-back) are not read at all
    asked: list[str] = []
    history = store.history
    store.history = lambda n, s, e: asked.append(n) or history(n, s, e)  # type: ignore[method-assign]
    [old] = pools_report(store, shrunk, t0 + 86400 * 3, t0 + 86400 * 4,
                         former={"g": {n: left_at for n in gone}})
    assert old["leases"] == 0 and [n for n in asked if n.startswith("+")] == [keep]
