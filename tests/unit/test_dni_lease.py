"""Leasing logic on the in-memory store: stickiness, LRR order, exhaustion, no double lease."""

from __future__ import annotations

import itertools
import threading

import pytest

from calltrack.models.dni import EXHAUSTIONS, SHARED_CONFIDENCE
from dni_lease.leasing import SPREAD_S, _order_free, lease_number, rested_since
from dni_lease.validation import LeaseRequest
from tests.support.accounts import account_config
from tests.support.lease_store import InMemoryLeaseStore, moto_lease_store

NUMBERS = ["+815022220001", "+815022220002", "+815022220003"]
T0 = 1_800_000_000.0


def config(numbers=NUMBERS, overflow=None, lease_minutes=30):
    return account_config(
        "acme",
        site={"origins": [], "numbers": ["+81312345678"]},
        pools=[
            {
                "id": "google",
                "channel": "google-ads",
                "numbers": list(numbers),
                "overflow_number": overflow,
                "lease_minutes": lease_minutes,
                "match": {"utm_source": "google"},
            }
        ],
        dni={"cookie_days": 30},
    )


_ids = itertools.count()


def req(session=None, number=None, **kw):
    n = next(_ids)
    return LeaseRequest(
        account="acme",
        visitor_id=f"visitor-{n:04d}",
        session_id=session or f"session-{n:04d}",
        utm={"source": "google", "term": "歯医者"},
        number=number,
        **kw,
    )


def test_a_matching_session_gets_a_lease_and_the_row_keeps_its_attribution():
    store = InMemoryLeaseStore()
    r = lease_number(store, config(), req(session="session-aaaa", click_ids={"gclid": "G-1"}), T0)
    assert r.leased and r.number in NUMBERS and r.confidence == 1.0 and r.attempts == 1
    assert r.replace == ["+81312345678"]
    row = store.rows[r.number]
    assert row["session_id"] == "session-aaaa" and row["expires_at"] == T0 + 1800
    assert row["attribution"]["gclid"] == "G-1" and row["attribution"]["keyword"] == "歯医者"
    assert [h["kind"] for h in store.history(r.number, 0, T0 + 1)] == ["lease"]


def test_same_session_renews_the_same_number_and_pushes_expiry():
    store = InMemoryLeaseStore()
    first = lease_number(store, config(), req(session="session-bbbb"), T0)
    again = lease_number(store, config(), req(session="session-bbbb"), T0 + 600)
    assert again.number == first.number and again.renewed and again.lease_id == first.lease_id
    assert store.rows[first.number]["expires_at"] == T0 + 600 + 1800
    assert store.history(first.number, 0, T0 + 1)[0]["ended_at"] == T0 + 600 + 1800


def test_least_recently_released_number_is_chosen_first():
    store = InMemoryLeaseStore()
    # Given numbers released at different times (2 longest ago), all now free
    for number, released in zip(NUMBERS, (T0 - 100, T0 - 900, T0 - 500), strict=True):
        store.rows[number] = {
            "number": number,
            "account": "acme",
            "pool": "google",
            "session_id": "old-session",
            "lease_id": "x",
            "expires_at": released,
            "released_at": released,
        }
    got = [lease_number(store, config(), req(), T0).number for _ in range(3)]
    assert got == [NUMBERS[1], NUMBERS[2], NUMBERS[0]]


def _released(number, at):
    return {"number": number, "session_id": "old", "lease_id": "x", "expires_at": at, "released_at": at}


def test_sessions_arriving_together_start_on_different_numbers():
    # Given 64 never-used numbers, all free, and 64 sessions reading the same snapshot
    numbers = [f"+8150444{i:05d}" for i in range(64)]
    sessions = [f"session-{i:04d}" for i in range(64)]
    # When each orders its candidates
    orders = [_order_free(numbers, {}, T0, sid, None) for sid in sessions]
    # Then every order holds every free number, and the first choices spread over the pool
    # (64 independent uniform picks hit ~40 distinct numbers; one shared order would hit 1)
    assert all(sorted(o) == sorted(numbers) for o in orders)
    assert len({o[0] for o in orders}) >= 30
    # and the same session always gets the same order
    assert _order_free(numbers, {}, T0, sessions[0], None) == orders[0]


