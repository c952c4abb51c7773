"""A trivial Lambda handler for local-runtime tests: echoes the event it was given."""

from __future__ import annotations

import json
from typing import Any

calls: list[dict[str, Any]] = []


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    calls.append(event)
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json", "x-handler": "echo"},
        "cookies": ["a=1; Path=/", "b=2"],
        "body": json.dumps({"event": event, "function_name": context.function_name}),
    }


def simple(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The "simple" v2 response form: a dict without statusCode."""
    return {"hello": "world", "path": event["rawPath"]}


def boom(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise RuntimeError("boom")


def batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """An SQS / stream consumer that records what it saw and fails items whose body says 'fail'."""
    calls.append(event)
    failures = []
    for record in event.get("Records", []):
        if record.get("eventSource") == "aws:sqs" and "fail" in record.get("body", ""):
            failures.append({"itemIdentifier": record["messageId"]})
        if record.get("eventSource") == "aws:sqs" and "defer" in record.get("body", ""):
            # like a handler's backoff: deliver again after {"defer": seconds}, once
            body = json.loads(record["body"])
            if record["messageId"] not in _deferred_once:
                _deferred_once.add(record["messageId"])
                _defer(record, int(body["defer"]))
                failures.append({"itemIdentifier": record["messageId"]})
        if record.get("eventSource") == "aws:dynamodb":
            image = record["dynamodb"].get("NewImage") or {}
            sid = image.get("call_sid", {}).get("S", "")
            if image.get("fail_once") and sid not in _failed_once:
                _failed_once.add(sid)
                failures.append({"itemIdentifier": record["dynamodb"]["SequenceNumber"]})
    return {"batchItemFailures": failures}


_failed_once: set[str] = set()
_deferred_once: set[str] = set()


def _defer(record: dict[str, Any], seconds: int) -> None:
    import boto3

    from calltrack.queue_retry import queue_url

    sqs = boto3.client("sqs", region_name="us-east-1")
    url = queue_url(record["eventSourceARN"])
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=record["receiptHandle"],
                                  VisibilityTimeout=seconds)


def clock(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Reports calltrack.clock.now() as the handler sees it, and the headers it was given."""
    from calltrack.clock import now

    return {"now": now().isoformat(), "headers": event["headers"]}
