"""The hourly conversions dead-letter redrive (conversions.redrive): each dead letter back to the
queue with its redrive count, except what the consumer could never take or has tried for days."""

from __future__ import annotations

import json

from calltrack.dead_letters import DeadLetter
from conversions.redrive import MAX_REDRIVES
from conversions.redrive import redrive_conversions as redrive
from tests.support.dead_letters import FakeDeadLetters


def event(call_sid: str) -> str:
    return json.dumps({"type": "call.completed", "call_sid": call_sid, "account": "acme", "call": {}})


def test_every_call_event_goes_back_to_the_queue_counting_its_redrives_then_leaves_the_dlq():
    # Given 25 dead-lettered call events, one already redriven three times
    letters = [DeadLetter(f"r{i}", event(f"CA{i:032d}"), 3 if i == 7 else 0) for i in range(25)]
    dlq = FakeDeadLetters(letters)
    # When the job runs
    counts = redrive(dlq.ports())
    # Then each is sent back once, with its count plus one, and deleted from the DLQ
    assert counts == {"redriven": 25, "kept": 0}
    assert [body for body, _ in dlq.sent] == [letter.body for letter in letters]
    assert dict((json.loads(body)["call_sid"], n) for body, n in dlq.sent)[f"CA{7:032d}"] == 4
    assert {n for body, n in dlq.sent if f"CA{7:032d}" not in body} == {1}
    assert dlq.deleted == [f"r{i}" for i in range(25)]


def test_what_the_consumer_could_never_take_or_has_tried_for_days_stays_for_the_operator():
    # Given a message that is not JSON, one without a call sid, one redriven MAX_REDRIVES times
    # already, and one good call event
    letters = [
        DeadLetter("bad-json", "{not json", 0),
        DeadLetter("no-sid", json.dumps({"account": "acme", "call_sid": ""}), 0),
        DeadLetter("tired", event("CA" + "1" * 32), MAX_REDRIVES),
        DeadLetter("good", event("CA" + "2" * 32), MAX_REDRIVES - 1),
    ]
    dlq = FakeDeadLetters(letters)
    # When the job runs
    counts = redrive(dlq.ports())
    # Then only the good one goes back (its last redrive); the others stay in the DLQ
    assert counts == {"redriven": 1, "kept": 3}
    assert dlq.sent == [(letters[3].body, MAX_REDRIVES)]
    assert dlq.deleted == ["good"]
