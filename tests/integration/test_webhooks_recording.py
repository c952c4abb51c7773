"""recording.ready: a webhook hears about a call's recording once the pipeline stored it (the call's
``recording`` turns ``stored``), through the real recording callback, fetch and S3 write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support import unique_account, unique_call_sid, unique_number, unique_recording_sid
from tests.support.account_secrets import set_account_secret
from tests.support.accounts import account_config
from tests.support.receiver import Receiver, readme_verify, serve
from tests.support.recording_stack import OUR, serve_media
from tests.support.twilio import play_call

media = pytest.fixture(scope="module", name="media")(serve_media)


def test_recording_ready_is_sent_when_the_recording_is_stored(local_stack: Any, media: Any) -> None:
    for receiver in serve(Receiver()):
        # Given an account recording its calls, with a webhook subscribed to recording.ready only
        account, number, sid = unique_account("hooks"), unique_number(), unique_call_sid()
        local_stack.apply(account_config(
            account, recording={"enabled": True}, numbers=[{"number": number, "channel": "flyer"}],
            webhooks=[{"id": "rec", "url": receiver.url, "events": ["recording.ready"], "secret": "rec"}]))
        set_account_secret(local_stack, account, "rec", "rec-secret")
        play_call(local_stack, number, datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3),
                  call_sid=sid)
        local_stack.drain()
        assert receiver.received == []  # no recording yet, and no other event subscribed
        # When Twilio calls back with the completed recording and the pipeline stores it
        recording_sid = unique_recording_sid()
        media.add_recording(OUR, recording_sid, None)
        resp = local_stack.twilio_post("/twilio/recording", {
            "AccountSid": OUR, "CallSid": sid, "RecordingSid": recording_sid, "RecordingStatus": "completed",
            "RecordingDuration": "7", "RecordingChannels": "2", "RecordingSource": "DialVerb",
            "RecordingUrl": f"https://api.twilio.com/{recording_sid}"})
        assert resp.status_code == 200, resp.text
        local_stack.drain()
        # Then exactly one recording.ready arrives, signed, with the call showing its stored recording
        [ready] = receiver.received
        body = ready.json()
        assert body["type"] == "recording.ready" and ready.headers["X-Calltrack-Event"] == "recording.ready"
        assert readme_verify()("rec-secret", ready.headers["X-Calltrack-Signature"], ready.body)
        assert body["data"]["call_sid"] == sid
        assert body["data"]["recording"]["status"] == "stored"
