"""The one account-config reader: typed config, a TTL cache, one rule for a missing account."""

from __future__ import annotations

import pytest

from calltrack.accounts import AccountReader, BrokenAccount, UnknownAccount
from tests.support.accounts import AccountsTable, account_config


def reader(table: AccountsTable, now: list[float]) -> AccountReader:
    return AccountReader(table, "calltrack-accounts", ttl_s=30, clock=lambda: now[0])


def test_get_returns_the_typed_config_with_the_models_defaults() -> None:
    # Given an account stored without alerts or review settings
    table, now = AccountsTable(), [0.0]
    table.put(account_config("acme", timezone="Europe/London"))
    # When it is read
    config = reader(table, now).get("acme")
    # Then the typed model fills the defaults (declared once, in the model)
    assert config.timezone == "Europe/London"
    assert config.alerts.answer_rate_below == 0.85
    assert config.crm.match_window_days == 7


def test_a_config_change_reaches_a_warm_reader_after_the_ttl_and_not_before() -> None:
    table, now = AccountsTable(), [0.0]
    table.put(account_config("acme", timezone="Asia/Tokyo"))
    accounts = reader(table, now)
    assert accounts.get("acme").timezone == "Asia/Tokyo"
    # When the account is re-applied with another time zone
    table.put(account_config("acme", timezone="Europe/Paris"))
    now[0] = 29.0
    assert accounts.get("acme").timezone == "Asia/Tokyo"  # cached
    now[0] = 31.0
    assert accounts.get("acme").timezone == "Europe/Paris"  # the TTL has passed
    assert table.gets == 2


def test_a_missing_account_is_one_404_and_is_not_cached() -> None:
    table, now = AccountsTable(), [0.0]
    accounts = reader(table, now)
    with pytest.raises(UnknownAccount) as err:
        accounts.get("nope")
    assert err.value.status == 404 and err.value.field == "account"
    assert accounts.find("nope") is None
    # When the account is applied a moment later, it works at once
    table.put(account_config("nope"))
    assert accounts.get("nope").account == "nope"


def test_all_yields_a_broken_stored_config_as_its_own_failure() -> None:
    table, now = AccountsTable(), [0.0]
    table.put(account_config("good"))
    table.put(account_config("bad", alerts={"answer_rate_below": 7}))
    found = {a.account: a for a in reader(table, now).all()}
    assert found["good"].timezone == "Asia/Tokyo"
    assert isinstance(found["bad"], BrokenAccount) and "answer_rate_below" in found["bad"].error


def test_an_account_being_deleted_is_gone_for_every_reader() -> None:
    # Given two accounts, one whose deletion has started (its row carries the deletion's progress)
    table, now = AccountsTable(), [0.0]
    table.put(account_config("staying"))
    table.put(account_config("leaving"))
    table.items["leaving"]["deletion_progress"] = {"S": '{"step": "numbers"}'}
    accounts = reader(table, now)
    # Then it is unknown to a lookup and left out of every job's fan-out, the other one is not
    assert accounts.find("leaving") is None and accounts.find("staying") is not None
    assert [a.account for a in accounts.all()] == ["staying"]
