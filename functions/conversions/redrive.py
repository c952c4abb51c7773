"""conversions_redrive: the hourly job that moves conversions dead letters back to the queue.

A call event is dead-lettered when every try of the consumer's ladder (``conversions.runtime``: 10
tries, ~3.5 h) met a 429/5xx or a network error: a platform outage longer than that. Its rows stay
``pending`` and, without this job, the conversion would never reach the platform. Each run receives
every dead letter and sends it back to the conversions queue (then deletes it here), where the
consumer starts its ladder again. That is safe to repeat: a row is sent at most once (one row per
call, rule and destination, claimed by a conditional write), a row whose platform window has passed
ends ``skipped``, and an erased call ends the message. The job stops bringing a message back when:
- it is not a call event (not JSON, no ``call_sid`` / ``account``): the consumer would fail it again;
- it has been redriven ``MAX_REDRIVES`` times (message attribute ``redrives``): about ten days of
  tries, past Meta's 7-day and GA4's 72-hour windows, so something other than an outage is wrong.
Both stay in the DLQ for an operator (its depth alarm; 14 days). Sending before deleting: a crash
in between leaves a duplicate, which the consumer's rows make harmless.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from calltrack.observability import make_logger, make_tracer
from calltrack.settings import Needs

logger = make_logger("conversions_redrive")
tracer = make_tracer("conversions_redrive")
NEEDS = Needs(queues=("conversions",), dead_letter_queues=("conversions",))
MAX_MESSAGES_PER_RUN = 10_000
MAX_REDRIVES = 48  # hourly, after a ~3.5 h ladder each: about ten days
REDRIVES = "redrives"  # the message attribute counting them
KEYS = ("call_sid", "account")  # what the consumer needs of a call event


@dataclass(frozen=True)
class DeadLetter:
    receipt: str
    body: str
    redrives: int


@dataclass
class RedrivePorts:
    receive: Callable[[], list[DeadLetter]]  # empty when drained
    send: Callable[[str, int], None]  # (body, redrives) -> the conversions queue
    delete: Callable[[str], None]  # receipt handle


def call_event(body: str) -> dict[str, Any] | None:
    """The dead letter's call event, or None when it is not one the consumer could take."""
    try:
        event = json.loads(body)
    except ValueError:
        return None
    if not isinstance(event, dict) or not all(event.get(k) and isinstance(event[k], str) for k in KEYS):
        return None
    return event


def redrive(ports: RedrivePorts) -> dict[str, int]:
    counts = {"redriven": 0, "kept": 0}
    seen = 0
    while seen < MAX_MESSAGES_PER_RUN:
        batch = ports.receive()
        if not batch:
            break
        for letter in batch:
            seen += 1
            event = call_event(letter.body)
            if event is None or letter.redrives >= MAX_REDRIVES:
                counts["kept"] += 1  # invisible until the next run; the DLQ alarm shows it
                logger.warning(
                    "conversions dead letter kept for the operator",
                    extra={"call_sid": (event or {}).get("call_sid"), "redrives": letter.redrives,
                           "reason": "not a call event" if event is None else "redriven too often"},
                )
                continue
            ports.send(letter.body, letter.redrives + 1)
            ports.delete(letter.receipt)
            counts["redriven"] += 1
    return counts


def _redrives(message: dict[str, Any]) -> int:
    value = (message.get("MessageAttributes") or {}).get(REDRIVES, {}).get("StringValue")
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def _ports() -> RedrivePorts:
    import os

    import boto3  # type: ignore[import-untyped,unused-ignore]

    from calltrack.settings import dlq_env, get_settings, queue_env

    settings = get_settings(NEEDS)
    sqs = boto3.client("sqs", region_name=settings.region)
    dlq, queue = os.environ.get(dlq_env("conversions"), ""), os.environ.get(queue_env("conversions"), "")

    def receive() -> list[DeadLetter]:
        # Received messages stay invisible for this run (5 min), so each is seen once per run; a long
        # poll asks every SQS server (a short poll may answer empty while dead letters wait).
        resp = sqs.receive_message(
            QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=2, VisibilityTimeout=300,
            MessageAttributeNames=[REDRIVES],
        )
        return [DeadLetter(m["ReceiptHandle"], m["Body"], _redrives(m)) for m in resp.get("Messages", [])]

    def send(body: str, redrives: int) -> None:
        sqs.send_message(
            QueueUrl=queue, MessageBody=body,
            MessageAttributes={REDRIVES: {"DataType": "Number", "StringValue": str(redrives)}},
        )

    return RedrivePorts(
        receive=receive,
        send=send,
        delete=lambda receipt: sqs.delete_message(QueueUrl=dlq, ReceiptHandle=receipt),
    )


@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    counts = redrive(_ports())
    logger.info("conversions dead letters redriven", extra=counts)
    return {"job": str((event or {}).get("job") or "conversions-dlq-redrive"), **counts}
