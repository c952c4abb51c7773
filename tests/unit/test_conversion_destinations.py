"""What the platform adapters send and how they read refusals (2026-12-03 audit of conversions).

- Meta / GA4 event names: GA4 does not process an event name over 40 characters (Google Analytics
  "Event collection limits"; the Measurement Protocol answers 2xx anyway), takes letters, digits
  and underscores starting with a letter ("Event naming rules"), and drops a parameter value over
  100 characters (transaction_id). Two rule names must never become one event.
- Google Ads 401: the body's ``error.details[].errors[].errorCode.authenticationError``
  (AuthenticationErrorEnum) says whether a new access token can cure it.
- The import files answer through the same size check as every other answer.

The adapters are the real ones; only their HTTP ``post`` is replaced by a recorder answering as
the platforms' docs say they answer.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from conversions import http as platform_http
from conversions.destinations import RETRY, SENT, SKIPPED, Ga4, GoogleAds, event_name
from conversions.rules import plan
from tests.support.conversions import Recorder, call, config

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)  # two hours after the call: within GA4's 72 h
GA4_EVENT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")  # as the local fake GA4 checks it
SECRET = json.dumps({"developer_token": "dev", "client_id": "cid", "client_secret": "cs",
                     "refresh_token": "1//refresh"})


def planned(destination: str, rule: str = "phone-lead") -> Any:
    return next(p for p in plan(call(), config(name=rule), NOW) if p.destination == destination)


# ----------------------------------------------------------------------------- event names


def test_a_long_rule_name_becomes_an_event_name_ga4_processes_and_stays_its_own() -> None:
    # Given two rules named alike beyond GA4's 40 characters (rules may be 100 long)
    sixty = "qualified_call_from_google_search_ads_over_60_seconds"
    ninety = "qualified_call_from_google_search_ads_over_90_seconds"
    # When they are made event names
    names = {event_name(sixty), event_name(ninety)}
    # Then each is a name GA4 processes (it drops longer ones while answering 2xx), the two stay
    # two events, and the same rule always gives the same name
    assert all(GA4_EVENT_NAME.match(n) for n in names), names
    assert len(names) == 2
    # (pinned: a change here renames every long rule's events in the users' GA4 and Meta)
    assert event_name(sixty) == "qualified_call_from_google_sear_67456726"


def test_japanese_rule_names_stay_distinct_events() -> None:
    # Given an account's Japanese rules (and one named with a leading digit beyond 40 characters)
    rules = ["電話問い合わせ", "予約の電話", "電話問い合わせ_長時間", "1" * 60, "2" * 60, "---"]
    # When they are made event names
    names = [event_name(r) for r in rules]
    # Then none collapses into another (all became `phone_call` before) and each is valid
    assert len(set(names)) == len(rules), names
    assert all(GA4_EVENT_NAME.match(n) for n in names), names
    assert event_name("電話問い合わせ") == "phone_call_79e2ff5d"  # pinned: the same rule, the same event


@pytest.mark.parametrize(("rule", "sent_until_now"), [
    ("phone-lead", "phone_lead"),
    ("lead", "lead"),
    ("Phone Lead 60s", "Phone_Lead_60s"),
    ("1st_call", "c_1st_call"),
    ("a" * 40, "a" * 40),
    # a long name starting with a digit was cut at 40 (a valid name) and keeps that cut
    ("2026 spring campaign qualified inbound call", "c_2026_spring_campaign_qualified_inbound"),
])
def test_names_ga4_already_took_keep_their_event_name(rule: str, sent_until_now: str) -> None:
    # Given a rule whose event name was valid and short, When it is sent now, Then the name is the
    # one its GA4 reports and key events already use
    assert event_name(rule) == sent_until_now


def test_ga4_gets_a_valid_name_and_a_transaction_id_within_100_characters_per_call_and_rule() -> None:
    # Given two 100-character rule names differing only at the end (order id: CallSid:rule, 135)
    first, second = "x" * 99 + "1", "x" * 99 + "2"
    post = Recorder(platform_http.Answer(204, None), platform_http.Answer(204, None))
    ga4 = Ga4("https://ga4.test", post=post)
    # When both conversions of the call are sent
    for rule in (first, second):
        [outcome] = ga4.send([planned("ga4", rule)], "secret", config().destinations.ga4, "Asia/Tokyo")
        assert outcome.status == SENT
    # Then each event's name is valid and its transaction_id fits GA4's 100 characters, still
    # one per (call, rule)
    events = [s["json_body"]["events"][0] for s in post.sent]
    assert all(GA4_EVENT_NAME.match(e["name"]) for e in events), events
    ids = [e["params"]["transaction_id"] for e in events]
    assert all(len(i) <= 100 and i.startswith(call()["call_sid"] + ":") for i in ids), ids
    assert ids[0] != ids[1]
    # And a short order id is sent as it always was
    short = planned("ga4")
    post = Recorder(platform_http.Answer(204, None))
    Ga4("https://ga4.test", post=post).send([short], "secret", config().destinations.ga4, "Asia/Tokyo")
    assert post.sent[0]["json_body"]["events"][0]["params"]["transaction_id"] == short.order_id


# ----------------------------------------------------------------------------- Google Ads 401


def token(value: str) -> platform_http.Answer:
    return platform_http.Answer(200, {"access_token": value, "expires_in": 3599, "token_type": "Bearer"})


def unauthenticated(code: str | None) -> platform_http.Answer:
    """A Google Ads API 401 as its error guides show it: UNAUTHENTICATED, the reason in a
    GoogleAdsFailure's errorCode.authenticationError (none: a body without details)."""
    error: dict[str, Any] = {"code": 401, "status": "UNAUTHENTICATED",
                             "message": "Request is missing required authentication credential."}
    if code:
        error["details"] = [{"@type": "type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure",
                             "errors": [{"errorCode": {"authenticationError": code}, "message": code}],
                             "requestId": "r1"}]
    return platform_http.Answer(401, {"error": error})


