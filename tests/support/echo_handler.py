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
    return {"batchItemFailures": failures}


def clock(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Reports calltrack.clock.now() as the handler sees it, and the headers it was given."""
    from calltrack.clock import now

    return {"now": now().isoformat(), "headers": event["headers"]}
