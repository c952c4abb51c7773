"""The SQS consumer reports exactly the failed records back (partial batch failures)."""

from __future__ import annotations

import json
from typing import Any

import pytest

import recording_ingest.handler as handler_module
from recording_ingest.ingest import RetryLater


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


class Context:
    function_name = "recording_ingest"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:recording_ingest"
    aws_request_id = "req-1"


def test_only_the_failed_message_is_returned_for_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_process(message: dict[str, Any], ports: Any) -> str:
        if message["recording_sid"] == "bad":
            raise RetryLater("http-500")
        return "stored"

    monkeypatch.setattr(handler_module, "process", fake_process)
    monkeypatch.setattr(handler_module.runtime, "ensure_started", lambda: object())
    monkeypatch.setattr(handler_module.runtime, "build_ports", lambda settings, on_failure: None)

    result = handler_module.handler(sqs_event({"recording_sid": "good"}, {"recording_sid": "bad"}), Context())

    assert result == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
