"""Account deletion (privacy.account_deletion) goes on across requests when one has too little time."""

from __future__ import annotations

import pytest

from calltrack.errors import BadRequest
from privacy.account_deletion import delete_account
from tests.support.privacy import FakeAccountStore, FakeDeleteAll

ITEMS = {"numbers": 1, "calls": 41, "rollups": 15, "callers": 9, "audit": 10, "recordings": 3, "accounts": 1}
# A run of an account with nothing left reads ~25 empty pages (one per table, seven rollup
# partitions): a request must have time for more than that (a real one has ~20 s for ~10 ms pages).
PAGES_A_REQUEST = 30


def run(store: FakeAccountStore, users: FakeDeleteAll, secrets: FakeDeleteAll, pages: int | None) -> dict:
    """One request that has time for ``pages`` pages (None: all it needs)."""
    start = store.pages
    return delete_account("acme", "acme", store, secrets, users,
                          out_of_time=lambda: pages is not None and store.pages - start >= pages)


def test_a_deletion_that_runs_out_of_time_goes_on_where_it_stopped_until_complete() -> None:
    # Given an account with more items than one request has time for
    store, users, secrets = FakeAccountStore(ITEMS), FakeDeleteAll(2), FakeDeleteAll(1)
    # When the operator sends the same request until it answers complete
    answers = [run(store, users, secrets, pages=PAGES_A_REQUEST)]
    while not answers[-1]["complete"]:
        assert len(answers) < 50, "no progress"
        answers.append(run(store, users, secrets, pages=PAGES_A_REQUEST))
    # Then it took several requests, each stopped between pages and said so
    assert len(answers) > 1 and not any(a["complete"] for a in answers[:-1])
    # and, added up, everything went exactly once, the accounts row last
    total: dict[str, int] = {}
    for answer in answers:
        for what, count in answer["removed"].items():
            total[what] = total.get(what, 0) + count
    assert {k: total[k] for k in ITEMS} == ITEMS
    assert total["console_users"] == 2 and total["secrets"] == 1
    assert set(store.items.values()) == {0}
    assert answers[-1]["removed"]["accounts"] == 1 and all(
        "accounts" not in a["removed"] or a["removed"]["accounts"] == 0 for a in answers[:-1])


def test_a_scan_longer_than_one_request_goes_on_from_where_it_stopped() -> None:
    # Given a shared table whose scan alone reads more pages than a request has time for
    store = FakeAccountStore(ITEMS, scan_pages={"rollup_markers": 70})
    users, secrets = FakeDeleteAll(0), FakeDeleteAll(0)
    # When the operator repeats the request until it is complete
    answers = [run(store, users, secrets, pages=PAGES_A_REQUEST)]
    while not answers[-1]["complete"]:
        assert len(answers) < 20, "no progress: every request scans from the start again"
        answers.append(run(store, users, secrets, pages=PAGES_A_REQUEST))
    # Then it finished, each request going on with the scan where the last one stopped
    assert len(answers) >= 3 and set(store.items.values()) == {0}
    assert store.pages_of["rollup_markers"] <= 70 + len(answers)  # never read again from the start


def test_a_deletion_with_time_enough_answers_complete_and_a_second_one_zeros() -> None:
    store, users, secrets = FakeAccountStore(ITEMS), FakeDeleteAll(1), FakeDeleteAll(0)
    first = run(store, users, secrets, pages=None)
    assert first["complete"] and {k: first["removed"][k] for k in ITEMS} == ITEMS
    again = run(store, users, secrets, pages=None)
    assert again["complete"] and set(again["removed"].values()) == {0}


def test_without_the_confirmation_nothing_is_deleted() -> None:
    store = FakeAccountStore(ITEMS)
    with pytest.raises(BadRequest) as err:
        delete_account("acme", "acm", store, FakeDeleteAll(1), FakeDeleteAll(1))
    assert err.value.field == "confirm" and store.pages == 0


def test_the_handler_stops_a_deletion_with_about_eight_seconds_left() -> None:
    from privacy import handler

    class Context:
        def __init__(self, left_ms: int) -> None:
            self.left_ms = left_ms

        def get_remaining_time_in_millis(self) -> int:
            return self.left_ms

    assert handler._out_of_time(Context(handler.STOP_WITH_MS_LEFT - 1))()
    assert not handler._out_of_time(Context(handler.STOP_WITH_MS_LEFT + 1000))()
    assert not handler._out_of_time(object())()  # no Lambda context: never stops


def test_a_resumed_deletion_picks_up_calls_that_arrived_between_requests() -> None:
    # Given a deletion that stopped in the callers scan, after the calls step
    store = FakeAccountStore(ITEMS, scan_pages={"callers": 40})
    users, secrets = FakeDeleteAll(0), FakeDeleteAll(0)
    first = run(store, users, secrets, pages=PAGES_A_REQUEST)
    assert not first["complete"] and first["removed"].get("calls") == ITEMS["calls"]
    # When three calls were written meanwhile (a cached route, a late replay) and it is sent again
    store.items["calls"] += 3
    answers = [run(store, users, secrets, pages=PAGES_A_REQUEST)]
    while not answers[-1]["complete"]:
        assert len(answers) < 20
        answers.append(run(store, users, secrets, pages=PAGES_A_REQUEST))
    # Then those calls went too before it answered complete
    assert store.items["calls"] == 0 and sum(a["removed"].get("calls", 0) for a in answers) == 3


def test_progress_saved_by_another_deploys_steps_is_not_resumed() -> None:
    # Given progress saved by a deploy whose step list differed (or a key the table refuses)
    store, users, secrets = FakeAccountStore(ITEMS), FakeDeleteAll(0), FakeDeleteAll(0)
    store.progress = {"version": "older", "step": "audit", "resume": {"page": 3}}
    # When the deletion runs, Then it starts over: nothing before "audit" is skipped
    done = run(store, users, secrets, pages=None)
    assert done["complete"] and done["removed"]["calls"] == ITEMS["calls"]
