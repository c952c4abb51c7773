"""The pool's per-address cap: one client address (IPv4 address, IPv6 /64) holds at most
``dni.max_numbers_per_address`` live leases of a pool, so a script with a new visitor id on every
request cannot take the whole pool and leave real visitors the shared number. An address at its
cap gets no number (its page keeps the site's own): never another session's number."""

from __future__ import annotations

import itertools
import json

import pytest

from calltrack.models.dni import ADDRESS_CAPPED, EXHAUSTIONS
from dni_lease.leasing import (
    ADDRESS_CAP,
    ADDRESS_KEY,
    EXHAUSTED,
    address_cap,
    address_key,
    address_prefix,
    lease_number,
    release_number,
)
from dni_lease.validation import LeaseRequest
from tests.support.accounts import account_config
from tests.support.lease_store import InMemoryLeaseStore, moto_lease_store

T0 = 1_800_000_000.0
NUMBERS = [f"+8150666{i:05d}" for i in range(8)]  # the default cap of 8 numbers: 2
OVERFLOW = "+815066699999"
SCRIPT = "198.51.100.7"  # one address asking again and again with new visitor ids
VISITOR = "203.0.113.9"  # a real visitor elsewhere


def config(numbers=NUMBERS, overflow=None, cap=None):
    dni = {"max_numbers_per_address": cap} if cap is not None else {}
    return account_config(
        "acme",
        site={"origins": [], "numbers": ["+81312345678"]},
        pools=[{"id": "google", "channel": "google-ads", "numbers": list(numbers),
                "overflow_number": overflow, "lease_minutes": 10, "match": {"utm_source": "google"}}],
        dni=dni,
    )


_ids = itertools.count()


def req(**kw):
    n = next(_ids)
    kw.setdefault("session_id", f"session-{n:05d}")
    return LeaseRequest(account="acme", visitor_id=f"visitor-{n:05d}", utm={"source": "google"}, **kw)


def live_leases_of(store, ip, now=T0):
    key = address_key("acme", "google", ip)
    return sorted(n for n, row in store.rows.items()
                  if row.get(ADDRESS_KEY) == key and row.get("lease_id") and row["expires_at"] >= now)


def test_one_address_holds_at_most_its_cap_and_another_address_still_gets_a_free_number():
    # Given a pool of 8 numbers (default cap: a quarter, 2)
    store, cfg = InMemoryLeaseStore(), config()
    # When one address asks 6 times, each with a new visitor id
    got = [lease_number(store, cfg, req(), T0 + i, source_ip=SCRIPT) for i in range(6)]
    # Then it holds 2 leases, and the others get no number at all (the page keeps the site's)
    assert [r.leased for r in got] == [True, True, False, False, False, False]
    held = {r.number for r in got[:2]}
    assert live_leases_of(store, SCRIPT, T0 + 6) == sorted(held)
    for r in got[2:]:
        assert r.number is None and r.lease_id is None and not r.shared and r.reason == ADDRESS_CAP
    assert not any("shared_until" in row for row in store.rows.values())
    # and 6 numbers stay free: a visitor from another address gets one of them
    other = lease_number(store, cfg, req(), T0 + 7, source_ip=VISITOR)
    assert other.leased and other.number not in held and other.reason is None
    # The cap is not an exhaustion: the pool's hourly stats count it apart
    assert store.stats("acme", "google", 0, int(T0) + 7200)[EXHAUSTIONS] == 0
    assert store.stats("acme", "google", 0, int(T0) + 7200)[ADDRESS_CAPPED] == 4


def test_the_row_keeps_a_keyed_hash_of_the_address_never_the_address():
    store = InMemoryLeaseStore()
    r = lease_number(store, config(), req(), T0, source_ip=SCRIPT)
    row = store.rows[r.number]
    assert row[ADDRESS_KEY] == address_key("acme", "google", SCRIPT)
    assert len(row[ADDRESS_KEY]) == 16 and SCRIPT not in json.dumps(store.rows)
    assert SCRIPT not in json.dumps(list(store.history_items.values()))
    # keyed per account and pool: the same address has unrelated keys elsewhere
    assert address_key("acme", "yahoo", SCRIPT) != row[ADDRESS_KEY] != address_key("other", "google", SCRIPT)