def uploaded() -> platform_http.Answer:
    return platform_http.Answer(200, {"results": [{}]})


def send(ads: GoogleAds) -> Any:
    [outcome] = ads.send([planned("google_ads")], SECRET, config().destinations.google_ads, "Asia/Tokyo")
    return outcome


@pytest.mark.parametrize("code", ["CUSTOMER_NOT_FOUND", "NOT_ADS_USER", "GOOGLE_ACCOUNT_DELETED",
                                  "OAUTH_TOKEN_REVOKED"])
def test_a_google_401_a_new_token_cannot_cure_is_refused_not_retried_for_days(code: str) -> None:
    # Given Google answering 401 with an authentication error that is not an expired access token
    post = Recorder(token("ya29.a"), unauthenticated(code))
    # When the conversion is sent
    outcome = send(GoogleAds("https://googleads.test", "https://oauth2.test/token", post=post))
    # Then it waits for fixed credentials (and is in the import file), naming Google's code
    assert outcome.status == SKIPPED, outcome
    assert outcome.reason.startswith("credentials_refused") and code in outcome.reason


def test_an_expired_token_is_refreshed_and_a_401_on_the_fresh_one_is_refused() -> None:
    # Given an access token Google took once and that has since expired
    post = Recorder(token("ya29.a"), uploaded(), unauthenticated("OAUTH_TOKEN_EXPIRED"))
    ads = GoogleAds("https://googleads.test", "https://oauth2.test/token", post=post)
    assert send(ads).status == SENT
    # When a later conversion gets a 401 OAUTH_TOKEN_EXPIRED, Then it is tried again
    assert send(ads).status == RETRY
    # And the retry refreshes the token; a 401 on that fresh token is refused, not retried again
    post.answers += [token("ya29.b"), unauthenticated("OAUTH_TOKEN_INVALID")]
    outcome = send(ads)
    assert len(post.to("oauth2")) == 2
    assert outcome.status == SKIPPED and "OAUTH_TOKEN_INVALID" in outcome.reason, outcome


def test_a_401_without_a_readable_reason_on_a_fresh_token_is_refused() -> None:
    # Given a 401 whose body says nothing Google Ads-specific, on a token just refreshed
    post = Recorder(token("ya29.a"), platform_http.Answer(401, {}))
    # When the conversion is sent, Then retrying with the same refresh token would not help
    outcome = send(GoogleAds("https://googleads.test", "https://oauth2.test/token", post=post))
    assert outcome.status == SKIPPED and outcome.reason.startswith("credentials_refused"), outcome


# ----------------------------------------------------------------------------- import file size


def test_an_import_file_too_large_for_lambda_is_a_400_naming_from(operator_token: str) -> None:
    from types import SimpleNamespace

    from report.handler import app
    from tests.support.events import http_event

    # Given a year of Google Ads conversions waiting for the import file: 30,000 gclid rows
    rows = [{"destination": "google_ads", "status": "skipped", "reason": "no_credentials",
             "click_id": f"Cj0KCQjw{i:08d}" + "A" * 80, "click_id_type": "gclid",
             "rule": "phone-lead", "converted_at": "2026-06-01T01:02:03Z", "order_id": f"CA{i}:phone-lead",
             "value": 5000, "currency": "JPY"} for i in range(30_000)]
    ports = SimpleNamespace(accounts=SimpleNamespace(get=lambda _account: config()),
                            conversions=SimpleNamespace(of_account=lambda *_: iter(rows)))
    event = http_event("GET", "/v1/conversions/google-ads.csv",
                       headers={"authorization": f"Bearer {operator_token}"})
    event["queryStringParameters"] = {"account": "acme", "from": "2026-01-01", "to": "2026-12-31"}
    event["rawQueryString"] = "account=acme&from=2026-01-01&to=2026-12-31"
    # When it is asked for
    app.append_context(ports=ports)
    answer = app.resolve(event, None)  # type: ignore[arg-type]
    # Then it is a 400 asking for a shorter range (Lambda would have answered a 5xx)
    assert answer["statusCode"] == 400, answer["statusCode"]
    assert json.loads(answer["body"]).get("field") == "from"
    # And a month of it is answered as the file
    rows[2_000:] = []
    app.append_context(ports=ports)
    answer = app.resolve(event, None)  # type: ignore[arg-type]
    assert answer["statusCode"] == 200 and answer["isBase64Encoded"] is True


@pytest.mark.parametrize(("rule", "sent"), [
    ("session_start", "ev_session_start"),
    ("google ads lead", "ev_google_ads_lead"),
    ("ga_call", "ev_ga_call"),
    ("error", "ev_error"),
])
def test_a_rule_named_as_ga4_reserves_gets_a_name_ga4_collects(rule: str, sent: str) -> None:
    # Given a rule whose name GA4 reserves (an automatically collected event, a reserved prefix),
    # Then its event is sent under a name GA4 collects, the same every time
    assert event_name(rule) == sent and GA4_EVENT_NAME.match(sent)