def test_sessions_that_collide_on_a_first_pick_go_separate_ways_after():
    # Given 64 free numbers and 2,000 sessions ordering them
    numbers = [f"+8150444{i:05d}" for i in range(64)]
    orders = [_order_free(numbers, {}, T0, f"visitor-{i:06d}", None) for i in range(2000)]
    # When two sessions lost a race for the same first number
    pairs = same_second = 0
    for i, a in enumerate(orders):
        for b in orders[i + 1 : i + 40]:
            if a[0] == b[0]:
                pairs += 1
                same_second += a[1] == b[1]
    # Then their second choices are as independent as chance (1/63), not the same list shifted
    assert pairs > 100
    assert same_second / pairs < 0.1


def test_spreading_never_picks_a_recently_released_number_over_a_longer_rested_one():
    # Given never-used numbers, numbers rested 2 h, and numbers released 100 s ago
    numbers = [f"+8150555{i:05d}" for i in range(12)]
    rows = {n: _released(n, T0 - 7200) for n in numbers[4:8]}
    rows.update({n: _released(n, T0 - 100) for n in numbers[8:]})
    for i in range(50):
        order = _order_free(numbers, rows, T0, f"session-{i}", None)
        # Then every session tries them longest-rested first
        assert set(order[:4]) == set(numbers[:4])
        assert set(order[4:8]) == set(numbers[4:8])
        assert set(order[8:]) == set(numbers[8:])
    # and the session's own expired number still comes first
    own = {**rows[numbers[9]], "session_id": "session-own"}
    order = _order_free(numbers, {**rows, numbers[9]: own}, T0, "session-own", numbers[10])
    assert order[0] == numbers[9]


def test_a_returning_page_does_not_take_back_a_number_another_session_released_since():
    # Given a page that showed a number, hid, and meanwhile another session leased the number and
    # released it 40 s ago; another number has rested for 20 minutes
    numbers = ["+815055500001", "+815055500002"]
    rows = {numbers[0]: _released(numbers[0], T0 - 40), numbers[1]: _released(numbers[1], T0 - 1200)}
    # When the page comes back naming its number
    order = _order_free(numbers, rows, T0, "session-back", numbers[0])
    # Then it gets the longest-rested number: the number it named waits out the other session's
    # late calls like any other
    assert order == [numbers[1], numbers[0]]
    # while a page naming a number no session has held yet gets that one first
    assert (
        _order_free([*numbers, "+815055500003"], rows, T0, "session-new", "+815055500003")[0]
        == "+815055500003"
    )


def test_released_numbers_go_out_oldest_release_first():
    # Given 40 numbers each released at its own moment, a minute apart (number i, i + 1 minutes ago)
    numbers = [f"+8150666{i:05d}" for i in range(40)]
    rows = {n: _released(n, T0 - 60 * (i + 1)) for i, n in enumerate(numbers)}
    for s in range(50):
        # When a session orders them
        order = _order_free(numbers, rows, T0, f"session-{s}", None)
        # Then every session tries them strictly oldest release first
        assert order == numbers[::-1]


def test_sessions_arriving_together_spread_over_numbers_released_within_seconds():
    # Given 8 numbers released 10 minutes ago within SPREAD_S seconds, and 8 released just after
    numbers = [f"+8150777{i:05d}" for i in range(16)]
    step = SPREAD_S / 8
    rows = {n: _released(n, T0 - 600 + i * step) for i, n in enumerate(numbers[:8])}
    rows.update({n: _released(n, T0 - 600 + SPREAD_S + 1 + i) for i, n in enumerate(numbers[8:])})
    firsts = set()
    for s in range(200):
        order = _order_free(numbers, rows, T0, f"session-{s}", None)
        # Then each tries the first run before any later number, in its own order
        assert set(order[:8]) == set(numbers[:8])
        firsts.add(order[0])
    # and their first tries spread over the run instead of all hitting the oldest number
    assert len(firsts) >= 6


def test_a_number_rests_from_its_release_or_from_when_pages_stopped_showing_it():
    assert rested_since(None) is None  # never used
    assert rested_since({"number": "n", "expires_at": T0 - 100}) == T0 - 100  # lease end
    assert rested_since(_released("n", T0 - 50)) == T0 - 50
    # shown as shared until 10 s ago: rests from then, not from its lease's end 2 h ago
    assert rested_since({**_released("n", T0 - 7200), "shared_until": T0 - 10}) == T0 - 10
    assert rested_since({"number": "n", "shared_until": T0 - 10}) == T0 - 10