def test_a_second_visitor_behind_an_address_at_its_cap_is_never_shown_the_first_ones_number():
    # Given a visitor in an office holding a number (cap 1), and the overflow number configured
    store, cfg = InMemoryLeaseStore(), config(overflow=OVERFLOW, cap=1)
    alice = lease_number(store, cfg, req(), T0, source_ip=SCRIPT)
    # When a colleague behind the same address opens the site, naming Alice's number (a shared link)
    bob = lease_number(store, cfg, req(number=alice.number), T0 + 60, source_ip=SCRIPT)
    # Then Bob gets no number (his page keeps the site's), neither Alice's nor the overflow's, and
    # no row is marked shared: Alice's calls keep their full confidence
    assert bob.number is None and bob.reason == ADDRESS_CAP
    assert not any("shared_until" in row for row in store.rows.values()) and OVERFLOW not in store.rows
    assert store.rows[alice.number]["lease_id"] == alice.lease_id


def test_renewals_at_the_cap_stay_one_write_and_an_address_that_lets_go_may_lease_again():
    # Given an address holding its cap (2 of 8)
    store, cfg = InMemoryLeaseStore(), config()
    a, b = (lease_number(store, cfg, req(session_id=f"session-cap-{i}"), T0 + i, source_ip=SCRIPT)
            for i in range(2))
    # When its pages heartbeat naming their leases
    reads, writes = store.reads, store.writes
    beat = lease_number(store, cfg, req(session_id="session-cap-0", number=a.number, lease_id=a.lease_id),
                        T0 + 60, source_ip=SCRIPT)
    # Then each is renewed by one conditional write and no read, as without the cap
    assert beat.renewed and beat.number == a.number
    assert (store.reads - reads, store.writes - writes) == (0, 1)
    # and an older script's heartbeat (no lease id) renews its own lease too, not capped
    old = lease_number(store, cfg, req(session_id="session-cap-1"), T0 + 61, source_ip=SCRIPT)
    assert old.renewed and old.number == b.number
    # When one page is hidden (its release beacon), the address may take a number again
    hide = req(session_id="session-cap-0", number=a.number, lease_id=a.lease_id, release=True)
    assert release_number(store, cfg, hide, T0 + 90)
    again = lease_number(store, cfg, req(), T0 + 91, source_ip=SCRIPT)
    assert again.leased
    # and expired leases do not count: after the leases ran out, it gets a new one
    later = lease_number(store, cfg, req(), T0 + 61 + 601, source_ip=SCRIPT)
    assert later.leased


def test_addresses_of_one_ipv6_64_share_the_cap_and_another_64_does_not():
    store, cfg = InMemoryLeaseStore(), config(cap=2)
    # Given two leases from two addresses of one /64 (one subscriber's devices, or one script)
    for i, ip in enumerate(("2001:db8:aa:1::1", "2001:db8:aa:1:ffff:1:2:3")):
        assert lease_number(store, cfg, req(), T0 + i, source_ip=ip).leased
    # When a third address of that /64 asks, Then it is capped
    r = lease_number(store, cfg, req(), T0 + 2, source_ip="2001:DB8:AA:1:9::9")
    assert r.number is None and r.reason == ADDRESS_CAP
    # while the next /64 is another client
    assert lease_number(store, cfg, req(), T0 + 3, source_ip="2001:db8:aa:2::1").leased


@pytest.mark.parametrize(("ip", "prefix"), [
    ("198.51.100.7", "198.51.100.7"),
    ("2001:db8:aa:1:ffff:1:2:3", "2001:db8:aa:1::/64"),
    ("2001:DB8:AA:1::1", "2001:db8:aa:1::/64"),
    ("::ffff:198.51.100.7", "198.51.100.7"),  # an IPv4 client seen over IPv6: its IPv4 address
    ("fe80::1%eth0", "fe80::/64"),
    ("", None),
    (None, None),
])
def test_a_client_is_its_ipv4_address_or_its_ipv6_64(ip, prefix):
    assert address_prefix(ip) == prefix


