"""Pool sizing for accuracy (issue 24): how long numbers rest before the next session takes them,
replayed from the pool's own lease history (``dni_lease.pool_sizing``)."""

from __future__ import annotations

import math

import pytest

from bench import p7_pool_efficiency as p7
from dni_lease.pool_report import pool_stats
from dni_lease.pool_sizing import (
    LATE_CALLS,
    STEP_S,
    LateCalls,
    Release,
    busiest_day,
    estimated_accuracy,
    learn_late_calls,
    size_for_accuracy,
)


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
    days = [0.0, 86400.0, 2 * 86400.0, 3 * 86400.0]
    assert busiest_day(sorted(leases), days) == (1, 200)
    assert busiest_day([(5 * 86400, 5 * 86400 + 10)], days) is None


def test_a_day_of_a_daylight_saving_change_is_its_local_date():
    # Given a New York pool whose report covers 1 November 2026, the 25-hour day clocks fall back
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from dni_lease.pool_report import local_days

    ny = ZoneInfo("America/New_York")
    start = datetime(2026, 11, 1, tzinfo=ny).timestamp()
    end = datetime(2026, 11, 2, tzinfo=ny).timestamp()
    assert local_days(start, end, "America/New_York") == [start, end] and end - start == 25 * 3600
    # When its sessions came in the day's last hour (after 23:00 local, the 25th hour)
    pool = {"id": "g", "channel": "google-ads", "numbers": ["+1", "+2"]}
    items = [
        {"kind": "lease", "leased_at": t, "ended_at": t + 10, "session_id": f"s{i}"}
        for i, t in enumerate(end - 3000 + 60 * k for k in range(10))
    ]
    stats = pool_stats(pool, items, exhaustions=0, start=start, end=end, timezone="America/New_York")
    # Then they are counted on 1 November, not on a next day outside the window
    assert (stats["busiest_day"], stats["busiest_day_leases"]) == ("2026-11-01", 10)


def test_a_session_holding_its_number_since_the_day_before_counts_on_the_busiest_day():
    # Given a two-number pool: a page open since the evening before holds one number all day,
    # and a session every ten minutes takes the other
    pool = {"id": "g", "channel": "google-ads", "numbers": ["+1", "+2"]}
    items = [{"kind": "lease", "leased_at": -7200.0, "ended_at": 86400.0, "session_id": "open-all-day"}]
    items += [
        {"kind": "lease", "leased_at": s, "ended_at": e, "session_id": f"s{i}"}
        for i, (s, e) in enumerate(steady_traffic(600, 30, 24))
    ]
    stats = pool_stats(pool, items, exhaustions=0, start=0.0, end=86400.0)
    # Then the size for 99% counts the held number too: one number rests too little for the others
    assert stats["estimated_accuracy"] < 0.99
    assert stats["recommended_size_for_accuracy"] == 3


def test_the_pools_report_recommends_enough_numbers_for_late_calls_not_only_for_concurrency():
    # Given a pool of 5 numbers and a day of a session a minute, each holding its number 30 s
    pool = {"id": "g", "channel": "google-ads", "numbers": [f"+8150000000{i:02d}" for i in range(5)]}
    start = 1_796_050_800.0  # 2026-12-01 00:00 in Tokyo
    items = [
        {"kind": "lease", "leased_at": start + s, "ended_at": start + e, "session_id": f"s{i}"}
        for i, (s, e) in enumerate(steady_traffic(60, 30, 24))
    ]
    # When the report reads its history
    stats = pool_stats(pool, items, exhaustions=0, start=start, end=start + 86400, timezone="Asia/Tokyo")
    # Then the 75% rule is content with one or two numbers, but late calls need about eighteen
    assert stats["recommended_size"] <= 2
    assert 17 <= stats["recommended_size_for_accuracy"] <= 18
    five_numbers = 1 - LATE_CALLS.share * LATE_CALLS.after(5 * 60 - 30)  # each rests 270 s
    assert stats["estimated_accuracy"] == pytest.approx(five_numbers, abs=2e-3)
    assert stats["busiest_day"] == "2026-12-01" and stats["busiest_day_leases"] == 1440


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