def test_expired_lease_keeps_last_session_until_taken_and_same_session_gets_it_back():
    store = InMemoryLeaseStore()
    first = lease_number(store, config(), req(session="session-cccc"), T0)
    later = T0 + 3600  # the lease expired half an hour ago
    assert store.rows[first.number]["session_id"] == "session-cccc"  # row kept after expiry
    back = lease_number(store, config(), req(session="session-cccc"), later)
    assert back.number == first.number and back.leased and not back.renewed


def test_exhausted_pool_shares_the_least_recently_renewed_number_with_lower_confidence():
    store = InMemoryLeaseStore()
    oldest = lease_number(store, config(), req(), T0).number
    for i in range(1, 3):
        lease_number(store, config(), req(), T0 + i)
    extra = lease_number(store, config(), req(session="session-late"), T0 + 10)
    assert extra.shared and not extra.leased and extra.lease_id is None
    assert extra.number == oldest and extra.confidence == SHARED_CONFIDENCE
    row = store.rows[oldest]
    assert row["session_id"] != "session-late"  # the lease holder is not displaced
    assert row["shared_until"] == T0 + 10 + 1800 and row["shared_count"] == 1
    assert store.stats("acme", "google", 0, int(T0) + 7200)[EXHAUSTIONS] == 1
    # the shared session keeps its number on the next heartbeat (number hint)
    again = lease_number(store, config(), req(session="session-late", number=extra.number), T0 + 20)
    assert again.number == extra.number and again.shared


def test_a_number_another_accounts_session_still_holds_is_never_shared_into_this_account():
    # Given a number an apply moved from account "other" into acme's pool while other's visitor
    # still holds it (acme's pool has no other number)
    store = InMemoryLeaseStore()
    moved = NUMBERS[0]
    store.rows[moved] = {"number": moved, "account": "other", "pool": "theirs", "session_id": "their-visitor",
                         "lease_id": "L-1", "leased_at": T0 - 60, "expires_at": T0 + 600,
                         "attribution": {"gclid": "THEIR-CLICK"}}
    # When acme's pool is exhausted, Then that number is not handed out as acme's shared number
    result = lease_number(store, config(numbers=[moved]), req(session="session-acme"), T0)
    assert result.number is None and not result.shared
    # and the row still carries only the other account's lease (no acme pool written over it)
    assert (store.rows[moved]["account"], store.rows[moved]["pool"]) == ("other", "theirs")
    store.mark_shared(moved, T0 + 900, {"account": "acme", "pool": "google"})
    assert store.rows[moved]["account"] == "other" and "shared_until" not in store.rows[moved]


def test_exhausted_pool_with_overflow_number_hands_out_the_overflow():
    store = InMemoryLeaseStore()
    cfg = config(numbers=NUMBERS[:1], overflow="+815022229999")
    lease_number(store, cfg, req(), T0)
    extra = lease_number(store, cfg, req(session="session-over"), T0 + 1)
    assert extra.number == "+815022229999" and extra.shared
    row = store.rows["+815022229999"]
    assert row["kind"] == "overflow" and row["session_id"] == "session-over" and row["shared_until"] > T0


def test_no_pool_match_means_no_number_and_no_write():
    store = InMemoryLeaseStore()
    request = LeaseRequest(account="acme", visitor_id="visitor-none", session_id="session-none")
    r = lease_number(store, config(), request, T0)
    assert r.number is None and r.pool is None and store.writes == 0 and r.replace == ["+81312345678"]


def test_site_numbers_default_to_forward_to():
    cfg = config()
    cfg["site"] = None
    r = lease_number(InMemoryLeaseStore(), cfg, req(), T0)
    assert r.replace == ["+81312345678"]


