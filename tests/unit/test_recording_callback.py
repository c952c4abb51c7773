"""POST /twilio/recording's domain half: validate ids, enqueue, answer at once."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

import pytest

from calltrack.settings import Settings
from recording_ingest.callback import EMPTY_TWIML, accept

OUR_ACCOUNT = "AC" + "1" * 32
QUEUE = "http://sqs.local/000000000000/calltrack-recording"


def settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {"twilio_account_sid": OUR_ACCOUNT, "recording_queue_url": QUEUE}
    return Settings(**{**base, **overrides})


def form(**overrides: str) -> dict[str, str]:
    base = {
        "AccountSid": OUR_ACCOUNT,
        "CallSid": "CA" + secrets.token_hex(16),
        "RecordingSid": "RE" + secrets.token_hex(16),
        "RecordingStatus": "completed",
        "RecordingDuration": "42",
        "RecordingChannels": "2",
        "RecordingSource": "DialVerb",
        "RecordingUrl": "https://evil.example/steal",
    }
    base.update(overrides)
    return base


class Outbox:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, queue_url: str, body: str) -> None:
        self.sent.append((queue_url, json.loads(body)))


def fixed_now() -> datetime:
    return datetime(2026, 11, 25, 1, 2, 3, tzinfo=UTC)


def test_a_completed_recording_is_queued_with_validated_ids_and_without_the_posted_url() -> None:
    outbox = Outbox()
    posted = form()
    status, body = accept(posted, settings(), send=outbox, now=fixed_now)
    assert (status, body) == (200, EMPTY_TWIML)
    [(queue, message)] = outbox.sent
    assert queue == QUEUE
    assert message["recording_sid"] == posted["RecordingSid"]
    assert message["call_sid"] == posted["CallSid"]
    assert message["account_sid"] == OUR_ACCOUNT
    assert message["status"] == "completed"
    assert (message["duration_seconds"], message["channels"]) == (42, 2)
    assert message["received_at"] == "2026-11-25T01:02:03Z"
    assert "evil.example" not in json.dumps(message)


@pytest.mark.parametrize(
    "bad",
    [
        {"RecordingSid": "RE123"},
        {"RecordingSid": "RE" + "G" * 32},
        {"RecordingSid": "RE" + "A" * 32},  # Twilio sids are lower-case hex
        {"RecordingSid": "../../RE" + "a" * 32},
        {"RecordingSid": ""},
        {"CallSid": "CAnot-a-sid"},
        {"AccountSid": "AC" + "2" * 32},  # a well-formed sid that isn't ours
        {"AccountSid": ""},
    ],
)
def test_bad_ids_or_a_foreign_account_are_refused_and_nothing_is_queued(bad: dict[str, str]) -> None:
    outbox = Outbox()
    status, _ = accept(form(**bad), settings(), send=outbox)
    assert status == 400
    assert outbox.sent == []


@pytest.mark.parametrize("recording_status", ["failed", "absent"])
def test_failed_and_absent_are_queued_to_be_noted_on_the_call(recording_status: str) -> None:
    outbox = Outbox()
    status, _ = accept(form(RecordingStatus=recording_status), settings(), send=outbox)
    assert status == 200
    assert outbox.sent[0][1]["status"] == recording_status


def test_in_progress_is_acknowledged_and_ignored() -> None:
    outbox = Outbox()
    assert accept(form(RecordingStatus="in-progress"), settings(), send=outbox)[0] == 200
    assert outbox.sent == []


def test_a_queue_failure_is_reported_to_twilio_not_swallowed() -> None:
    def broken(queue_url: str, body: str) -> None:
        raise ConnectionError("sqs down")

    assert accept(form(), settings(), send=broken)[0] == 503
    assert accept(form(), settings(recording_queue_url=""), send=Outbox())[0] == 503
