"""webhook_sender: an invocation that slow receivers used up hands its remaining deliveries back to
SQS at once instead of being cut off mid-send by the Lambda timeout."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support.events import lambda_context
from webhooks import handler as sender


def sqs_record(n: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"messageId": f"m{n}", "receiptHandle": f"rh{n}", "body": json.dumps(body),
            "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
            "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:webhooks"}


@pytest.mark.parametrize("left_ms, tried", [(30_000, []), (110_000, ["d1", "d2"])])
def test_deliveries_wait_for_the_next_invocation_when_too_little_time_is_left(
    monkeypatch: pytest.MonkeyPatch, left_ms: int, tried: list[str]
) -> None:
    # Given two deliveries, and an invocation with ``left_ms`` left
    sent: list[str] = []
    queued: list[dict[str, Any]] = []
    monkeypatch.setattr(sender.runtime, "ensure_started", lambda needs: SimpleNamespace())
    ports = SimpleNamespace(enqueue=queued.extend)
    monkeypatch.setattr(sender.runtime, "ports", lambda settings, present: ports)
    monkeypatch.setattr(sender, "send_delivery", lambda m, p, n: sent.append(m["delivery"]) or "delivered")
    context = lambda_context("webhook_sender")
    context.get_remaining_time_in_millis = lambda: left_ms
    event = {"Records": [sqs_record(1, {"delivery": "d1", "account": "acme"}),
                         sqs_record(2, {"delivery": "d2", "account": "acme"})]}
    # When the batch is handled
    out = sender.handler(event, context)
    # Then with too little time nothing is sent: both are queued anew for the next invocation, as
    # fresh messages (deferring these would count a try never made towards the dead-letter queue)
    assert sent == tried and out["batchItemFailures"] == []
    # ... carrying the receives used, this untried one not counted
    expected = [] if tried else [{"delivery": d, "account": "acme", "receives": 0} for d in ("d1", "d2")]
    assert queued == expected


def test_a_delivery_handed_on_keeps_the_count_of_its_earlier_receives(monkeypatch: pytest.MonkeyPatch):
    # Given a delivery handed on after 11 receives, arriving as a fresh message (its count is 1)
    counts: list[int] = []
    monkeypatch.setattr(sender.runtime, "ensure_started", lambda needs: SimpleNamespace())
    monkeypatch.setattr(sender.runtime, "ports", lambda settings, present: SimpleNamespace())
    monkeypatch.setattr(sender, "send_delivery", lambda m, p, n: counts.append(n) or "failed")
    context = lambda_context("webhook_sender")
    context.get_remaining_time_in_millis = lambda: 110_000
    event = {"Records": [sqs_record(1, {"delivery": "d1", "account": "acme", "receives": 11})]}
    # When it is tried, then it is its 12th: the last try, as for any delivery (it started again at 1)
    sender.handler(event, context)
    assert counts == [12]
