"""The call-changes fan-out: which stream records become which call events, and how they are sent."""

from __future__ import annotations

import json
import re
from typing import Any

from call_changes.events import COMPLETED, STARTED, UPDATED, call_events
from call_changes.handler import fan_out
from calltrack.call_items import to_attr


def image(**fields: Any) -> dict[str, Any]:
    base = {"call_sid": "CA1", "account": "acme", "status": "ringing", "version": 1,
            "updated_at": "2026-11-30T00:00:00Z"}
    return {k: to_attr(v) for k, v in {**base, **fields}.items()}


def record(new: dict[str, Any] | None, old: dict[str, Any] | None = None, *, seq: str = "1",
           name: str | None = None) -> dict[str, Any]:
    stream: dict[str, Any] = {"SequenceNumber": seq, "Keys": {"call_sid": {"S": "CA1"}}}
    if new is not None:
        stream["NewImage"] = new
    if old is not None:
        stream["OldImage"] = old
    return {"eventName": name or ("INSERT" if old is None else "MODIFY"), "dynamodb": stream}


def types(rec: dict[str, Any]) -> list[str]:
    return [e["type"] for e in call_events(rec)]


def test_a_new_call_is_started_and_its_end_is_completed_once():
    # Given the webhook's first write, then the dial status that ends the call, then a PATCH
    first = image(channel="flyer")
    ended = image(channel="flyer", status="answered", ended_at="2026-11-30T00:05:00Z", version=2)
    staged = image(channel="flyer", status="answered", ended_at="2026-11-30T00:05:00Z", version=3,
                   stage="lead", updated_at="2026-11-30T01:00:00Z")
    # Then each record gives the event of what happened to the call
    assert types(record(first)) == [STARTED]
    assert types(record(ended, first)) == [COMPLETED]
    [update] = call_events(record(staged, ended))
    assert update["type"] == UPDATED and update["changed"] == ["stage"]
    assert update["version"] == 3 and update["call"]["stage"] == "lead" and update["account"] == "acme"
    # And a call first written already ended (a replayed callback) is started and completed
    assert types(record(ended)) == [STARTED, COMPLETED]


def test_a_call_whose_row_a_callback_made_first_is_started_and_completed_when_its_origin_lands():
    # Given the origin write failed (outage): the dial-status callback made the row without an
    # account, already ended, so it gave no event
    orphan = {k: v for k, v in image(status="answered", ended_at="2026-11-30T00:05:00Z").items()
              if k != "account"}
    assert types(record(orphan)) == []
    # When the outbox replay (or the rebuild) adds the origin: account, channel, ...
    rebuilt = image(channel="flyer", status="answered", ended_at="2026-11-30T00:05:00Z", version=2)
    # Then subscribers hear of the call as of any other: started and completed (webhooks, CRM add,
    # call rules), not an update of a call they never saw
    assert types(record(rebuilt, orphan)) == [STARTED, COMPLETED]
    # And a row made by a callback before the call ended is started, then completed by its end
    ringing_orphan = {k: v for k, v in image().items() if k != "account"}
    assert types(record(image(channel="flyer", version=2), ringing_orphan)) == [STARTED]


def test_no_event_for_bookkeeping_only_writes_removals_and_test_calls():
    first = image()
    # A write that only bumps version/updated_at says nothing new
    assert types(record(image(version=2, updated_at="2026-11-30T02:00:00Z"), first)) == []
    # A removed call (retention, erasure) is not an event here
    assert types(record(None, first, name="REMOVE")) == []
    # Test calls never reach subscribers
    assert types(record(image(test=True))) == []
    assert types(record(image(test=True, stage="lead"), image(test=True))) == []


def test_json_fields_arrive_decoded():
    rec = record(image(attribution=None, recording=None) | {"recording": {"S": '{"status":"stored"}'}})
    [event] = call_events(rec)
    assert event["call"]["recording"] == {"status": "stored"}


class FakeSqs:
    """SendMessageBatch as SQS answers it; a body with a character SQS does not take fails the
    whole request (SendMessage docs: only #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF;
    "any characters not included in this list will be rejected": InvalidMessageContents)."""

    def __init__(self, fail_on: set[str] | None = None) -> None:
        self.sent: dict[str, list[dict[str, Any]]] = {}
        self.fail_on = fail_on or set()

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        allowed = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")
        if not all(allowed.fullmatch(e["MessageBody"]) for e in Entries):
            raise RuntimeError("InvalidMessageContents: invalid characters in the message body")
        if QueueUrl in self.fail_on:
            return {"Successful": [], "Failed": [{"Id": e["Id"], "Code": "x"} for e in Entries]}
        self.sent.setdefault(QueueUrl, []).extend(json.loads(e["MessageBody"]) for e in Entries)
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


def test_every_subscriber_gets_every_event_and_a_failure_stops_at_its_record():
    first, ended = image(), image(ended_at="2026-11-30T00:05:00Z", version=2)
    records = [record(first, seq="1"), record(ended, first, seq="2")]
    queues = {"conversions": "q-conv", "webhooks": "q-hooks"}
    # When both queues accept
    sqs = FakeSqs()
    assert fan_out(records, queues, sqs) == []
    # Then each got both events, in order
    for url in ("q-conv", "q-hooks"):
        assert [e["type"] for e in sqs.sent[url]] == [STARTED, COMPLETED]
    # When one queue refuses, Then the batch reports the first record and goes no further
    failing = FakeSqs(fail_on={"q-hooks"})
    assert fan_out(records, queues, failing) == [{"itemIdentifier": "1"}]
    assert [e["type"] for e in failing.sent["q-conv"]] == [STARTED]


def test_text_sqs_does_not_take_is_escaped_so_the_call_and_the_records_after_it_go_through():
    # Given a call whose attribution holds U+FFFF and U+FFFE (a visitor's UTM field), and a call
    # recorded after it in the same batch
    odd = image(utm_campaign="spring\uffff\ufffe", keyword="歯医者 😀")
    records = [record(odd, seq="1"), record(image(call_sid="CA2"), seq="2")]
    sqs = FakeSqs()
    # When the batch is fanned out, Then every event is sent (SQS refused the raw text before)
    assert fan_out(records, {"webhooks": "q"}, sqs) == []
    # and decodes to the call as stored, Japanese and emoji as they were
    first = sqs.sent["q"][0]["call"]
    assert (first["utm_campaign"], first["keyword"]) == ("spring\uffff\ufffe", "歯医者 😀")
    assert len(sqs.sent["q"]) == 2

