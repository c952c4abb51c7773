"""Recordings end to end over the local stack: signed callback -> queue -> fetch -> S3 -> call -> URL.

The fake Twilio media server is started for this module and the stack's handlers (which run in
this process and read settings at first use) are pointed at it through TWILIO_API_BASE_URL.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from calltrack.settings import LOCAL_TWILIO_ACCOUNT_SID, reset_settings
from calltrack_cli.local.fake_twilio import FakeTwilioMedia
from calltrack_cli.local.mp3 import silent_mp3
from tests.support import unique_call_sid, unique_number, unique_recording_sid
from tests.support.stack import apply_account
from tests.support.twilio import voice_form

OUR = LOCAL_TWILIO_ACCOUNT_SID
CALLER = "+819012345678"


@pytest.fixture(scope="module")
def media(local_stack: Any) -> Iterator[FakeTwilioMedia]:
    fake = FakeTwilioMedia(credentials=[(OUR, local_stack.twilio_auth_token)], hang_seconds=3).start()
    ensure_bucket_encryption(local_stack)
    overrides = {"TWILIO_API_BASE_URL": fake.base_url, "CALLTRACK_RECORDING_FETCH_TIMEOUT_S": "1"}
    saved = {key: os.environ.get(key) for key in overrides}
    os.environ.update(overrides)
    reset_settings()
    try:
        yield fake
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_settings()
        fake.stop()


def ensure_bucket_encryption(stack: Any) -> None:
    """As deployed, the recordings bucket encrypts by default (the stack uses its KMS key)."""
    from calltrack.settings import get_settings

    stack.stack.client("s3").put_bucket_encryption(
        Bucket=get_settings().recordings_bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}, "BucketKeyEnabled": True}
            ]
        },
    )


class Scenario:
    """One account with recording on, one tracking number, one answered call."""

    def __init__(self, stack: Any, media: FakeTwilioMedia, **recording: Any) -> None:
        self.stack, self.media = stack, media
        self.number = unique_number()
        self.account = apply_account(
            stack,
            "rec",
            name="Recording test",
            recording={"enabled": True, **recording},
            numbers=[{"number": self.number, "channel": "newspaper", "campaign": "dec-insert"}],
        )
        self.call_sid = unique_call_sid()
        form = voice_form(self.number, caller=CALLER, call_sid=self.call_sid, AccountSid=OUR)
        resp = stack.twilio_post("/twilio/voice", form)
        assert resp.status_code == 200, resp.text

    def recording(self, body: bytes | None = None, *faults: str) -> tuple[str, bytes]:
        sid = unique_recording_sid()
        data = self.media.add_recording(OUR, sid, body)
        if faults:
            self.media.fail(sid, *faults)
        return sid, data

    def callback(self, sid: str, **overrides: Any) -> requests.Response:
        form = {
            "AccountSid": OUR,
            "CallSid": self.call_sid,
            "RecordingSid": sid,
            "RecordingStatus": "completed",
            "RecordingDuration": "7",
            "RecordingChannels": "2",
            "RecordingSource": "DialVerb",
            "RecordingUrl": f"https://attacker.example/{sid}",
        }
        signature = overrides.pop("signature", None)
        form.update(overrides)
        return self.stack.twilio_post("/twilio/recording", form, signature=signature)

    def call(self) -> dict[str, Any]:
        resp = self.stack.request("GET", f"/v1/calls/{self.call_sid}", token=self.token("admin"))
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def token(self, role: str) -> str:
        cache = self.__dict__.setdefault("_tokens", {})
        if role not in cache:
            cache[role] = self.stack.create_token(self.account, role)
        return str(cache[role])


def recording_row(stack: Any, sid: str) -> dict[str, Any] | None:
    from calltrack.settings import get_settings

    item = (
        stack.stack.client("dynamodb")
        .get_item(TableName=get_settings().table_name("recordings"), Key={"recording_sid": {"S": sid}})
        .get("Item")
    )
    if not item:
        return None
    return {k: next(iter(v.values())) for k, v in item.items()}


def s3_object(stack: Any, key: str) -> dict[str, Any]:
    from calltrack.settings import get_settings

    return dict(stack.stack.client("s3").get_object(Bucket=get_settings().recordings_bucket, Key=key))


def dlq_bodies(stack: Any) -> list[dict[str, Any]]:
    sqs = stack.stack.client("sqs")
    url = stack.stack.dlq_urls["recording"]
    out: list[dict[str, Any]] = []
    while True:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get(
            "Messages", []
        )
        new = [json.loads(m["Body"]) for m in msgs]
        if not msgs or all(b in out for b in new):
            return out
        out.extend(b for b in new if b not in out)


def test_a_signed_callback_ends_with_the_recording_in_s3_on_the_call_and_playable_by_a_manager(
    local_stack: Any, media: FakeTwilioMedia
) -> None:
    # Given an answered call on a number with recording on, and Twilio holding its MP3
    s = Scenario(local_stack, media)
    sid, data = s.recording(silent_mp3(3.0, id3=True))

    # When Twilio posts the signed recording-status callback and the queue is worked off
    resp = s.callback(sid)
    assert resp.status_code == 200 and "<Response" in resp.text
    local_stack.drain()

    # Then the MP3 was fetched once, from the configured base, with Basic auth, not from RecordingUrl
    [fetch] = media.fetches(sid)
    assert fetch.path == f"/2010-04-01/Accounts/{OUR}/Recordings/{sid}.mp3"
    assert fetch.authorization and fetch.authorization.startswith("Basic ")
    # ... stored byte-identical under the account/month key, encrypted, with the ids as metadata
    recording = s.call()["recording"]
    assert recording["status"] == "stored"
    assert recording["recording_sid"] == sid
    assert recording["size_bytes"] == len(data)
    assert (recording["duration_seconds"], recording["channels"]) == (7, 2)
    key = recording["s3_key"]
    assert key.startswith(f"recordings/{s.account}/") and key.endswith(f"/{s.call_sid}/{sid}.mp3")
    obj = s3_object(local_stack, key)
    assert obj["Body"].read() == data
    assert obj["Metadata"] == {"call-sid": s.call_sid, "recording-sid": sid, "account": s.account}
    assert obj.get("ServerSideEncryption") in ("aws:kms", "AES256")

    # And a manager gets a short-lived URL that returns the same bytes
    resp = local_stack.request("GET", f"/v1/calls/{s.call_sid}/recording", token=s.token("manager"))
    assert resp.status_code == 200, resp.text
    grant = resp.json()
    assert set(grant) == {"url", "expires_at"}
    assert requests.get(grant["url"], timeout=10).content == data

    # ... and ?download=1 names the file for a person
    resp = local_stack.request(
        "GET", f"/v1/calls/{s.call_sid}/recording", token=s.token("admin"), params={"download": "1"}
    )
    download = requests.get(resp.json()["url"], timeout=10)
    assert download.content == data
    disposition = download.headers.get("Content-Disposition", "")
    assert "attachment" in disposition and "_newspaper_5678.mp3" in disposition

    # But a marketer is refused, and another account cannot see the call at all
    marketer = local_stack.request("GET", f"/v1/calls/{s.call_sid}/recording", token=s.token("marketer"))
    assert marketer.status_code == 403
    other = Scenario(local_stack, media)
    foreign = local_stack.request("GET", f"/v1/calls/{s.call_sid}/recording", token=other.token("admin"))
    assert foreign.status_code == 404


def test_a_duplicate_callback_does_not_fetch_twice(local_stack: Any, media: FakeTwilioMedia) -> None:
    s = Scenario(local_stack, media)
    sid, _ = s.recording()
    assert s.callback(sid).status_code == 200
    assert s.callback(sid).status_code == 200  # Twilio retried before we were done
    local_stack.drain()
    assert s.callback(sid).status_code == 200  # ... and once more after
    local_stack.drain()
    assert len(media.fetches(sid)) == 1
    assert s.call()["recording"]["status"] == "stored"


@pytest.mark.parametrize(
    "forged",
    [
        {"signature": "bad"},
        {"RecordingSid": "RE-not-a-sid"},
        {"RecordingSid": "../../../etc/passwd"},
        {"AccountSid": "AC" + "9" * 32},
    ],
    ids=["forged-signature", "bad-recording-sid", "path-in-sid", "foreign-account"],
)
def test_forged_or_malformed_callbacks_are_refused_and_nothing_is_fetched(
    local_stack: Any, media: FakeTwilioMedia, forged: dict[str, str]
) -> None:
    s = Scenario(local_stack, media)
    sid, _ = s.recording()
    resp = s.callback(sid, **forged)
    assert resp.status_code in (400, 401, 403)
    local_stack.drain()
    assert media.fetches(sid) == []
    assert recording_row(local_stack, sid) is None
    assert (s.call().get("recording") or {}).get("status") != "stored"


@pytest.mark.parametrize(
    "faults", [("timeout",), ("500", "503"), ("404", "404"), ("truncate",), ("redirect",)]
)
def test_media_faults_are_retried_until_the_recording_is_stored(
    local_stack: Any, media: FakeTwilioMedia, faults: tuple[str, ...]
) -> None:
    s = Scenario(local_stack, media)
    sid, data = s.recording(None, *faults)
    assert s.callback(sid).status_code == 200
    local_stack.drain()
    recording = s.call()["recording"]
    assert recording["status"] == "stored"
    assert s3_object(local_stack, recording["s3_key"])["Body"].read() == data
    row = recording_row(local_stack, sid)
    assert row and row["status"] == "stored"


def test_a_recording_that_keeps_failing_lands_in_the_dlq_with_its_reason(
    local_stack: Any, media: FakeTwilioMedia
) -> None:
    s = Scenario(local_stack, media)
    sid, _ = s.recording(None, *(["500"] * 20))
    assert s.callback(sid).status_code == 200
    local_stack.drain()

    assert any(body.get("recording_sid") == sid for body in dlq_bodies(local_stack))
    row = recording_row(local_stack, sid)
    assert row and (row["status"], row["reason"]) == ("retrying", "http-500")
    assert (s.call().get("recording") or {}).get("status") != "stored"


def test_failed_and_absent_recordings_are_noted_on_the_call(local_stack: Any, media: FakeTwilioMedia) -> None:
    s = Scenario(local_stack, media)
    sid = unique_recording_sid()
    assert s.callback(sid, RecordingStatus="absent").status_code == 200
    local_stack.drain()
    assert s.call()["recording"] == {"status": "absent", "recording_sid": sid}
    assert media.fetches(sid) == []
    resp = local_stack.request("GET", f"/v1/calls/{s.call_sid}/recording", token=s.token("manager"))
    assert resp.status_code == 404 and "no audio" in resp.json()["message"]


def test_delete_from_twilio_removes_twilios_copy_after_the_s3_copy(
    local_stack: Any, media: FakeTwilioMedia
) -> None:
    s = Scenario(local_stack, media, delete_from_twilio=True)
    sid, data = s.recording()
    s.callback(sid)
    local_stack.drain()
    assert media.is_deleted(sid)
    assert s3_object(local_stack, s.call()["recording"]["s3_key"])["Body"].read() == data


def test_retention_sweep_deletes_old_recordings_and_the_call_says_expired(
    local_stack: Any, media: FakeTwilioMedia
) -> None:
    s = Scenario(local_stack, media, retention_days=30)
    sid, _ = s.recording()
    s.callback(sid)
    local_stack.drain()
    key = s.call()["recording"]["s3_key"]

    local_stack.run_job("recording-retention-sweep", "2099-01-01T18:00:00Z")

    assert s.call()["recording"]["status"] == "expired"
    with pytest.raises(Exception):  # noqa: B017 - botocore NoSuchKey
        s3_object(local_stack, key)
    resp = local_stack.request("GET", f"/v1/calls/{s.call_sid}/recording", token=s.token("manager"))
    assert resp.status_code == 410 and "expired" in resp.json()["message"]
