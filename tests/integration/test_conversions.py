"""Issue 16: qualified calls become conversions in Google Ads, Meta and GA4 (and Yahoo!'s import file).

On the running local stack (real handlers: voice webhook -> calls stream -> call_changes fan-out ->
conversions queue -> the conversions consumer) against the fake ad platforms, which validate like
the platforms do. Retries are time-compressed by ``CALLTRACK_RETRY_TIME_SCALE`` (tests/conftest.py).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime
from typing import Any

import pytest

from calltrack_cli.local.fake_ads import FakeAdPlatforms
from conversions.destinations import FAILED, SENT, SKIPPED, GoogleAds, Outcome
from conversions.rules import plan
from tests.support.conversions import (
    ACTION,
    CALLER,
    CUSTOMER,
    ConversionScenario,
    call,
    config,
    rule,
    serve_ads,
)

ads = pytest.fixture(scope="module", name="ads")(serve_ads)

GA_CLIENT = "1234567890.1764460800"
GA_SESSION = "1764460800"
FBP = "fb.1.1764460800123.987654321"


def gclid() -> str:
    return "Cj0KCQ" + secrets.token_hex(12)


def order(call_sid: str, name: str = "phone-lead") -> str:
    return f"{call_sid}:{name}"


def google_rows(ads: FakeAdPlatforms, call_sid: str) -> list[dict[str, Any]]:
    return [c for c in ads.google_conversions if c["orderId"].startswith(call_sid)]


def test_a_qualifying_call_is_delivered_once_per_rule_and_destination_despite_duplicates(
    local_stack: Any, ads: FakeAdPlatforms
) -> None:
    # Given an account whose rule sends answered calls of 60 s or more to Google Ads, Yahoo!, Meta
    # and GA4, and a visitor who came from a Google ad with the GA and Meta cookies set
    s = ConversionScenario(local_stack, ads)
    click = gclid()
    number = s.lease(gclid=click, ga_client_id=GA_CLIENT, ga_session_id=GA_SESSION, fbp=FBP)

    # When the visitor calls the leased number and talks for 95 s
    call_sid = s.call(number, talk=95)
    local_stack.drain()
    # And the same call event arrives again twice (a duplicate stream record, a redelivery), and a
    # later change of the call (tags) brings the call through the rules once more
    s.redeliver(call_sid)
    s.redeliver(call_sid)
    s.patch(call_sid, tags=["予約"])
    local_stack.drain()

    # Then Google Ads received exactly one click conversion, keyed and timed as the API wants
    [google] = google_rows(ads, call_sid)
    assert google["gclid"] == click and "gbraid" not in google and "wbraid" not in google
    assert google["orderId"] == order(call_sid)
    assert google["conversionAction"] == f"customers/{CUSTOMER}/conversionActions/{ACTION}"
    assert google["conversionDateTime"].endswith("+09:00") and len(google["conversionDateTime"]) == 25
    assert google["conversionValue"] == 5000 and google["currencyCode"] == "JPY"
    # And Meta exactly one phone_call event with the hashed caller number and the _fbp cookie
    [meta] = [e for e in ads.meta_events if e["event_id"] == order(call_sid)]
    assert meta["action_source"] == "phone_call"
    assert meta["user_data"]["ph"] == [hashlib.sha256(CALLER.lstrip("+").encode()).hexdigest()]
    assert meta["user_data"]["fbp"] == FBP
    assert meta["custom_data"] == {"value": 5000, "currency": "JPY"}
    # And GA4 exactly one event for the visitor's client id and session
    [ga4] = [e for e in ads.ga4_events if e["events"][0]["params"]["transaction_id"] == order(call_sid)]
    assert ga4["client_id"] == GA_CLIENT and ga4["events"][0]["params"]["session_id"] == GA_SESSION
    assert not ads.ga4_validation
    # And the call shows each conversion: sent three times, Yahoo! skipped (no yclid on this visit)
    shown = s.conversions_of(call_sid)
    assert {k: v["status"] for k, v in shown.items()} == {
        ("phone-lead", "google_ads"): "sent",
        ("phone-lead", "meta"): "sent",
        ("phone-lead", "ga4"): "sent",
        ("phone-lead", "yahoo_ads"): "skipped",
    }
    assert shown[("phone-lead", "yahoo_ads")]["reason"] == "no_click_id"
    assert shown[("phone-lead", "google_ads")]["sent_at"].endswith("Z")


def test_browser_ids_set_after_the_first_lease_reach_ga4_and_meta(
    local_stack: Any, ads: FakeAdPlatforms
) -> None:
    import json as _json
    import secrets

    from tests.support.conversions import ORIGIN

    # Given a visitor whose first lease went out before gtag and the Meta pixel set their cookies
    s = ConversionScenario(local_stack, ads)
    body = {"account": s.account, "visitor_id": "v-" + secrets.token_hex(8),
            "session_id": "s-" + secrets.token_hex(8), "page_url": f"{ORIGIN}/implant", "gclid": gclid()}
    headers = {"Origin": ORIGIN, "Content-Type": "text/plain", "X-Forwarded-For": "10.9.9.2"}
    first = local_stack.request("POST", "/dni/lease", data=_json.dumps(body), headers=headers).json()
    # When the page's next heartbeat (naming its lease) carries the ids
    beat = {**body, "number": first["number"], "lease_id": first["lease_id"],
            "ga_client_id": GA_CLIENT, "ga_session_id": GA_SESSION, "fbp": FBP}
    renewed = local_stack.request("POST", "/dni/lease", data=_json.dumps(beat), headers=headers)
    assert renewed.status_code == 200 and renewed.json()["number"] == first["number"]
    # and the visitor calls
    call_sid = s.call(first["number"], talk=95)
    local_stack.drain()
    # Then GA4 got the event for the visitor's client id (it was skipped: no client id) and Meta the _fbp
    [ga4] = [e for e in ads.ga4_events if e["events"][0]["params"]["transaction_id"] == order(call_sid)]
    assert ga4["client_id"] == GA_CLIENT and ga4["events"][0]["params"]["session_id"] == GA_SESSION
    [meta] = [e for e in ads.meta_events if e["event_id"] == order(call_sid)]
    assert meta["user_data"]["fbp"] == FBP


def test_429_and_5xx_are_retried_with_backoff_and_then_delivered_once(
    local_stack: Any, ads: FakeAdPlatforms
) -> None:
    # Given Google Ads answers 429 then 503, and Meta 500, before they recover
    s = ConversionScenario(local_stack, ads)
    number = s.lease(gclid=gclid(), fbp=FBP)
    before_google = len(ads.requests_to("google"))
    ads.fail("google", "429", "503")
    ads.fail("meta", "500")

    # When a qualifying call comes in
    call_sid = s.call(number)
    local_stack.drain()

    # Then each platform got the conversion once, after the retries
    assert len(google_rows(ads, call_sid)) == 1
    assert len([e for e in ads.meta_events if e["event_id"] == order(call_sid)]) == 1
    assert [r.status for r in ads.requests_to("google")[before_google:]] == [429, 503, 200]
    shown = s.conversions_of(call_sid)
    assert shown[("phone-lead", "google_ads")]["status"] == "sent"
    assert shown[("phone-lead", "meta")]["status"] == "sent"
    listed = local_stack.request(
        "GET", "/v1/conversions", token=s.roles["marketer"], params={"destination": "google_ads"}
    ).json()["items"]
    [row] = [r for r in listed if r["call_sid"] == call_sid]
    assert row["attempts"] == 3 and row["reason"] is None


def test_a_conversion_dead_lettered_by_a_long_outage_is_redriven_by_the_hourly_job_and_sent_once(
    local_stack: Any, ads: FakeAdPlatforms
) -> None:
    from conversions.runtime import MAX_RECEIVES
    from tests.support.times import utc_now_iso

    # Given Google Ads answering 503 to every try of the consumer's whole ladder (an outage of
    # hours), so the call event ends in the conversions dead-letter queue with its row pending
    s = ConversionScenario(local_stack, ads, credentials=("google_ads",))
    number = s.lease(gclid=gclid())
    ads.fail("google", *["503"] * (4 * MAX_RECEIVES))  # every try of every event of the call
    call_sid = s.call(number)
    local_stack.drain()
    assert google_rows(ads, call_sid) == []
    assert s.conversions_of(call_sid)[("phone-lead", "google_ads")]["status"] == "pending"

    # When Google is back and the hourly redrive job runs
    ads.recover("google")
    result = local_stack.run_job("conversions-dlq-redrive", utc_now_iso())["result"]
    local_stack.drain()

    # Then the call event went back to the queue and the conversion was sent, once
    assert result["redriven"] >= 1
    assert len(google_rows(ads, call_sid)) == 1
    assert s.conversions_of(call_sid)[("phone-lead", "google_ads")]["status"] == "sent"
    # And a second run finds nothing of this call left to redrive
    again = local_stack.run_job("conversions-dlq-redrive", utc_now_iso())["result"]
    local_stack.drain()
    assert again["redriven"] == 0 and len(google_rows(ads, call_sid)) == 1


def test_a_click_google_calls_too_recent_is_uploaded_again_hours_later_not_failed(
    local_stack: Any, ads: FakeAdPlatforms
) -> None:
    # Given a visitor whose Google click is minutes old, which Google answers TOO_RECENT_EVENT
    # ("retry after 6 hours have passed") on the first upload
    s = ConversionScenario(local_stack, ads, credentials=("google_ads",))
    click = gclid()
    ads.recent_click_ids[click] = 1
    number = s.lease(gclid=click)
    before = len(ads.requests_to("google"))

    # When the visitor calls, and the stack runs on past Google's wait (time-compressed here)
    call_sid = s.call(number)
    local_stack.drain()

    # Then the conversion was uploaded again and Google holds it once: it is sent, not failed
    assert [c["gclid"] for c in google_rows(ads, call_sid)] == [click]
    assert len(ads.requests_to("google")) == before + 2
    shown = s.conversions_of(call_sid)
    assert shown[("phone-lead", "google_ads")]["status"] == "sent"


def test_an_event_retried_after_the_caller_was_erased_brings_no_conversion_back(
    local_stack: Any, ads: FakeAdPlatforms
) -> None:
    from datetime import timedelta
    from urllib.parse import quote

    # Given a Google conversion of a call an hour ago, and the call event as it was then
    s = ConversionScenario(local_stack, ads, credentials=("google_ads",))
    an_hour_ago = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    call_sid = s.call(s.lease(gclid=gclid()), at=an_hour_ago)
    local_stack.drain()
    image = s.snapshot(call_sid)
    # And the caller erased on request
    erased = local_stack.request("DELETE", f"/v1/callers/{quote(CALLER, safe='')}", token=s.roles["admin"])
    assert erased.status_code == 200 and erased.json()["erased"]["conversions"] >= 1
    before = len(ads.requests_to("google"))

    # When that event's message comes back from a backoff (or a DLQ redrive) after the erasure
    s.redeliver(call_sid, call=image)
    local_stack.drain()

    # Then no conversion row of the call is made again, and nothing is sent
    listed = local_stack.request("GET", "/v1/conversions", token=s.roles["admin"]).json()["items"]
    assert [r for r in listed if r["call_sid"] == call_sid] == []
    assert len(ads.requests_to("google")) == before


def test_an_outcome_recorded_after_the_caller_was_erased_makes_no_row_again(local_stack: Any) -> None:
    from calltrack.models.conversions import Conversion
    from conversions.store import DynamoConversions

    # Given a conversion row erased (a privacy request) while its platform was still answering
    call_sid = "CA" + secrets.token_hex(16)
    # When the consumer records the platform's answer
    DynamoConversions().finish(call_sid, "phone-lead#google_ads", status="sent", reason=None,
                               now_iso="2026-12-02T00:00:00Z", sent_at="2026-12-02T00:00:00Z")
    # And (a restatement's outcome) a stage change's new value was answered meanwhile
    DynamoConversions().finish_restatement(call_sid, "phone-lead#google_ads", value=120000.0, note=None,
                                           now_iso="2026-12-02T00:00:00Z", version=4)
    # Then no row is made again (one would hold no account and no expiry: kept for ever)
    assert list(Conversion.query(call_sid, consistent_read=True)) == []


def test_permanent_errors_are_recorded_with_their_reason_and_not_retried(
    local_stack: Any, ads: FakeAdPlatforms
) -> None:
    # Given a click id Google cannot parse, and an account without GA4 credentials
    s = ConversionScenario(local_stack, ads, credentials=("google_ads", "meta"))
    click = gclid()
    ads.invalid_click_ids.add(click)
    number = s.lease(gclid=click, ga_client_id=GA_CLIENT)
    before = len(ads.requests_to("google"))

    # When a qualifying call comes in
    call_sid = s.call(number)
    local_stack.drain()

    # Then the Google conversion failed with Google's reason, tried once only
    shown = s.conversions_of(call_sid)
    assert shown[("phone-lead", "google_ads")]["status"] == "failed"
    assert "UNPARSEABLE_GCLID" in shown[("phone-lead", "google_ads")]["reason"]
    assert len(ads.requests_to("google")) == before + 1
    # And GA4 is skipped for missing credentials; Meta has no user data beyond the number: sent
    assert shown[("phone-lead", "ga4")]["status"] == "skipped"
    assert shown[("phone-lead", "ga4")]["reason"] == "no_credentials"
    assert shown[("phone-lead", "meta")]["status"] == "sent"
    # And the listing filters by status and names the field of a bad filter
    failed = local_stack.request(
        "GET", "/v1/conversions", token=s.roles["admin"], params={"status": "failed"}
    )
    assert [r["call_sid"] for r in failed.json()["items"]] == [call_sid]
    bad = local_stack.request(
        "GET", "/v1/conversions", token=s.roles["admin"], params={"status": "done"}
    )
    assert bad.status_code == 400 and bad.json()["field"] == "status"


def test_a_conversion_row_expires_with_its_call(local_stack: Any, ads: FakeAdPlatforms) -> None:
    # Given an account whose calls are kept for retention.calls_days (a call item's DynamoDB TTL)
    from calltrack.models.conversions import Conversion

    s = ConversionScenario(local_stack, ads)
    number = s.lease(gclid=gclid(), fbp=FBP)

    # When a qualifying call is delivered to the platforms (rows sent, and Yahoo!'s skipped)
    call_sid = s.call(number, talk=95)
    local_stack.drain()

    # Then every conversion row of the call carries the call's own expiry, so its click id and
    # value go when the call does, and the conversions table expires rows by that attribute
    expiry = s.snapshot(call_sid)["expire_at"]
    assert expiry
    rows = list(Conversion.query(call_sid, consistent_read=True))
    assert {r.destination for r in rows} == {"google_ads", "meta", "ga4", "yahoo_ads"}
    assert {r.expire_at for r in rows} == {expiry}
    ttl = Conversion._get_connection().connection.client.describe_time_to_live(
        TableName=Conversion.Meta.table_name
    )["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "ENABLED" and ttl["AttributeName"] == "expire_at"


def test_calls_that_do_not_qualify_send_nothing(local_stack: Any, ads: FakeAdPlatforms) -> None:
    # Given a rule for answered calls of 60 s or more
    s = ConversionScenario(local_stack, ads)
    short = s.call(s.lease(gclid=gclid(), fbp=FBP), talk=30)
    missed = s.call(s.lease(gclid=gclid(), fbp=FBP), outcome="no-answer", talk=0)

    # When the calls end and are worked off
    local_stack.drain()

    # Then nothing was sent or recorded for them
    for call_sid in (short, missed):
        assert google_rows(ads, call_sid) == []
        assert not [e for e in ads.meta_events if e["event_id"].startswith(call_sid)]
        assert s.conversions_of(call_sid) == {}


def test_a_stage_change_to_won_with_a_value_restates_the_google_conversion_once(
    local_stack: Any, ads: FakeAdPlatforms
) -> None:
    # Given a qualifying call sent with the rule's default value (5000)
    s = ConversionScenario(local_stack, ads, rules=[rule(destinations=["google_ads", "meta"])])
    call_sid = s.call(s.lease(gclid=gclid(), fbp=FBP))
    local_stack.drain()
    assert google_rows(ads, call_sid)[0]["conversionValue"] == 5000
    before_won = s.snapshot(call_sid)

    # When the sales manager marks it won for 80,000 yen (and the event comes twice), and the older
    # event of the call (value not yet known) is redelivered late
    s.patch(call_sid, stage="won", value=80000)
    local_stack.drain()
    s.redeliver(call_sid, "call.updated")
    s.redeliver(call_sid, "call.completed", call=before_won)
    local_stack.drain()

    # Then Google got one RESTATEMENT of that conversion to 80,000 JPY, never one back to 5000
    [adjustment] = [a for a in ads.google_adjustments if a["orderId"] == order(call_sid)]
    assert adjustment["adjustmentType"] == "RESTATEMENT"
    assert adjustment["restatementValue"] == {"adjustedValue": 80000, "currencyCode": "JPY"}
    assert adjustment["adjustmentDateTime"].endswith("+09:00")
    assert len(google_rows(ads, call_sid)) == 1
    # And the call shows the new value for Google, while Meta (no restatement) notes it kept 5000
    shown = s.conversions_of(call_sid)
    assert shown[("phone-lead", "google_ads")]["value"] == 80000
    assert shown[("phone-lead", "meta")]["value"] == 5000
    assert "no restatement" in shown[("phone-lead", "meta")]["note"]


def test_google_ads_partial_failure_marks_only_the_failed_row():
    # Given the fake Google Ads with an OAuth client allowed on one customer and action
    with FakeAdPlatforms() as fake:
        creds = fake.google_client("1234567890", "987654321")
        fake.invalid_click_ids.add("bad-gclid")
        target = config().destinations.google_ads
        adapter = GoogleAds(fake.base_url, f"{fake.base_url}/token")
        now = datetime.now(UTC)
        good = plan(call(), config(), now)[0]
        bad = plan(call(call_sid="CA" + "2" * 32, attribution={"gclid": "bad-gclid"}), config(), now)[0]
        # When both rows go in one upload
        outcomes = adapter.send([bad, good], json.dumps(creds), target, "Asia/Tokyo")
        # Then the good row is sent and the bad one failed with Google's code; one OAuth exchange
        assert [o.status for o in outcomes] == [FAILED, SENT]
        assert "UNPARSEABLE_GCLID" in str(outcomes[0].reason)
        assert [c["orderId"] for c in fake.google_conversions] == [good.order_id]
        # And a second upload of the same row (its first answer lost) reuses the access token and
        # counts as sent: Google already holds that order id
        again = adapter.send([good], json.dumps(creds), target, "Asia/Tokyo")
        assert len(fake.requests_to("oauth")) == 1
        assert again == [Outcome(SENT)] and len(fake.google_conversions) == 1
        # And a revoked refresh token waits for the secret to be fixed (skipped, taken again then)
        revoked = GoogleAds(fake.base_url, f"{fake.base_url}/token").send(
            [good], json.dumps({**creds, "refresh_token": "1//revoked"}), target, "Asia/Tokyo"
        )
        assert revoked[0].status == SKIPPED and "invalid_grant" in str(revoked[0].reason)
        assert str(revoked[0].reason).startswith("credentials_refused: ")


def test_calltrack_apply_refuses_a_bad_conversions_key_with_exit_2_naming_the_field(local_stack, tmp_path):
    import yaml

    from tests.support import unique_account
    from tests.support.accounts import account_config
    from tests.support.cli import run_cli

    # Given a config whose rule names a destination that is not configured
    config = account_config(unique_account("conv-bad"), conversions=[rule(destinations=["google_ads"])])
    file = tmp_path / "account.yaml"
    file.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    # When it is applied, Then the CLI exits 2 naming the field, and nothing is stored
    result = run_cli("apply", str(file), "--url", local_stack.url, "--token", local_stack.admin_token)
    assert result.exit_code == 2, result.output
    assert "conversions[0].destinations[0]" in result.stderr
    got = local_stack.request("GET", f"/v1/accounts/{config['account']}", token=local_stack.admin_token)
    assert got.status_code == 404


def test_without_api_access_the_import_files_list_the_conversions_in_each_platforms_template(
    local_stack: Any, ads: FakeAdPlatforms
) -> None:
    # Given an account with no ad platform credentials, a Google visitor and a Yahoo! visitor who call
    s = ConversionScenario(local_stack, ads, credentials=())
    click, yclid = gclid(), "YSS.1000012345." + secrets.token_hex(6)
    google_call = s.call(s.lease(gclid=click))
    yahoo_call = s.call(s.lease(yclid=yclid))
    local_stack.drain()
    # Then nothing went to Google, and the calls say why
    assert google_rows(ads, google_call) == []
    assert s.conversions_of(google_call)[("phone-lead", "google_ads")]["reason"] == "no_credentials"
    assert s.conversions_of(yahoo_call)[("phone-lead", "yahoo_ads")]["reason"] == "csv_only"

    # When the marketer downloads the import files
    google = local_stack.request("GET", "/v1/conversions/google-ads.csv", token=s.roles["marketer"])
    yahoo = local_stack.request("GET", "/v1/conversions/yahoo-ads.csv", token=s.roles["marketer"])

    # Then Google's is UTF-8 without a BOM with the time zone line first, listing the gclid
    assert google.status_code == 200 and google.headers["Content-Type"] == "text/csv; charset=utf-8"
    lines = google.content.decode("utf-8").split("\r\n")
    assert lines[0] == "Parameters:TimeZone=Asia/Tokyo"
    assert lines[1] == "Google Click ID,Conversion Name,Conversion Time,Conversion Value,Conversion Currency"
    assert lines[2].startswith(f"{click},phone-lead,") and lines[2].endswith(",5000,JPY")
    # And Yahoo!'s is Shift_JIS with its Japanese header, listing the yclid
    assert yahoo.status_code == 200 and yahoo.headers["Content-Type"] == "text/csv; charset=shift_jis"
    text = yahoo.content.decode("cp932")
    assert text.startswith('"YCLID","コンバージョン名","コンバージョン発生日時"')
    assert f'"{yclid}","phone-lead","' in text and text.endswith('Asia/Tokyo","5000","JPY"\r\n')


def test_a_late_retry_of_an_older_value_does_not_restate_google_back_after_retries(
    local_stack: Any, ads: FakeAdPlatforms
) -> None:
    from conversions import runtime
    from conversions.delivery import RetryLater, deliver

    # Given a call from a Google click, and the conversions consumer as deployed (its store on the
    # emulator, its Google adapter on the fake Google) taking the call's events in a fixed order
    s = ConversionScenario(local_stack, ads, rules=[rule(destinations=["google_ads"],
                                                         when={"stage_at_least": "won"})])
    call_sid = s.call(s.lease(gclid=gclid()))
    local_stack.drain()
    image = s.snapshot(call_sid)

    def event(step: int, value: int) -> dict[str, Any]:
        version = int(image["version"]) + step
        call = {**image, "stage": "won", "value": value, "version": version}
        return {"type": "call.updated", "account": s.account, "call_sid": call_sid, "version": version,
                "changed": ["value"], "call": call}

    # When the deal is marked won at 30,000, then corrected to 40,000, while Google answers 503,
    # then to 50,000, which is sent
    ads.fail("google", "503", "503")
    for step, value in ((1, 30000), (2, 40000)):
        with pytest.raises(RetryLater):
            deliver(event(step, value), runtime.ports())
    assert deliver(event(3, 50000), runtime.ports()) == {"sent": 1}
    # And the 40,000 event's message comes back from its backoff
    deliver(event(2, 40000), runtime.ports())

    # Then Google keeps 50,000: no restatement back to the older value (it was restated to 40,000)
    assert [r["conversionValue"] for r in google_rows(ads, call_sid)] == [50000]
    assert [a for a in ads.google_adjustments if a["orderId"] == order(call_sid)] == []
    assert s.conversions_of(call_sid)[("phone-lead", "google_ads")]["value"] == 50000


def test_the_import_file_lists_the_value_a_call_is_worth_now(local_stack: Any, ads: FakeAdPlatforms) -> None:
    # Given a Yahoo! caller (Yahoo! is CSV-only) listed with the rule's default value
    s = ConversionScenario(local_stack, ads, rules=[rule(destinations=["yahoo_ads"])])
    yclid = "YSS.1000012345." + secrets.token_hex(6)
    call_sid = s.call(s.lease(yclid=yclid))
    local_stack.drain()
    # When the deal is won for 120,000 yen days later
    s.patch(call_sid, stage="won", value=120000)
    local_stack.drain()
    # Then the Yahoo! import file and the call list it at 120,000 (they kept the 5,000)
    text = local_stack.request("GET", "/v1/conversions/yahoo-ads.csv", token=s.roles["marketer"]).content
    [line] = [line for line in text.decode("cp932").split("\r\n") if yclid in line]
    assert line.endswith('"120000","JPY"')
    assert s.conversions_of(call_sid)[("phone-lead", "yahoo_ads")]["value"] == 120000


def test_each_rule_goes_to_its_own_google_ads_conversion_action(
    local_stack: Any, ads: FakeAdPlatforms
) -> None:
    # Given a lead rule on the destination's action and a won-deal rule on an action of its own
    won_action = "555000111"
    s = ConversionScenario(local_stack, ads, rules=[
        rule("phone-lead", destinations=["google_ads"], value={"fixed": 1000}),
        rule("won-deal", destinations=["google_ads"], when={"stage_at_least": "won"},
             google_ads_conversion_action_id=won_action),
    ])
    ads.google_clients[-1].customers[CUSTOMER].add(won_action)  # the account's Google Ads has both
    call_sid = s.call(s.lease(gclid=gclid()))
    local_stack.drain()
    # When the call's deal is won
    s.patch(call_sid, stage="won", value=250000)
    local_stack.drain()
    # Then each conversion went to its rule's action (both went to one: Google keeps one per click)
    sent = {c["orderId"]: c["conversionAction"] for c in google_rows(ads, call_sid)}
    assert sent == {
        order(call_sid): f"customers/{CUSTOMER}/conversionActions/{ACTION}",
        order(call_sid, "won-deal"): f"customers/{CUSTOMER}/conversionActions/{won_action}",
    }


def test_a_google_401_that_a_new_token_cannot_cure_is_refused_and_listed_in_the_import_file(
    local_stack: Any, ads: FakeAdPlatforms
) -> None:
    # Given Google answering every request on the account's customer 401 CUSTOMER_NOT_FOUND (an
    # AuthenticationError, as the Google Ads API sends it)
    s = ConversionScenario(local_stack, ads)
    click = gclid()
    number = s.lease(gclid=click)
    before = len(ads.requests_to("google"))
    ads.google_auth_error(CUSTOMER, "CUSTOMER_NOT_FOUND")
    try:
        # When a qualifying call comes in
        call_sid = s.call(number)
        local_stack.drain()
    finally:
        ads.google_auth_error(CUSTOMER, None)

    # Then the row waits for fixed credentials with Google's reason (it was retried for ten days):
    # asked again only by the call's own later events, as a refused secret is, never by retries
    row = s.conversions_of(call_sid)[("phone-lead", "google_ads")]
    assert row["status"] == "skipped", row
    assert row["reason"] == "credentials_refused: google_ads: authenticationError=CUSTOMER_NOT_FOUND"
    asked = ads.requests_to("google")[before:]
    assert 1 <= len(asked) <= 2 and {r.status for r in asked} == {401}, asked
    assert google_rows(ads, call_sid) == []
    # And the marketer finds the click in Google's import file meanwhile
    google = local_stack.request("GET", "/v1/conversions/google-ads.csv", token=s.roles["marketer"])
    assert google.status_code == 200
    assert f"\r\n{click},phone-lead," in google.content.decode("utf-8")


def test_an_expired_google_access_token_is_refreshed_and_the_conversion_sent(
    local_stack: Any, ads: FakeAdPlatforms
) -> None:
    # Given an account whose conversions Google took with the access token calltrack holds
    s = ConversionScenario(local_stack, ads)
    first = s.call(s.lease(gclid=gclid()))
    local_stack.drain()
    assert s.conversions_of(first)[("phone-lead", "google_ads")]["status"] == "sent"
    # When that token expires (Google answers 401 OAUTH_TOKEN_EXPIRED) and another call comes in
    ads.expire_google_tokens()
    oauth_before = len(ads.requests_to("oauth"))
    second = s.call(s.lease(gclid=gclid()))
    local_stack.drain()
    # Then the retry refreshed the token and the conversion was sent once
    assert s.conversions_of(second)[("phone-lead", "google_ads")]["status"] == "sent"
    assert len(ads.requests_to("oauth")) == oauth_before + 1
    assert len(google_rows(ads, second)) == 1


def test_long_and_japanese_rule_names_reach_ga4_and_meta_as_valid_distinct_events(
    local_stack: Any, ads: FakeAdPlatforms
) -> None:
    # Given three rules to Meta and GA4: two Japanese names and one over GA4's 40 characters
    names = ["電話問い合わせ", "予約の電話", "qualified_call_from_google_search_ads_over_60_seconds"]
    s = ConversionScenario(local_stack, ads, rules=[rule(n, destinations=["meta", "ga4"]) for n in names])
    number = s.lease(gclid=gclid(), ga_client_id=GA_CLIENT, fbp=FBP)
    problems_before = len(ads.ga4_validation)

    # When a qualifying call comes in
    call_sid = s.call(number)
    local_stack.drain()

    # Then GA4 got three events it processes (its validation has nothing to say), one per rule,
    # each with a transaction id of this call
    shown = s.conversions_of(call_sid)
    assert all(shown[(n, "ga4")]["status"] == "sent" for n in names), shown
    assert ads.ga4_validation[problems_before:] == []
    ga4 = [e["events"][0] for e in ads.ga4_events
           if e["events"][0]["params"]["transaction_id"].startswith(call_sid + ":")]
    assert len({e["name"] for e in ga4}) == 3, ga4
    assert all(len(e["name"]) <= 40 for e in ga4)
    # And Meta counted three distinct events too (it deduplicates on event_name + event_id)
    meta = [e for e in ads.meta_events if str(e.get("event_id", "")).startswith(call_sid + ":")]
    assert len({e["event_name"] for e in meta}) == 3, meta
