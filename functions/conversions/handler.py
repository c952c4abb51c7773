"""The conversions queue's consumer (call events from the call_changes fan-out; SQS partial batch).

Routing and Powertools decorators only; the logic is conversions.delivery. A message whose rows
got a 429/5xx is reported in ``batchItemFailures`` after its visibility is set to the backoff
delay (runtime.BASE_DELAY_S doubling up to MAX_DELAY_S); after MAX_RECEIVES tries SQS moves it to
the dead-letter queue. Rows already sent are never sent again when it comes back.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from calltrack.observability import make_logger, make_metrics, make_tracer
from conversions import runtime
from conversions.delivery import RetryLater, deliver
from conversions.runtime import NEEDS as NEEDS

logger = make_logger("conversions")
metrics = make_metrics("conversions")
tracer = make_tracer("conversions")
processor = BatchProcessor(event_type=EventType.SQS)


# The longest one call event may take: Google Ads (an OAuth token, the upload, a restatement), Meta
# and GA4, each request cut at conversions.http.TIMEOUT_S, plus the reads and writes around them.
MESSAGE_BUDGET_MS = 75_000


def retry_delay_s(receives: int, wait_s: int = 0) -> int:
    """The backoff after the ``receives``-th try, or the platform's own wait when longer (at most
    SQS's 12 hours: a longer wait takes another receive)."""
    from calltrack.queue_retry import LONGEST_DELAY_S, exponential_delay_s

    backoff = exponential_delay_s(receives, runtime.BASE_DELAY_S, runtime.MAX_DELAY_S)
    return max(backoff, min(wait_s, LONGEST_DELAY_S))


def record_handler(record: SQSRecord, lambda_context: Any = None) -> dict[str, int]:
    from calltrack.queue_retry import defer

    event = json.loads(record.body)
    context = {"call_sid": event.get("call_sid"), "account": event.get("account"), "type": event.get("type")}
    receives = int(record.attributes.approximate_receive_count or 1)
    remaining = getattr(lambda_context, "get_remaining_time_in_millis", None)
    if remaining is not None and remaining() < MESSAGE_BUDGET_MS:
        # slow platforms used up this invocation: the message is tried again shortly, not cut off
        # mid-send by the Lambda timeout (which would bring the whole batch back, unrecorded)
        logger.info("conversions left for the next invocation", extra=context)
        defer(runtime.sqs(), record.event_source_arn, record.receipt_handle, 5)
        raise RetryLater(["no-time"])
    try:
        counts = deliver(event, runtime.ports())
    except RetryLater as err:
        delay = retry_delay_s(receives, err.wait_s)
        logger.warning(
            "conversions not delivered yet; retrying",
            extra={**context, "reason": str(err), "delay_s": delay, "receive_count": receives},
        )
        metrics.add_metric(name="ConversionRetries", unit=MetricUnit.Count, value=1)
        defer(runtime.sqs(), record.event_source_arn, record.receipt_handle, delay)
        raise
    for outcome, count in counts.items():
        metrics.add_metric(name=f"Conversions_{outcome}", unit=MetricUnit.Count, value=count)
    if counts:
        logger.info("conversions delivered", extra={**context, "counts": counts})
    return counts


@tracer.capture_lambda_handler
@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
