"""Scheduled jobs on the local stack: calls come in through the real signed Twilio webhooks (at chosen
instants via the local clock header), jobs run through ``run_job`` and SNS messages are read back
from the outbox.

Known pattern: misses concentrated on Tuesday noon (Tokyo); a healthy account; an account with a
broken config; three channels growing/flat/low-quality for the monthly review.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.support import unique_account, unique_number
from tests.support.accounts import account_config
from tests.support.times import tokyo
from tests.support.twilio import play_call


def new_account(stack: Any, channels: tuple[str, ...], language: str = "ja-JP") -> tuple[str, dict[str, str]]:
    account = unique_account("jobs")
    numbers = {ch: unique_number() for ch in channels}
    stack.apply(
        account_config(
            account,
            name=f"Jobs {account}",
            language=language,
            numbers=[
                {"number": n, "channel": ch, "campaign": f"{ch}-always-on", "medium": "offline"}
                for ch, n in numbers.items()
            ],
        )
    )
    return account, numbers


def attr(message: dict[str, Any], name: str) -> Any:
    value = (message.get("attributes") or {}).get(name)
    if isinstance(value, dict):
        return value.get("Value", value.get("StringValue"))
    return value


def messages_for(
    stack: Any, account: str, kind: str, box: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The account's messages of one kind (pass ``box`` to reuse one outbox read)."""
    messages = stack.outbox() if box is None else box
    return [m for m in messages if attr(m, "account") == account and attr(m, "kind") == kind]


def run(stack: Any, job: str, at: str, force: bool = False) -> dict[str, Any]:
    out = stack.run_job(job, at, force=force)
    return dict(out["result"])


@pytest.fixture
def broken_account(local_stack: Any) -> Iterator[str]:
    """An account row whose config names an unknown time zone (removed after the test)."""
    from calltrack.settings import get_settings

    account = unique_account("broken")
    ddb = local_stack.stack.client("dynamodb")
    table = get_settings().table_name("accounts")
    ddb.put_item(
        TableName=table,
        Item={
            "account": {"S": account},
            "name": {"S": "Broken"},
            "config": {"S": json.dumps({"timezone": "Mars/Olympus"})},
            "config_hash": {"S": "x"},
            "updated_at": {"S": "2026-11-01T00:00:00.000000+0000"},
        },
    )
    try:
        yield account
    finally:
        ddb.delete_item(TableName=table, Key={"account": {"S": account}})


def test_weekly_alert_names_the_tuesday_noon_misses_once_and_skips_healthy_accounts(
    local_stack: Any, broken_account: str
) -> None:
    # Given an account whose misses cluster on Tuesday 12:00 (Tokyo) last week, over a quiet baseline
    noisy, n = new_account(local_stack, ("google-ads",))
    number = n["google-ads"]
    for week in range(1, 5):
        for i in range(5):
            outcome = "answered" if i != 0 else "no-answer"
            play_call(local_stack, number, tokyo(11, 23, 10 + i) - timedelta(weeks=week), outcome)
    for i in range(12):
        play_call(local_stack, number, tokyo(11, 23 + i % 7, 10 + i % 5), "answered")
    for i in range(6):
        play_call(local_stack, number, tokyo(11, 24, 12, 5 + 8 * i), "no-answer")
    # And a healthy account, and one whose stored config is broken
    healthy, h = new_account(local_stack, ("flyer",))
    for i in range(10):
        play_call(local_stack, h["flyer"], tokyo(11, 25, 9 + i), "answered")

    # When the weekly job runs on Monday 09:00 JST
    result = run(local_stack, "weekly-unanswered-alert", "2026-11-30T09:00:00+09:00")

    # Then the noisy account gets one message in Japanese with filterable attributes
    assert result["accounts"][noisy]["decided"] == "published"
    box = local_stack.outbox()
    sent = messages_for(local_stack, noisy, "weekly-unanswered-alert", box)
    assert len(sent) == 1
    assert sent[0]["subject"] == f"[Jobs {noisy}] 先週の不在着信: 6件 (応答率 66.6%) — 火曜 12時台に集中"
    assert "火曜 12時台 (6件)" in sent[0]["message"]
    assert "期間: 2026-11-23 〜 2026-11-29 (Asia/Tokyo)" in sent[0]["message"]
    assert attr(sent[0], "missed") == "6"
    assert attr(sent[0], "worst_slot") == "Tue 12"
    assert float(attr(sent[0], "answer_rate")) == pytest.approx(0.6667)
    # And the healthy account gets nothing, but the decision is recorded
    assert result["accounts"][healthy]["decided"] == "nothing-to-say"
    assert messages_for(local_stack, healthy, "weekly-unanswered-alert", box) == []
    # And the broken account failed alone
    assert result["accounts"][broken_account]["decided"] == "failed"
    assert result["failures"] >= 1

    # When the same week runs again (the next hourly run), nothing is published twice
    again = run(local_stack, "weekly-unanswered-alert", "2026-11-30T10:00:00+09:00")
    assert again["accounts"][noisy]["decided"] == "already-done"
    # Unless the re-run is forced
    forced = run(local_stack, "weekly-unanswered-alert", "2026-11-30T09:00:00+09:00", force=True)
    assert forced["accounts"][noisy]["decided"] == "published"
    # (the outbox is read once at the end: 1 message from the first run + 1 forced)
    assert len(messages_for(local_stack, noisy, "weekly-unanswered-alert")) == 2


