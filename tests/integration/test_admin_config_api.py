"""Config as code against the local stack: `calltrack apply`, PUT/GET /v1/accounts (issue 2, part 4)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from tests.support import unique_account, unique_number
from tests.support.accounts import account_config
from tests.support.cli import run_cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "acme-dental.yaml"


# --------------------------------------------------------------------------- helpers


def _table(logical: str) -> str:
    from calltrack.settings import get_settings

    return get_settings().table_name(logical)


def _item(stack: Any, logical: str, key: dict[str, str]) -> Any:
    ddb = stack.stack.client("dynamodb")
    resp = ddb.get_item(
        TableName=_table(logical), Key={k: {"S": v} for k, v in key.items()}, ConsistentRead=True
    )
    return resp.get("Item")


def _number_row(stack: Any, number: str) -> Any:
    return _item(stack, "numbers", {"number": number})


def _account_row(stack: Any, account: str) -> Any:
    return _item(stack, "accounts", {"account": account})


def clinic_config(
    account: str, *, static: list[str] | None = None, pool: list[str] | None = None
) -> dict[str, Any]:
    """A clinic with recording and a whisper, static flyer numbers and a google-ads pool."""
    return account_config(
        account,
        name="Test Clinic",
        recording={"enabled": True, "announcement": "この通話は録音されます。"},
        whisper="{channel}からのお電話です",
        numbers=[
            {"number": n, "channel": "flyer", "campaign": "2026-11-insert"}
            for n in (static if static is not None else [unique_number()])
        ],
        pools=[
            {
                "id": "google-ads",
                "channel": "google-ads",
                "match": {"utm_source": "google"},
                "numbers": pool if pool is not None else [unique_number(), unique_number()],
            }
        ],
    )


# --------------------------------------------------------------------------- the example file


def test_apply_example_file_twice_changes_nothing_the_second_time(local_stack):
    # Given the example clinic's YAML file and the operator token
    url, token = local_stack.url, local_stack.admin_token
    # When it is applied with the real CLI
    first = run_cli("apply", str(EXAMPLE), "--url", url, "--token", token)
    # Then it succeeds
    assert first.exit_code == 0, first.output
    assert "acme-dental" in first.stdout
    # And applying it again reports no changes
    second = run_cli("apply", str(EXAMPLE), "--url", url, "--token", token)
    assert second.exit_code == 0, second.output
    assert "no changes" in second.stdout
    # And every static and pool number is routable from one read of the numbers table
    row = _number_row(local_stack, "+815012340001")
    assert row is not None and row["account"]["S"] == "acme-dental" and row["kind"]["S"] == "static"
    assert row["channel"]["S"] == "newspaper"
    pool_row = _number_row(local_stack, "+815012340101")
    assert pool_row is not None and pool_row["kind"]["S"] == "pool" and pool_row["pool"]["S"] == "google-ads"


def test_second_apply_of_the_same_config_reports_no_change_and_keeps_the_version(local_stack):
    account = unique_account("apply")
    config = clinic_config(account)
    first = local_stack.apply(config)
    assert first["changed"] is True and first["version"] == 1
    assert sorted(first["numbers"]["added"]) == sorted(
        [config["numbers"][0]["number"], *config["pools"][0]["numbers"]]
    )
    second = local_stack.apply(config)
    assert second == {
        "account": account,
        "changed": False,
        "version": 1,
        "numbers": {"added": [], "removed": [], "updated": [], "repaired": []},
    }


def test_applying_the_same_config_again_brings_back_a_lost_number_row(local_stack):
    # Given an applied account one of whose number rows is gone (two large applies at once rolled
    # it back, an interrupted apply, a row deleted by hand): calls to it are not routed
    account = unique_account("repair")
    config = clinic_config(account)
    local_stack.apply(config)
    lost = config["pools"][0]["numbers"][0]
    local_stack.stack.client("dynamodb").delete_item(TableName=_table("numbers"), Key={"number": {"S": lost}})
    assert _number_row(local_stack, lost) is None
    # When the same config is applied again
    again = local_stack.apply(config)
    # Then nothing changed in the config, and the row is back, as the config says
    assert again["changed"] is False and again["version"] == 1 and again["numbers"]["repaired"] == [lost]
    row = _number_row(local_stack, lost)
    assert row is not None and row["account"]["S"] == account and row["kind"]["S"] == "pool"


def test_applied_account_is_stored_normalised_with_defaults_and_routing(local_stack):
    # Given a config with national-format numbers and few settings
    account = unique_account("norm")
    static = unique_number()
    config = clinic_config(account, static=["0" + static[3:]])
    local_stack.apply(config)
    # When the operator reads the account
    resp = local_stack.request("GET", f"/v1/accounts/{account}", token=local_stack.admin_token)
    # Then the stored config has every default filled and numbers in E.164
    assert resp.status_code == 200
    stored = resp.json()["config"]
    assert stored["numbers"][0]["number"] == static
    assert stored["ring_timeout"] == 20 and stored["language"] == "ja-JP" and stored["voicemail"] is False
    assert stored["pools"][0]["lease_minutes"] == 10 and stored["pools"][0]["match"]["utm_source"] == [
        "google"
    ]
    assert stored["dni"] == {"late_call_window_minutes": 120, "cookie_days": 30, "wait_for_consent": False,
                            "max_numbers_per_address": None}
    assert stored["crm"] == {"match_window_days": 7}
    # And the number's row carries everything the voice webhook needs
    from calltrack.models import bind_models
    from calltrack.models.accounts import MODELS, TrackingNumber
    from calltrack.settings import get_settings

    bind_models(get_settings(), list(MODELS))
    row = TrackingNumber.get(static)
    assert row.account == account and row.kind == "static" and row.campaign == "2026-11-insert"
    assert row.routing == {
        "forward_to": "+81312345678",
        "language": "ja-JP",
        "timezone": "Asia/Tokyo",
        "recording": {"enabled": True, "announcement": "この通話は録音されます。"},
        "whisper": "flyerからのお電話です",
        "ring_timeout": 20,
        "voicemail": False,
        "calls_days": 1095,
    }


def test_changing_numbers_reports_added_removed_updated_and_deletes_dropped_rows(local_stack):
    account = unique_account("diff")
    keep, drop, pool_a, pool_b = unique_number(), unique_number(), unique_number(), unique_number()
    local_stack.apply(clinic_config(account, static=[keep, drop], pool=[pool_a]))
    # When the flyer number moves to a new campaign, one number is dropped and a pool number added
    config = clinic_config(account, static=[keep], pool=[pool_a, pool_b])
    config["numbers"][0]["campaign"] = "2026-12-insert"
    result = local_stack.apply(config)
    # Then the response says exactly that
    assert result["changed"] is True and result["version"] == 2
    assert result["numbers"] == {"added": [pool_b], "removed": [drop], "updated": [keep]}
    # And the dropped number no longer routes, the others do
    assert _number_row(local_stack, drop) is None
    assert _number_row(local_stack, keep)["campaign"]["S"] == "2026-12-insert"
    assert _number_row(local_stack, pool_b)["account"]["S"] == account


# --------------------------------------------------------------------------- refusals write nothing


def _assert_nothing_written(stack: Any, account: str, numbers: list[str]) -> None:
    assert _account_row(stack, account) is None
    for number in numbers:
        assert _number_row(stack, number) is None, number


def test_bad_number_is_refused_naming_the_field_and_nothing_is_written(local_stack):
    account = unique_account("badnum")
    config = clinic_config(account)
    config["numbers"].append({"number": "12345", "channel": "radio"})
    resp = local_stack.request("PUT", f"/v1/accounts/{account}", token=local_stack.admin_token, json=config)
    assert resp.status_code == 400
    assert resp.json()["message"].startswith("numbers[1].number: not a phone number")
    assert resp.json()["field"] == "numbers[1].number"
    _assert_nothing_written(
        local_stack, account, [config["numbers"][0]["number"], *config["pools"][0]["numbers"]]
    )


def test_unknown_key_is_refused_naming_it_and_nothing_is_written(local_stack):
    account = unique_account("unknown")
    config = clinic_config(account)
    config["pools"][0]["match"]["utm_sorce"] = "google"
    resp = local_stack.request("PUT", f"/v1/accounts/{account}", token=local_stack.admin_token, json=config)
    assert resp.status_code == 400
    assert resp.json()["message"] == "pools[0].match.utm_sorce: unknown key"
    _assert_nothing_written(local_stack, account, config["pools"][0]["numbers"])


def test_number_owned_by_another_account_is_a_conflict_and_nothing_is_written(local_stack):
    # Given one account owns a number
    owner = unique_account("owner")
    shared = unique_number()
    local_stack.apply(clinic_config(owner, static=[shared]))
    # When another account lists it among new numbers
    intruder = unique_account("intruder")
    config = clinic_config(intruder, static=[unique_number()], pool=[unique_number(), shared])
    resp = local_stack.request("PUT", f"/v1/accounts/{intruder}", token=local_stack.admin_token, json=config)
    # Then the apply is refused naming the field and the number, without naming the other account
    assert resp.status_code == 409
    body = resp.json()
    assert body["field"] == "pools[0].numbers[1]"
    assert shared in body["message"] and owner not in body["message"]
    # And nothing of the intruder was written, and the owner still owns the number
    _assert_nothing_written(
        local_stack, intruder, [config["numbers"][0]["number"], config["pools"][0]["numbers"][0]]
    )
    assert _number_row(local_stack, shared)["account"]["S"] == owner


def test_forwarding_to_another_accounts_tracking_number_is_a_conflict_and_nothing_is_written(local_stack):
    # Given a branch whose flyer number is a tracking number
    branch = unique_account("branch")
    flyer = unique_number()
    local_stack.apply(clinic_config(branch, static=[flyer]))
    # When the main clinic forwards its calls to that number
    main = unique_account("main")
    config = {**clinic_config(main, static=[unique_number()]), "forward_to": flyer}
    resp = local_stack.request("PUT", f"/v1/accounts/{main}", token=local_stack.admin_token, json=config)
    # Then the apply is refused naming forward_to (calls would arrive at the branch as new calls)
    assert resp.status_code == 409
    assert resp.json()["field"] == "forward_to" and flyer in resp.json()["message"]
    _assert_nothing_written(local_stack, main, [config["numbers"][0]["number"]])


def test_cli_reports_a_server_side_conflict_in_one_line_with_exit_2(local_stack, tmp_path):
    owner = unique_account("owner")
    shared = unique_number()
    local_stack.apply(clinic_config(owner, static=[shared]))
    intruder = unique_account("intruder")
    file = tmp_path / "intruder.yaml"
    import yaml

    config = clinic_config(intruder, static=[shared])
    file.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    result = run_cli("apply", str(file), "--url", local_stack.url, "--token", local_stack.admin_token)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "409" in result.stderr and "numbers[0].number" in result.stderr and shared in result.stderr
    _assert_nothing_written(local_stack, intruder, [])


def test_account_in_body_must_match_the_path(local_stack):
    account, other = unique_account("path"), unique_account("body")
    resp = local_stack.request(
        "PUT", f"/v1/accounts/{account}", token=local_stack.admin_token, json=clinic_config(other)
    )
    assert resp.status_code == 400 and resp.json()["field"] == "account"
    _assert_nothing_written(local_stack, account, [])
    _assert_nothing_written(local_stack, other, [])


def test_malformed_json_body_is_a_400(local_stack):
    account = unique_account("json")
    resp = local_stack.request(
        "PUT",
        f"/v1/accounts/{account}",
        token=local_stack.admin_token,
        data="{not json",
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 400


def test_dry_run_reports_the_plan_and_writes_nothing(local_stack):
    account = unique_account("dry")
    config = clinic_config(account)
    resp = local_stack.request(
        "PUT", f"/v1/accounts/{account}", token=local_stack.admin_token, json=config, params={"dry_run": "1"}
    )
    assert resp.status_code == 200 and resp.json()["changed"] is True
    assert len(resp.json()["numbers"]["added"]) == 3
    _assert_nothing_written(local_stack, account, resp.json()["numbers"]["added"])


def test_more_than_one_transaction_of_numbers_is_applied_completely(local_stack):
    # Given an account with 150 pool numbers (more than one 100-item transaction)
    account = unique_account("big")
    config = clinic_config(account, pool=[unique_number() for _ in range(150)])
    result = local_stack.apply(config)
    assert result["changed"] is True and len(result["numbers"]["added"]) == 151
    # Then every number routes to the account and re-applying changes nothing
    assert all(_number_row(local_stack, n)["account"]["S"] == account for n in config["pools"][0]["numbers"])
    assert local_stack.apply(config)["changed"] is False


def test_when_a_later_transaction_fails_earlier_ones_are_rolled_back(local_stack, monkeypatch):
    # Given an account with 150 pool numbers on campaign "a"
    from admin.store import DynamoAdminStore

    account = unique_account("rollback")
    config = clinic_config(account, pool=[unique_number() for _ in range(150)])
    config["pools"][0]["campaign"] = "a"
    local_stack.apply(config)
    # And the final transaction of the next apply fails (e.g. DynamoDB throttles it)
    real = DynamoAdminStore._transact

    def failing(self, plan, chunk, *, with_account):
        if with_account:
            raise RuntimeError("simulated failure of the last transaction")
        return real(self, plan, chunk, with_account=with_account)

    monkeypatch.setattr(DynamoAdminStore, "_transact", failing)
    # When every pool number moves to campaign "b"
    config["pools"][0]["campaign"] = "b"
    resp = local_stack.request("PUT", f"/v1/accounts/{account}", token=local_stack.admin_token, json=config)
    monkeypatch.undo()
    # Then the apply fails and no number was left on the new campaign, the account on version 1
    assert resp.status_code >= 500
    campaigns = {_number_row(local_stack, n)["campaign"]["S"] for n in config["pools"][0]["numbers"]}
    assert campaigns == {"a"}
    assert _account_row(local_stack, account)["version"]["N"] == "1"
    # And applying again (the failure gone) completes it
    assert local_stack.apply(config)["version"] == 2


def test_a_failed_apply_never_rolls_back_over_a_number_another_account_applied_meanwhile(
    local_stack, monkeypatch
):
    from admin.store import DynamoAdminStore

    # Given an account with 150 pool numbers, one of which (X) its next apply drops
    account, other = unique_account("drops"), unique_account("takes")
    pool = [unique_number() for _ in range(150)]
    config = clinic_config(account, pool=pool)
    config["pools"][0]["campaign"] = "a"
    local_stack.apply(config)
    dropped = pool[0]
    # And, while that apply runs, another account applies X (its row was deleted by the first
    # transaction) just before the apply's last transaction fails
    real = DynamoAdminStore._transact

    def failing(self, plan, chunk, *, with_account):
        if with_account:  # the other account's apply writes X's row (as DynamoAdminStore would)
            from calltrack.settings import get_settings

            local_stack.stack.client("dynamodb").put_item(
                TableName=get_settings().table_name("numbers"),
                Item={"number": {"S": dropped}, "account": {"S": other}, "kind": {"S": "static"},
                      "channel": {"S": "flyer"}},
                ConditionExpression="attribute_not_exists(#n)", ExpressionAttributeNames={"#n": "number"},
            )
            raise RuntimeError("simulated failure of the last transaction")
        return real(self, plan, chunk, with_account=with_account)

    monkeypatch.setattr(DynamoAdminStore, "_transact", failing)
    config["pools"][0]["campaign"] = "b"
    config["pools"][0]["numbers"] = pool[1:]
    resp = local_stack.request("PUT", f"/v1/accounts/{account}", token=local_stack.admin_token, json=config)
    monkeypatch.undo()
    # Then the failed apply's roll-back leaves X with the account that applied it
    assert resp.status_code >= 500
    assert _number_row(local_stack, dropped)["account"]["S"] == other


def test_an_apply_that_loses_a_number_to_another_account_in_its_transaction_is_a_409(
    local_stack, monkeypatch
):
    from admin.store import DynamoAdminStore

    # Given an apply whose check saw the number free, and another account taking it just before
    # the apply's transaction (the race the conditional write exists for)
    account, other, number = unique_account("loses"), unique_account("wins"), unique_number()
    real = DynamoAdminStore._transact

    def taken_first(self, plan, chunk, *, with_account):
        from calltrack.settings import get_settings

        local_stack.stack.client("dynamodb").put_item(
            TableName=get_settings().table_name("numbers"),
            Item={"number": {"S": number}, "account": {"S": other}, "kind": {"S": "static"},
                  "channel": {"S": "flyer"}},
        )
        return real(self, plan, chunk, with_account=with_account)

    monkeypatch.setattr(DynamoAdminStore, "_transact", taken_first)
    config = clinic_config(account)
    config["numbers"] = [{"number": number, "channel": "newspaper"}]
    resp = local_stack.request("PUT", f"/v1/accounts/{account}", token=local_stack.admin_token, json=config)
    monkeypatch.undo()
    # Then it is a 409 naming the number (not a 500), and the number stays the other account's
    assert resp.status_code == 409, resp.text
    assert number in resp.text
    assert _number_row(local_stack, number)["account"]["S"] == other


# --------------------------------------------------------------------------- who may apply


def test_account_admin_may_apply_its_own_account_but_not_another(local_stack):
    account = unique_account("self")
    config = clinic_config(account)
    local_stack.apply(config)
    admin = local_stack.create_token(account, "admin")
    config["ring_timeout"] = 30
    own = local_stack.request("PUT", f"/v1/accounts/{account}", token=admin, json=config)
    assert own.status_code == 200 and own.json()["changed"] is True and own.json()["version"] == 2
    other = unique_account("other")
    resp = local_stack.request("PUT", f"/v1/accounts/{other}", token=admin, json=clinic_config(other))
    assert resp.status_code == 403
    _assert_nothing_written(local_stack, other, [])


@pytest.mark.parametrize("role", ["manager", "marketer"])
def test_non_admin_roles_may_not_apply(local_stack, role):
    account = unique_account(role)
    config = clinic_config(account)
    local_stack.apply(config)
    token = local_stack.create_token(account, role)
    config["ring_timeout"] = 40
    resp = local_stack.request("PUT", f"/v1/accounts/{account}", token=token, json=config)
    assert resp.status_code == 403
    stored = local_stack.request("GET", f"/v1/accounts/{account}", token=token).json()
    assert stored["config"]["ring_timeout"] == 20


def test_only_admins_read_a_webhooks_url_others_see_where_it_goes(local_stack):
    # Given an account posting call events to a Slack-style hook (its URL is its only secret)
    account = unique_account("hooks")
    config = clinic_config(account)
    hook = "https://hooks.example.com/services/T000/B000/very-secret-part"
    config["webhooks"] = [{"id": "slack", "url": hook, "events": ["call.completed"], "secret": "slack"}]
    local_stack.apply(config)
    # When each role reads the account
    seen = {}
    for role in ("admin", "manager", "marketer"):
        token = local_stack.create_token(account, role)
        resp = local_stack.request("GET", f"/v1/accounts/{account}", token=token)
        assert resp.status_code == 200, resp.text
        seen[role] = resp.json()["config"]["webhooks"][0]["url"]
    operator = local_stack.request("GET", f"/v1/accounts/{account}", token=local_stack.admin_token)
    # Then the admin and the operator read the URL, managers and marketers only its host
    assert seen["admin"] == operator.json()["config"]["webhooks"][0]["url"] == hook
    for role in ("manager", "marketer"):
        assert seen[role].startswith("https://hooks.example.com/") and "very-secret" not in seen[role]


def test_operator_reading_a_missing_account_gets_404(local_stack):
    resp = local_stack.request(
        "GET", f"/v1/accounts/{unique_account('missing')}", token=local_stack.admin_token
    )
    assert resp.status_code == 404


def test_tokens_are_stored_only_as_their_hash(local_stack):
    account = unique_account("hash")
    local_stack.apply(clinic_config(account))
    token = local_stack.create_token(account, "marketer")
    digest = hashlib.sha256(token.encode()).hexdigest()
    row = _item(local_stack, "tokens", {"token_hash": digest})
    assert row is not None and row["account"]["S"] == account and row["role"]["S"] == "marketer"
    assert token not in str(row)