def test_late_calls_are_learned_from_the_releases_still_watched_when_they_come():
    # Given 2,000 releases: the odd ones watched 20 minutes, the even ones only 5 (their numbers
    # were leased again: a late call after that went to the next session and is not seen as late)
    releases = [Release(f"l{i}", 0.0, 1200.0 if i % 2 else 300.0) for i in range(2000)]
    # And a late call 100 s after 400 of them (odd and even alike), and 600 s after 300 odd ones
    early = [("late", f"l{i}", 100.0) for i in range(2000) if i % 10 in (0, 1)]
    later = [("late", f"l{i}", 600.0) for i in range(2000) if i % 10 == 3 or i % 20 == 5]
    open_page = [("lease", f"l{i}", 0.0) for i in range(2000)]
    late = learn_late_calls(releases, early + later + open_page)
    assert late is not None and (late.late_calls, late.leases, late.calls) == (700, 2000, 2700)
    # Then a fifth of releases call after 100 s; of the 1,000 still watched at 600 s, 300 call
    # then: 0.3 per lease (counting every late call seen over every release would say 0.15)
    per_lease = 2700 / 2000
    assert late.lost(0) == pytest.approx((0.2 + 0.3) / per_lease)
    assert late.lost(300) == pytest.approx(0.3 / per_lease)
    assert late.lost(700) == 0.0
    assert late.as_dict()["source"] == "calls"


def test_too_few_late_calls_or_calls_of_other_leases_are_not_enough():
    releases = [Release(f"l{i}", 0.0, 600.0) for i in range(300)]
    few = [("late", f"l{i}", 60.0) for i in range(199)]
    seen = learn_late_calls(releases, few)
    assert seen is not None and seen.late_calls == 199 and not seen.enough
    strangers = [("late", f"x{i}", 60.0) for i in range(500)]  # no release of this pool
    after_watch = [("late", f"l{i}", 600.0 + 2 * STEP_S) for i in range(300)]  # after the next lease
    assert not learn_late_calls(releases, few + strangers + after_watch).enough  # type: ignore[union-attr]
    assert learn_late_calls(releases, [("late", "l250", 60.0)] + few).enough  # type: ignore[union-attr]
    assert learn_late_calls([], [("late", "l1", 60.0)] * 300) is None
    assert learn_late_calls(releases, []) is None


def test_an_accounts_slower_late_callers_are_learned_and_need_more_numbers():
    # Given a day of 2,000 visitors whose late callers take twice the model's delay (median 6 min)
    model = p7.TrafficModel(late_delay_median_s=360.0)
    visits = p7.traffic(2000, model, seed=11)
    # When its pool of 180 numbers reports from its leases and its calls
    wide = p7.simulate(visits, 180, p7.AFTER, model)
    learned = wide.pools_report["recommended_size_for_accuracy"]
    assumed = wide.pools_report_model["recommended_size_for_accuracy"]
    assert wide.pools_report["late_calls"]["source"] == "calls"
    # Then the size learned from the account's calls is far above the model's guess
    assert learned > 1.4 * assumed
    # And replayed at the learned size the day is about 99% right, at the model's guess it is not
    assert p7.simulate(visits, learned, p7.AFTER, model).accuracy >= 0.988
    assert p7.simulate(visits, assumed, p7.AFTER, model).accuracy < 0.98


def test_a_visitor_calling_again_counts_twice_and_calls_of_unwatched_leases_not_at_all():
    releases = [Release(f"l{i}", 0.0, 1200.0) for i in range(200)]
    # Given every visitor calling 60 s after leaving and again after 900 s (the first went unanswered)
    calls = [("late", f"l{i}", g) for i in range(200) for g in (60.0, 900.0)]
    # And calls of leases the history does not watch (still live, or shared while held), and a NaN
    calls += [("lease", f"live{i}", 0.0) for i in range(200)] + [("late", "l1", float("nan"))]
    late = learn_late_calls(releases, calls)
    # Then both calls of each visitor count, over the watched leases' calls only
    assert late is not None and (late.calls, late.late_calls) == (400, 400)
    assert late.lost(0) == pytest.approx(1.0) and late.lost(600) == pytest.approx(0.5)