def test_without_a_source_address_there_is_no_cap():
    # Given requests that carry no address (the benchmark, a caller of lease_number without one)
    store, cfg = InMemoryLeaseStore(), config(cap=1)
    got = [lease_number(store, cfg, req(), T0 + i) for i in range(len(NUMBERS))]
    # Then every number is leased, and the rows carry no client key
    assert all(r.leased for r in got) and len({r.number for r in got}) == len(NUMBERS)
    assert not any(ADDRESS_KEY in row for row in store.rows.values())
    # and the next one is an exhaustion as before
    extra = lease_number(store, cfg, req(), T0 + 20)
    assert extra.shared and extra.reason == EXHAUSTED
    assert store.stats("acme", "google", 0, int(T0) + 7200)[EXHAUSTIONS] == 1


def test_a_full_pool_is_still_counted_as_exhausted_for_an_address_at_its_cap():
    # Given a one-number pool the address already holds (no free number is left)
    store, cfg = InMemoryLeaseStore(), config(numbers=NUMBERS[:1])
    lease_number(store, cfg, req(), T0, source_ip=SCRIPT)
    r = lease_number(store, cfg, req(), T0 + 1, source_ip=SCRIPT)
    # Then the answer is the exhaustion it would have been anyway (and counted as one)
    assert r.shared and r.reason == EXHAUSTED
    assert store.stats("acme", "google", 0, int(T0) + 7200)[EXHAUSTIONS] == 1


def test_a_lease_taken_without_an_address_drops_the_previous_holders_key():
    store, cfg = InMemoryLeaseStore(), config(numbers=NUMBERS[:1])
    first = lease_number(store, cfg, req(), T0, source_ip=SCRIPT)
    assert ADDRESS_KEY in store.rows[first.number]
    second = lease_number(store, cfg, req(), T0 + 700)  # after the first ran out
    assert second.leased and second.number == first.number and ADDRESS_KEY not in store.rows[first.number]


@pytest.mark.parametrize(("size", "cap"), [(1, 2), (4, 2), (5, 2), (8, 2), (9, 3), (24, 6), (40, 10),
                                           (124, 10), (481, 10)])
def test_the_default_cap_is_a_quarter_of_the_pool_at_least_2_at_most_10(size, cap):
    assert address_cap(config(), size) == cap


def test_the_account_sets_its_own_cap():
    assert address_cap(config(cap=25), 8) == 25
    store, cfg = InMemoryLeaseStore(), config(cap=5)
    got = [lease_number(store, cfg, req(), T0 + i, source_ip=SCRIPT) for i in range(7)]
    assert [r.leased for r in got] == [True] * 5 + [False] * 2


def test_the_cap_is_validated_and_stored_with_the_account_config():
    from calltrack.account_config import ConfigError, normalize_config, parse_config

    stored = normalize_config(parse_config(config(cap=4)))
    assert stored["dni"]["max_numbers_per_address"] == 4
    assert normalize_config(parse_config(config()))["dni"]["max_numbers_per_address"] is None
    for bad in (0, -1, 1001, 2.5, "many"):
        with pytest.raises(ConfigError) as err:
            parse_config(config(cap=bad))
        assert "dni.max_numbers_per_address" in str(err.value)


class StaleReads(InMemoryLeaseStore):
    """Requests that read the pool before each other's writes: ``get_rows`` answers the snapshot
    taken at ``freeze()`` (the race DynamoDB allows between one request's read and its write)."""

    def __init__(self) -> None:
        super().__init__()
        self.frozen: dict | None = None

    def freeze(self) -> None:
        self.frozen = super().get_rows(list(self.rows))

    def thaw(self) -> None:
        self.frozen = None

    def get_rows(self, numbers):
        if self.frozen is not None:
            return {n: dict(r) for n, r in self.frozen.items() if n in set(numbers)}
        return super().get_rows(numbers)


