"""Tokens and account isolation against the local stack (issue 2, part 4 Done-when on auth)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import unique_account, unique_number
from tests.support.accounts import account_config
from tests.support.cli import run_cli


def flyer_account(account: str) -> dict[str, Any]:
    """An account with one flyer number."""
    return account_config(account, numbers=[{"number": unique_number(), "channel": "flyer"}])


@pytest.fixture
def two_accounts(local_stack) -> tuple[str, str]:
    mine, theirs = unique_account("mine"), unique_account("theirs")
    local_stack.apply(flyer_account(mine))
    local_stack.apply(flyer_account(theirs))
    return mine, theirs


def test_token_created_with_the_cli_reads_its_own_account_and_not_another(local_stack, two_accounts):
    mine, theirs = two_accounts
    # When the operator creates a marketer token with the CLI
    result = run_cli(
        "token",
        "create",
        "--account",
        mine,
        "--role",
        "marketer",
        "--label",
        "dashboard",
        "--url",
        local_stack.url,
        "--token",
        local_stack.admin_token,
    )
    # Then stdout is only the token
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert result.stdout == token + "\n" and token.startswith("ct_")
    # And it reads its own account
    own = local_stack.request("GET", f"/v1/accounts/{mine}", token=token)
    assert own.status_code == 200 and own.json()["account"] == mine
    # And is refused on another account
    other = local_stack.request("GET", f"/v1/accounts/{theirs}", token=token)
    assert other.status_code == 403
    assert other.json()["error"] == "forbidden"
    # And listing accounts shows only its own
    listed = local_stack.request("GET", "/v1/accounts", token=token)
    assert listed.status_code == 200
    assert [a["account"] for a in listed.json()["accounts"]] == [mine]


def test_the_operator_lists_every_account(local_stack, two_accounts):
    resp = local_stack.request("GET", "/v1/accounts", token=local_stack.admin_token)
    assert resp.status_code == 200
    assert set(two_accounts) <= {a["account"] for a in resp.json()["accounts"]}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/accounts"),
        ("GET", "/v1/accounts/{a}"),
        ("PUT", "/v1/accounts/{a}"),
        ("POST", "/v1/accounts/{a}/tokens"),
    ],
)
def test_requests_without_a_token_get_401(local_stack, two_accounts, method, path):
    resp = local_stack.request(method, path.format(a=two_accounts[0]), json={"role": "admin"})
    assert resp.status_code == 401
    assert resp.json()["error"] == "unauthorized"


def test_an_unknown_token_gets_401(local_stack, two_accounts):
    resp = local_stack.request("GET", f"/v1/accounts/{two_accounts[0]}", token="ct_not-a-real-token")
    assert resp.status_code == 401


def test_a_token_of_another_account_gets_403_on_every_account_route(local_stack, two_accounts):
    mine, theirs = two_accounts
    admin = local_stack.create_token(mine, "admin")
    assert local_stack.request("GET", f"/v1/accounts/{theirs}", token=admin).status_code == 403
    put = local_stack.request("PUT", f"/v1/accounts/{theirs}", token=admin, json=flyer_account(theirs))
    assert put.status_code == 403
    assert (
        local_stack.request(
            "POST", f"/v1/accounts/{theirs}/tokens", token=admin, json={"role": "admin"}
        ).status_code
        == 403
    )


def test_an_account_admin_creates_tokens_for_its_own_account_only_lower_roles_cannot(
    local_stack, two_accounts
):
    mine, _ = two_accounts
    admin = local_stack.create_token(mine, "admin")
    resp = local_stack.request("POST", f"/v1/accounts/{mine}/tokens", token=admin, json={"role": "manager"})
    assert resp.status_code == 201
    assert set(resp.json()) == {"token", "id", "account", "role", "expires_at"}
    assert resp.json()["account"] == mine and resp.json()["role"] == "manager"
    manager = resp.json()["token"]
    refused = local_stack.request(
        "POST", f"/v1/accounts/{mine}/tokens", token=manager, json={"role": "admin"}
    )
    assert refused.status_code == 403


@pytest.mark.parametrize("body", [{"role": "owner"}, {"role": "operator"}, {}, {"role": "admin", "x": 1}, []])
def test_a_bad_role_or_body_is_a_400(local_stack, two_accounts, body):
    resp = local_stack.request(
        "POST", f"/v1/accounts/{two_accounts[0]}/tokens", token=local_stack.admin_token, json=body
    )
    assert resp.status_code == 400


def test_tokens_for_a_missing_account_are_refused_with_404(local_stack):
    resp = local_stack.request(
        "POST",
        f"/v1/accounts/{unique_account('ghost')}/tokens",
        token=local_stack.admin_token,
        json={"role": "admin"},
    )
    assert resp.status_code == 404


def test_cli_token_create_without_a_token_or_with_a_bad_role_exits_2(local_stack, two_accounts, monkeypatch):
    monkeypatch.delenv("CALLTRACK_TOKEN", raising=False)
    no_token = run_cli(
        "token", "create", "--account", two_accounts[0], "--role", "admin", "--url", local_stack.url
    )
    assert no_token.exit_code == 2 and no_token.stdout == ""
    refused = run_cli(
        "token",
        "create",
        "--account",
        two_accounts[0],
        "--role",
        "admin",
        "--url",
        local_stack.url,
        "--token",
        "ct_wrong",
    )
    assert refused.exit_code == 2 and "401" in refused.stderr and refused.stdout == ""


def test_cli_reads_url_and_token_from_the_environment(local_stack, two_accounts, monkeypatch):
    monkeypatch.setenv("CALLTRACK_URL", local_stack.url)
    monkeypatch.setenv("CALLTRACK_TOKEN", local_stack.admin_token)
    result = run_cli("token", "create", "--account", two_accounts[0], "--role", "manager")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert local_stack.request("GET", f"/v1/accounts/{two_accounts[0]}", token=token).status_code == 200


def test_tokens_are_listed_without_secrets_and_a_revoked_token_gets_401_at_once(local_stack):
    # Given an account with an admin token and a labelled marketer token that has been used
    account = unique_account("tok")
    local_stack.apply(account_config(account))
    admin = local_stack.create_token(account, "admin")
    made = local_stack.request("POST", f"/v1/accounts/{account}/tokens", token=admin,
                               json={"role": "marketer", "label": "looker", "expires_in_days": 30})
    assert made.status_code == 201, made.text
    marketer = made.json()["token"]
    assert local_stack.request("GET", "/v1/calls", token=marketer).status_code == 200
    # When the admin lists the tokens
    listed = local_stack.request("GET", f"/v1/accounts/{account}/tokens", token=admin)
    # Then each shows id, label, role, created, last used and expiry, never the secret
    assert listed.status_code == 200, listed.text
    rows = {t["id"]: t for t in listed.json()["tokens"]}
    row = rows[made.json()["id"]]
    assert row["label"] == "looker" and row["role"] == "marketer"
    assert row["last_used_at"] and row["expires_at"] and row["created_at"]
    assert marketer not in listed.text
    # When the admin revokes it, Then the very next request with it is refused
    gone = local_stack.request("DELETE", f"/v1/accounts/{account}/tokens/{row['id']}", token=admin)
    assert gone.status_code == 200, gone.text
    assert local_stack.request("GET", "/v1/calls", token=marketer).status_code == 401
    assert local_stack.request("DELETE", f"/v1/accounts/{account}/tokens/{row['id']}",
                               token=admin).status_code == 404
