"""Console sign-in (issue 23): Cognito users in ``<account>:<role>`` groups reach the same API as
bearer tokens, with the same account and role scoping, through an HttpOnly session cookie or a
bearer ID token; tokens are verified against the pool's keys, audience and expiry."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from tests.support import unique_account, unique_number
from tests.support.accounts import account_config
from tests.support.cognito import (
    create_console_user,
    expired_id_token,
    forged_id_token,
    session_token,
    sign_in,
)
from tests.support.stack import tokens
from tests.support.twilio import voice_form

CONSOLE = {"X-Calltrack-Console": "1"}


@pytest.fixture(scope="module")
def world(local_stack):
    account, other = unique_account("console"), unique_account("console-other")
    number, other_number = unique_number(), unique_number()
    local_stack.apply(
        account_config(
            account, language="en-US", numbers=[{"number": number, "channel": "flyer", "campaign": "c1"}]
        )
    )
    local_stack.apply(account_config(other, numbers=[{"number": other_number, "channel": "radio"}]))
    form = voice_form(number, caller="+819011112222")
    assert local_stack.twilio_post("/twilio/voice", form).status_code == 200
    other_form = voice_form(other_number)
    assert local_stack.twilio_post("/twilio/voice", other_form).status_code == 200
    users = {role: create_console_user(local_stack, account, role) for role in ("manager", "marketer")}
    users["other"] = create_console_user(local_stack, other, "manager")
    return {
        "account": account,
        "other": other,
        "sid": form["CallSid"],
        "other_sid": other_form["CallSid"],
        "users": users,
    }


def cookie(token: str) -> dict[str, str]:
    return {"Cookie": f"ct_session={token}"}


def test_a_manager_signs_in_and_reads_calls_with_the_http_only_cookie(local_stack, world):
    # Given a manager of the account
    email, password = world["users"]["manager"]
    # When they sign in
    resp = sign_in(local_stack, email, password)
    # Then the answer says who they are, in the account's language, and sets a cookie no script reads
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["email"], body["account"], body["role"], body["language"]) == (
        email,
        world["account"],
        "manager",
        "en",
    )
    assert body["expires_at"]
    set_cookie = resp.headers["Set-Cookie"]
    assert set_cookie.startswith("ct_session=")
    for flag in ("HttpOnly", "SameSite=Strict", "Path=/"):
        assert flag in set_cookie
    assert resp.headers["Cache-Control"] == "no-store"
    # And the cookie reads the account's calls, with caller numbers in full for a manager
    token = resp.cookies["ct_session"]
    calls = local_stack.request("GET", "/v1/calls", headers=cookie(token))
    assert calls.status_code == 200, calls.text
    assert [c["call_sid"] for c in calls.json()["items"]] == [world["sid"]]
    assert calls.json()["items"][0]["caller"] == "+819011112222"
    # And GET /v1/session describes the session; a bearer ID token works like the cookie
    assert local_stack.request("GET", "/v1/session", headers=cookie(token)).json()["role"] == "manager"
    assert local_stack.request("GET", "/v1/calls", token=token).status_code == 200
    # (and the stack client other tests share holds no session: they stay signed out)
    assert "ct_session" not in local_stack.session.cookies


def test_a_marketer_sees_masked_numbers_and_may_not_listen(local_stack, world):
    token = session_token(local_stack, *world["users"]["marketer"])
    item = local_stack.request("GET", "/v1/calls", headers=cookie(token)).json()["items"][0]
    assert item["caller"] != "+819011112222" and item["caller"].endswith("2222")
    listen = local_stack.request("GET", f"/v1/calls/{world['sid']}/recording", headers=cookie(token))
    assert listen.status_code == 403
    score = local_stack.request(
        "PATCH", f"/v1/calls/{world['sid']}", json={"score": 80}, headers={**cookie(token), **CONSOLE}
    )
    assert score.status_code == 403


def test_a_user_of_another_account_sees_none_of_it(local_stack, world):
    token = session_token(local_stack, *world["users"]["other"])
    assert [
        c["call_sid"] for c in local_stack.request("GET", "/v1/calls", headers=cookie(token)).json()["items"]
    ] == [world["other_sid"]]
    assert local_stack.request("GET", f"/v1/calls/{world['sid']}", headers=cookie(token)).status_code == 404
    scoped = local_stack.request(
        "GET", "/v1/calls", params={"account": world["account"]}, headers=cookie(token)
    )
    assert scoped.status_code == 403
    patch = local_stack.request(
        "PATCH", f"/v1/calls/{world['sid']}", json={"stage": "won"}, headers={**cookie(token), **CONSOLE}
    )
    assert patch.status_code == 404


def test_a_cookie_write_needs_the_console_header(local_stack, world):
    token = session_token(local_stack, *world["users"]["manager"])
    bare = local_stack.request(
        "PATCH", f"/v1/calls/{world['sid']}", json={"stage": "lead"}, headers=cookie(token)
    )
    assert bare.status_code == 403 and "x-calltrack-console" in bare.json()["message"]
    ok = local_stack.request(
        "PATCH", f"/v1/calls/{world['sid']}", json={"stage": "lead"}, headers={**cookie(token), **CONSOLE}
    )
    assert ok.status_code == 200 and ok.json()["stage"] == "lead"


def test_a_wrong_password_and_an_unknown_user_are_refused_alike(local_stack, world):
    email, _ = world["users"]["manager"]
    wrong = sign_in(local_stack, email, "not-the-password")
    nobody = sign_in(local_stack, "nobody@example.com", "whatever-1")
    assert wrong.status_code == nobody.status_code == 401
    assert wrong.json()["message"] == nobody.json()["message"]
    assert "Set-Cookie" not in wrong.headers
    missing = local_stack.request("POST", "/v1/session", json={"email": email})
    assert missing.status_code == 400 and missing.json()["field"] == "password"


@pytest.mark.parametrize("how", ["expired", "other key", "other client", "access token", "other pool"])
def test_tokens_the_pool_did_not_issue_now_for_this_console_are_refused(local_stack, world, how):
    email, _ = world["users"]["manager"]
    group = {"email": email, "cognito:groups": [f"{world['account']}:manager"]}
    if how == "expired":
        token = expired_id_token(local_stack, email, world["account"], "manager")
    elif how == "other key":
        from joserfc import jwk

        token = forged_id_token(local_stack, group, key=jwk.RSAKey.generate_key(2048))
    elif how == "other client":
        token = forged_id_token(local_stack, {**group, "aud": "another-client"})
    elif how == "access token":
        token = forged_id_token(local_stack, {**group, "token_use": "access"})
    else:
        token = forged_id_token(
            local_stack, {**group, "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_other"}
        )
    for headers in (cookie(token), {"Authorization": f"Bearer {token}"}):
        resp = local_stack.request("GET", "/v1/calls", headers=headers)
        assert resp.status_code == 401, (how, resp.text)
    # (the same claims signed by the pool's key are accepted: the refusal is the claim, not the forge)
    assert (
        local_stack.request(
            "GET", "/v1/calls", headers=cookie(forged_id_token(local_stack, group))
        ).status_code
        == 200
    )


def test_sign_out_clears_the_cookie(local_stack, world):
    resp = local_stack.request("DELETE", "/v1/session")
    assert resp.status_code == 204
    assert resp.headers["Set-Cookie"].startswith("ct_session=;") and "Max-Age=0" in resp.headers["Set-Cookie"]


def test_signing_out_ends_that_session_on_the_server_and_no_other(local_stack, world):
    # Given a manager signed in on two devices (two sessions), and a copy of the first's cookie
    email, password = world["users"]["manager"]
    laptop = session_token(local_stack, email, password)
    phone = session_token(local_stack, email, password)
    assert local_stack.request("GET", "/v1/calls", headers=cookie(laptop)).status_code == 200
    # When they sign out on the laptop
    out = local_stack.request("DELETE", "/v1/session", headers={**cookie(laptop), **CONSOLE})
    assert out.status_code == 204
    # Then the copied cookie, though its token has not expired, no longer reads anything
    refused = local_stack.request("GET", "/v1/calls", headers=cookie(laptop))
    assert refused.status_code == 401 and "session ended" in refused.text
    assert local_stack.request("GET", "/v1/calls", token=laptop).status_code == 401
    # And the phone's session goes on, and the sign-out is in the audit trail
    assert local_stack.request("GET", "/v1/calls", headers=cookie(phone)).status_code == 200
    admin = tokens(local_stack, world["account"], "admin")["admin"]
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    audit = local_stack.request("GET", f"/v1/audit?from={today}&to={today}", token=admin)
    assert audit.status_code == 200, audit.text
    assert ("session.delete", email) in {(e["action"], e.get("label")) for e in audit.json()["items"]}


def test_an_account_admin_manages_the_accounts_console_users(local_stack, world):
    # Given an account admin token (and a marketer's)
    toks = tokens(local_stack, world["account"], "admin", "marketer")
    email = f"new-{unique_number()[-6:]}@example.com"
    # When the admin creates a manager
    made = local_stack.request(
        "POST",
        f"/v1/accounts/{world['account']}/users",
        token=toks["admin"],
        json={"email": email.upper(), "role": "manager", "password": "Pass-word-1"},
    )
    assert made.status_code == 201, made.text
    assert made.json() == {
        "account": world["account"],
        "email": email,
        "role": "manager",
        "enabled": True,
        "status": "CONFIRMED",
    }
    # Then the list shows them, and they can sign in
    listed = local_stack.request("GET", f"/v1/accounts/{world['account']}/users", token=toks["admin"]).json()
    assert {u["email"]: u["role"] for u in listed["users"]}[email] == "manager"
    signed_in = sign_in(local_stack, email, "Pass-word-1")
    assert signed_in.status_code == 200
    live = signed_in.cookies["ct_session"]
    assert local_stack.request("GET", "/v1/calls", headers=cookie(live)).status_code == 200
    # When they are disabled, Then they cannot sign in any more
    off = local_stack.request(
        "POST", f"/v1/accounts/{world['account']}/users/{email}/disable", token=toks["admin"]
    )
    assert off.status_code == 200 and off.json()["enabled"] is False
    assert "sub" not in off.json()
    assert sign_in(local_stack, email, "Pass-word-1").status_code == 401
    # And the session they already hold is refused at once, not when its token expires
    for path in ("/v1/calls", "/v1/session"):
        refused = local_stack.request("GET", path, headers=cookie(live))
        assert refused.status_code == 401 and "disabled" in refused.json()["message"], refused.text
    assert local_stack.request("GET", "/v1/calls", token=live).status_code == 401
    # while the account's other console users go on working
    manager = session_token(local_stack, *world["users"]["manager"])
    assert local_stack.request("GET", "/v1/calls", headers=cookie(manager)).status_code == 200
    # And the audit trail has the sign-in and the disable, by whom
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    audit = local_stack.request("GET", f"/v1/audit?from={today}&to={today}", token=toks["admin"])
    assert audit.status_code == 200, audit.text
    actions = {(e["action"], e.get("label")) for e in audit.json()["items"]}
    assert ("session.create", email) in actions
    assert any(action == "user.disable" for action, _ in actions)
    # And a marketer may not manage users; another account's admin may not touch this account
    users_path = f"/v1/accounts/{world['account']}/users"
    assert local_stack.request("GET", users_path, token=toks["marketer"]).status_code == 403
    other_admin = tokens(local_stack, world["other"], "admin")["admin"]
    assert local_stack.request("GET", users_path, token=other_admin).status_code == 403
    # And an address already used by another account is refused, naming the field
    taken = local_stack.request(
        "POST",
        f"/v1/accounts/{world['other']}/users",
        token=other_admin,
        json={"email": email, "role": "manager"},
    )
    assert taken.status_code == 409 and taken.json()["field"] == "email"
    bad = local_stack.request(
        "POST",
        f"/v1/accounts/{world['account']}/users",
        token=toks["admin"],
        json={"email": "x@example.com", "role": "owner"},
    )
    assert bad.status_code == 400 and bad.json()["field"] == "role"
    # And an address Cognito cannot take as a user name (over 128 characters, a control character)
    # is a 400 naming email, to create or to disable (Cognito would refuse it: a 500 before)
    users = f"/v1/accounts/{world['account']}/users"
    controls = ("a\u0001b@example.com", "a\u0080b@example.com", "a\u200bb@example.com")
    for address in ("a@b." + "c" * 130, *controls):
        made = local_stack.request("POST", users, token=toks["admin"],
                                   json={"email": address, "role": "manager"})
        gone = local_stack.request("POST", f"{users}/{quote(address, safe='@')}/disable", token=toks["admin"])
        assert (made.status_code, made.json()["field"]) == (400, "email"), made.text
        assert (gone.status_code, gone.json()["field"]) == (400, "email"), gone.text


def test_the_users_cli_creates_lists_and_disables_console_users(local_stack, world):
    from tests.support.cli import run_cli

    # Given an account admin's token
    admin = tokens(local_stack, world["account"], "admin")["admin"]
    where = ["--account", world["account"], "--url", local_stack.url, "--token", admin]
    email = f"cli-{unique_number()[-6:]}@example.com"
    # When the admin creates a marketer with a password from stdin
    made = run_cli(
        "users",
        "create",
        *where,
        "--role",
        "marketer",
        "--email",
        email,
        "--password-stdin",
        input="Cli-pass-word-7\n",
    )
    assert made.exit_code == 0, made.output
    assert f"{email} is a console marketer" in made.stdout
    # Then the list shows them, and they sign in as a marketer
    listed = run_cli("users", "list", *where)
    assert f"{email}\tmarketer\tenabled" in listed.stdout
    assert sign_in(local_stack, email, "Cli-pass-word-7").json()["role"] == "marketer"
    # When they are disabled, Then sign-in is refused
    off = run_cli("users", "disable", *where, "--email", email)
    assert off.exit_code == 0 and "disabled" in off.stdout
    assert sign_in(local_stack, email, "Cli-pass-word-7").status_code == 401
    # And a bad role or a weak password is refused with exit code 2 naming what is wrong
    bad = run_cli("users", "create", *where, "--role", "owner", "--email", email)
    assert bad.exit_code == 2 and "--role" in bad.stderr
    weak = run_cli(
        "users",
        "create",
        *where,
        "--role",
        "manager",
        "--email",
        f"w{email}",
        "--password-stdin",
        input="short\n",
    )
    assert weak.exit_code == 2 and "password" in weak.stderr