def test_leases_that_raced_past_the_cap_are_revoked_by_the_next_read_of_the_pool():
    # Given three requests of one address that all read the pool before any of them wrote
    store, cfg = StaleReads(), config(cap=1)
    store.freeze()
    raced = [lease_number(store, cfg, req(session_id=f"session-race-{i}"), T0 + i, source_ip=SCRIPT)
             for i in range(3)]
    store.thaw()
    assert all(r.leased for r in raced) and len(live_leases_of(store, SCRIPT, T0 + 3)) == 3
    # When anyone's next new lease reads the pool (here a visitor from elsewhere)
    other = lease_number(store, cfg, req(), T0 + 10, source_ip=VISITOR)
    # Then the address keeps its first lease only; the two newest are revoked
    assert other.leased
    assert live_leases_of(store, SCRIPT, T0 + 10) == [raced[0].number]
    for r in raced[1:]:
        row = store.rows[r.number] if r.number != other.number else None
        if row is not None:  # a revoked number stays free, its row keeping the session (late calls)
            assert row["session_id"].startswith("session-race-") and "lease_id" not in row
            assert row["expires_at"] == pytest.approx(T0 + 10, abs=0.01)
        [item] = [h for h in store.history(r.number, T0, T0 + 5) if h["kind"] == "lease"]
        assert item["ended_at"] == pytest.approx(T0 + 10, abs=0.01)  # its history ends at the revocation
    # And the revoked pages' heartbeats fail: at the cap they get no number
    for i, r in enumerate(raced[1:], start=1):
        again = req(session_id=f"session-race-{i}", number=r.number, lease_id=r.lease_id)
        beat = lease_number(store, cfg, again, T0 + 20, source_ip=SCRIPT)
        assert not beat.leased and beat.number is None and beat.reason == ADDRESS_CAP
        assert ADDRESS_KEY not in store.rows.get(r.number, {}) or store.rows[r.number].get("lease_id")
    # while the kept one still renews by one write
    kept = lease_number(store, cfg, req(session_id="session-race-0", number=raced[0].number,
                                        lease_id=raced[0].lease_id), T0 + 21, source_ip=SCRIPT)
    assert kept.renewed


def test_a_number_revoked_by_a_request_is_free_for_that_request():
    # Given a pool of 3 whose every number one address took in a race (cap 1)
    store, cfg = StaleReads(), config(numbers=NUMBERS[:3], cap=1)
    store.freeze()
    raced = [lease_number(store, cfg, req(), T0 + i, source_ip=SCRIPT) for i in range(3)]
    store.thaw()
    assert all(r.leased for r in raced)
    # When a visitor from elsewhere asks (its pool read revokes two of them)
    other = lease_number(store, cfg, req(), T0 + 10, source_ip=VISITOR)
    # Then it leases one of the revoked numbers instead of being answered an exhausted pool
    assert other.leased and other.number in {r.number for r in raced[1:]}
    assert store.stats("acme", "google", 0, int(T0) + 7200)[EXHAUSTIONS] == 0


def test_the_service_caps_by_the_requests_source_ip_and_reports_why_an_answer_was_shared():
    from dni_lease import service
    from tests.support.accounts import InMemoryAccounts

    accounts = InMemoryAccounts({"acme": config(cap=1)})
    store, seen = InMemoryLeaseStore(), []
    kw = {"origin": None, "store": store, "accounts": accounts, "limits": service.Limits(),
          "outcome": lambda account, result: seen.append((account, result.reason))}

    def ask(ip, n):
        body = {"account": "acme", "visitor_id": f"visitor-svc-{n}", "session_id": f"session-svc-{n}",
                "utm": {"source": "google"}}
        return service.handle_lease(json.dumps(body), source_ip=ip, now=T0 + n, **kw)

    first, second, elsewhere = ask(SCRIPT, 1), ask(SCRIPT, 2), ask(VISITOR, 3)
    assert first["lease_id"] and not first["shared"]
    assert second["number"] is None and second["lease_id"] is None and not second["shared"]
    assert elsewhere["lease_id"] and elsewhere["number"] != first["number"]
    assert seen == [("acme", None), ("acme", ADDRESS_CAP), ("acme", None)]
    # the answer is the no-number answer dni.js already knows (no pool matched): the same keys
    assert set(second) == set(first)


