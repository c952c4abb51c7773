"""The SQS consumer reports exactly the failed records back (partial batch failures)."""

from __future__ import annotations

import json
from typing import Any

import pytest

import recording_ingest.handler as handler_module
from recording_ingest.ingest import RetryLater
from tests.support.events import lambda_context


def sqs_event(*bodies: dict[str, Any]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{i}",
                "receiptHandle": f"r{i}",
                "body": json.dumps(body),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:calltrack-recording",
                "awsRegion": "us-east-1",
            }
            for i, body in enumerate(bodies)
        ]
    }


def test_only_the_failed_message_is_returned_for_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_process(message: dict[str, Any], ports: Any, receive_count: int) -> str:
        if message["recording_sid"] == "bad":
            raise RetryLater("http-500", delay_s=60 * receive_count)
        return "stored"

    deferred: list[tuple[str, str, int]] = []
    monkeypatch.setattr(handler_module, "process", fake_process)
    monkeypatch.setattr(handler_module.runtime, "defer", lambda *args: deferred.append(args))
    monkeypatch.setattr(handler_module.runtime, "ensure_started", lambda needs: object())
    monkeypatch.setattr(
        handler_module.runtime, "build_ports", lambda settings, on_failure, deadline=None: None
    )

    event = sqs_event({"recording_sid": "good"}, {"recording_sid": "bad"})
    result = handler_module.handler(event, lambda_context("recording_ingest"))

    assert result == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    # ... after delaying that message by its backoff (SQS ChangeMessageVisibility)
    assert deferred == [("arn:aws:sqs:us-east-1:000000000000:calltrack-recording", "r1", 60)]


def test_each_download_ends_before_the_invocation_and_a_record_without_time_left_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a batch of two recordings, the first of which uses up the invocation's time
    left_ms = [120_000]
    deadlines: list[float] = []
    processed: list[str] = []

    def build_ports(settings: Any, on_failure: Any, deadline: float | None = None) -> None:
        deadlines.append(deadline or 0.0)

    def slow_process(message: dict[str, Any], ports: Any, receive_count: int) -> str:
        processed.append(message["recording_sid"])
        left_ms[0] = 30_000  # 90 s went on the first download and its S3 put
        return "stored"

    deferred: list[tuple[str, str, int]] = []
    monkeypatch.setattr(handler_module, "process", slow_process)
    monkeypatch.setattr(handler_module.runtime, "defer", lambda *args: deferred.append(args))
    monkeypatch.setattr(handler_module.runtime, "ensure_started", lambda needs: object())
    monkeypatch.setattr(handler_module.runtime, "build_ports", build_ports)
    context = lambda_context("recording_ingest")
    context.get_remaining_time_in_millis = lambda: left_ms[0]
    started = handler_module.time.monotonic()

    # When the consumer runs the batch
    batch = sqs_event({"recording_sid": "first"}, {"recording_sid": "second"})
    result = handler_module.handler(batch, context)

    # Then the first download had at most a minute (the batch's others need time too)
    assert deadlines[0] <= started + handler_module.FETCH_DEADLINE_S + 1
    # And the second, with 30 s left, is not started (it could not finish): it comes back shortly
    assert processed == ["first"]
    assert result == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert deferred == [("arn:aws:sqs:us-east-1:000000000000:calltrack-recording", "r1", 10)]