def test_the_report_reads_a_pools_calls_and_keeps_the_model_when_the_window_is_short():
    from dni_lease.pool_report import pools_report
    from tests.support.lease_store import InMemoryLeaseStore

    # Given a one-number pool handed to 300 sessions in turn, each released after a minute and
    # each called back 100 s after leaving (the next session came ten minutes later)
    store = InMemoryLeaseStore()
    calls = []
    for i in range(300):
        t = 600.0 * i
        store.put_history({"number": "+1", "leased_at": t, "kind": "lease", "lease_id": f"l{i}",
                           "session_id": f"s{i}", "ended_at": t + 60, "pool": "g"})
        calls.append({"attribution": {"basis": "late", "lease_id": f"l{i}", "gap_minutes": 100 / 60,
                                      "pool": "g"}})
    calls += [{"attribution": "not a dict"}, {"attribution": {"basis": "late", "pool": "g",
                                                              "gap_minutes": "soon"}}]
    config = {"account": "a", "pools": [{"id": "g", "numbers": ["+1"]}]}
    # When the report reads them with the default two-hour late-call window
    [learned] = pools_report(store, config, 0.0, 86400.0 * 3, calls=calls, now=86400.0 * 3)
    # Then the pool learned its own late calls: none after ten minutes, so one number suffices
    assert learned["late_calls"]["source"] == "calls" and learned["late_calls"]["late_calls"] == 300
    assert learned["estimated_accuracy"] == 1.0 and learned["recommended_size_for_accuracy"] == 1
    # And with a 30-minute window (later calls unseen) it keeps the model's late calls
    config["dni"] = {"late_call_window_minutes": 30}
    [short] = pools_report(store, config, 0.0, 86400.0 * 3, calls=calls, now=86400.0 * 3)
    assert short["late_calls"]["source"] == "model" and short["late_calls"]["learns_from"] is None
    assert short["estimated_accuracy"] < 1.0


def test_the_advised_size_is_what_sessions_and_late_calls_need_and_a_pool_without_sessions_keeps_its_size():
    from dni_lease.pool_report import pool_stats

    pool = {"id": "yahoo", "channel": "yahoo-ads", "numbers": ["+815011110001", "+815011110002"]}
    # Given no session in the window (dni.js not live yet): the pool keeps its 2 numbers, never 0
    quiet = pool_stats(pool, [], 0, 0.0, 86400.0)
    assert quiet["advised_size"] == 2 and quiet["recommended_size"] == 0
    # Given one lease: at least the larger of what the peak and 99% of calls need
    busy = pool_stats(pool, [{"kind": "lease", "session_id": "s1", "leased_at": 100.0, "ended_at": 200.0}],
                      0, 0.0, 86400.0)
    assert busy["advised_size"] == max(busy["recommended_size"], busy["recommended_size_for_accuracy"], 1)


def test_a_window_holding_more_leases_than_one_report_reads_is_a_400_naming_from(monkeypatch):
    from calltrack.errors import BadRequest
    from dni_lease import pool_report
    from tests.support.lease_store import InMemoryLeaseStore

    # Given a pool whose window holds 12 leases, and a report that may hold 10
    monkeypatch.setattr(pool_report, "MAX_HISTORY_ITEMS", 10)
    store = InMemoryLeaseStore()
    numbers = ["+815011110001", "+815011110002"]
    for i in range(12):
        store.put_history({"number": numbers[i % 2], "leased_at": 1000.0 + i * 100, "kind": "lease",
                           "account": "acme", "pool": "google", "session_id": f"s{i}", "lease_id": f"l{i}",
                           "ended_at": 1050.0 + i * 100})
    config = {"account": "acme", "timezone": "UTC",
              "pools": [{"id": "google", "channel": "google-ads", "numbers": numbers}]}
    # When the report is asked for it, then it refuses (a shorter window) instead of running out of memory
    with pytest.raises(BadRequest) as refused:
        pool_report.pools_report(store, config, 0.0, 86400.0)
    assert refused.value.field == "from" and "fewer days" in str(refused.value)
    # And a window the report may hold is answered
    monkeypatch.setattr(pool_report, "MAX_HISTORY_ITEMS", 12)
    assert pool_report.pools_report(store, config, 0.0, 86400.0)[0]["leases"] == 12


def test_a_window_older_than_the_lease_history_is_a_400_naming_from():
    from datetime import date

    from calltrack.errors import BadRequest
    from dni_lease.pool_report import window

    today = date(2026, 12, 4)
    # the oldest day whose leases are still kept is answered ...
    assert window("2026-09-06", "2026-09-30", "Asia/Tokyo", today)[0] == date(2026, 9, 6)
    # ... a day before it would show hourly exhaustion counts (kept 400 days) with no leases
    with pytest.raises(BadRequest) as refused:
        window("2026-09-05", "2026-09-30", "Asia/Tokyo", today)
    assert refused.value.field == "from" and "2026-09-06" in str(refused.value)