def test_spike_check_publishes_once_per_account_hour(local_stack: Any) -> None:
    account, n = new_account(local_stack, ("radio",), language="en-US")
    for i in range(7):
        outcome = "answered" if i == 0 else "no-answer"
        play_call(local_stack, n["radio"], tokyo(11, 26, 15, 2 + 7 * i), outcome)
    result = run(local_stack, "missed-call-spike-check", "2026-11-26T16:05:00+09:00")
    assert result["accounts"][account]["decided"] == "published"
    run(local_stack, "missed-call-spike-check", "2026-11-26T16:35:00+09:00")
    sent = messages_for(local_stack, account, "missed-call-spike-check")
    assert len(sent) == 1
    assert sent[0]["subject"] == f"[Jobs {account}] Missed-call spike: 6 missed in the last hour (15:00)"
    assert attr(sent[0], "period") == "2026-11-26T06"


def set_recording_stored(stack: Any, call_sid: str) -> None:
    """Recordings normally land through the recording pipeline; here we mark the call directly."""
    from calltrack.settings import get_settings

    stack.stack.client("dynamodb").update_item(
        TableName=get_settings().table_name("calls"),
        Key={"call_sid": {"S": call_sid}},
        UpdateExpression="SET recording = :r",
        ExpressionAttributeValues={":r": {"S": json.dumps({"status": "stored", "sid": "RE" + call_sid[2:]})}},
    )


