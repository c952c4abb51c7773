"""The pure parts of `calltrack numbers`, `calltrack doctor` and `calltrack pools advise`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from admin import accounts
from calltrack.auth import OPERATOR, Principal
from calltrack_cli.doctor_cmds import (
    RefusedUrl,
    _secret_names,
    check_destinations,
    check_outbound,
    number_forms,
    shown_numbers,
)
from calltrack_cli.numbers_cmds import Stack, with_pool_numbers
from calltrack_cli.pools_cmds import advice
from calltrack_cli.twilio_numbers import (
    CALL_STATUS_PATH,
    FALLBACK_PATH,
    VOICE_PATH,
    Credentials,
    TwilioFailure,
    drift,
    stack_webhooks,
)
from infra.wiring import ROUTES

ROOT = Path(__file__).resolve().parents[2]
SID = "AC" + "a" * 32


def test_the_urls_numbers_are_pointed_at_are_the_stacks_twilio_routes():
    twilio_routes = {r.path for r in ROUTES if r.auth == "twilio" and r.method == "POST"}
    assert {VOICE_PATH, CALL_STATUS_PATH} <= twilio_routes
    voice_component = (ROOT / "infra/components/voice.py").read_text()
    assert re.search(rf'^FALLBACK_PATH = "{re.escape(FALLBACK_PATH)}"$', voice_component, re.M)


def test_drift_lists_each_setting_that_differs_and_a_twiml_app_overriding_the_urls():
    wanted = stack_webhooks("https://calls.example.com/")
    assert wanted["VoiceUrl"] == "https://calls.example.com/twilio/voice"
    resource = {
        "voice_url": wanted["VoiceUrl"],
        "voice_method": "post",
        "status_callback": wanted["StatusCallback"],
        "status_callback_method": "POST",
        "voice_fallback_url": wanted["VoiceFallbackUrl"],
        "voice_fallback_method": "POST",
    }
    assert drift(resource, wanted) == {}  # methods compare case-insensitively
    assert drift({**resource, "voice_url": "https://x.example/v"}, wanted) == {
        "VoiceUrl": ("https://x.example/v", wanted["VoiceUrl"])
    }
    assert set(drift({**resource, "voice_application_sid": "AP1"}, wanted)) == {"VoiceApplicationSid"}
    # a SIP trunk's settings win over the number's URLs, and a fax number takes no calls
    assert drift({**resource, "trunk_sid": "TK1"}, wanted) == {"TrunkSid": ("TK1", "")}
    assert drift({**resource, "voice_receive_mode": "fax"}, wanted) == {"VoiceReceiveMode": ("fax", "voice")}
    assert drift({**resource, "trunk_sid": None, "voice_receive_mode": "voice"}, wanted) == {}
    assert (
        stack_webhooks("https://a", "https://bin.example/twiml")["VoiceFallbackUrl"]
        == "https://bin.example/twiml"
    )


def test_twilio_credentials_come_from_the_environment_and_stay_on_https():
    creds = Credentials.from_env({"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": "tok"})
    assert (creds.username, creds.password, creds.base_url) == (SID, "tok", "https://api.twilio.com")
    keyed = Credentials.from_env(
        {
            "TWILIO_ACCOUNT_SID": SID,
            "TWILIO_AUTH_TOKEN": "tok",
            "TWILIO_API_KEY": "SK1",
            "TWILIO_API_SECRET": "sec",
        }
    )
    assert (keyed.username, keyed.password) == ("SK1", "sec")
    local = {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": "t", "TWILIO_API_BASE_URL": "http://127.0.0.1:9"}
    assert Credentials.from_env(local).base_url == "http://127.0.0.1:9"
    for bad in (
        {"TWILIO_AUTH_TOKEN": "t"},
        {"TWILIO_ACCOUNT_SID": SID},
        {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": "t", "TWILIO_API_BASE_URL": "http://api.example"},
    ):
        with pytest.raises(TwilioFailure):
            Credentials.from_env(bad)


def test_buying_into_a_pool_appends_to_that_pool_only_and_an_unknown_pool_is_refused():
    from calltrack_cli.admin_cmds import CliFailure

    config = {
        "account": "acme",
        "pools": [{"id": "a", "numbers": ["+81501"]}, {"id": "b", "numbers": ["+81502"]}],
    }
    after = with_pool_numbers(config, "b", ["+81503"])
    assert [p["numbers"] for p in after["pools"]] == [["+81501"], ["+81502", "+81503"]]
    assert config["pools"][1]["numbers"] == ["+81502"]  # the stored config is not modified
    with pytest.raises(CliFailure) as err:
        with_pool_numbers(config, "c", ["+81503"])
    assert err.value.code == 2 and "pools: a, b" in err.value.message


def test_pool_advice_prices_the_change_in_size():
    report = {
        "pools": [
            {
                "pool": "g",
                "size": 4,
                "recommended_size": 6,
                "peak_concurrent_sessions": 4,
                "utilisation": 1.0,
            },
            {"pool": "y", "size": 10, "recommended_size": 3, "peak_concurrent_sessions": 2},
            {"pool": "one", "size": 3, "recommended_size": 1, "peak_concurrent_sessions": 1},
            {"pool": "idle", "size": 2, "recommended_size": 0, "peak_concurrent_sessions": 0},
            {  # enough numbers for its sessions, too few for its late callers
                "pool": "late",
                "size": 5,
                "recommended_size": 3,
                "recommended_size_for_accuracy": 8,
                "estimated_accuracy": 0.962,
                "peak_concurrent_sessions": 2,
            },
        ]
    }
    rows = {r["pool"]: r for r in advice(report, 4.5)}
    assert (rows["late"]["recommended_size"], rows["late"]["change"]) == (8, 3)
    assert rows["late"]["recommended_size_for_peak"] == 3 and rows["late"]["estimated_accuracy"] == 0.962
    assert (rows["g"]["change"], rows["g"]["monthly_cost_change"]) == (2, 9.0)
    assert (rows["y"]["change"], rows["y"]["monthly_cost_change"]) == (-7, -31.5)
    assert rows["one"]["recommended_size"] == 1
    assert (rows["idle"]["recommended_size"], rows["idle"]["change"]) == (2, 0)  # no traffic: no advice


def test_a_page_shows_a_listed_number_in_any_usual_format():
    assert number_forms("+81312345678") == {"81312345678", "0312345678"}
    assert shown_numbers(["お電話は 03-1234-5678 まで"], ["+81312345678"]) == ["+81312345678"]
    assert shown_numbers(["+81 3 1234 5678"], ["+81312345678"]) == ["+81312345678"]
    assert shown_numbers(["(03) 1234-5678"], ["+81312345678"]) == ["+81312345678"]
    assert shown_numbers(["03-1234-5679", "予約番号 0312345678901"], ["+81312345678"]) == []


@pytest.mark.parametrize("text", ["お電話 ０３－１２３４－５６７８", "03ー1234ー5678", "（03）1234-5678",
                                  "０３‐１２３４‐５６７８", "＋８１ ３ １２３４ ５６７８"])
def test_a_number_written_in_full_width_characters_or_japanese_dashes_is_found_as_dni_js_finds_it(text):
    # (doctor said such a page showed none of site.numbers, though dni.js swaps it: 2026-12-03)
    assert shown_numbers([text], ["+81312345678"]) == ["+81312345678"]


def test_doctor_fetches_only_https_public_addresses_or_http_to_127_0_0_1():
    check_outbound("http://127.0.0.1:8787/x")
    for url in (
        "http://www.example.jp/",
        "https://10.0.0.8/",
        "https://127.0.0.1/",
        "https://169.254.169.254/",
        "ftp://example.jp/",
        "https://www.example.jp:80a/",  # a port that is no number
        "https://[::1/",  # an unclosed IPv6 bracket
    ):
        with pytest.raises(RefusedUrl):
            check_outbound(url)


def test_a_malformed_site_url_is_a_failed_check_not_a_traceback():
    from calltrack_cli.doctor_cmds import check_site

    # Given a --site URL whose port is no number, When doctor checks it, Then the check fails naming it
    check = check_site("https://www.example.jp:80a/", _Stack({}), {})
    assert check.status == "fail" and "not a valid URL" in check.detail


class _Stack(Stack):
    def __init__(self, answers: dict[str, Any]) -> None:
        super().__init__("http://127.0.0.1:1", "tok", "http://127.0.0.1:1")
        object.__setattr__(self, "answers", answers)

    def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        return self.answers[path]  # type: ignore[attr-defined]


def test_destinations_check_is_skipped_without_destinations_and_names_each_missing_secret():
    config = {
        "conversions": [{"name": "booked", "destinations": ["meta", "ga4"]}],
        "destinations": {
            "google_ads": None,
            "meta": {"pixel_id": "1234567", "secret": "meta"},
            "ga4": {"measurement_id": "G-1", "secret": "ga4"},
        },
        "webhooks": [{"url": "https://hooks.example", "secret": "hook"}],
        "crm_push": {"kintone": None, "hubspot": {"token_secret": "hubspot"}},
    }
    assert sorted(_secret_names(config)) == ["ga4", "hook", "hubspot", "meta"]
    stack = _Stack({"/v1/accounts/acme/secrets": {"secrets": [{"name": "meta"}]}})
    unnamed = {"account": "acme", "destinations": {"meta": {"pixel_id": "1234567", "secret": None}}}
    [skipped] = check_destinations(stack, {"acme": unnamed})
    assert skipped.status == "skip" and "not configured" in skipped.detail
    [failed] = check_destinations(stack, {"acme": config})
    assert failed.status == "fail" and failed.detail == "secrets not set: ga4, hook, hubspot"
    assert "calltrack secret set --account acme ga4" in failed.fix
    stack.answers["/v1/accounts/acme/secrets"]["secrets"] += [
        {"name": "ga4"},
        {"name": "hook"},
        {"name": "hubspot"},
    ]  # type: ignore[attr-defined]
    assert check_destinations(stack, {"acme": config})[0].status == "pass"

    class _Marketer(_Stack):
        def get(self, path: str, params: dict[str, str] | None = None) -> Any:
            from calltrack_cli.admin_cmds import CliFailure

            raise CliFailure("error: 403 role 'marketer' may not do this (needs one of admin)", 2)

    [skipped] = check_destinations(_Marketer({}), {"acme": config})
    assert skipped.status == "skip" and "admin token" in skipped.detail


def test_the_accounts_listing_says_who_the_token_is(monkeypatch):
    class Store:
        def list_accounts(self):
            return []

        def get_account(self, account):
            return None

    assert accounts.list_accounts(Principal(None, OPERATOR), Store())["token"] == {
        "account": None,
        "role": OPERATOR,
    }
    assert accounts.list_accounts(Principal("acme", "marketer"), Store())["token"] == {
        "account": "acme",
        "role": "marketer",
    }


def test_numbers_are_never_pointed_at_plain_http_at_the_real_twilio():
    from types import SimpleNamespace

    from calltrack_cli.admin_cmds import CliFailure
    from calltrack_cli.numbers_cmds import webhooks_for

    real = SimpleNamespace(credentials=SimpleNamespace(base_url="https://api.twilio.com"))
    fake = SimpleNamespace(credentials=SimpleNamespace(base_url="http://127.0.0.1:8789"))
    local_stack = Stack("http://127.0.0.1:8787", "tok", "http://127.0.0.1:8787")
    with pytest.raises(CliFailure) as err:
        webhooks_for(real, local_stack, None)
    assert err.value.code == 2 and "https" in err.value.message
    assert webhooks_for(fake, local_stack, None)["VoiceUrl"] == "http://127.0.0.1:8787/twilio/voice"
    deployed = Stack("https://abc.execute-api.example.com", "tok", "https://calls.example.com")
    assert (
        webhooks_for(real, deployed, None)["StatusCallback"] == "https://calls.example.com/twilio/call-status"
    )


def _stack_answering(monkeypatch, answer: Any) -> None:
    """GET /v1/stack answers ``answer`` (a CliFailure is raised, as _request raises it)."""
    from calltrack_cli import numbers_cmds
    from calltrack_cli.admin_cmds import CliFailure

    def request(method: str, url: str, token: str, body: Any, params: Any = None) -> Any:
        assert (method, url) == ("GET", "https://abc.execute-api.example.com/v1/stack")
        if isinstance(answer, CliFailure):
            raise answer
        return answer

    monkeypatch.setattr(numbers_cmds, "_request", request)
    monkeypatch.delenv("CALLTRACK_PUBLIC_URL", raising=False)


API = "https://abc.execute-api.example.com"


def test_the_public_url_is_the_one_the_stack_says_it_signs(monkeypatch, capsys):
    from calltrack_cli.numbers_cmds import stack

    _stack_answering(monkeypatch, {"public_url": "https://calls.example.com/"})
    st = stack(API, "tok", None)
    assert (st.public_url, st.signed_url) == ("https://calls.example.com", "https://calls.example.com")
    # a given URL wins, and the stack's answer is kept to check it against
    st = stack(API, "tok", "https://other.example.com")
    assert (st.public_url, st.signed_url) == ("https://other.example.com", "https://calls.example.com")
    assert capsys.readouterr().err == ""


def test_a_stack_older_than_the_route_falls_back_to_the_api_url_with_a_warning(monkeypatch, capsys):
    from calltrack_cli.admin_cmds import CliFailure
    from calltrack_cli.numbers_cmds import stack

    _stack_answering(monkeypatch, CliFailure("error: 404 Not Found", 2, 404))
    st = stack(API, "tok", None)
    assert (st.public_url, st.signed_url) == (API, None)
    assert "does not say which URL it signs" in capsys.readouterr().err
    _stack_answering(monkeypatch, {"public_url": 42})  # an answer without a URL: the same
    assert stack(API, "tok", None).public_url == API


def test_a_stack_that_fails_to_say_its_url_fails_the_command_unless_a_url_is_given(monkeypatch):
    from calltrack_cli.admin_cmds import CliFailure
    from calltrack_cli.numbers_cmds import stack

    # Given GET /v1/stack fails with a 5xx (a 404 would be an older stack)
    _stack_answering(monkeypatch, CliFailure("error: 503 Service Unavailable", 1, 503))
    # Then numbers sync/buy do not quietly point numbers at the API URL
    with pytest.raises(CliFailure) as err:
        stack(API, "tok", None)
    assert err.value.status == 503
    # but a given URL needs no answer, and doctor goes on to report what is wrong
    assert stack(API, "tok", "https://calls.example.com").public_url == "https://calls.example.com"
    assert stack(API, "tok", None, diagnose=True).public_url == API


def test_numbers_are_never_pointed_at_a_public_url_the_stack_does_not_sign():
    from types import SimpleNamespace

    from calltrack_cli.admin_cmds import CliFailure
    from calltrack_cli.doctor_cmds import check_public_url
    from calltrack_cli.numbers_cmds import webhooks_for

    real = SimpleNamespace(credentials=SimpleNamespace(base_url="https://api.twilio.com"))
    wrong = Stack(API, "tok", API, "https://calls.example.com")
    with pytest.raises(CliFailure) as err:
        webhooks_for(real, wrong, None)
    assert err.value.code == 2 and "(https://calls.example.com)" in err.value.message
    assert check_public_url(wrong).status == "fail"
    right = Stack(API, "tok", "https://calls.example.com", "https://calls.example.com")
    assert webhooks_for(real, right, None)["VoiceUrl"] == "https://calls.example.com/twilio/voice"
    assert check_public_url(right).status == "pass"
    assert check_public_url(Stack(API, "tok", API)).status == "skip"


def test_ops_topic_check_counts_only_confirmed_subscriptions(monkeypatch):
    import boto3

    from calltrack_cli.doctor_cmds import check_ops_topic

    pages: list[dict[str, Any]] = []

    class Sns:
        def get_paginator(self, name):
            assert name == "list_subscriptions_by_topic"
            return self

        def paginate(self, TopicArn):  # noqa: N803 - boto3's parameter name
            return pages

    monkeypatch.setattr(boto3, "client", lambda service, region_name=None: Sns())
    arn = "arn:aws:sns:ap-northeast-1:123456789012:ops"
    assert check_ops_topic(None).status == "skip"
    pages[:] = [{"Subscriptions": []}]
    assert "nobody is subscribed" in check_ops_topic(arn).detail
    pages[:] = [{"Subscriptions": [{"SubscriptionArn": "PendingConfirmation"}]}]
    pending = check_ops_topic(arn)
    assert pending.status == "fail" and "1 pending" in pending.detail
    pages.append({"Subscriptions": [{"SubscriptionArn": arn + ":1b2c"}]})
    assert check_ops_topic(arn).status == "pass"


def test_doctor_fails_a_pool_large_enough_for_its_peak_but_not_for_its_late_callers(monkeypatch):
    from calltrack_cli import pools_cmds
    from calltrack_cli.doctor_cmds import check_pools

    # Given a 20-number pool whose peak needs 8 but whose late callers need 26
    pool = {
        "pool": "google",
        "size": 20,
        "recommended_size": 8,
        "recommended_size_for_accuracy": 26,
        "estimated_accuracy": 0.962,
        "peak_concurrent_sessions": 6,
    }
    report = {"from": "2026-11-04", "to": "2026-12-03", "pools": [pool]}
    monkeypatch.setattr(pools_cmds, "pools_report", lambda *args: report)
    configs = {"acme": {"pools": [{"id": "google"}]}}
    # When doctor checks the pools, then it fails with the accuracy and the numbers to buy
    [check] = check_pools(Stack(API, "tok", API), configs)
    assert check.status == "fail"
    assert "recommended 26" in check.detail and "estimated accuracy 96.2%" in check.detail
    assert "--pool google --count 6 --apply" in check.fix
    # And once the pool has 26 numbers it passes
    pool["size"] = 26
    assert check_pools(Stack(API, "tok", API), configs)[0].status == "pass"


def test_pools_advise_prints_the_accuracy_and_where_the_late_calls_come_from(monkeypatch):
    from typer.testing import CliRunner

    from calltrack_cli import admin_cmds, pools_cmds

    learned = {"source": "calls", "calls": 5000, "late_calls": 1262}
    assumed = {"source": "model", "share": 0.25, "late_calls_seen": 37, "learns_from": 200}
    report = {
        "account": "acme",
        "from": "2026-11-04",
        "to": "2026-12-03",
        "pools": [
            {"pool": "google", "size": 100, "recommended_size": 70, "recommended_size_for_accuracy": 130,
             "estimated_accuracy": 0.9842, "peak_concurrent_sessions": 52, "utilisation": 0.52,
             "exhaustions": 0, "late_calls": learned},
            {"pool": "yahoo", "size": 10, "recommended_size": 4, "recommended_size_for_accuracy": 8,
             "estimated_accuracy": 0.995, "peak_concurrent_sessions": 3, "utilisation": 0.3,
             "exhaustions": 0, "address_capped": 12, "late_calls": assumed},
        ],
    }
    monkeypatch.setattr(admin_cmds, "_resolve", lambda url, token: (API, "tok"))
    monkeypatch.setattr(pools_cmds, "pools_report", lambda *args: report)
    out = CliRunner().invoke(pools_cmds.app, ["--price-per-number", "4.5"])  # its one command
    assert out.exit_code == 0, out.output
    google, yahoo = out.output.splitlines()[1:3]
    assert "estimated accuracy 98.4%" in google and "recommended 130 (peak 70, 99% accuracy 130" in google
    assert "late calls learned from 5000 calls (1262 late)" in google and "add 30 (+135 USD/month)" in google
    assert "late calls assumed: 37 of 200 seen to learn" in yahoo and "could release 2" in yahoo
    # a pool whose visitors met the address cap says so, with the setting to raise
    capped = out.output.splitlines()[3]
    assert "12 visitors were shown no number" in capped and "dni.max_numbers_per_address" in capped
