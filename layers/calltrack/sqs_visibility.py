"""Per-message backoff on SQS: a failed message's visibility set to its own delay.

Shared by the queue consumers that back off per message (recording_ingest, webhooks): the event
source mapping's consume grant includes sqs:ChangeMessageVisibility, and the local poller honours
the delay time-compressed by ``CALLTRACK_RETRY_TIME_SCALE``.
"""

from __future__ import annotations

import logging
from typing import Any


def queue_url(arn: str) -> str:
    """arn:aws:sqs:REGION:ACCOUNT:NAME -> the queue's URL (the event source mapping's queue)."""
    _, _, _, region, account, name = arn.split(":", 5)
    return f"https://sqs.{region}.amazonaws.com/{account}/{name}"


def defer(client: Any, queue_arn: str, receipt_handle: str, delay_s: int) -> None:
    """Deliver this received message again in ``delay_s`` seconds. Best effort: if it fails the
    queue's own visibility timeout applies."""
    try:
        client.change_message_visibility(
            QueueUrl=queue_url(queue_arn), ReceiptHandle=receipt_handle, VisibilityTimeout=int(delay_s)
        )
    except Exception:  # noqa: BLE001 - the retry still happens, after the queue's visibility timeout
        logging.getLogger(__name__).warning("could not delay the message", exc_info=True)
