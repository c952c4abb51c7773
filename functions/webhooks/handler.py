"""webhook_sender: the webhooks queue's consumer (SQS, partial batch failures).

Routing and Powertools decorators only; the state machine is webhooks.deliver. A delivery that
failed in a way worth another try is reported in ``batchItemFailures`` after its visibility is set
to the backoff delay (webhooks.backoff); after the last try SQS moves it to the dead-letter queue.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from calltrack.observability import make_logger, make_metrics, make_tracer
from webhooks import runtime
from webhooks.deliver import RetryLater, plan_message, send_delivery
from webhooks.outgoing import DEADLINE_S
from webhooks.runtime import NEEDS as NEEDS

logger = make_logger("webhooks")
metrics = make_metrics("webhooks")
tracer = make_tracer("webhooks")
processor = BatchProcessor(event_type=EventType.SQS)


def present(call: Mapping[str, Any]) -> dict[str, Any]:
    """The call as GET /v1/calls/{sid} shows it to an admin (call_records is bundled)."""
    from call_records.calls import call_to_json

    return call_to_json(call, mask_caller=False)


# Time a delivery may take: a HubSpot push is up to four requests (a retry first looks for the
# call an earlier try may have logged, then the contact, creates it, logs the call), each cut at
# its deadline (name lookup included).
DELIVERY_BUDGET_MS = int((4 * DEADLINE_S + 5) * 1000)


def record_handler(record: SQSRecord, lambda_context: Any = None) -> str:
    message = json.loads(record.body)
    settings = runtime.ensure_started(NEEDS)
    ports = runtime.ports(settings, present)
    # the receives of this delivery's earlier messages (handed on below) count towards its last try
    receive_count = int(record.attributes.approximate_receive_count or 1) + int(message.get("receives") or 0)
    if "delivery" in message and lambda_context is not None \
            and lambda_context.get_remaining_time_in_millis() < DELIVERY_BUDGET_MS:
        # Slow receivers used up this invocation: queue the delivery anew for the next one, rather
        # than be cut off mid-send by the Lambda timeout (rows half-sent, the batch back in 12
        # minutes). The new message carries the receives used, this untried one not counted.
        ports.enqueue([{**message, "receives": receive_count - 1}])
        logger.info("delivery handed to the next invocation", extra={"delivery": message.get("delivery")})
        return "handed-on"
    if "delivery" not in message:
        queued = plan_message(message, ports)
        metrics.add_metric(name="WebhookDeliveriesPlanned", unit=MetricUnit.Count, value=queued)
        logger.info("event planned", extra={"type": message.get("type"), "account": message.get("account"),
                                            "deliveries": queued})
        return "planned"
    context = {"delivery": message.get("delivery"), "account": message.get("account"),
               "receive_count": receive_count}
    try:
        outcome = send_delivery(message, ports, receive_count)
    except RetryLater as err:
        metrics.add_metric(name="WebhookDeliveryRetries", unit=MetricUnit.Count, value=1)
        logger.warning("delivery not accepted yet",
                       extra={**context, "reason": err.reason, "delay_s": err.delay_s})
        runtime.defer(record.event_source_arn, record.receipt_handle, err.delay_s)
        raise
    metrics.add_metric(name=f"WebhookDeliveries{outcome.capitalize()}", unit=MetricUnit.Count, value=1)
    logger.info("delivery processed", extra={**context, "outcome": outcome})
    return outcome


@tracer.capture_lambda_handler
@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