@pytest.mark.parametrize("sessions,size", [(64, 16), (64, 64)])
def test_concurrent_sessions_never_double_lease(sessions, size):
    store = InMemoryLeaseStore()
    numbers = [f"+8150333{i:05d}" for i in range(size)]
    cfg = config(numbers=numbers)
    results = []
    barrier = threading.Barrier(sessions)

    def run(i):
        barrier.wait()
        results.append(lease_number(store, cfg, req(session=f"session-{i:06d}"), T0))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    leased = [r for r in results if r.leased]
    assert len({r.number for r in leased}) == len(leased) == min(sessions, size)
    assert all(r.shared for r in results if not r.leased)
    # every held row is the lease of exactly the session that was told it holds it
    by_number = {r.number: r for r in leased}
    held = {n: row for n, row in store.rows.items() if row.get("lease_id")}
    assert set(held) == set(by_number)
    assert all(row["lease_id"] == by_number[n].lease_id for n, row in held.items())


def test_attempts_per_lease_at_75_percent_utilisation_is_one_when_sequential():
    store = InMemoryLeaseStore()
    numbers = [f"+8150444{i:05d}" for i in range(20)]
    cfg = config(numbers=numbers)
    for i in range(15):
        lease_number(store, cfg, req(), T0 + i)
    r = lease_number(store, cfg, req(), T0 + 100)
    assert r.leased and r.attempts == 1


def test_benchmark_helper_reports_attempts_at_75_percent_utilisation():
    from bench.dni_support import attempts_at_utilisation

    stats = attempts_at_utilisation(pool_size=20, utilisation=0.75, leases=100, concurrency=4)
    assert stats["leases"] == 100 and stats["shared"] == 0
    assert 1.0 <= stats["attempts_mean"] <= stats["attempts_max"] <= 20


# ---- issue 24: the renewal fast path, release on hide, the previous holder


def test_a_heartbeat_naming_its_lease_is_one_conditional_write_without_a_pool_read():
    store = InMemoryLeaseStore()
    first = lease_number(store, config(), req(session="session-fast"), T0)
    reads, writes = store.reads, store.writes
    # When the page heartbeats with its number and lease id
    beat = lease_number(
        store, config(), req(session="session-fast", number=first.number, lease_id=first.lease_id), T0 + 600
    )
    # Then the lease is pushed by one write and nothing was read
    assert beat.renewed and beat.number == first.number and beat.lease_id == first.lease_id
    assert (store.reads - reads, store.writes - writes) == (0, 1) and beat.attempts == 1
    assert store.rows[first.number]["expires_at"] == T0 + 600 + 1800


def test_a_heartbeat_for_a_number_another_session_took_falls_back_to_a_new_lease():
    store = InMemoryLeaseStore()
    cfg = config(numbers=NUMBERS[:2])
    mine = lease_number(store, cfg, req(session="session-mine"), T0)
    lease_number(store, cfg, req(session="session-fill"), T0 + 1)  # the other number, live to T0 + 1801
    # my lease expired and another session took my number
    other = lease_number(store, cfg, req(session="session-othr"), T0 + 1800.5)
    assert other.number == mine.number
    beat = lease_number(
        store, cfg, req(session="session-mine", number=mine.number, lease_id=mine.lease_id), T0 + 1802
    )
    assert beat.leased and not beat.renewed and beat.number != mine.number
    assert store.rows[mine.number]["session_id"] == "session-othr"


def test_release_ends_the_lease_now_and_keeps_the_session_on_the_row():
    from dni_lease.leasing import release_number

    store = InMemoryLeaseStore()
    mine = lease_number(store, config(), req(session="session-hide"), T0)
    hide = req(session="session-hide", number=mine.number, lease_id=mine.lease_id, release=True)
    # When the page is hidden
    assert release_number(store, config(), hide, T0 + 30) is True
    row = store.rows[mine.number]
    assert row["expires_at"] == row["released_at"] == T0 + 30 and row["session_id"] == "session-hide"
    # Then a second beacon, or one naming another lease, changes nothing
    assert release_number(store, config(), hide, T0 + 40) is False
    wrong = req(session="session-hide", number=mine.number, lease_id="not-my-lease", release=True)
    assert release_number(store, config(), wrong, T0 + 20) is False
    outside = req(session="session-hide", number="+819099999999", lease_id=mine.lease_id, release=True)
    assert release_number(store, config(), outside, T0 + 20) is False
    # And shown again, the session gets its number back, as a new lease taken after a pool read
    # (where the address cap is counted), not by renewing the released one
    back = lease_number(
        store, config(), req(session="session-hide", number=mine.number, lease_id=mine.lease_id), T0 + 90
    )
    assert back.leased and not back.renewed and back.number == mine.number
    assert back.lease_id != mine.lease_id and store.rows[mine.number]["expires_at"] > T0 + 90


