"""recording_ingest: the recording queue's consumer (SQS, partial batch failures).

Routing and Powertools decorators only; the state machine is recording_ingest.ingest.
A failed record is reported in ``batchItemFailures`` after its visibility is set to the backoff
delay (SQS ChangeMessageVisibility; recording_ingest.backoff): SQS delivers it again then, and moves
it to the dead-letter queue after maxReceiveCount (infra/wiring.py), where the hourly redrive
(recording_ingest.redrive) picks it up.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from calltrack.observability import make_logger, make_metrics, make_tracer
from recording_ingest import runtime
from recording_ingest.ingest import RetryLater, process
from recording_ingest.runtime import INGEST_NEEDS as NEEDS

logger = make_logger("recording_ingest")
metrics = make_metrics("recording_ingest")
tracer = make_tracer("recording_ingest")
processor = BatchProcessor(event_type=EventType.SQS)


def on_failure(reason: str) -> None:
    metrics.add_metric(name="RecordingIngestFailures", unit=MetricUnit.Count, value=1)
    logger.warning("recording ingest failed; will retry", extra={"reason": reason})


def record_handler(record: SQSRecord) -> str:
    message = json.loads(record.body)
    settings = runtime.ensure_started(NEEDS)
    ports = runtime.build_ports(settings, on_failure)
    context = {
        "recording_sid": message.get("recording_sid"),
        "call_sid": message.get("call_sid"),
        "receive_count": record.attributes.approximate_receive_count,
    }
    try:
        outcome = process(message, ports, int(record.attributes.approximate_receive_count or 1))
    except RetryLater as err:
        logger.warning(
            "recording not stored yet", extra={**context, "reason": err.reason, "delay_s": err.delay_s}
        )
        if err.delay_s is not None:
            runtime.defer(record.event_source_arn, record.receipt_handle, err.delay_s)
        raise
    metrics.add_metric(name="RecordingMessages", unit=MetricUnit.Count, value=1)
    if outcome == "stored":
        metrics.add_metric(name="RecordingsStored", unit=MetricUnit.Count, value=1)
    logger.info("recording message processed", extra={**context, "outcome": outcome})
    return outcome


@tracer.capture_lambda_handler
@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
