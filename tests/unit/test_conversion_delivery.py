"""Conversion delivery over its ports: what a retried call event does to rows left pending."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conversions.delivery import Ports, RetryLater, deliver
from conversions.destinations import RETRY, SENT, Outcome
from conversions.rules import EVENT_TOO_OLD
from tests.support.conversions import InMemoryConversionStore, call, config


class Destination:
    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.sent = 0

    def send(self, rows: list[Any], credentials: str, target: Any, timezone: str) -> list[Outcome]:
        self.sent += len(rows)
        return [self.outcome for _ in rows]


class Accounts:
    def get(self, account: str) -> Any:
        return config(destinations=["ga4"])


def test_a_pending_row_whose_retry_falls_past_the_platforms_window_ends_skipped() -> None:
    # Given a GA4 conversion sent a minute before GA4's 72-hour window closes, answered 503
    started = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
    event_call = call(started_at="2026-11-26T01:00:00Z", ended_at="2026-11-26T01:05:00Z")
    clock = [started + timedelta(hours=71, minutes=59)]
    store, ga4 = InMemoryConversionStore(), Destination(Outcome(RETRY, "ga4: HTTP 503"))
    ports = Ports(store=store, accounts=Accounts(), secret=lambda a, n: "x", destinations={"ga4": ga4},
                  now=lambda: clock[0])
    event = {"account": "acme", "call_sid": event_call["call_sid"], "call": event_call}
    with pytest.raises(RetryLater):
        deliver(event, ports)
    (row,) = store.rows.values()
    assert row["status"] == "pending"
    # When SQS delivers the event again after the window closed
    clock[0] += timedelta(seconds=90)
    ga4.outcome = Outcome(SENT)
    counts = deliver(event, ports)
    # Then the row ends skipped with the reason, not pending for ever, and nothing more is sent
    (row,) = store.rows.values()
    assert (row["status"], row["reason"]) == ("skipped", EVENT_TOO_OLD)
    assert counts == {"skipped": 1} and ga4.sent == 1


def test_a_conversion_whose_credentials_were_refused_is_sent_once_they_are_fixed() -> None:
    from conversions.destinations import refused

    # Given a GA4 conversion whose platform refused the credentials (a revoked secret)
    started = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
    event_call = call(started_at="2026-11-26T01:00:00Z", ended_at="2026-11-26T01:05:00Z")
    store, ga4 = InMemoryConversionStore(), Destination(refused("ga4: 403"))
    ports = Ports(store=store, accounts=Accounts(), secret=lambda a, n: "x", destinations={"ga4": ga4},
                  now=lambda: started + timedelta(hours=1))
    event = {"account": "acme", "call_sid": event_call["call_sid"], "call": event_call}
    assert deliver(event, ports) == {"skipped": 1}  # no retry of the message: it waits for the fix
    (row,) = store.rows.values()
    assert row["status"] == "skipped" and row["reason"].startswith("credentials_refused: ")
    # When the secret is fixed and the call's next event arrives
    ga4.outcome = Outcome(SENT)
    counts = deliver(event, ports)
    # Then the conversion is taken again and sent, not left failed for good
    (row,) = store.rows.values()
    assert row["status"] == "sent" and counts == {"sent": 1} and ga4.sent == 2


def test_a_call_past_its_retention_sends_nothing_even_when_its_rows_are_gone() -> None:
    # Given a call whose expire_at has passed (DynamoDB deletes expired items days later, and may
    # delete its conversion rows before the call)
    started = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
    event_call = call(started_at="2026-11-26T01:00:00Z", ended_at="2026-11-26T01:05:00Z",
                      expire_at=int((started + timedelta(days=30)).timestamp()))
    store, ga4 = InMemoryConversionStore(), Destination(Outcome(SENT))
    clock = [started + timedelta(days=30, minutes=1)]
    ports = Ports(store=store, accounts=Accounts(), secret=lambda a, n: "x", destinations={"ga4": ga4},
                  now=lambda: clock[0])
    # When a change of the call (a stage set by a manager) brings it through the rules
    counts = deliver({"account": "acme", "call_sid": event_call["call_sid"], "call": event_call}, ports)
    # Then nothing is sent and no row is made
    assert counts == {} and ga4.sent == 0 and store.rows == {}
    # And before its expiry the same call is sent, its row expiring with it
    clock[0] = started + timedelta(hours=1)
    assert deliver({"account": "acme", "call_sid": event_call["call_sid"], "call": event_call}, ports)
    (row,) = store.rows.values()
    assert row["expire_at"] == event_call["expire_at"]


def test_a_call_event_starts_only_with_its_time_budget_left_in_the_invocation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json

    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    import calltrack.queue_retry
    import conversions.handler as handler_module
    from tests.support.events import lambda_context

    # Given an invocation that slow ad platforms left with 60 s (a call event may take 75)
    delivered: list[str] = []
    deferred: list[int] = []
    monkeypatch.setattr(handler_module, "deliver",
                        lambda event, ports: delivered.append(event["call_sid"]) or {})
    monkeypatch.setattr(handler_module.runtime, "ports", lambda: None)
    monkeypatch.setattr(handler_module.runtime, "sqs", lambda: None)
    monkeypatch.setattr(calltrack.queue_retry, "defer", lambda _s, _a, _r, delay: deferred.append(delay))
    context = lambda_context("conversions")
    left = [60_000]
    context.get_remaining_time_in_millis = lambda: left[0]
    record = {"messageId": "m1", "receiptHandle": "r1",
              "body": json.dumps({"type": "call.completed", "account": "acme", "call_sid": "CA1"}),
              "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "md5OfBody": "",
              "eventSource": "aws:sqs", "awsRegion": "us-east-1",
              "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:calltrack-conversions"}
    # When the batch comes, Then the event is not started (the Lambda timeout would cut it off
    # mid-send, unrecorded) and comes back in 5 s
    with pytest.raises(BatchProcessingError):
        handler_module.handler({"Records": [record]}, context)
    assert delivered == [] and deferred == [5]
    # And with time enough it is sent
    left[0] = 140_000
    handler_module.handler({"Records": [record]}, context)
    assert delivered == ["CA1"]
