"""`calltrack numbers sync|search|buy|release` against the fake Twilio REST API and the local stack."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import requests

from calltrack_cli.twilio_numbers import stack_webhooks
from tests.support import unique_number
from tests.support.cli import run_cli
from tests.support.stack import apply_account, tokens
from tests.support.twilio import dial_of, sign, signed_post, voice_form
from tests.support.twilio_numbers import ELSEWHERE, OUR, pointing_at, serve_twilio_numbers

fake = pytest.fixture(scope="module", name="fake")(serve_twilio_numbers)
BUNDLE = "BU" + "1" * 32
ADDRESS = "AD" + "2" * 32


def _cli(stack, *args, token=None):
    return run_cli(*args, "--url", stack.url, "--token", token or stack.admin_token)


def _pool(numbers):
    return {
        "id": "google-ads",
        "channel": "google-ads",
        "match": {"utm_source": "google"},
        "numbers": numbers,
    }


def test_sync_fixes_drifted_numbers_and_reports_missing_ones(local_stack, fake):
    # Given an account whose static number points at another tracker in Twilio, whose pool number
    # points here already, and whose second pool number is not in the Twilio account at all
    # (and a second static number pointing here, but still on the SIP trunk of the old PBX)
    drifted, fine, missing, trunked = unique_number(), unique_number(), unique_number(), unique_number()
    account = apply_account(
        local_stack,
        "sync",
        numbers=[{"number": drifted, "channel": "flyer"}, {"number": trunked, "channel": "signboard"}],
        pools=[_pool([fine, missing])],
    )
    fake.numbers.add_number(OUR, drifted, **ELSEWHERE, voice_application_sid="AP" + "3" * 32)
    fake.numbers.add_number(OUR, fine, **pointing_at(local_stack))
    fake.numbers.add_number(OUR, trunked, **pointing_at(local_stack), trunk_sid="TK" + "4" * 32)
    # When sync runs with --dry-run
    dry = _cli(local_stack, "numbers", "sync", "--account", account, "--dry-run", "--json")
    # Then it reports the drift and the missing number (exit 2) and changes nothing at Twilio
    assert dry.exit_code == 2, dry.output
    rows = {r["number"]: r for r in json.loads(dry.stdout)["numbers"]}
    assert {n: r["status"] for n, r in rows.items()} == {
        drifted: "drifted",
        fine: "ok",
        missing: "missing",
        trunked: "drifted",
    }
    assert rows[trunked]["changes"] == {"TrunkSid": {"from": "TK" + "4" * 32, "to": ""}}
    assert rows[drifted]["changes"]["VoiceUrl"] == {
        "from": ELSEWHERE["voice_url"],
        "to": f"{local_stack.public_url}/twilio/voice",
    }
    assert fake.numbers.number(drifted)["voice_url"] == ELSEWHERE["voice_url"]
    # When it runs for real
    done = _cli(local_stack, "numbers", "sync", "--account", account)
    # Then the drifted number points at this stack (voice, status callback, fallback, all POST, no app)
    assert done.exit_code == 2, done.output
    assert "missing" in done.stdout and missing in done.stdout and "fixed" in done.stdout
    now = fake.numbers.number(drifted)
    assert {k: now[k] for k in pointing_at(local_stack)} == pointing_at(local_stack)
    assert now["voice_application_sid"] == ""
    # And the trunk no longer takes the other number's calls
    assert not fake.numbers.number(trunked)["trunk_sid"]
    # And a second run finds only the missing number wrong; without it the run is green
    again = json.loads(_cli(local_stack, "numbers", "sync", "--account", account, "--json").stdout)
    assert {r["number"]: r["status"] for r in again["numbers"]} == {
        drifted: "ok",
        fine: "ok",
        missing: "missing",
        trunked: "ok",
    }
    local_stack.apply(
        {
            "account": account,
            "forward_to": "+81312345678",
            "numbers": [{"number": drifted, "channel": "flyer"}, {"number": trunked, "channel": "signboard"}],
            "pools": [_pool([fine])],
        }
    )
    assert _cli(local_stack, "numbers", "sync", "--account", account).exit_code == 0


def test_sync_points_numbers_at_the_url_the_stack_signs_not_at_the_api_url(local_stack, fake, monkeypatch):
    # Given a stack reached under another name than the one it checks Twilio's signatures against
    # (a custom domain's stack reached at its execute-api URL), and no --public-url or
    # CALLTRACK_PUBLIC_URL: the stack says which URL it signs, to any token of its own
    flyer = unique_number()
    account = apply_account(local_stack, "signed", numbers=[{"number": flyer, "channel": "flyer"}])
    marketer = tokens(local_stack, account, "marketer")["marketer"]
    said = local_stack.request("GET", "/v1/stack", token=marketer)
    assert said.status_code == 200 and said.json() == {"public_url": local_stack.public_url}
    assert local_stack.request("GET", "/v1/stack").status_code == 401
    fake.numbers.add_number(OUR, flyer, **ELSEWHERE)
    other_name = local_stack.url.replace("127.0.0.1", "localhost")
    monkeypatch.delenv("CALLTRACK_PUBLIC_URL", raising=False)
    # When sync runs against that name
    reached_there = ("--account", account, "--url", other_name, "--token", local_stack.admin_token)
    done = run_cli("numbers", "sync", *reached_there)
    # Then the number points at the URL the stack signs, where its calls are accepted
    assert done.exit_code == 0, done.output
    assert fake.numbers.number(flyer)["voice_url"] == f"{local_stack.public_url}/twilio/voice"
    # (a call Twilio signs over that URL, as Twilio signs, is answered with the forward)
    voice_url = fake.numbers.number(flyer)["voice_url"]
    form = voice_form(to=flyer)
    call = requests.post(
        local_stack.url + "/twilio/voice",
        data=form,
        headers={"X-Twilio-Signature": sign(local_stack.twilio_auth_token, voice_url, form)},
        timeout=30,
    )
    assert dial_of(call) is not None
    # And a --public-url the stack does not sign is refused before Twilio is touched
    insert = unique_number()
    other = apply_account(local_stack, "signed", numbers=[{"number": insert, "channel": "insert"}])
    fake.numbers.add_number(OUR, insert, **ELSEWHERE)
    wrong = run_cli(
        "numbers", "sync", "--account", other, *reached_there[2:], "--public-url", other_name
    )
    assert wrong.exit_code == 2
    refusal = f"not the URL this stack checks Twilio's signatures against ({local_stack.public_url})"
    assert refusal in wrong.output
    assert fake.numbers.number(insert)["voice_url"] == ELSEWHERE["voice_url"]


def test_sync_with_credentials_twilio_refuses_exits_2(local_stack, fake, monkeypatch):
    account = apply_account(
        local_stack, "sync-auth", numbers=[{"number": unique_number(), "channel": "flyer"}]
    )
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "not-the-token")
    result = _cli(local_stack, "numbers", "sync", "--account", account)
    assert result.exit_code == 2
    assert "refused the credentials" in result.output
    assert fake.requests[-1].status == 401


def test_the_fake_refuses_japanese_numbers_without_bundle_and_address_like_twilio(fake):
    # A 070 number: it stays available in the module's fake, and must not match the buy test's 0505
    number = unique_number("+8170")
    fake.numbers.add_available("JP", [number])
    url = f"{fake.base_url}/2010-04-01/Accounts/{OUR}/IncomingPhoneNumbers.json"
    auth = (OUR, "calltrack-local-twilio-auth-token")
    no_bundle = requests.post(url, data={"PhoneNumber": number, "AddressSid": ADDRESS}, auth=auth, timeout=5)
    assert no_bundle.status_code == 400 and no_bundle.json()["code"] == 21649
    no_address = requests.post(url, data={"PhoneNumber": number, "BundleSid": BUNDLE}, auth=auth, timeout=5)
    assert no_address.status_code == 400 and no_address.json()["code"] == 21631
    bad_url = requests.post(
        url,
        data={"PhoneNumber": number, "BundleSid": BUNDLE, "AddressSid": ADDRESS, "VoiceUrl": "not a url"},
        auth=auth,
        timeout=5,
    )
    assert bad_url.status_code == 400 and bad_url.json()["code"] == 21402
    assert requests.get(url, auth=(OUR, "wrong"), timeout=5).status_code == 401
    assert fake.numbers.number(number) is None


def test_buy_adds_numbers_to_a_pool_and_syncs_them(local_stack, fake):
    # Given an account with a one-number pool, and Japanese 050 numbers available at Twilio
    first = unique_number()
    account = apply_account(local_stack, "buy", pools=[_pool([first])])
    admin = tokens(local_stack, account, "admin")["admin"]
    fake.numbers.add_number(OUR, first, **pointing_at(local_stack))
    stock = sorted(unique_number("+81505") for _ in range(3))
    fake.numbers.add_available("JP", stock, locality="Tokyo")
    found = run_cli("numbers", "search", "--country", "JP", "--contains", "+81505*", "--json")
    assert found.exit_code == 0 and {n["phone_number"] for n in json.loads(found.stdout)} >= set(stock)
    buy = (
        "numbers",
        "buy",
        "--account",
        account,
        "--pool",
        "google-ads",
        "--count",
        "2",
        "--contains",
        "+81505*",
    )
    # When buy runs without --apply
    shown = _cli(local_stack, *buy, token=admin)
    # Then it shows the config diff and buys nothing
    assert shown.exit_code == 0, shown.output
    added = [line for line in shown.stdout.splitlines() if line.startswith("+  -")]
    assert len(added) == 2 and all(any(n in line for n in stock) for line in added)
    assert "--bundle-sid" in shown.stdout and fake.numbers.purchases == []
    # When --apply is given without the bundle and address Japan requires, it refuses before buying
    refused = _cli(local_stack, *buy, "--apply", token=admin)
    assert refused.exit_code == 2 and "--bundle-sid" in refused.output and fake.numbers.purchases == []
    # When it is applied with them
    done = _cli(local_stack, *buy, "--apply", "--bundle-sid", BUNDLE, "--address-sid", ADDRESS, token=admin)
    # Then two numbers are bought with the bundle and address, already pointing at this stack
    assert done.exit_code == 0, done.output
    assert len(fake.numbers.purchases) == 2
    bought = [p["PhoneNumber"] for p in fake.numbers.purchases]
    for number in bought:
        resource = fake.numbers.number(number)
        assert resource["bundle_sid"] == BUNDLE and resource["address_sid"] == ADDRESS
        assert {k: resource[k] for k in pointing_at(local_stack)} == pointing_at(local_stack)
    # And they are in the pool of the stored config
    config = local_stack.request("GET", f"/v1/accounts/{account}", token=admin).json()["config"]
    assert config["pools"][0]["numbers"] == [first, *bought]
    # And a call to a bought number is forwarded by the stack at once
    resp = signed_post(local_stack, "/twilio/voice", voice_form(bought[0]), at=datetime.now(UTC))
    assert dial_of(resp) is not None
    assert fake.numbers.purchases[0]["VoiceUrl"] == stack_webhooks(local_stack.public_url)["VoiceUrl"]


def test_a_buy_keeps_a_change_applied_while_it_was_buying(local_stack, fake):
    # Given an account with a one-number pool, and a number available at Twilio
    first = unique_number()
    account = apply_account(local_stack, "buy-race", pools=[_pool([first])])
    admin = tokens(local_stack, account, "admin")["admin"]
    stock = unique_number("+81505")
    fake.numbers.add_available("JP", [stock], locality="Tokyo")
    # And a colleague who applies a new name for the account while the purchase is under way
    config = local_stack.request("GET", f"/v1/accounts/{account}", token=admin).json()["config"]

    def colleague_applies() -> None:
        renamed = {**config, "name": "Renamed while buying"}
        resp = local_stack.request("PUT", f"/v1/accounts/{account}", token=admin, json=renamed)
        assert resp.status_code == 200, resp.text

    fake.numbers.during_purchase.append(colleague_applies)
    # When the number is bought into the pool
    done = _cli(local_stack, "numbers", "buy", "--account", account, "--pool", "google-ads", "--count", "1",
                "--contains", stock, "--apply", "--bundle-sid", BUNDLE, "--address-sid", ADDRESS, token=admin)
    # Then the config has both the colleague's change and the bought number
    assert done.exit_code == 0, done.output
    assert "changed meanwhile" in done.stderr
    after = local_stack.request("GET", f"/v1/accounts/{account}", token=admin).json()["config"]
    assert after["name"] == "Renamed while buying"
    assert after["pools"][0]["numbers"] == [first, stock]


def test_an_apply_that_expects_another_version_is_a_409_naming_it(local_stack):
    account = apply_account(local_stack, "expect")
    admin = tokens(local_stack, account, "admin")["admin"]
    read = local_stack.request("GET", f"/v1/accounts/{account}", token=admin).json()
    changed = {**read["config"], "name": "Second name"}
    stale = local_stack.request("PUT", f"/v1/accounts/{account}", token=admin, json=changed,
                                params={"expected_version": str(read["version"] + 1)})
    assert stale.status_code == 409 and stale.json()["field"] == "expected_version", stale.text
    bad = local_stack.request("PUT", f"/v1/accounts/{account}", token=admin, json=changed,
                              params={"expected_version": "²"})
    assert bad.status_code == 400 and bad.json()["field"] == "expected_version", bad.text
    ok = local_stack.request("PUT", f"/v1/accounts/{account}", token=admin, json=changed,
                             params={"expected_version": str(read["version"])})
    assert ok.status_code == 200 and ok.json()["version"] == read["version"] + 1, ok.text


def test_buy_into_a_pool_the_config_does_not_have_is_refused(local_stack, fake):
    account = apply_account(local_stack, "buy-nopool")
    fake.numbers.add_available("US", ["+14155550123"])
    result = _cli(
        local_stack,
        "numbers",
        "buy",
        "--account",
        account,
        "--pool",
        "yahoo",
        "--country",
        "US",
        "--area-code",
        "415",
        "--apply",
    )
    assert result.exit_code == 2 and "no pool 'yahoo'" in result.output
    assert fake.numbers.number("+14155550123") is None


def test_release_gives_back_only_numbers_no_config_uses(local_stack, fake):
    # Given a number in an account's config and one that was removed from it, both at Twilio
    kept, removed = unique_number(), unique_number()
    account = apply_account(local_stack, "release", numbers=[{"number": kept, "channel": "flyer"}])
    admin = tokens(local_stack, account, "admin")["admin"]
    for number in (kept, removed):
        fake.numbers.add_number(OUR, number, **pointing_at(local_stack))
    # Then the operator's sync lists the removed number as calling this stack unused
    listed = _cli(local_stack, "numbers", "sync", "--dry-run", "--json")
    statuses = {
        r["number"]: r["status"] for r in json.loads(listed.stdout.strip().splitlines()[-1])["numbers"]
    }
    assert (statuses[removed], statuses[kept]) == ("unused", "ok")
    # And a configured number is refused, and an account token may not release at all
    assert _cli(local_stack, "numbers", "release", kept, "--apply").exit_code == 2
    assert fake.numbers.number(kept) is not None
    assert _cli(local_stack, "numbers", "release", removed, "--apply", token=admin).exit_code == 2
    # And without --apply nothing is released; with it the removed number goes back to Twilio
    shown = _cli(local_stack, "numbers", "release", removed)
    assert (
        shown.exit_code == 0 and "would release" in shown.stdout and fake.numbers.number(removed) is not None
    )
    done = _cli(local_stack, "numbers", "release", removed, "--apply")
    assert done.exit_code == 0, done.output
    assert fake.numbers.number(removed) is None and fake.numbers.number(kept) is not None


@pytest.mark.parametrize(
    ("reply", "told"), [(0, "cannot reach Twilio"), (502, "Twilio 502"), (503, "Twilio 503")]
)
def test_a_purchase_whose_reply_is_lost_still_lands_in_the_config(local_stack, fake, reply, told):
    # Given a pool to buy into, and Twilio that buys the first number but whose reply never arrives
    # (or is a 502: Twilio's own error after it acted)
    account = apply_account(local_stack, "buy-lost", pools=[_pool([unique_number()])])
    admin = tokens(local_stack, account, "admin")["admin"]
    stock = sorted(unique_number("+81506") for _ in range(2))
    fake.numbers.add_available("JP", stock, locality="Tokyo")
    fake.numbers.purchase_replies = [reply]
    before = len(fake.numbers.purchases)
    # When two numbers are bought
    result = _cli(local_stack, "numbers", "buy", "--account", account, "--pool", "google-ads", "--count", "2",
                  "--contains", "+81506*", "--apply", "--bundle-sid", BUNDLE, "--address-sid", ADDRESS,
                  token=admin)
    # Then the number Twilio did buy is found and put in the config, and the user is told what failed
    assert result.exit_code == 2, result.output
    [bought] = [p["PhoneNumber"] for p in fake.numbers.purchases[before:]]
    assert f"bought only {bought}" in result.stderr and told in result.stderr
    config = local_stack.request("GET", f"/v1/accounts/{account}", token=admin).json()["config"]
    assert bought in config["pools"][0]["numbers"]


def test_a_number_that_calls_another_app_is_released_only_with_force(local_stack, fake):
    # Given a number in the Twilio account, in no config, that calls another app (the main line)
    other = unique_number()
    fake.numbers.add_number(OUR, other, **ELSEWHERE)
    # When the operator releases it, Then it is refused, naming where it calls
    refused = _cli(local_stack, "numbers", "release", other, "--apply")
    assert refused.exit_code == 2 and "does not call this stack" in refused.stderr
    assert "--force" in refused.stderr
    assert fake.numbers.number(other) is not None
    # And with --force it goes
    forced = _cli(local_stack, "numbers", "release", other, "--apply", "--force")
    assert forced.exit_code == 0, forced.output
    assert fake.numbers.number(other) is None


def test_sync_rides_out_twilios_429s_and_a_number_it_cannot_fix_is_named_while_the_rest_are_fixed(
    local_stack, fake, monkeypatch
):
    from calltrack_cli.twilio_numbers import TwilioNumbers

    monkeypatch.setattr(TwilioNumbers, "RETRY_DELAYS_S", (0.01, 0.01, 0.01, 0.01))
    # Given two static numbers pointing elsewhere, and Twilio answering the listing 429 twice
    first, second = sorted((unique_number(), unique_number()))
    account = apply_account(local_stack, "busy", numbers=[{"number": first, "channel": "flyer"},
                                                          {"number": second, "channel": "radio"}])
    for number in (first, second):
        fake.numbers.add_number(OUR, number, **ELSEWHERE)
    fake.numbers.busy_answers = [429, 429]
    # When sync runs
    done = _cli(local_stack, "numbers", "sync", "--account", account, "--json")
    # Then the 429s were waited out and both numbers point here
    assert done.exit_code == 0, done.output
    assert fake.numbers.busy_answers == []
    assert {r["status"] for r in json.loads(done.stdout)["numbers"]} == {"fixed"}

    # Given both drifted again, and Twilio busy (503) through every try of the first update
    for number in (first, second):
        fake.numbers.configure(number, **ELSEWHERE)
    original = fake.numbers.handle

    def busy_for_first(method, raw_path, form):
        sid = fake.numbers.number(first)["sid"]
        if method == "POST" and sid in raw_path:
            return 503, {"code": 20503, "message": "Service Unavailable", "status": 503,
                         "more_info": "https://www.twilio.com/docs/errors/20503"}
        return original(method, raw_path, form)

    monkeypatch.setattr(fake.numbers, "handle", busy_for_first)
    again = _cli(local_stack, "numbers", "sync", "--account", account, "--json")
    # Then the first number's row says failed with Twilio's answer, the second is fixed, exit 1
    rows = {r["number"]: r for r in json.loads(again.stdout)["numbers"]}
    assert again.exit_code == 1, again.output
    assert rows[first]["status"] == "failed" and "503" in rows[first]["error"]
    assert rows[second]["status"] == "fixed"
    assert fake.numbers.number(second)["voice_url"] == f"{local_stack.public_url}/twilio/voice"


def test_release_judges_calls_this_stack_by_the_url_the_stack_signs(local_stack, fake, monkeypatch):
    # Given a number in no config that calls this stack, and a public URL that is another stack's
    live = unique_number()
    fake.numbers.add_number(OUR, live, **pointing_at(local_stack))
    monkeypatch.setenv("CALLTRACK_PUBLIC_URL", "https://prod.example.com")
    # When the operator releases it with that URL, Then it is refused before Twilio is touched
    refused = _cli(local_stack, "numbers", "release", live, "--apply")
    assert refused.exit_code == 2 and "not the URL this stack checks" in refused.stderr
    assert fake.numbers.number(live) is not None


@pytest.mark.parametrize("command", ["search", "buy"])
def test_an_area_code_outside_the_us_and_canada_is_refused_not_ignored(local_stack, fake, command):
    # Given Japanese numbers of several regions (Twilio ignores AreaCode outside the US and Canada)
    account = apply_account(local_stack, "area", pools=[_pool([unique_number()])])
    extra = ("--account", account, "--pool", "google-ads", "--apply", "--bundle-sid", BUNDLE,
             "--address-sid", ADDRESS) if command == "buy" else ()
    before = len(fake.numbers.purchases)
    # When "Tokyo" is asked for by area code, Then it is refused naming --contains, and nothing bought
    args = ("numbers", command, "--country", "JP", "--area-code", "3", *extra)
    result = _cli(local_stack, *args) if command == "buy" else run_cli(*args)
    assert result.exit_code == 2 and "--contains +813*" in result.stderr, result.output
    assert len(fake.numbers.purchases) == before


def test_numbers_bought_before_a_crash_are_put_in_the_config_and_a_lost_save_is_found(
    local_stack, fake, monkeypatch
):
    from calltrack_cli import numbers_cmds
    from calltrack_cli.admin_cmds import CliFailure
    from calltrack_cli.twilio_numbers import TwilioNumbers

    # Given a pool to buy three numbers into, and the CLI stopped by an error that is not Twilio's
    # while the second purchase is under way (a Ctrl-C, an answer it cannot read)
    account = apply_account(local_stack, "buy-crash", pools=[_pool([unique_number()])])
    admin = tokens(local_stack, account, "admin")["admin"]
    fake.numbers.add_available("JP", sorted(unique_number("+81507") for _ in range(3)), locality="Tokyo")
    buy, calls = TwilioNumbers.buy, []

    def crash_on_the_second(self, number, *args, **kwargs):
        calls.append(number)
        if len(calls) == 2:
            raise RuntimeError("an answer the CLI cannot read")
        return buy(self, number, *args, **kwargs)

    monkeypatch.setattr(TwilioNumbers, "buy", crash_on_the_second)
    # and the stack's answer to the config save lost once (the save itself landed)
    request, puts = numbers_cmds._request, []

    def save_answer_lost_once(method, url, token, body=None, params=None):
        answer = request(method, url, token, body, params=params)
        if method == "PUT" and not (params or {}).get("dry_run"):
            puts.append(url)
            if len(puts) == 1:
                raise CliFailure("error: cannot reach the stack (timed out)", 1, 0)
        return answer

    monkeypatch.setattr(numbers_cmds, "_request", save_answer_lost_once)
    before = len(fake.numbers.purchases)
    # When three numbers are bought
    result = _cli(local_stack, "numbers", "buy", "--account", account, "--pool", "google-ads", "--count", "3",
                  "--contains", "+81507*", "--apply", "--bundle-sid", BUNDLE, "--address-sid", ADDRESS,
                  token=admin)
    # Then the one number paid for is in the config (found after the lost answer, not saved twice)
    # and the user is told; the command still fails
    assert result.exit_code != 0
    [paid] = [p["PhoneNumber"] for p in fake.numbers.purchases[before:]]
    assert f"stopped after buying {paid}" in result.stderr
    config = local_stack.request("GET", f"/v1/accounts/{account}", token=admin).json()["config"]
    assert config["pools"][0]["numbers"].count(paid) == 1 and len(puts) == 1