def test_the_default_window_of_a_busy_account_is_shortened_to_what_one_report_reads(monkeypatch):
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from calltrack.errors import BadRequest
    from dni_lease import pool_report
    from dni_lease.service import handle_pools_report
    from tests.support.accounts import InMemoryAccounts, account_config
    from tests.support.lease_store import InMemoryLeaseStore

    # Given a pool with 10 leases a day over the last 30 days, and reports that may hold 100 items
    monkeypatch.setattr(pool_report, "MAX_HISTORY_ITEMS", 100)
    numbers = ["+815011110001", "+815011110002"]
    cfg = account_config("acme", timezone="Asia/Tokyo", site={"origins": [], "numbers": ["+81312345678"]},
                         pools=[{"id": "google", "channel": "google-ads", "numbers": numbers,
                                 "match": {"utm_source": "google"}}])
    accounts = InMemoryAccounts({"acme": cfg})
    now = datetime(2026, 12, 4, 12, tzinfo=ZoneInfo("Asia/Tokyo")).timestamp()
    store = InMemoryLeaseStore()
    for day in range(31):
        for i in range(10):
            t = now - day * 86400 - i * 600
            store.put_history({"number": numbers[i % 2], "leased_at": t, "kind": "lease", "account": "acme",
                               "pool": "google", "session_id": f"s{day}-{i}", "lease_id": f"l{day}-{i}",
                               "ended_at": t + 60})
    # When the report is asked without from (the console, pools advise and doctor do)
    got = handle_pools_report("acme", {}, store=store, accounts=accounts, now=now)
    # Then it answers the last days that fit, and says the window was shortened
    assert got["window_shortened"] is True and got["to"] == "2026-12-04"
    shown = (datetime.fromisoformat(got["to"]) - datetime.fromisoformat(got["from"])).days + 1
    assert 1 <= shown < 30 and got["pools"][0]["leases"] == 10 * shown
    # And a window the caller chose is refused instead, naming from
    with pytest.raises(BadRequest) as refused:
        handle_pools_report("acme", {"from": "2026-11-05"}, store=store, accounts=accounts, now=now)
    assert refused.value.field == "from"
    # And a quiet account's default window is its 30 days, not marked
    monkeypatch.setattr(pool_report, "MAX_HISTORY_ITEMS", 10_000)
    assert "window_shortened" not in handle_pools_report("acme", {}, store=store, accounts=accounts, now=now)
    assert timedelta(days=29) == (datetime.fromisoformat(got["to"]) - datetime.fromisoformat(
        handle_pools_report("acme", {}, store=store, accounts=accounts, now=now)["from"]))


def test_a_sessions_leases_of_one_number_in_a_row_are_one_release():
    from dni_lease.pool_report import _releases

    # Given a page that leased a number, was hidden (released it) and shown again (a new lease of
    # the same number), then another session's lease of that number
    items = [
        {"kind": "lease", "number": "+815011110001", "session_id": "s1", "lease_id": "L1",
         "leased_at": 0.0, "ended_at": 100.0},
        {"kind": "lease", "number": "+815011110001", "session_id": "s1", "lease_id": "L2",
         "leased_at": 200.0, "ended_at": 300.0},
        {"kind": "lease", "number": "+815011110001", "session_id": "s2", "lease_id": "L3",
         "leased_at": 900.0, "ended_at": 1000.0},
    ]
    releases, part_of = _releases(items, window_s=7200, watched_until=5000)
    # Then the first session has one release, at the end of its last lease, watched until the next
    # session's; its first lease is part of it (its visitor calls once, after leaving)
    assert [(r.lease_id, r.released, r.until) for r in releases] == [
        ("L2", 300.0, 900.0), ("L3", 1000.0, 5000.0)]
    assert part_of == {"L1": "L2"}
    # And the session is one span of demand for sizing, hidden time included
    stats = pool_stats({"id": "p", "numbers": ["+815011110001"]}, items, 0, 0.0, 5000.0)
    assert stats["peak_concurrent_sessions"] == 1


def test_average_utilisation_is_over_the_part_of_the_window_that_has_passed():
    # Given one number leased for 3 of the 6 hours of a day that have passed
    items = [{"kind": "lease", "number": "+815011110001", "session_id": "s1", "lease_id": "L1",
              "leased_at": 0.0, "ended_at": 3 * 3600.0}]
    pool = {"id": "p", "numbers": ["+815011110001"]}
    # Then at 06:00 the number was in use half the time, not an eighth of the day
    assert pool_stats(pool, items, 0, 0.0, 86400.0, until=6 * 3600.0)["average_utilisation"] == 0.5
    assert pool_stats(pool, items, 0, 0.0, 86400.0)["average_utilisation"] == 0.125


