"""The hourly redrive of the webhook outbox's dead letters (voice_webhook.outbox_redrive): every
callback the replay could take goes back with its redrive count; what it never could, or has
tried for days, stays for the operator."""

from __future__ import annotations

import json

from calltrack.dead_letters import DeadLetter
from calltrack.twilio_edge import TwilioRequest
from tests.support.dead_letters import FakeDeadLetters
from voice_webhook.outbox import message
from voice_webhook.outbox_redrive import MAX_REDRIVES, redrive_outbox


def callback(i: int) -> str:
    req = TwilioRequest(method="POST", path="/twilio/call-status", query="", headers={},
                        params={"CallSid": f"CA{i:032d}", "CallStatus": "completed"})
    return message(req, 1_800_000_000.0 + i)


def test_every_outbox_callback_goes_back_counting_its_redrives_then_leaves_the_dlq():
    # Given 23 dead-lettered callbacks, one already redriven five times
    letters = [DeadLetter(f"r{i}", callback(i), 5 if i == 4 else 0) for i in range(23)]
    dlq = FakeDeadLetters(letters)
    # When the job runs
    counts = redrive_outbox(dlq.ports())
    # Then each is sent back once, unchanged, with its count plus one, and deleted from the DLQ
    assert counts == {"redriven": 23, "kept": 0}
    assert [body for body, _ in dlq.sent] == [letter.body for letter in letters]
    assert [n for _, n in dlq.sent] == [6 if i == 4 else 1 for i in range(23)]
    assert dlq.deleted == [f"r{i}" for i in range(23)]


def test_what_the_replay_could_never_take_or_has_tried_for_days_stays_for_the_operator():
    # Given a message that is not JSON, one of another version, a JSON list, one redriven
    # MAX_REDRIVES times already, and one good callback on its last redrive
    letters = [
        DeadLetter("bad-json", "{not json", 0),
        DeadLetter("old", json.dumps({"v": 0, "path": "/twilio/voice", "params": {}}), 0),
        DeadLetter("list", "[1, 2]", 0),
        DeadLetter("tired", callback(1), MAX_REDRIVES),
        DeadLetter("good", callback(2), MAX_REDRIVES - 1),
    ]
    dlq = FakeDeadLetters(letters)
    # When the job runs
    counts = redrive_outbox(dlq.ports())
    # Then only the good one goes back; the others stay in the DLQ
    assert counts == {"redriven": 1, "kept": 4}
    assert dlq.sent == [(letters[4].body, MAX_REDRIVES)]
    assert dlq.deleted == ["good"]