def test_a_tab_that_hides_does_not_end_the_lease_another_tab_of_the_session_renewed_since():
    from dni_lease.leasing import release_number

    # Given a visitor's first tab leasing a number, and a second tab (same session, same lease)
    # renewing it 40 s later: tabs share the lease through localStorage
    store = InMemoryLeaseStore()
    tab1 = lease_number(store, config(), req(session="session-tabs"), T0)
    renew = req(session="session-tabs", number=tab1.number, lease_id=tab1.lease_id)
    tab2 = lease_number(store, config(), renew, T0 + 40)
    assert tab2.renewed and tab2.expires_at > tab1.expires_at
    # When the first tab is hidden, its beacon naming the expiry it last saw
    hide1 = req(session="session-tabs", number=tab1.number, lease_id=tab1.lease_id, release=True,
                seen_expires_at=float(int(tab1.expires_at)))
    # Then the lease stays: the second tab still shows the number, nobody else gets it
    assert release_number(store, config(), hide1, T0 + 50) is False
    assert store.rows[tab1.number]["expires_at"] == tab2.expires_at
    other = lease_number(store, config(numbers=NUMBERS[:1]), req(session="session-other"), T0 + 60)
    assert other.number != tab1.number or other.shared
    # And when the second tab (the last to renew) is hidden, the lease ends
    hide2 = req(session="session-tabs", number=tab1.number, lease_id=tab1.lease_id, release=True,
                seen_expires_at=float(int(tab2.expires_at)))
    assert release_number(store, config(), hide2, T0 + 70) is True
    assert store.rows[tab1.number]["released_at"] == T0 + 70


@pytest.mark.parametrize("on", ["memory", "dynamodb"])
def test_a_page_releases_only_a_lease_it_took_or_renewed_last_even_within_the_same_second(on):
    import contextlib

    from dni_lease.leasing import release_number

    with contextlib.ExitStack() as stack:
        store = InMemoryLeaseStore() if on == "memory" else stack.enter_context(moto_lease_store())[1]
        # Given page A leasing a number, and page B of the same session (the next page in the tab, or
        # page A restored from the back/forward cache) renewing it 0.3 s later, in the same second
        first = req(session="session-pages", page_id="page-aaaaaaaa")
        page_a = lease_number(store, config(), first, T0 + 0.2)
        renew = req(session="session-pages", number=page_a.number, lease_id=page_a.lease_id,
                    page_id="page-bbbbbbbb")
        page_b = lease_number(store, config(), renew, T0 + 0.5)
        assert page_b.renewed
        # When page A's release beacon arrives after B's renewal (naming the expiry A last saw)
        gone_a = req(session="session-pages", number=page_a.number, lease_id=page_a.lease_id, release=True,
                     seen_expires_at=float(int(page_a.expires_at)), page_id="page-aaaaaaaa")
        # Then the lease stays: page B shows the number (the expiry alone cannot tell them apart)
        assert release_number(store, config(), gone_a, T0 + 0.8) is False
        assert store.get_rows([page_a.number])[page_a.number]["expires_at"] == page_b.expires_at
        # And page B, which renewed it last, ends it when it is hidden
        gone_b = req(session="session-pages", number=page_a.number, lease_id=page_a.lease_id, release=True,
                     seen_expires_at=float(int(page_b.expires_at)), page_id="page-bbbbbbbb")
        assert release_number(store, config(), gone_b, T0 + 9) is True
        # And a script from before page ids (none on the row, none in the release) still releases
        old = lease_number(store, config(), req(session="session-old"), T0 + 10)
        gone_old = req(session="session-old", number=old.number, lease_id=old.lease_id, release=True,
                       seen_expires_at=float(int(old.expires_at)))
        assert release_number(store, config(), gone_old, T0 + 11) is True


