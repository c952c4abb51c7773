"""P7 (issue 24): the pool-efficiency simulation replays traffic through the real lease code."""

from __future__ import annotations

import pytest

from bench import p7_pool_efficiency as p7

VISITORS = 400
MODEL = p7.TrafficModel()


@pytest.fixture(scope="module")
def visits() -> list[p7.Visit]:
    return p7.traffic(VISITORS, MODEL, seed=7)


def test_the_same_seed_gives_the_same_day(visits):
    again = p7.traffic(VISITORS, MODEL, seed=7)
    assert [(v.periods, v.call_at) for v in again] == [(v.periods, v.call_at) for v in visits]
    assert sum(v.call_at is not None for v in visits) > 0


def test_releasing_on_hide_attributes_more_calls_right_with_the_same_numbers(visits):
    # Given the same day of traffic and a pool of half the rule's size
    size = VISITORS // 20 // 2
    # When it is replayed with the issue-10 script and with the release-on-hide script
    before = p7.simulate(visits, size, p7.BEFORE, MODEL)
    after = p7.simulate(visits, size, p7.AFTER, MODEL)
    # Then releasing on hide attributes more calls to the right session, sharing fewer numbers
    assert after.accuracy > before.accuracy
    assert after.shared < before.shared
    # And its heartbeats went by the one-write path, without reading the pool (a page shown again
    # after its release reads the pool: the address cap is counted there)
    assert after.fast_renewals > 0 and before.fast_renewals == 0


