"""Conversation intelligence end to end on the local stack: a recorded call is transcribed (the
local Transcribe hears what the test scripted), its transcript lands on the call, the account's
call rules tag and qualify it exactly once however often the events repeat, only admins and
managers read or search the text, and campaign trials reach a verdict from the calls' scores."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from calltrack_cli.local.fake_twilio import FakeTwilioMedia
from calltrack_cli.local.transcribe import job_state_change
from tests.support import unique_call_sid, unique_number, unique_recording_sid
from tests.support.recording_stack import OUR, serve_media
from tests.support.stack import apply_account, tokens
from tests.support.twilio import play_call

media = pytest.fixture(scope="module", name="media")(serve_media)

BOOKING_RULE = {
    "name": "booking",
    "when": {"phrases_any": ["予約", "予約したい"], "speaker": "caller", "min_talk_seconds": 30},
    "then": {"tags_add": ["booking"], "stage": "lead", "score_add": 20},
}
SCRIPT = [
    ("staff", 0.5, "お電話ありがとうございます、新宿デンタルです。"),
    ("caller", 3.0, "来週の土曜日に予約したいのですが。"),
    ("staff", 6.2, "土曜日の午前でしたら空いております。"),
    ("caller", 9.0, "インプラントの費用も知りたいです。"),
]


def recorded_call(stack: Any, media: FakeTwilioMedia, account: str, number: str,
                  script: list[tuple[str, float, str]] | None, talk: int = 95,
                  call_sid: str | None = None) -> str:
    """An answered call to ``number`` whose dual-channel recording Twilio posts and we store."""
    call_sid = call_sid or unique_call_sid()
    if script is not None:
        stack.script_transcript(call_sid, script)
    play_call(stack, number, datetime.now(UTC) - timedelta(minutes=5), talk=talk, call_sid=call_sid)
    sid = unique_recording_sid()
    media.add_recording(OUR, sid, None)
    form = {
        "AccountSid": OUR, "CallSid": call_sid, "RecordingSid": sid, "RecordingStatus": "completed",
        "RecordingDuration": str(talk), "RecordingChannels": "2", "RecordingSource": "DialVerb",
    }
    assert stack.twilio_post("/twilio/recording", form).status_code == 200
    stack.drain()
    return call_sid


def get_call(stack: Any, call_sid: str, token: str) -> dict[str, Any]:
    resp = stack.request("GET", f"/v1/calls/{call_sid}", token=token)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def send_to_transcripts_queue(stack: Any, body: dict[str, Any]) -> None:
    sqs = stack.stack.client("sqs")
    sqs.send_message(QueueUrl=stack.stack.queue_urls["transcripts"], MessageBody=json.dumps(body))


@pytest.fixture(scope="module")
def clinic(local_stack: Any) -> dict[str, Any]:
    number = unique_number()
    account = apply_account(
        local_stack, "conv",
        recording={"enabled": True},
        transcription={"enabled": True, "min_talk_seconds": 20},
        call_rules=[BOOKING_RULE, {"name": "long-call", "when": {"min_talk_seconds": 60},
                                   "then": {"tags_add": ["long"]}}],
        numbers=[{"number": number, "channel": "newspaper", "campaign": "dec-insert"}],
    )
    return {"account": account, "number": number,
            "tokens": tokens(local_stack, account, "admin", "manager", "marketer")}


def test_a_recorded_call_is_transcribed_tagged_and_qualified_once_under_duplicate_events(
    local_stack: Any, media: FakeTwilioMedia, clinic: dict[str, Any]
) -> None:
    # Given a clinic with transcription and a booking rule, and a caller who asks for a booking
    manager = clinic["tokens"]["manager"]

    # When the call's recording is stored and the pipeline is worked off
    call_sid = recorded_call(local_stack, media, clinic["account"], clinic["number"], SCRIPT)

    # Then the transcript is on the call, caller and staff apart, in time order
    resp = local_stack.request("GET", f"/v1/calls/{call_sid}/transcript", token=manager)
    assert resp.status_code == 200, resp.text
    transcript = resp.json()
    assert transcript["status"] == "stored" and transcript["language"] == "ja-JP"
    assert [(s["speaker"], s["text"]) for s in transcript["segments"]] == [(s, t) for s, _, t in SCRIPT]
    assert transcript["segments"][1]["start"] == 3.0
    # ... and the rules hit once each: tagged, qualified as a lead, scored
    call = get_call(local_stack, call_sid, manager)
    assert set(call["rule_hits"]) == {"booking", "long-call"}
    assert call["rule_hits"]["booking"]["phrase"] == "予約"
    assert call["rule_hits"]["booking"]["trigger"] == "transcript"
    assert call["rule_hits"]["long-call"]["trigger"] == "completed"
    assert sorted(call["tags"]) == ["booking", "long"]
    assert (call["stage"], call["score"]) == ("lead", 20)
    assert call["transcript"]["status"] == "stored" and call["transcript"]["segments"] == 4

    # When every event arrives again: Transcribe's completion, the call's completion and its
    # transcript update (EventBridge and the fan-out deliver at least once)
    job = f"calltrack-{call_sid}-{call['recording']['recording_sid']}"
    send_to_transcripts_queue(local_stack, job_state_change(job, "COMPLETED"))
    for kind, changed in (("call.completed", ["ended_at"]), ("call.updated", ["transcript"])):
        send_to_transcripts_queue(local_stack, {
            "type": kind, "account": clinic["account"], "call_sid": call_sid, "version": 1,
            "changed": changed, "call": {"call_sid": call_sid, "account": clinic["account"],
                                         "transcript": {"status": "stored"}},
        })
    local_stack.drain()

    # Then nothing is applied twice: same hits, same tags, score still 20, same transcript
    again = get_call(local_stack, call_sid, manager)
    assert again["rule_hits"] == call["rule_hits"]
    assert sorted(again["tags"]) == ["booking", "long"] and again["score"] == 20
    assert again["transcript"] == call["transcript"]


def test_a_transcript_whose_completion_event_was_lost_is_stored_by_the_jobs_watch(
    local_stack: Any, media: FakeTwilioMedia, clinic: dict[str, Any]
) -> None:
    # Given Transcribe's completion event of this call's job will be lost (best-effort delivery)
    call_sid = unique_call_sid()
    local_stack.stack.transcribe.lose_event(call_sid)
    # When the call is recorded and transcribed, and the stack drains (the watch's waits pass)
    recorded_call(local_stack, media, clinic["account"], clinic["number"], SCRIPT, call_sid=call_sid)
    local_stack.drain()
    # Then the watch found the finished job: the transcript is stored and the rules hit
    manager = clinic["tokens"]["manager"]
    resp = local_stack.request("GET", f"/v1/calls/{call_sid}/transcript", token=manager)
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "stored", resp.json()
    assert [(s["speaker"], s["text"]) for s in resp.json()["segments"]] == [(s, t) for s, _, t in SCRIPT]
    call = get_call(local_stack, call_sid, manager)
    assert call["rule_hits"]["booking"]["trigger"] == "transcript"
    assert (sorted(call["tags"]), call["stage"]) == (["booking", "long"], "lead")


def test_a_call_without_the_phrase_is_not_qualified_and_a_short_call_is_not_transcribed(
    local_stack: Any, media: FakeTwilioMedia, clinic: dict[str, Any]
) -> None:
    manager = clinic["tokens"]["manager"]
    # Given a caller who only asks about parking (the booking phrase comes from the staff)
    plain = recorded_call(local_stack, media, clinic["account"], clinic["number"], [
        ("caller", 1.0, "駐車場はありますか。"), ("staff", 3.0, "ございます、ご予約の際にお伝えします。"),
    ])
    # Then the booking rule does not hit (speaker: caller), the long-call rule does
    call = get_call(local_stack, plain, manager)
    assert set(call["rule_hits"]) == {"long-call"} and call["stage"] is None
    # And a 10-second call is below min_talk_seconds: no transcription job at all
    short = recorded_call(local_stack, media, clinic["account"], clinic["number"], SCRIPT, talk=10)
    assert get_call(local_stack, short, manager)["transcript"] is None
    resp = local_stack.request("GET", f"/v1/calls/{short}/transcript", token=manager)
    assert resp.status_code == 404


def test_only_admins_and_managers_read_and_search_transcripts(
    local_stack: Any, media: FakeTwilioMedia, clinic: dict[str, Any]
) -> None:
    # Given a transcribed call
    call_sid = recorded_call(local_stack, media, clinic["account"], clinic["number"], SCRIPT)
    marketer, admin = clinic["tokens"]["marketer"], clinic["tokens"]["admin"]

    # Then a marketer gets 403 on the transcript and on search, and sees no text on the call
    assert local_stack.request("GET", f"/v1/calls/{call_sid}/transcript", token=marketer).status_code == 403
    assert local_stack.request("GET", "/v1/calls", token=marketer, params={"q": "予約"}).status_code == 403
    seen = get_call(local_stack, call_sid, marketer)
    shown = json.dumps(seen, ensure_ascii=False)
    assert all(text not in shown for _, _, text in SCRIPT)
    # (the rule hits stay visible: which configured rule and phrase hit, not what was said)
    assert seen["rule_hits"]["booking"]["phrase"] == "予約" and seen["transcript"]["segments"] == 4
    # ... another account's admin cannot read it either
    other = apply_account(local_stack, "conv-other")
    other_admin = tokens(local_stack, other, "admin")["admin"]
    foreign = local_stack.request("GET", f"/v1/calls/{call_sid}/transcript", token=other_admin)
    assert foreign.status_code == 404

    # And an admin's search finds the call by what was said (full-width and half-width alike)
    today = datetime.now(UTC).date()
    window = {"from": (today - timedelta(days=1)).isoformat(), "to": (today + timedelta(days=1)).isoformat()}
    found = local_stack.request("GET", "/v1/calls", token=admin, params={"q": "インプラント", **window})
    assert found.status_code == 200, found.text
    assert call_sid in [c["call_sid"] for c in found.json()["items"]]
    missing = local_stack.request("GET", "/v1/calls", token=admin, params={"q": "ホワイトニング", **window})
    assert call_sid not in [c["call_sid"] for c in missing.json()["items"]]
    too_long = local_stack.request("GET", "/v1/calls", token=admin, params={"q": "x" * 101})
    assert too_long.status_code == 400 and too_long.json()["field"] == "q"


def test_campaign_trials_pass_or_fail_against_the_pass_line(local_stack: Any) -> None:
    # Given an account with a pass line of 70 and 3-call trials, and three campaigns
    numbers = {name: unique_number() for name in ("spring", "summer", "autumn")}
    account = apply_account(
        local_stack, "trial",
        review={"pass_score": 70, "trial_sample_calls": 3},
        numbers=[{"number": n, "channel": "flyer", "campaign": c} for c, n in numbers.items()],
    )
    manager = tokens(local_stack, account, "manager")["manager"]
    scores = {"spring": [80, 90, 70], "summer": [20, 30, 40], "autumn": [95]}
    start = datetime.now(UTC) - timedelta(hours=3)
    for campaign, marks in scores.items():
        for i, mark in enumerate(marks):
            sid = play_call(local_stack, numbers[campaign], start + timedelta(minutes=10 * i))
            # When a manager scores each sample call from its recording
            resp = local_stack.request("PATCH", f"/v1/calls/{sid}", token=manager, json={"score": mark})
            assert resp.status_code == 200, resp.text

    # Then the trials list shows each campaign's verdict against the pass line
    resp = local_stack.request("GET", "/v1/reviews/trials", token=manager)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["pass_score"], body["trial_sample_calls"]) == (70, 3)
    by_campaign = {t["campaign"]: t for t in body["trials"]}
    assert by_campaign["spring"]["verdict"] == "passed" and by_campaign["spring"]["mean_score"] == 80
    assert by_campaign["summer"]["verdict"] == "failed"
    assert by_campaign["summer"]["action"] == "fix the script and re-test"
    assert by_campaign["autumn"]["verdict"] == "in_progress"
    assert (by_campaign["autumn"]["sample_calls"], by_campaign["autumn"]["scored_share"]) == (1, 1.0)


def test_test_calls_are_not_in_a_campaigns_trial(local_stack: Any) -> None:
    # Given a campaign whose first answered call came from one of the account's test callers
    number, tester = unique_number(), unique_number("+8190")
    account = apply_account(
        local_stack, "trial-test",
        review={"pass_score": 70, "trial_sample_calls": 3},
        numbers=[{"number": number, "channel": "flyer", "campaign": "winter"}],
        test_callers=[tester],
    )
    manager = tokens(local_stack, account, "manager")["manager"]
    start = datetime.now(UTC) - timedelta(hours=3)
    callers = [tester] + [unique_number("+8190") for _ in range(3)]
    for i, (caller, mark) in enumerate(zip(callers, [10, 80, 80, 80], strict=True)):
        sid = play_call(local_stack, number, start + timedelta(minutes=10 * i), caller=caller)
        assert local_stack.request("PATCH", f"/v1/calls/{sid}", token=manager, json={"score": mark}).ok
    # When the trials are read
    body = local_stack.request("GET", "/v1/reviews/trials", token=manager).json()
    # Then the staff's test call is not part of the sample: the three real calls pass
    [winter] = [t for t in body["trials"] if t["campaign"] == "winter"]
    assert (winter["verdict"], winter["mean_score"], winter["sample_calls"]) == ("passed", 80, 3)


def test_transcripts_that_failed_while_transcribe_was_at_its_limit_start_again_on_retry(
    local_stack: Any, media: FakeTwilioMedia, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.core.exceptions import JsonRESTError
    from moto.transcribe.models import TranscribeBackend

    from tests.support.cli import run_cli

    # Given an account with transcription, and Amazon Transcribe at its limit of jobs through
    # every try of a call's transcript (about ten hours: compressed here)
    number = unique_number()
    account = apply_account(local_stack, "trx", recording={"enabled": True},
                            transcription={"enabled": True, "min_talk_seconds": 20},
                            call_rules=[BOOKING_RULE], numbers=[{"number": number, "channel": "newspaper"}])
    admin, manager = (tokens(local_stack, account, "admin", "manager")[k] for k in ("admin", "manager"))
    start = TranscribeBackend.start_transcription_job
    at_limit = [True]

    def start_job(self: Any, **kwargs: Any) -> Any:
        if at_limit[0]:
            raise JsonRESTError("LimitExceededException", "You have exceeded the concurrent job limit.")
        return start(self, **kwargs)

    monkeypatch.setattr(TranscribeBackend, "start_transcription_job", start_job)
    call_sid = recorded_call(local_stack, media, account, number, SCRIPT)
    local_stack.drain()
    failed = local_stack.request("GET", f"/v1/calls/{call_sid}/transcript", token=manager).json()
    assert failed["status"] == "failed" and "limit" in failed["reason"], failed

    # When the quota is raised, a manager may not start them again, and an admin does (the CLI)
    at_limit[0] = False
    refused = local_stack.request("POST", "/v1/transcripts/retry", token=manager, json={})
    assert refused.status_code == 403, refused.text
    monkeypatch.setenv("CALLTRACK_URL", local_stack.url)
    result = run_cli("transcripts", "retry", "--token", admin)
    assert result.exit_code == 0, result.output
    assert f"{account}: started 1 failed transcript again" in result.stdout
    local_stack.drain()

    # Then the transcript is stored and the rules hit, as if nothing had failed
    stored = local_stack.request("GET", f"/v1/calls/{call_sid}/transcript", token=manager).json()
    assert stored["status"] == "stored", stored
    assert [(s["speaker"], s["text"]) for s in stored["segments"]] == [(s, t) for s, _, t in SCRIPT]
    assert get_call(local_stack, call_sid, manager)["stage"] == "lead"
    # and a second retry finds nothing to start
    again = local_stack.request("POST", "/v1/transcripts/retry", token=admin, json={"since": "2026-01-01"})
    assert again.status_code == 200 and again.json()["requeued"] == 0, again.text
    bad = local_stack.request("POST", "/v1/transcripts/retry", token=admin, json={"cursor": "yesterday"})
    assert bad.status_code == 400 and bad.json()["field"] == "cursor", bad.text


def test_a_retry_runs_again_a_job_whose_output_is_gone(
    local_stack: Any, media: FakeTwilioMedia, clinic: dict[str, Any]
) -> None:
    from calltrack.call_items import call_items

    # Given a call transcribed long ago (its job completed, its output JSON deleted once stored),
    # whose transcript shows failed (a failure that came after, e.g. a permission since fixed)
    manager, admin = clinic["tokens"]["manager"], clinic["tokens"]["admin"]
    call_sid = recorded_call(local_stack, media, clinic["account"], clinic["number"], SCRIPT)
    call = get_call(local_stack, call_sid, manager)
    assert call["transcript"]["status"] == "stored"
    failed = {"status": "failed", "recording_sid": call["recording"]["recording_sid"],
              "reason": "AccessDenied", "gave_up": True}
    call_items().amend(clinic["account"], call_sid, {"transcript": failed})

    # When an admin retries the account's failed transcripts
    resp = local_stack.request("POST", "/v1/transcripts/retry", token=admin, json={})
    assert resp.status_code == 200 and resp.json()["requeued"] == 1, resp.text
    local_stack.drain()

    # Then the spent job was deleted and run again: the transcript is stored from its new output
    again = local_stack.request("GET", f"/v1/calls/{call_sid}/transcript", token=manager).json()
    assert again["status"] == "stored", again
    assert [(s["speaker"], s["text"]) for s in again["segments"]] == [(s, t) for s, _, t in SCRIPT]
