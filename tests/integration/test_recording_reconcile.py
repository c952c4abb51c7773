"""Issue 15, recordings: a recording whose callback was refused (or lost) is recovered.

A ``/twilio/recording`` callback refused with 503 during a storage outage is not retried by
Twilio, so the recording was never queued. On the running local stack with the fake Twilio, the
``recording-reconcile`` job asks Twilio's Recordings API (``Recordings.json?CallSid=…``) about
answered calls with recording on whose recording is unknown, and queues what it lists; the
normal consumer stores it. A call whose recording is known, and an account without recording,
are never asked about; Twilio answering 401 or 500 is counted and retried on the next run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from calltrack_cli.local.fake_twilio import FakeTwilioMedia
from tests.support.recording_stack import OUR, Scenario, s3_object, serve_media

media = pytest.fixture(scope="module", name="media")(serve_media)

JOB = "recording-reconcile"


def ago(minutes: int) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=minutes)


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def assert_stored(s: Scenario, sid: str, data: bytes) -> None:
    recording = s.call()["recording"]
    assert recording["status"] == "stored", recording
    assert recording["recording_sid"] == sid
    assert s3_object(s.stack, recording["s3_key"])["Body"].read() == data


def test_a_recording_whose_callback_was_lost_is_found_at_twilio_and_stored(
    local_stack: Any, media: FakeTwilioMedia
) -> None:
    # Given a call answered 30 minutes ago on an account with recording on, whose recording
    # callback never arrived (refused with 503 while storage was down; Twilio does not retry it)
    s = Scenario(local_stack, media, answered_at=ago(30))
    sid, data = s.recording_at_twilio()
    assert s.call().get("recording") is None

    # When the reconciliation runs and the queue is worked off
    result = local_stack.run_job(JOB, now_iso())["result"]
    local_stack.drain()

    # Then Twilio's Recordings API was asked about the call, and the recording is stored
    assert result["job"] == JOB and result["recordings_queued"] >= 1
    assert len(media.listings(s.call_sid)) == 1
    assert_stored(s, sid, data)
    assert "+81" not in str(result)  # a summary of counts, never caller numbers

    # And the next run does not ask about it again
    local_stack.run_job(JOB, now_iso())
    assert len(media.listings(s.call_sid)) == 1


def test_a_call_whose_recording_is_known_is_not_asked_about(local_stack: Any, media: FakeTwilioMedia) -> None:
    # Given an answered call whose recording callback arrived and was stored
    s = Scenario(local_stack, media, answered_at=ago(30))
    sid, data = s.recording_at_twilio()
    assert s.callback(sid).status_code == 200
    local_stack.drain()
    assert_stored(s, sid, data)

    # When the reconciliation runs, Then Twilio is not asked about that call
    local_stack.run_job(JOB, now_iso())
    assert media.listings(s.call_sid) == []


def test_an_account_without_recording_is_not_asked_about(local_stack: Any, media: FakeTwilioMedia) -> None:
    s = Scenario(local_stack, media, answered_at=ago(30), enabled=False)
    local_stack.run_job(JOB, now_iso())
    assert media.listings(s.call_sid) == []


def test_twilio_answering_401_or_500_is_counted_and_the_next_run_recovers(
    local_stack: Any, media: FakeTwilioMedia
) -> None:
    # Given two lost recordings, Twilio's API answering the first list request 401 for one, 500 for the other
    refused = Scenario(local_stack, media, answered_at=ago(40))
    failing = Scenario(local_stack, media, answered_at=ago(35))
    refused_rec = refused.recording_at_twilio("401")
    failing_rec = failing.recording_at_twilio("500")

    # When the reconciliation runs, Then it finishes and counts both errors
    result = local_stack.run_job(JOB, now_iso())["result"]
    assert result["job"] == JOB
    assert result["errors"] >= 2
    assert {"http-401", "http-500"} <= set(result["error_reasons"])
    local_stack.drain()
    assert refused.call().get("recording") is None and failing.call().get("recording") is None

    # And the next run (Twilio answering again) recovers both recordings
    local_stack.run_job(JOB, now_iso())
    local_stack.drain()
    assert_stored(refused, *refused_rec)
    assert_stored(failing, *failing_rec)


def test_the_fake_twilio_lists_recordings_as_twilios_api_does(
    local_stack: Any, media: FakeTwilioMedia
) -> None:
    s = Scenario(local_stack, media, answered_at=ago(30))
    sid, _ = s.recording_at_twilio()
    url = f"{media.base_url}/2010-04-01/Accounts/{OUR}/Recordings.json"
    auth = (OUR, local_stack.twilio_auth_token)

    page = requests.get(url, params={"CallSid": s.call_sid}, auth=auth, timeout=5)
    assert page.status_code == 200
    body = page.json()
    [recording] = body["recordings"]
    assert (recording["sid"], recording["call_sid"], recording["status"]) == (sid, s.call_sid, "completed")
    assert {"duration", "channels", "date_created", "account_sid", "source"} <= set(recording)
    assert {"page", "page_size", "next_page_uri", "uri", "first_page_uri"} <= set(body)
    assert body["next_page_uri"] is None

    assert requests.get(url, params={"CallSid": s.call_sid}, timeout=5).status_code == 401
    wrong = (OUR, "wrong")
    assert requests.get(url, params={"CallSid": s.call_sid}, auth=wrong, timeout=5).status_code == 401
    assert requests.get(url, params={"CallSid": "CA123\n"}, auth=auth, timeout=5).status_code == 400
    other = url.replace(OUR, "AC" + "f" * 32)
    assert requests.get(other, params={"CallSid": s.call_sid}, auth=auth, timeout=5).status_code in (401, 403)
    unknown = requests.get(url, params={"CallSid": "CA" + "e" * 32}, auth=auth, timeout=5)
    assert unknown.status_code == 200 and unknown.json()["recordings"] == []
