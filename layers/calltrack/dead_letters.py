"""Dead letters sent back to their queue by an hourly job, counting how often (``redrives``).

A queue whose consumer retries through an outage (its ladder of receives) dead-letters a message
when the outage outlasts the ladder. Where every retry is safe to repeat, an hourly job brings the
dead letters back so that a long outage delays the work but does not lose it: the conversions
(``conversions.redrive``) and the voice webhook's outbox (``voice_webhook.outbox_redrive``). Each
run receives every dead letter and, unless the context's ``refuse`` names a reason to keep it (the
consumer could never take it) or it has been redriven ``max_redrives`` times (something other
than an outage is wrong), sends it back with its count plus one and deletes it here. What is kept
stays in the DLQ (its depth alarm, 14 days) for an operator. Sending before deleting: a crash in
between leaves a duplicate, which the context's consumer makes harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_MESSAGES_PER_RUN = 10_000
REDRIVES = "redrives"  # the message attribute counting them


@dataclass(frozen=True)
class DeadLetter:
    receipt: str
    body: str
    redrives: int


@dataclass
class RedrivePorts:
    receive: Callable[[], list[DeadLetter]]  # empty when drained
    send: Callable[[str, int], None]  # (body, redrives) -> the queue
    delete: Callable[[str], None]  # receipt handle


def redrive(
    ports: RedrivePorts,
    refuse: Callable[[str], str | None],
    max_redrives: int,
    logger: Any,
) -> dict[str, int]:
    """One run: {"redriven": n, "kept": n}. ``refuse(body)`` answers why the consumer could never
    take the message (it is kept), or None."""
    counts = {"redriven": 0, "kept": 0}
    seen = 0
    while seen < MAX_MESSAGES_PER_RUN:
        batch = ports.receive()
        if not batch:
            break
        for letter in batch:
            seen += 1
            reason = refuse(letter.body)
            if reason is None and letter.redrives >= max_redrives:
                reason = "redriven too often"
            if reason is not None:
                counts["kept"] += 1  # invisible until the next run; the DLQ alarm shows it
                logger.warning("dead letter kept for the operator",
                               extra={"redrives": letter.redrives, "reason": reason})
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


def sqs_ports(queue: str, region: str) -> RedrivePorts:
    """The ports over SQS for wiring queue ``queue``: its DLQ and itself, from the environment
    (``CALLTRACK_<NAME>_DLQ_URL`` and ``_QUEUE_URL``, granted by the wiring's ``redrives_queues``)."""
    import os

    import boto3  # type: ignore[import-untyped,unused-ignore]

    from calltrack.settings import dlq_env, queue_env

    sqs = boto3.client("sqs", region_name=region)
    dlq, target = os.environ.get(dlq_env(queue), ""), os.environ.get(queue_env(queue), "")

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
            QueueUrl=target, MessageBody=body,
            MessageAttributes={REDRIVES: {"DataType": "Number", "StringValue": str(redrives)}},
        )

    return RedrivePorts(
        receive=receive,
        send=send,
        delete=lambda receipt: sqs.delete_message(QueueUrl=dlq, ReceiptHandle=receipt),
    )