def test_confident_attributions_are_right(visits):
    outcome = p7.simulate(visits, VISITORS // 20, p7.AFTER, MODEL)
    top = outcome.confident()
    assert top["share_of_calls"] > 0.3 and top["right"] >= 0.99


def test_the_smallest_pool_reaching_99_percent_is_found_to_the_step(visits):
    def replay(n: int) -> p7.Outcome:
        return p7.simulate(visits, n, p7.AFTER, MODEL)

    best, tried = p7.smallest_pool(replay, start=5, step=1, limit=80)
    assert best is not None and tried[best].accuracy >= 0.99
    assert best == 1 or tried[best - 1].accuracy < 0.99


def test_the_figure_reports_the_ratio_to_the_rule_and_calibration():
    result = p7.run((VISITORS,), policies=(p7.AFTER,))
    rows = {r.figure: r for r in result.rows}
    smallest = rows[f"P7 smallest pool at 99%, {VISITORS:,} visitors/day"]
    assert smallest.status in ("PASS", "MISS") and smallest.ratio is not None
    level = result.details["levels"][VISITORS]
    assert level["rule_pool"] == VISITORS // 20
    assert level["policies"][p7.AFTER.name]["at_smallest"]["accuracy"] >= 0.99
    # And the pools report's size for 99%, estimated from the day's lease history, sits beside it
    report = rows[f"P7 pools report, model's late calls, {VISITORS:,}/day"]
    assert report.status in ("PASS", "MISS") and report.ratio is not None
    at_smallest = level["policies"][p7.AFTER.name]["at_smallest"]
    assert at_smallest["pools_report"]["recommended_size_for_accuracy"] > 0


def test_the_search_bisects_between_coarse_steps_to_one_number():
    # Given a replay whose accuracy first reaches 99% at 37 numbers
    def replay(n: int) -> p7.Outcome:
        right = 100 if n >= 37 else 98
        return p7.Outcome(n, 1.0, open=[100, right])

    # When the search walks down from an estimate of 50 by steps of 10, or up from 20
    down, tried_down = p7.smallest_pool(replay, start=50, step=10, limit=200)
    up, _ = p7.smallest_pool(replay, start=20, step=10, limit=200)
    # Then both find 37 exactly, not the coarse grid's 40, in a handful of replays
    assert down == up == 37
    assert len(tried_down) <= 7
    # and a pool that never reaches the target is reported as not found
    assert p7.smallest_pool(lambda n: p7.Outcome(n, 1.0, open=[100, 50]), 5, 5, 30)[0] is None


def test_a_small_level_reports_its_pools_over_several_seeded_days():
    # Given the figure at a small level, with three seeded days
    result = p7.run((VISITORS,), policies=(p7.AFTER,), days_up_to=VISITORS, days=3)
    mine = result.details["levels"][VISITORS]["policies"][p7.AFTER.name]
    best = mine["smallest_pool_at_99"]
    # Then the pools next to the answer were replayed over the days, the first being the figure's own
    spread = mine["over_seeded_days"]
    assert set(spread) == {best - 1, best, best + 1} - {0}
    assert spread[best]["accuracy_by_day"][0] == mine["at_smallest"]["accuracy"]
    assert all(d["days"] == 3 and 0 <= d["days_at_99"] <= 3 for d in spread.values())
    means = [spread[n]["mean_accuracy"] for n in sorted(spread)]
    assert means == sorted(means)  # more numbers, no less accurate on the same days
    assert any(r.figure == f"P7 over 3 seeded days, {VISITORS:,}/day" for r in result.rows)


def test_late_probes_fall_one_in_each_stratum_of_the_delay():
    # Given the model's delay (lognormal) and eight strata of its quantiles
    import math
    import random
    from statistics import NormalDist

    delays = p7.late_delays(MODEL, random.Random(3), k=8)
    # Then the i-th probe's quantile lies in the i-th stratum, so the tail is always probed
    quantiles = [
        NormalDist().cdf(math.log(d / MODEL.late_delay_median_s) / MODEL.late_delay_sigma) for d in delays
    ]
    assert [int(q * 8) for q in quantiles] == list(range(8))


def test_a_probe_visitor_is_measured_after_its_visit_by_its_strata_and_a_caller_by_its_call(visits):
    callers = [v for v in visits if v.call_at is not None]
    probes = [v for v in visits if v.call_at is None]
    assert all(v.late_probes == [] for v in callers)
    assert all(len(v.late_probes) == p7.LATE_PROBES and min(v.late_probes) > v.periods[-1][1] for v in probes)
    # And each visitor weighs one call after the visit, whatever the number of probes
    outcome = p7.simulate(visits, VISITORS // 20, p7.AFTER, MODEL)
    late_visitors = sum(1 for v in visits if v.call_at is None or not v.call_while_open)
    # (a visitor shown no number has none)
    assert 0.95 * late_visitors <= outcome.late[0] <= late_visitors + 1e-6


def test_a_level_replayed_over_seeded_days_is_judged_by_their_mean():
    # Given two seeded days of a small level
    days = p7.seeded_days(VISITORS, MODEL, seed=7, days=2)
    # When a pool is replayed over them
    outcome = p7.replay_days(days, VISITORS // 40, p7.AFTER, MODEL)
    # Then the outcome is the first day's, and the size is judged by the mean of both days
    second = p7.simulate(days[1], VISITORS // 40, p7.AFTER, MODEL).accuracy
    assert outcome.day_accuracies == [outcome.accuracy, second]
    assert outcome.expected_accuracy == (outcome.accuracy + second) / 2
    assert p7.smallest_pool(lambda n: outcome, 1, 1, 1, target=outcome.expected_accuracy + 1e-9)[0] is None


def test_a_replayed_day_counts_the_lease_requests_rows_and_writes_a_website_call_costs(visits):
    from bench import dni_cost
    from bench.cost import PRICES

    # Given a day replayed with the release-on-hide script at the rule's size
    outcome = p7.simulate(visits, VISITORS // 20, p7.AFTER, MODEL)
    day = outcome.summary()
    # Then its API requests are its leases, its renewals and the release beacons that arrived
    assert outcome.release_requests >= outcome.releases > 0
    assert day["api_requests"] == outcome.new_leases + outcome.fast_renewals + outcome.release_requests
    # and every new lease read every number's row (as DynamoDB bills it), and wrote its history item
    assert day["rows_read"] == day["lease_requests_reading_the_pool"] * (VISITORS // 20)
    assert day["history_writes"] >= day["lease_requests_reading_the_pool"]
    # When it is priced per 1,000 of the calls its visitors make (40 per 1,000 visitors)
    cost = dni_cost.per_1000_calls(day, VISITORS, 40, memory_mb=256)
    # Then DynamoDB is its rows read and its writes, and the two rows each call's end marks,
    # spread over 16 calls
    calls = VISITORS * 40 / 1000
    wru = day["conditional_writes"] + day["history_writes"] + 2 * calls
    expected = (wru * PRICES["ddb_wru"] + day["rows_read"] * PRICES["ddb_rru"]) / calls * 1000
    assert cost["per_1000_calls_usd"]["DynamoDB"] == pytest.approx(expected, abs=1e-4)
    assert cost["per_1000_calls_usd"]["API Gateway"] == pytest.approx(
        day["api_requests"] * PRICES["http_api_request"] / calls * 1000, abs=1e-4)
    total = sum(cost["per_1000_calls_usd"].values())
    assert cost["total_per_1000_calls_usd"] == pytest.approx(total, abs=1e-3)
    # And a pool twice the size costs more per call: each new lease reads every number's row
    bigger = dni_cost.per_1000_calls(p7.simulate(visits, VISITORS // 10, p7.AFTER, MODEL).summary(),
                                     VISITORS, 40, memory_mb=256)
    assert bigger["per_1000_calls_usd"]["DynamoDB"] > cost["per_1000_calls_usd"]["DynamoDB"]


def test_numbers_whose_holder_called_going_out_first_attributes_more_calls_right():
    # Given a day of 1,000 visitors on half the rule's numbers, once with each call's end marking its
    # number's lease row (as the voice webhook does) and once with marks that never land that day
    day = p7.traffic(1000, MODEL, seed=7)
    marked = p7.simulate(day, 25, p7.AFTER, MODEL)
    unmarked = p7.simulate(day, 25, p7.AFTER, p7.TrafficModel(call_minutes=10 * 24 * 60))
    # Then handing out a number whose holder called before one still resting for its holder gets
    # more calls right after the visit
    assert marked.late[1] / marked.late[0] > unmarked.late[1] / unmarked.late[0]
