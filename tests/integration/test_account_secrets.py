"""Account secrets: write-only through the API and the CLI, kept as SSM SecureStrings."""

from __future__ import annotations

import json

from calltrack.account_secrets import AccountSecrets
from tests.support.account_secrets import set_account_secret
from tests.support.cli import run_cli
from tests.support.stack import apply_account, tokens


def test_a_secret_set_with_the_cli_is_a_securestring_and_never_shown_again(local_stack):
    # Given an account and its admin token
    account = apply_account(local_stack, "secrets")
    admin = tokens(local_stack, account, "admin")["admin"]
    # When its admin sets a secret with the CLI, the value on stdin (with echo's newline)
    result = run_cli("secret", "set", "--account", account, "meta", "--url", local_stack.url,
                     "--token", admin, input="EAAB-meta-token-value\n")
    # Then it is stored as the SecureString /calltrack/{account}/meta, without the newline
    assert result.exit_code == 0, result.output
    assert "EAAB" not in result.output
    ssm = local_stack.stack.client("ssm")
    param = ssm.get_parameter(Name=f"/calltrack/{account}/meta", WithDecryption=True)["Parameter"]
    assert param["Type"] == "SecureString" and param["Value"] == "EAAB-meta-token-value"
    # And a reader gets the value through calltrack.account_secrets
    assert AccountSecrets(ssm).get(account, "meta") == "EAAB-meta-token-value"
    assert AccountSecrets(ssm).get(account, "ga4") is None
    # And listing shows names and update times only, through the API and the CLI
    set_account_secret(local_stack, account, "ga4", "mp-secret")
    listed = local_stack.request("GET", f"/v1/accounts/{account}/secrets", token=admin)
    assert listed.status_code == 200
    body = listed.json()
    assert [s["name"] for s in body["secrets"]] == ["ga4", "meta"]
    assert all(set(s) == {"name", "updated_at"} for s in body["secrets"])
    assert "mp-secret" not in listed.text and "EAAB" not in listed.text
    shown = run_cli("secret", "list", "--account", account, "--url", local_stack.url, "--token", admin,
                    "--json")
    assert shown.exit_code == 0 and json.loads(shown.stdout)["secrets"] == body["secrets"]


def test_secrets_are_for_the_accounts_own_admin_and_bad_input_names_the_field(local_stack):
    # Given two accounts with tokens of each role
    mine = apply_account(local_stack, "secrets-mine")
    theirs = apply_account(local_stack, "secrets-theirs")
    mine_tokens = tokens(local_stack, mine, "admin", "manager", "marketer")
    path = f"/v1/accounts/{mine}/secrets"
    # Then a manager or marketer may neither set nor list them
    for role in ("manager", "marketer"):
        put = local_stack.request("PUT", f"{path}/meta", token=mine_tokens[role], json={"value": "x"})
        assert put.status_code == 403
        assert local_stack.request("GET", path, token=mine_tokens[role]).status_code == 403
    # And an admin of one account cannot touch another's
    other = local_stack.request("PUT", f"/v1/accounts/{theirs}/secrets/meta", token=mine_tokens["admin"],
                                json={"value": "x"})
    assert other.status_code == 403
    # And bad input is a 400 naming the field, never stored
    cases = [
        ("Bad_Name", {"value": "x"}, "name"),
        ("meta", {"value": ""}, "value"),
        ("meta", {"value": 42}, "value"),
        ("meta", {"value": "x" * 5000}, "value"),
        ("meta", {"value": "x", "extra": 1}, "extra"),
        ("meta", {"value": "half a pair \ud800"}, "value"),  # escaped by requests: valid JSON, no UTF-8
    ]
    for name, body, field in cases:
        resp = local_stack.request("PUT", f"{path}/{name}", token=mine_tokens["admin"], json=body)
        assert resp.status_code == 400 and resp.json()["field"] == field, (name, body, resp.text)
    assert local_stack.request("GET", path, token=mine_tokens["admin"]).json()["secrets"] == []
    # And an account that does not exist is a 404
    missing = local_stack.request("PUT", "/v1/accounts/no-such-account/secrets/meta",
                                  token=local_stack.admin_token, json={"value": "x"})
    assert missing.status_code == 404
    # And the CLI refuses an empty value with exit 2 before sending anything
    empty = run_cli("secret", "set", "--account", mine, "meta", "--url", local_stack.url,
                    "--token", mine_tokens["admin"], input="")
    assert empty.exit_code == 2 and "empty" in empty.output
