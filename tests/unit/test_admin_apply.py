"""admin apply/list/get/tokens logic over an in-memory AdminStore (no AWS)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from admin import accounts, tokens
from admin.ports import ApplyPlan, ConcurrentUpdate, NumberTaken, StoredAccount
from calltrack.auth import OPERATOR, Principal, hash_token, token_id
from calltrack.errors import BadRequest, Conflict, Forbidden, NotFound, Unavailable
from tests.support.accounts import account_config

NOW = datetime(2026, 11, 25, 0, 0, tzinfo=UTC)
OP = Principal(account=None, role=OPERATOR)


class FakeStore:
    def __init__(self) -> None:
        self.accounts: dict[str, StoredAccount] = {}
        self.numbers: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.writes = 0
        self.fail_with: Exception | None = None
        self.snapshot: dict[str, dict[str, Any]] = {}
        self.snapshot_puts_fail = False
        self.snapshot_deletes_fail = False

    def get_account(self, account: str) -> StoredAccount | None:
        return self.accounts.get(account)

    def list_accounts(self) -> list[StoredAccount]:
        return list(self.accounts.values())

    def get_numbers(self, numbers: list[str]) -> dict[str, dict[str, Any]]:
        return {n: copy.deepcopy(self.numbers[n]) for n in numbers if n in self.numbers}

    def write_apply(self, plan: ApplyPlan) -> None:
        if self.fail_with:
            raise self.fail_with
        self.writes += 1
        for number in plan.deletes:
            del self.numbers[number]
        for row in plan.puts:
            self.numbers[row["number"]] = copy.deepcopy(row)
        self.accounts[plan.account.account] = plan.account

    def put_token(self, *, token_hash: str, account: str, role: str, label: str | None, created_at: datetime,
                  expires_at: datetime | None = None):
        self.tokens[token_hash] = {"account": account, "role": role, "label": label, "created_at": created_at,
                                   "expires_at": expires_at, "last_used_at": None}

    def list_tokens(self, account: str) -> list[dict[str, Any]]:
        return [{"token_hash": h, **t} for h, t in self.tokens.items() if t["account"] == account]

    def delete_token(self, token_hash: str) -> None:
        self.tokens.pop(token_hash, None)

    def snapshot_routing(self, rows: dict[str, dict[str, Any]], removed: list[str]) -> None:
        if (rows and self.snapshot_puts_fail) or (removed and self.snapshot_deletes_fail):
            raise OSError("S3 unreachable")
        self.snapshot.update(copy.deepcopy(rows))
        for number in removed:
            self.snapshot.pop(number, None)


def acme_config(account: str = "acme", **extra: Any) -> dict[str, Any]:
    """An account with one flyer number and a one-number google-ads pool."""
    defaults: dict[str, Any] = {
        "numbers": [{"number": "+815011110001", "channel": "flyer"}],
        "pools": [{"id": "g", "channel": "google-ads", "numbers": ["+815011110101"]}],
    }
    return account_config(account, **{**defaults, **extra})


def _apply(store: FakeStore, config: dict[str, Any], principal: Principal = OP, **kw: Any) -> dict[str, Any]:
    return accounts.apply_account(principal, config["account"], config, store, now=NOW, **kw)


# --------------------------------------------------------------------------- apply


def test_first_apply_adds_every_number_and_creates_version_1():
    store = FakeStore()
    result = _apply(store, acme_config())
    assert result == {
        "account": "acme",
        "changed": True,
        "version": 1,
        "numbers": {"added": ["+815011110001", "+815011110101"], "removed": [], "updated": []},
    }
    assert store.numbers["+815011110101"]["pool"] == "g"
    assert store.accounts["acme"].config["forward_to"] == "+81312345678"


def test_a_paris_account_stores_its_national_numbers_as_french():
    store = FakeStore()
    config = acme_config("paris-dental", timezone="Europe/Paris", forward_to="01 42 68 53 00",
                     numbers=[{"number": "01 42 68 53 01", "channel": "flyer"}],
                     pools=[{"id": "g", "channel": "google-ads", "numbers": ["01 42 68 53 02"]}])
    result = _apply(store, config)
    assert result["numbers"]["added"] == ["+33142685301", "+33142685302"]
    assert store.accounts["paris-dental"].config["forward_to"] == "+33142685300"


def test_the_monthly_review_keys_apply_and_out_of_range_ones_are_refused():
    store = FakeStore()
    _apply(store, acme_config(review={"qualified_score": 70, "won_value_per_call_high": 5000}))
    review = store.accounts["acme"].config["review"]
    assert review["qualified_score"] == 70 and review["won_value_per_call_high"] == 5000
    writes = store.writes
    with pytest.raises(BadRequest) as err:
        _apply(store, acme_config(review={"qualified_score": 150}))
    assert "review.qualified_score" in str(err.value) and store.writes == writes


def test_applying_the_same_config_again_writes_nothing():
    store = FakeStore()
    _apply(store, acme_config())
    writes = store.writes
    # Written differently but meaning the same (national format) is still the same config
    again = acme_config(numbers=[{"number": "050-1111-0001", "channel": "flyer"}])
    result = _apply(store, again)
    assert result["changed"] is False and result["version"] == 1
    assert store.writes == writes


def test_a_settings_change_rewrites_the_rows_whose_routing_changed():
    store = FakeStore()
    _apply(store, acme_config())
    result = _apply(store, acme_config(ring_timeout=45))
    assert result["version"] == 2
    assert result["numbers"] == {"added": [], "removed": [], "updated": ["+815011110001", "+815011110101"]}
    assert store.numbers["+815011110001"]["routing"]["ring_timeout"] == 45


def test_a_change_outside_routing_bumps_the_version_without_touching_numbers():
    store = FakeStore()
    _apply(store, acme_config())
    result = _apply(store, acme_config(crm={"match_window_days": 3}))
    assert result["changed"] is True and result["version"] == 2
    assert result["numbers"] == {"added": [], "removed": [], "updated": []}


def test_dropped_numbers_are_removed():
    store = FakeStore()
    _apply(store, acme_config())
    result = _apply(store, acme_config(numbers=[]))
    assert result["numbers"]["removed"] == ["+815011110001"]
    assert "+815011110001" not in store.numbers


def test_numbers_taken_out_of_a_pool_are_remembered_for_the_pools_report_until_their_history_expires():
    from datetime import timedelta

    store = FakeStore()
    a, b, c, d = (f"+8150111102{i:02d}" for i in range(4))
    pools = lambda g, y=(): [{"id": "g", "channel": "google-ads", "numbers": list(g)},  # noqa: E731
                             *([{"id": "y", "channel": "yahoo-ads", "numbers": list(y)}] if y else [])]
    _apply(store, acme_config(pools=pools([a, b, c, d])))
    assert store.accounts["acme"].former_pool_numbers == {}
    # When an apply shrinks the pool (c and d leave the account) and moves b to another pool
    later = NOW + timedelta(days=3)
    accounts.apply_account(OP, "acme", acme_config(pools=pools([a], [b])), store, now=later)
    # Then the account's row remembers when each left the pool "g"
    assert store.accounts["acme"].former_pool_numbers == {"g": {b: later.timestamp(), c: later.timestamp(),
                                                                d: later.timestamp()}}
    # And a number put back in its pool is forgotten there; the others are kept at their first leaving
    back = later + timedelta(days=1)
    accounts.apply_account(OP, "acme", acme_config(pools=pools([a, c], [b])), store, now=back)
    assert store.accounts["acme"].former_pool_numbers == {"g": {b: later.timestamp(), d: later.timestamp()}}
    # And 90 days later (the lease history's lifetime) a changed apply forgets them
    gone = later + timedelta(days=90)
    accounts.apply_account(OP, "acme", acme_config(pools=pools([a, c])), store, now=gone)
    assert store.accounts["acme"].former_pool_numbers == {"y": {b: gone.timestamp()}}


def test_a_number_leaves_its_pool_no_earlier_than_the_apply_that_took_it_out():
    # Given a pool whose number was leased at 12.3 s past a second, and an apply taking it out at 12.7 s
    config = acme_config(pools=[{"id": "g", "channel": "google-ads", "numbers": ["+815011110101"]}])
    current = StoredAccount(account="acme", name="acme", timezone="Asia/Tokyo", config=config,
                            config_hash="h", version=1, updated_at=NOW)
    emptied = acme_config(pools=[{"id": "g", "channel": "google-ads", "numbers": ["+815011110102"]}])
    left = accounts.former_pool_numbers(current, emptied, 1_800_000_012.7)
    # Then the row says it left at 13 s (whole seconds, up): the lease at 12.3 s was still the pool's
    assert left == {"g": {"+815011110101": 1_800_000_013.0}}


def test_the_numbers_remembered_are_the_newest_that_fit_in_the_accounts_item():
    import json
    from datetime import timedelta

    # Given an account whose row remembers 300 numbers that left its pool on each of two days
    old = {f"+8150222{i:05d}": NOW.timestamp() for i in range(300)}
    new = {f"+8150333{i:05d}": (NOW + timedelta(days=1)).timestamp() for i in range(300)}
    config = acme_config(pools=[{"id": "g", "channel": "google-ads", "numbers": ["+815011110101"]}])
    current = StoredAccount(account="acme", name="acme", timezone="Asia/Tokyo", config=config,
                            config_hash="h", version=1, updated_at=NOW,
                            former_pool_numbers={"g": {**old, **new}})
    # When an apply has room for about 400 of them on the row (its config takes the rest)
    kept = accounts.former_pool_numbers(current, config, (NOW + timedelta(days=2)).timestamp(), room=12_000)
    # Then it keeps every newer one and as many older ones as fit, within the room
    assert set(new) <= set(kept["g"]) and 0 < len(set(kept["g"]) & set(old)) < len(old)
    assert len(json.dumps(kept)) <= 12_000


def test_a_number_of_another_account_is_a_409_naming_the_field_and_nothing_is_written():
    store = FakeStore()
    _apply(store, acme_config("rival-clinic", pools=[]))
    writes = store.writes
    with pytest.raises(Conflict) as err:
        _apply(store, acme_config())
    assert err.value.field == "numbers[0].number"
    assert "+815011110001" in err.value.message and "rival-clinic" not in err.value.message
    assert store.writes == writes and "acme" not in store.accounts


def test_forwarding_to_another_accounts_tracking_number_is_a_409_naming_the_field():
    # Given a branch clinic whose flyer number is +815022220001
    store = FakeStore()
    _apply(store, acme_config("branch", numbers=[{"number": "+815022220001", "channel": "flyer"}], pools=[]))
    writes = store.writes
    # When the main clinic forwards its calls there, or rings it from a flow's ring group
    forwarded = acme_config(forward_to="+815022220001")
    group = acme_config(flows={"main": {"targets": {"desk": {"ring_group": {
        "strategy": "simultaneous", "members": [{"agent": "tanaka", "number": "+815022220001"}]}}}}},
        flow="main")
    member = "flows.main.targets.desk.ring_group.members[0].number"
    for config, field in ((forwarded, "forward_to"), (group, member)):
        with pytest.raises(Conflict) as err:
            _apply(store, config)
        # Then it is refused (each call would arrive at the branch as a new call: counted twice,
        # credited to the branch's flyer, a loop if the branch forwards back), naming the field
        assert err.value.field == field
        assert "+815022220001" in err.value.message and "another account" in err.value.message
        assert "branch" not in err.value.message
    assert store.writes == writes and "acme" not in store.accounts
    # And forwarding to a number no account tracks is applied
    assert _apply(store, acme_config(forward_to="+815022229999"))["changed"] is True


def test_losing_a_race_for_a_number_is_a_409_naming_the_field():
    store = FakeStore()
    store.fail_with = NumberTaken("+815011110101")
    with pytest.raises(Conflict) as err:
        _apply(store, acme_config())
    assert err.value.field == "pools[0].numbers[0]"


def test_a_concurrent_apply_of_the_same_account_is_a_409():
    store = FakeStore()
    store.fail_with = ConcurrentUpdate()
    with pytest.raises(Conflict):
        _apply(store, acme_config())


def test_a_concurrent_apply_against_an_expected_version_names_it_so_the_caller_reads_again():
    # Given a caller that read the account at version 0 (none yet), and another apply that wins the
    # write between the version check and this apply's write
    store = FakeStore()
    store.fail_with = ConcurrentUpdate()
    with pytest.raises(Conflict) as err:
        _apply(store, acme_config(), expected_version=0)
    # Then the 409 names expected_version (numbers buy reads again and retries on it)
    assert err.value.field == "expected_version"


def test_dry_run_returns_the_plan_without_writing():
    store = FakeStore()
    result = _apply(store, acme_config(), dry_run=True)
    assert result["changed"] is True and len(result["numbers"]["added"]) == 2
    assert store.writes == 0 and not store.numbers


def test_the_account_in_the_body_must_match_the_path():
    with pytest.raises(BadRequest) as err:
        accounts.apply_account(OP, "acme", acme_config("other"), FakeStore(), now=NOW)
    assert err.value.field == "account"


@pytest.mark.parametrize("principal", [Principal("acme", "manager"), Principal("acme", "marketer")])
def test_only_admins_apply(principal):
    with pytest.raises(Forbidden):
        _apply(FakeStore(), acme_config(), principal)


def test_an_admin_of_another_account_may_not_apply():
    with pytest.raises(Forbidden):
        _apply(FakeStore(), acme_config(), Principal("other", "admin"))


# --------------------------------------------------------------------------- read


def test_account_tokens_list_and_read_only_their_own_account():
    store = FakeStore()
    _apply(store, acme_config())
    _apply(store, acme_config("other", numbers=[], pools=[]))
    me = Principal("acme", "marketer")
    assert [a["account"] for a in accounts.list_accounts(me, store)["accounts"]] == ["acme"]
    assert [a["account"] for a in accounts.list_accounts(OP, store)["accounts"]] == ["acme", "other"]
    assert accounts.get_account(me, "acme", store)["config"]["account"] == "acme"
    with pytest.raises(Forbidden):
        accounts.get_account(me, "other", store)
    with pytest.raises(NotFound):
        accounts.get_account(OP, "missing", store)


# --------------------------------------------------------------------------- tokens


def test_a_token_is_returned_once_and_stored_only_as_its_hash():
    store = FakeStore()
    _apply(store, acme_config())
    result = tokens.create_token(
        OP, "acme", {"role": "marketer", "label": "dash"}, store, now=NOW, make_token=lambda: "ct_secret"
    )
    assert result == {"token": "ct_secret", "id": token_id(hash_token("ct_secret")), "account": "acme",
                      "role": "marketer", "expires_at": None}
    assert store.tokens == {hash_token("ct_secret"): {"account": "acme", "role": "marketer", "label": "dash",
                                                      "created_at": NOW, "expires_at": None,
                                                      "last_used_at": None}}


def test_tokens_are_listed_without_secrets_expire_when_asked_and_are_revoked_by_id():
    store = FakeStore()
    _apply(store, acme_config())
    made = tokens.create_token(OP, "acme", {"role": "admin", "expires_in_days": 7}, store, now=NOW,
                               make_token=lambda: "ct_secret")
    assert made["expires_at"] == "2026-12-02T00:00:00Z"
    listed = tokens.list_tokens(Principal("acme", "admin"), "acme", store)["tokens"]
    assert [t["id"] for t in listed] == [made["id"]] and "ct_secret" not in str(listed)
    with pytest.raises(Forbidden):
        tokens.list_tokens(Principal("acme", "manager"), "acme", store)
    with pytest.raises(Forbidden):
        tokens.revoke_token(Principal("other", "admin"), "acme", made["id"], store)
    assert tokens.revoke_token(OP, "acme", made["id"], store)["revoked"] is True
    assert store.tokens == {}
    with pytest.raises(NotFound):
        tokens.revoke_token(OP, "acme", made["id"], store)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "owner"}, "role"),
        ({}, "role"),
        ({"role": "admin", "scope": "x"}, "scope"),
        ({"role": "admin", "label": 3}, "label"),
        ({"role": "admin", "expires_in_days": 0}, "expires_in_days"),
        ({"role": "admin", "expires_in_days": "7"}, "expires_in_days"),
    ],
)
def test_bad_token_requests_are_400_naming_the_field(body, field):
    store = FakeStore()
    _apply(store, acme_config())
    with pytest.raises(BadRequest) as err:
        tokens.create_token(OP, "acme", body, store, now=NOW)
    assert err.value.field == field


def test_tokens_need_an_admin_of_that_account_and_an_existing_account():
    store = FakeStore()
    _apply(store, acme_config())
    with pytest.raises(Forbidden):
        tokens.create_token(Principal("acme", "manager"), "acme", {"role": "admin"}, store, now=NOW)
    with pytest.raises(Forbidden):
        tokens.create_token(Principal("other", "admin"), "acme", {"role": "admin"}, store, now=NOW)
    with pytest.raises(NotFound):
        tokens.create_token(OP, "missing", {"role": "admin"}, store, now=NOW)
    assert (
        tokens.create_token(Principal("acme", "admin"), "acme", {"role": "admin"}, store, now=NOW)["role"]
        == "admin"
    )


def test_many_taken_numbers_are_all_listed_in_errors_and_summarised_in_the_message():
    store = FakeStore()
    numbers = [f"+8150111102{i:02d}" for i in range(5)]
    flyers = [{"number": n, "channel": "flyer"} for n in numbers]
    _apply(store, acme_config("rival-clinic", numbers=flyers, pools=[]))
    with pytest.raises(Conflict) as err:
        _apply(store, acme_config(numbers=[{"number": n, "channel": "radio"} for n in numbers], pools=[]))
    body: dict[str, Any] = err.value.body()
    assert body["message"].endswith("; and 2 more")
    assert len(body["errors"]) == 5 and body["field"] == "numbers[0].number"


def test_the_routing_snapshot_follows_the_numbers_and_a_failed_one_is_repaired_by_applying_again():
    # Given an applied account whose snapshot holds every number's routing
    store = FakeStore()
    _apply(store, acme_config())
    assert store.snapshot == store.numbers
    # When a number is dropped, its snapshot goes too
    _apply(store, acme_config(numbers=[]))
    assert "+815011110001" not in store.snapshot and store.snapshot == store.numbers
    # When the snapshot cannot be written, apply says so (503) though the config is stored ...
    store.snapshot_puts_fail = True
    with pytest.raises(Unavailable) as err:
        _apply(store, acme_config(ring_timeout=45))
    assert "apply the same file again" in str(err.value)
    # ... and applying the same file again writes it
    store.snapshot_puts_fail = False
    assert _apply(store, acme_config(ring_timeout=45))["changed"] is False
    assert store.snapshot["+815011110101"]["routing"]["ring_timeout"] == 45


def test_a_removed_number_whose_snapshot_cannot_be_deleted_stays_applied_nowhere():
    # Given an account with a number
    store = FakeStore()
    _apply(store, acme_config())
    # When removing it meets an S3 failure, nothing is applied (its snapshot and row both stay) ...
    store.snapshot_deletes_fail = True
    with pytest.raises(Unavailable):
        _apply(store, acme_config(numbers=[]))
    assert "+815011110001" in store.numbers and "+815011110001" in store.snapshot
    # ... and applying the same file again removes it from both
    store.snapshot_deletes_fail = False
    assert _apply(store, acme_config(numbers=[]))["numbers"]["removed"] == ["+815011110001"]
    assert "+815011110001" not in store.numbers and "+815011110001" not in store.snapshot


def test_an_unchanged_apply_repairs_rows_and_could_roll_them_back_to_what_they_were():
    # Given an applied account, one row gone and one changed by hand
    store = FakeStore()
    _apply(store, acme_config())
    del store.numbers["+815011110001"]
    store.numbers["+815011110101"]["channel"] = "tampered"
    plans: list[ApplyPlan] = []
    write = store.write_apply
    store.write_apply = lambda plan: (plans.append(plan), write(plan))  # type: ignore[method-assign]
    # When the same config is applied again
    result = _apply(store, acme_config())
    # Then both rows are written back, and a failure half-way would restore the changed row as it
    # was (not delete it): the rollback's previous rows are the rows read before
    assert result["changed"] is False and result["numbers"]["repaired"] == ["+815011110001", "+815011110101"]
    assert store.numbers["+815011110101"]["channel"] == "google-ads"
    [plan] = plans
    assert set(plan.previous_rows) == {"+815011110101"}
    assert plan.previous_rows["+815011110101"]["channel"] == "tampered"


def test_a_config_too_large_to_store_once_expanded_is_a_400_not_a_500():
    from calltrack.errors import BadRequest

    # Given 40 flows, each closed for about three years (within the per-flow cap)
    flow = {"hours": {"mon-fri": "09:00-18:00", "closed": ["2026-01-01..2026-12-31", "2027-01-01..2027-12-31",
                                                             "2028-01-01..2028-12-31"]},
            "targets": {"desk": {"forward": "03-1234-5678"}}}
    config = acme_config(flows={f"f{i}": flow for i in range(40)})
    # When it is applied, Then it is refused naming config, and nothing is written
    store = FakeStore()
    with pytest.raises(BadRequest) as err:
        _apply(store, config)
    assert err.value.field == "config" and "KB" in err.value.message and store.writes == 0


def test_a_config_under_the_limit_as_written_but_over_it_as_stored_is_a_400_not_a_500():
    # Given 1,000 numbers whose campaigns are Japanese text: about 260 KB as written (UTF-8), but the
    # accounts row stores JSON with ASCII escapes (6 bytes a character): over 400 KB, DynamoDB's limit
    campaign = "年末年始キャンペーン・地域情報誌掲載分・お得な予約受付中" * 2
    numbers = [{"number": f"+8150{2000_0000 + i}", "channel": "flyer", "campaign": campaign}
               for i in range(1000)]
    store = FakeStore()
    # When it is applied, Then it is refused naming config, saying both sizes, and nothing is written
    with pytest.raises(BadRequest) as err:
        _apply(store, acme_config(numbers=numbers, pools=[]))
    assert err.value.field == "config" and "as stored" in err.value.message and store.writes == 0


def test_an_account_being_deleted_takes_no_apply_token_or_secret():
    from admin import secrets

    # Given an account whose deletion has started (its admin token still works until the end)
    store = FakeStore()
    _apply(store, acme_config())
    stored = store.accounts["acme"]
    store.accounts["acme"] = StoredAccount(**{**stored.__dict__, "deleting": True})
    admin = Principal(account="acme", role="admin")
    # When its config is applied again, a token made or a secret set, Then each is a 409 naming the
    # account, and nothing is written (the deletion would otherwise leave parts of it behind)
    writes = store.writes
    with pytest.raises(Conflict) as err:
        _apply(store, acme_config(), admin)
    assert err.value.field == "account" and store.writes == writes
    with pytest.raises(Conflict):
        tokens.create_token(admin, "acme", {"role": "marketer"}, store, now=NOW)
    with pytest.raises(Conflict):
        secrets.set_secret(admin, "acme", "meta", {"value": "x"}, store, secrets=None)  # type: ignore[arg-type]
    assert store.tokens == {}
    # while what it holds can still be listed (an admin checking what the deletion will remove)

    class Names:
        def names(self, account: str) -> list[dict[str, Any]]:
            return [{"name": "meta"}]

    assert secrets.list_secrets(admin, "acme", store, Names())["secrets"] == [{"name": "meta"}]  # type: ignore[arg-type]


def test_an_unchanged_apply_never_puts_another_accounts_number_in_the_routing_snapshot():
    # Given acme applied, then its row of the flyer number lost, and bravo applying that number
    store = FakeStore()
    _apply(store, acme_config())
    flyer = "+815011110001"
    del store.numbers[flyer]
    _apply(store, acme_config("bravo", numbers=[{"number": flyer, "channel": "radio"}], pools=[]))
    # When acme applies its unchanged file again (the README's "when in doubt")
    _apply(store, acme_config())
    # Then the number stays bravo's, in the table and in the snapshot the webhook forwards from
    assert store.numbers[flyer]["account"] == "bravo"
    assert store.snapshot[flyer]["account"] == "bravo"