def test_monthly_review_verdicts_sample_storage_api_and_idempotency(local_stack: Any) -> None:
    # Given google-ads growing with good leads, flyer falling (per day), facebook growing with no leads
    account, n = new_account(local_stack, ("google-ads", "flyer", "facebook"))
    manager = local_stack.create_token(account, "manager")
    marketer = local_stack.create_token(account, "marketer")
    for i in range(4):
        play_call(local_stack, n["google-ads"], tokyo(10, 6 + i, 11), "answered")
    for i in range(3):
        play_call(local_stack, n["flyer"], tokyo(10, 6 + i, 14), "answered")
        play_call(local_stack, n["flyer"], tokyo(11, 6 + i, 14), "answered")
    play_call(local_stack, n["flyer"], tokyo(10, 20, 14), "answered")
    for i in range(2):
        play_call(local_stack, n["facebook"], tokyo(10, 12 + i, 16), "answered")
    google = [
        play_call(local_stack, n["google-ads"], tokyo(11, 3 + 3 * i, 11), "answered") for i in range(7)
    ]
    # a call at 23:30 on the last day of the month in Tokyo belongs to November
    google.append(play_call(local_stack, n["google-ads"], tokyo(11, 30, 23, 30), "answered"))
    # and one at 00:10 on December 1st in Tokyo (still November 30 in UTC) does not
    play_call(local_stack, n["flyer"], tokyo(12, 1, 0, 10), "answered")
    for i in range(6):
        outcome = "answered" if i % 2 == 0 else "no-answer"
        play_call(local_stack, n["facebook"], tokyo(11, 10 + i, 16), outcome)
    for sid, body in zip(
        google,
        [
            {"stage": "won", "value": 120000},
            {"stage": "won", "value": 80000},
            {"stage": "lead"},
            {"stage": "opportunity"},
        ],
        strict=False,
    ):
        resp = local_stack.request("PATCH", f"/v1/calls/{sid}", token=manager, json=body)
        assert resp.status_code == 200, resp.text
    for sid in google[:6]:
        set_recording_stored(local_stack, sid)
    resp = local_stack.request(
        "PUT",
        "/v1/spend",
        token=marketer,
        json={"month": "2026-11", "channel": "google-ads", "amount": 100000},
    )
    assert resp.status_code < 300, resp.text

    # When the monthly review runs on December 1st 09:00 JST
    result = run(local_stack, "monthly-channel-review", "2026-12-01T09:00:00+09:00")

    # Then every channel has its decision-flow verdict
    assert result["accounts"][account]["decided"] == "published"
    assert result["accounts"][account]["channels"] == {
        "google-ads": "increase spend",
        "flyer": "review ad copy and targeting",
        "facebook": "change channel or review cost-effectiveness",
    }
    # And the stored review is readable through the API
    listing = local_stack.request("GET", "/v1/reviews", token=marketer)
    assert listing.status_code == 200
    assert [r["month"] for r in listing.json()["reviews"]] == ["2026-11"]
    review = local_stack.request("GET", "/v1/reviews/2026-11", token=marketer).json()
    ch = {c["channel"]: c for c in review["channels"]}
    assert review["month"] == "2026-11"
    assert (ch["google-ads"]["calls"], ch["google-ads"]["previous_calls"]) == (8, 4)
    assert (ch["flyer"]["calls"], ch["flyer"]["previous_calls"]) == (3, 4)
    assert ch["google-ads"]["lead_rate"] == 0.5 and ch["google-ads"]["close_rate"] == 0.25
    assert ch["google-ads"]["won_value_per_call"] == 25000.0
    assert ch["google-ads"]["spend"] == 100000 and ch["google-ads"]["romi"] == 1.0
    assert ch["facebook"]["answer_rate"] == 0.5
    assert ch["flyer"]["reason"] == "calls down: 3 vs 4 in 2026-10 (a day: 0.10 vs 0.13)"
    # And the random sample holds 5 answered calls with recordings
    sample = [s["call_sid"] for s in review["review_sample"]]
    assert len(sample) == 5 and set(sample) <= set(google[:6])
    html = local_stack.request("GET", "/v1/reviews/2026-11", token=marketer, params={"format": "html"})
    assert html.status_code == 200 and html.headers["Content-Type"].startswith("text/html")
    assert "予算を増やす" in html.text and "google-ads" in html.text
    # and, served on the console's origin when deployed, it may style itself and do nothing else
    policy = html.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "sandbox" in policy and "script-src" not in policy
    assert html.headers["X-Content-Type-Options"] == "nosniff"
    # And one short summary went out on SNS
    sent = messages_for(local_stack, account, "monthly-channel-review")
    assert len(sent) == 1
    assert sent[0]["subject"] == f"[Jobs {account}] 月次チャネルレビュー 2026-11: 着信 17件"
    assert attr(sent[0], "month") == "2026-11"

    # When it runs again for the same month: nothing new; forced: one more message, same sample
    assert (
        run(local_stack, "monthly-channel-review", "2026-12-01T10:00:00+09:00")["accounts"][account][
            "decided"
        ]
        == "already-done"
    )
    run(local_stack, "monthly-channel-review", "2026-12-01T09:00:00+09:00", force=True)
    assert len(messages_for(local_stack, account, "monthly-channel-review")) == 2
    again = local_stack.request("GET", "/v1/reviews/2026-11", token=marketer).json()
    assert [s["call_sid"] for s in again["review_sample"]] == sample


def test_review_api_errors_and_account_scoping(local_stack: Any) -> None:
    account, _ = new_account(local_stack, ("flyer",))
    other, _ = new_account(local_stack, ("flyer",))
    token = local_stack.create_token(account, "manager")
    assert local_stack.request("GET", "/v1/reviews/2026-13", token=token).status_code == 400
    assert local_stack.request("GET", "/v1/reviews/latest", token=token).status_code == 400
    assert local_stack.request("GET", "/v1/reviews/2026-10", token=token).status_code == 404
    bad_format = local_stack.request("GET", "/v1/reviews/2026-10", token=token, params={"format": "pdf"})
    assert bad_format.status_code == 400
    assert local_stack.request("GET", "/v1/reviews").status_code == 401
    assert local_stack.request("GET", "/v1/reviews", token=token).json() == {
        "account": account,
        "reviews": [],
    }
    cross = local_stack.request("GET", "/v1/reviews", token=token, params={"account": other})
    assert cross.status_code == 403


def test_daily_export_runs_in_its_own_function(local_stack: Any) -> None:
    out = local_stack.run_job("daily-calls-export", "2026-11-26T00:30:00+09:00")
    assert out["function"] == "calls_export"
    assert out["result"]["job"] == "daily-calls-export" and out["result"]["failures"] == 0