def test_the_dynamodb_store_revokes_a_lease_and_a_take_removes_attributes_given_as_none() -> None:
    with moto_lease_store() as (client, store):
        n = NUMBERS[0]
        row = {"account": "acme", "pool": "google", "session_id": "s-1", "lease_id": "L-1",
               "leased_at": T0, "expires_at": T0 + 600, "released_at": T0 + 600,
               ADDRESS_KEY: "0123456789abcdef"}
        assert store.take(n, row, T0)
        # revoke: only the live lease it names; afterwards the page's heartbeat fails
        assert store.revoke(n, "s-1", "L-other", T0 + 10) is False
        assert store.revoke(n, "s-1", "L-1", T0 + 10) is True
        item = store.get_rows([n])[n]
        assert "lease_id" not in item and item["expires_at"] == T0 + 10 and item["session_id"] == "s-1"
        assert ADDRESS_KEY not in item  # the key lives only as long as the lease
        assert store.renew(n, "s-1", "L-1", T0 + 700, now=T0 + 11) is False
        assert store.revoke(n, "s-1", "L-1", T0 + 20) is False
        # the next lease, taken without an address, drops the previous holder's key
        assert store.take(n, {**row, "lease_id": "L-1b", "expires_at": T0 + 28}, T0 + 25)
        assert ADDRESS_KEY in store.get_rows([n])[n]
        assert store.take(n, {**row, "session_id": "s-2", "lease_id": "L-2", ADDRESS_KEY: None}, T0 + 30)
        item = store.get_rows([n])[n]
        assert item["session_id"] == "s-2" and ADDRESS_KEY not in item


def test_the_pools_report_counts_capped_answers_apart_and_does_not_size_the_pool_for_them():
    from dni_lease.pool_report import pools_report

    # Given a pool of 8 where one address asked 20 times (2 leases, 18 capped answers) and
    # one visitor from elsewhere leased a number
    store, cfg = InMemoryLeaseStore(), config()
    for i in range(20):
        lease_number(store, cfg, req(), T0 + i, source_ip=SCRIPT)
    lease_number(store, cfg, req(), T0 + 30, source_ip=VISITOR)
    # When the pools report reads the day
    [pool] = pools_report(store, cfg, T0 - 3600, T0 + 3600, now=T0 + 3600)
    # Then the capped answers are counted apart, not as exhaustions and not as sessions to size for
    assert pool["address_capped"] == 18 and pool["exhaustions"] == 0
    assert pool["peak_concurrent_leases"] == 3 and pool["peak_concurrent_sessions"] == 3
    assert pool["recommended_size"] == 4


@pytest.mark.parametrize("kind", ["memory", "dynamodb"])
def test_the_next_holder_of_a_number_does_not_inherit_the_previous_visitors_browser_ids(kind):
    import contextlib

    cfg = config(numbers=NUMBERS[:1])
    ids = {"ga_client_id": "1234567890.1764460800", "fbp": "fb.1.1764460800000.123456789"}
    with contextlib.ExitStack() as stack:
        store = InMemoryLeaseStore() if kind == "memory" else stack.enter_context(moto_lease_store())[1]
        # Given visitor A, whose analytics and pixel set their cookies after A's first lease: A's
        # renewal keeps them on the number's row
        a = req(session_id="session-A")
        first = lease_number(store, cfg, a, T0)
        renew = LeaseRequest(account="acme", visitor_id=a.visitor_id, session_id=a.session_id,
                             utm={"source": "google"}, number=first.number, lease_id=first.lease_id,
                             ad_cookies=ids)
        assert lease_number(store, cfg, renew, T0 + 60).renewed
        assert store.get_rows([first.number])[first.number]["fbp"] == ids["fbp"]
        # When A leaves and visitor B, who has no such cookies, gets the same number
        assert release_number(store, cfg, LeaseRequest(account="acme", visitor_id=a.visitor_id,
                                                       session_id=a.session_id, number=first.number,
                                                       lease_id=first.lease_id, release=True), T0 + 90)
        b = lease_number(store, cfg, req(session_id="session-B"), T0 + 4000)
        assert b.leased and b.number == first.number
        # Then B's call carries no browser id of A's (GA4 and Meta would get A's ids for B's call)
        from calltrack.attribution import attribute

        row = store.get_rows([b.number])[b.number]
        attr = attribute({"kind": "pool", "account": "acme", "pool": "google", "channel": "google-ads"},
                         row, T0 + 4010, 120)
        assert attr.session_id == "session-B"
        details = attr.details()
        assert not any(details.get(k) for k in ids), details
        assert not any(k in row for k in ids)



