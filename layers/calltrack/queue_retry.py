"""Per-message retry delays on an SQS queue consumer (used by the conversions, recording and webhooks
consumers): the handler sets a failed message's visibility to its
delay, reports it in ``batchItemFailures``, and SQS delivers it again then (the local runtime
compresses that delay by ``CALLTRACK_RETRY_TIME_SCALE``)."""

from __future__ import annotations

import logging
from typing import Any

# SQS: a message's visibility timeout is at most 12 hours from its receive (a little less, for the
# time the consumer took before setting it).
LONGEST_DELAY_S = 12 * 3600 - 300


def queue_url(arn: str) -> str:
    """arn:aws:sqs:REGION:ACCOUNT:NAME -> the queue's URL (the event source mapping's queue)."""
    _, _, _, region, account, name = arn.split(":", 5)
    return f"https://sqs.{region}.amazonaws.com/{account}/{name}"


def exponential_delay_s(receive_count: int, base_s: int, max_s: int) -> int:
    """base, 2 x base, 4 x base ... at most ``max_s`` after the ``receive_count``-th try (1-based)."""
    step = max(1, receive_count) - 1
    return int(min(base_s * 2 ** min(step, 30), max_s))


def defer(sqs: Any, queue_arn: str, receipt_handle: str, delay_s: int) -> None:
    """Deliver this received message again in ``delay_s`` seconds (best effort: if it fails, the
    queue's own visibility timeout applies)."""
    try:
        sqs.change_message_visibility(
            QueueUrl=queue_url(queue_arn), ReceiptHandle=receipt_handle, VisibilityTimeout=int(delay_s)
        )
    except Exception:  # noqa: BLE001 - the retry still happens, after the queue's visibility timeout
        logging.getLogger(__name__).warning("could not delay the message", exc_info=True)
