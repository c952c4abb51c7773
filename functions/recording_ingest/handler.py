"""recording_ingest: the recording queue's consumer (SQS, partial batch failures).

Routing and Powertools decorators only; the state machine is recording_ingest.ingest.
A failed record is reported in ``batchItemFailures`` after its visibility is set to the backoff
delay (SQS ChangeMessageVisibility; recording_ingest.backoff): SQS delivers it again then, and moves
it to the dead-letter queue after maxReceiveCount (infra/wiring.py), where the hourly redrive
(recording_ingest.redrive) picks it up.
"""

from __future__ import annotations

import json
import time
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


# Time kept back from the invocation's end when a record's download must stop: the last wait on the
# socket (the fetch timeout, 20 s by default), the S3 put of up to 100 MB and the writes after it.
RESERVE_S = 45.0
# The longest a record's download may take: the batch's other records need the time too.
FETCH_DEADLINE_S = 60.0


def fetch_deadline(remaining_ms: int | None, now: float) -> float:
    """When this record's download must end (``time.monotonic()``)."""
    end = now + FETCH_DEADLINE_S
    if remaining_ms is not None:
        end = min(end, now + remaining_ms / 1000 - RESERVE_S)
    return end


def record_handler(record: SQSRecord, lambda_context: Any = None) -> str:
    message = json.loads(record.body)
    settings = runtime.ensure_started(NEEDS)
    remaining_ms = getattr(lambda_context, "get_remaining_time_in_millis", None)
    remaining = remaining_ms() if remaining_ms is not None else None
    deadline = fetch_deadline(remaining, time.monotonic())
    if deadline <= time.monotonic():
        # too little of the invocation left for a download: the record is tried again shortly
        on_failure("no-time")
        runtime.defer(record.event_source_arn, record.receipt_handle, 10)
        raise RetryLater("no-time", "too little of the invocation left to fetch the recording")
    ports = runtime.build_ports(settings, on_failure, deadline)
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