@pytest.mark.parametrize("kind", ["memory", "dynamodb"])
def test_a_number_only_ever_marked_shared_can_be_leased(kind):
    import contextlib

    with contextlib.ExitStack() as stack:
        store = InMemoryLeaseStore() if kind == "memory" else stack.enter_context(moto_lease_store())[1]
        # Given a pool number whose row was created by an exhausted pool's shared mark (no session)
        n = NUMBERS[0]
        assert store.mark_shared(n, T0 + 600, {"account": "acme", "pool": "google"})
        # When a session takes it, then it gets it, on DynamoDB as in the in-memory store
        row = {"account": "acme", "pool": "google", "session_id": "s-1", "lease_id": "L-1",
               "leased_at": T0 + 1, "expires_at": T0 + 601, "released_at": T0 + 601}
        assert store.take(n, row, T0 + 1)
        assert store.get_rows([n])[n]["session_id"] == "s-1"


@pytest.mark.parametrize("kind", ["memory", "dynamodb"])
def test_a_page_shown_again_after_its_release_is_counted_against_the_cap(kind):
    import contextlib

    cfg = config(cap=2)
    with contextlib.ExitStack() as stack:
        store = InMemoryLeaseStore() if kind == "memory" else stack.enter_context(moto_lease_store())[1]
        # Given an office address where C leased a number and hid the tab (released it), and then
        # colleagues A and B leased numbers: the address holds its cap of 2
        c = req(session_id="session-C")
        c_lease = lease_number(store, cfg, c, T0, source_ip=SCRIPT)
        assert release_number(store, cfg, LeaseRequest(account="acme", visitor_id=c.visitor_id,
                                                       session_id=c.session_id, number=c_lease.number,
                                                       lease_id=c_lease.lease_id, release=True), T0 + 5)
        a = lease_number(store, cfg, req(session_id="session-A"), T0 + 10, source_ip=SCRIPT)
        b = lease_number(store, cfg, req(session_id="session-B"), T0 + 20, source_ip=SCRIPT)
        assert a.leased and b.leased
        # When C's tab is shown again and asks for its number, naming its lease
        back = lease_number(store, cfg, LeaseRequest(account="acme", visitor_id=c.visitor_id,
                                                     session_id=c.session_id, utm={"source": "google"},
                                                     number=c_lease.number, lease_id=c_lease.lease_id),
                            T0 + 30, source_ip=SCRIPT)
        # Then C is counted against the cap: no number (a renewal of its released lease took it back
        # past the cap, and the next pool read then revoked B's lease, taken within it)
        assert back.number is None and back.reason == ADDRESS_CAP
        lease_number(store, cfg, req(), T0 + 40, source_ip=VISITOR)  # any later pool read
        rows = store.get_rows(NUMBERS)
        assert rows[b.number]["lease_id"] == b.lease_id and rows[a.number]["lease_id"] == a.lease_id
        # And a heartbeat of a live lease is still the one conditional write
        beat = lease_number(store, cfg, LeaseRequest(account="acme", visitor_id="v", session_id="session-B",
                                                     utm={"source": "google"}, number=b.number,
                                                     lease_id=b.lease_id), T0 + 50, source_ip=SCRIPT)
        assert beat.renewed and beat.attempts == 1
