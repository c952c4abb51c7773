"""The recording pipeline on the running local stack, shared by the recording test modules: the fake
Twilio media server fixture (``media``, module scope: import it into the test module), one answered
call on an account with recording on (``Scenario``), and reads of what the pipeline stored (the
recordings row, the S3 object, the dead-letter queue)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import requests

from calltrack.settings import LOCAL_TWILIO_ACCOUNT_SID
from calltrack_cli.local.fake_twilio import FakeTwilioMedia
from tests.support import unique_call_sid, unique_number, unique_recording_sid
from tests.support.settings_env import settings_env
from tests.support.stack import apply_account
from tests.support.twilio import play_call, voice_form

OUR = LOCAL_TWILIO_ACCOUNT_SID
CALLER = "+819012345678"


def serve_media(local_stack: Any) -> Iterator[FakeTwilioMedia]:
    """The fake Twilio media server, the stack's handlers pointed at it; a test module registers it
    as its ``media`` fixture: ``media = pytest.fixture(scope="module", name="media")(serve_media)``."""
    fake = FakeTwilioMedia(credentials=[(OUR, local_stack.twilio_auth_token)], hang_seconds=3).start()
    ensure_bucket_encryption(local_stack)
    try:
        with settings_env({"TWILIO_API_BASE_URL": fake.base_url, "CALLTRACK_RECORDING_FETCH_TIMEOUT_S": "1"}):
            yield fake
    finally:
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
    """One account with recording on, one tracking number, one call: ringing (its /twilio/voice
    only), or with ``answered_at`` answered then and played to its end (95 s of talk)."""

    def __init__(
        self, stack: Any, media: FakeTwilioMedia, *, answered_at: datetime | None = None, **recording: Any
    ) -> None:
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
        if answered_at is not None:
            play_call(stack, self.number, answered_at, call_sid=self.call_sid, caller=CALLER)
            return
        form = voice_form(self.number, caller=CALLER, call_sid=self.call_sid, AccountSid=OUR)
        resp = stack.twilio_post("/twilio/voice", form)
        assert resp.status_code == 200, resp.text

    def recording(self, body: bytes | None = None, *faults: str) -> tuple[str, bytes]:
        sid = unique_recording_sid()
        data = self.media.add_recording(OUR, sid, body)
        if faults:
            self.media.fail(sid, *faults)
        return sid, data

    def recording_at_twilio(self, *faults: str) -> tuple[str, bytes]:
        """A completed recording of this call that Twilio's Recordings API lists for its CallSid
        (``faults`` for the next list requests of this call, e.g. "500"); no callback is posted."""
        sid, data = self.recording()
        self.media.list_recording(OUR, self.call_sid, sid)
        if faults:
            self.media.fail(self.call_sid, *faults)
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




def dlq_sids(stack: Any) -> set[str]:
    return {str(body.get("recording_sid")) for body in dlq_bodies(stack)}
