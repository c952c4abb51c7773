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
    monkeypatch.setattr(handler_module.runtime, "build_ports", lambda settings, on_failure: None)

    event = sqs_event({"recording_sid": "good"}, {"recording_sid": "bad"})
    result = handler_module.handler(event, lambda_context("recording_ingest"))

    assert result == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    # ... after delaying that message by its backoff (SQS ChangeMessageVisibility)
    assert deferred == [("arn:aws:sqs:us-east-1:000000000000:calltrack-recording", "r1", 60)]