def test_in_a_half_hour_zone_an_hourly_count_across_midnight_belongs_to_one_day():
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from calltrack.models.dni import EXHAUSTIONS
    from dni_lease.pool_report import pools_report
    from tests.support.lease_store import InMemoryLeaseStore

    # Given an account in Asia/Kolkata (+05:30) and one exhaustion at 23:40 on 30 November, counted
    # in the UTC hour 18:00-19:00 that local midnight cuts in two
    kolkata = ZoneInfo("Asia/Kolkata")
    store = InMemoryLeaseStore()
    at = datetime(2026, 11, 30, 23, 40, tzinfo=kolkata).timestamp()
    store.add_to_stats("acme", "google", int(at // 3600) * 3600, EXHAUSTIONS)
    config = {"account": "acme", "timezone": "Asia/Kolkata",
              "pools": [{"id": "google", "channel": "google-ads", "numbers": ["+815011110001"]}]}

    def day(d: int, month: int = 11) -> float:
        return datetime(2026, month, d, tzinfo=kolkata).timestamp()

    # When the 30th and the 1st are reported, each alone
    nov30 = pools_report(store, config, day(30), day(1, 12))[0]["exhaustions"]
    dec1 = pools_report(store, config, day(1, 12), day(2, 12))[0]["exhaustions"]
    # Then the exhaustion is counted once over the two days, not on both
    assert nov30 + dec1 == 1


def test_a_session_that_called_leaves_its_number_resting_from_the_release_before_it():
    # Given one number: R holds it 0-100 s, S 200-300 s, Y takes it at 310 s
    leases = [(0.0, 100.0), (200.0, 300.0), (310.0, 400.0)]
    # When S did not call, Y's take cuts S's rest to 10 s
    quiet = estimated_accuracy(leases, 1)
    assert quiet == pytest.approx(1 - (LATE_CALLS.lost(100) + LATE_CALLS.lost(10)) / 3)
    # When S called, the number has rested since R left (S's redial is recognised by its caller)
    called = estimated_accuracy([leases[0], (*leases[1], True), leases[2]], 1)
    assert called == pytest.approx(1 - (LATE_CALLS.lost(100) + LATE_CALLS.lost(210)) / 3)
    assert called > quiet


def test_the_pools_report_lets_sessions_that_called_shorten_the_rest_it_sizes_for():
    # Given an hour of sessions back to back on a busy pool, every other one a caller
    spans = [(1_800_000_000.0 + 90 * i, 1_800_000_000.0 + 90 * i + 120) for i in range(40)]
    items = [{"kind": "lease", "number": f"n{i % 4}", "session_id": f"s{i}", "lease_id": f"l{i}",
              "leased_at": s, "ended_at": e} for i, (s, e) in enumerate(spans)]
    pool = {"id": "g", "numbers": [f"n{i}" for i in range(4)]}
    start, end = spans[0][0], spans[-1][1] + 1

    def report(called):
        return pool_stats(pool, items, 0, start, end, called=called)

    quiet, calling = report(()), report({(f"s{i}", f"n{i % 4}") for i in range(0, 40, 2)})
    # Then the size for 99% is smaller once the callers' numbers need no rest for them
    assert calling["recommended_size_for_accuracy"] < quiet["recommended_size_for_accuracy"]
    assert calling["estimated_accuracy"] > quiet["estimated_accuracy"]


def test_only_calls_that_marked_their_number_count_as_their_session_having_called():
    from dni_lease.pool_report import _called_sessions

    def call(session, **over):
        return {"caller_kind": "number", "confidence": 0.9, "tracking_number": "n1",
                "attribution": {"basis": "late", "session_id": session, "pool": "g"}, **over}

    calls = [
        call("s-sure"),
        call("s-open", confidence=1.0, attribution={"basis": "lease", "session_id": "s-open", "pool": "g"}),
        call("s-hidden", caller_kind="anonymous"),  # no redial can be recognised: no mark
        call("s-test", test=True),
        call("s-unsure", confidence=0.6),  # right after the previous holder left
        call("s-pool", attribution={"basis": "pool", "pool": "g"}),
        call("s-redial", attribution={"basis": "repeat_caller", "session_id": "s-redial", "pool": "g"}),
    ]
    assert _called_sessions(calls) == {"g": {("s-sure", "n1"), ("s-open", "n1")}}