def test_a_new_lease_remembers_the_previous_holder_and_closes_its_history():
    store = InMemoryLeaseStore()
    cfg = config(numbers=NUMBERS[:1])
    first = lease_number(store, cfg, req(session="session-prev"), T0)
    store.release(first.number, "session-prev", first.lease_id, T0 + 100)
    second = lease_number(store, cfg, req(session="session-next"), T0 + 200)
    row = store.rows[second.number]
    assert row["prev_session_id"] == "session-prev" and row["prev_released_at"] == T0 + 100
    assert store.history(first.number, T0, T0 + 1)[0]["ended_at"] == T0 + 100
    # and so does its history item (what a call replayed from the outbox is attributed from)
    [item] = store.history(second.number, T0 + 200, T0 + 201)
    assert (item["prev_session_id"], item["prev_released_at"]) == ("session-prev", T0 + 100)


@pytest.mark.parametrize(("lease_minutes", "heartbeat"), [(1, 20), (3, 60), (10, 200), (30, 600)])
def test_heartbeats_come_well_before_the_lease_runs_out(lease_minutes, heartbeat):
    from dni_lease.service import heartbeat_seconds

    # dni.js looks every 30 s: even a one-minute lease is renewed before it runs out
    assert heartbeat_seconds(lease_minutes * 60) == heartbeat
    assert max(heartbeat, 30) < lease_minutes * 60


def test_a_shared_visitors_heartbeat_does_not_keep_a_number_now_another_accounts():
    # Given acme's exhausted pool of two numbers: one leased, the other shared to a visitor and
    # then moved by an apply to account "other", whose visitor now holds it
    store = InMemoryLeaseStore()
    cfg = config(numbers=NUMBERS[:2])
    held = lease_number(store, cfg, req(), T0).number
    moved = next(n for n in NUMBERS[:2] if n != held)
    store.rows[moved] = {"number": moved, "account": "other", "session_id": "their-visitor",
                         "lease_id": "L-2", "leased_at": T0, "expires_at": T0 + 600}
    # When the shared visitor's heartbeat names the moved number
    again = lease_number(store, cfg, req(session="session-shared", number=moved), T0 + 30)
    # Then it is shown acme's number instead, and the other account's row is untouched
    assert again.number == held and again.shared
    assert "shared_until" not in store.rows[moved]


def test_the_dynamodb_store_refuses_to_share_another_accounts_number() -> None:
    with moto_lease_store() as (client, store):
        client.put_item(TableName="leases", Item={"number": {"S": "+815022220001"},
                                                   "account": {"S": "other"}, "session_id": {"S": "s-9"}})
        # When acme would share it, Then DynamoDB refuses and the store says so; its own rows share
        assert store.mark_shared("+815022220001", T0 + 900, {"account": "acme", "pool": "google"}) is False
        assert store.mark_shared("+815022220002", T0 + 900, {"account": "acme", "pool": "google"}) is True
        assert store.mark_shared("+815022220002", T0 + 800, {"account": "acme", "pool": "google"}) is True
        row = client.get_item(TableName="leases", Key={"number": {"S": "+815022220001"}})["Item"]
        assert row["account"] == {"S": "other"} and "shared_until" not in row


def test_a_number_whose_holder_called_rests_only_for_the_holder_before():
    # Given a number whose last holder called it (marked at the call's end), held before that by a
    # session that left 20 minutes ago, and a number released 10 minutes ago by a holder who did not call
    called = {**_released(NUMBERS[0], T0 - 60), "called_session": "old", "called_at": T0 - 100,
              "leased_at": T0 - 400, "prev_released_at": T0 - 1200, "prev_session_id": "older"}
    quiet = _released(NUMBERS[1], T0 - 600)
    rows = {NUMBERS[0]: called, NUMBERS[1]: quiet}
    # Then the called number has rested since the holder before left, and goes out first
    assert rested_since(called) == T0 - 1200
    assert _order_free(NUMBERS[:2], rows, T0, "session-new", None) == [NUMBERS[0], NUMBERS[1]]
    # and without a holder before it goes out like a number never used
    assert rested_since({**_released("n", T0 - 60), "called_session": "old", "called_at": T0 - 100}) is None
    # A mark left by an earlier holder does not count for the one that holds it now
    assert rested_since({**called, "called_session": "someone-before"}) == T0 - 60
    # nor one its session left in an earlier lease of the number, before another session held it
    assert rested_since({**called, "leased_at": T0 - 90}) == T0 - 60

