"""transcripts: the transcripts queue's consumer (SQS, partial batch failures).

Routing and Powertools decorators only; what a message does is transcripts.pipeline. A failed
message is retried by SQS and, after the queue's maxReceiveCount, kept in its dead-letter queue.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from calltrack.observability import make_logger, make_metrics, make_tracer
from transcripts.runtime import NEEDS as NEEDS

logger = make_logger("transcripts")
metrics = make_metrics("transcripts")
tracer = make_tracer("transcripts")
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> str:
    from transcripts.pipeline import handle
    from transcripts.runtime import ports

    message = json.loads(record.body)
    outcome = handle(message, ports())
    for part in outcome.split(","):
        if part in ("started", "stored", "failed") or part.startswith("hit:"):
            metrics.add_metric(
                name="RuleHits" if part.startswith("hit:") else f"Transcripts{part.capitalize()}",
                unit=MetricUnit.Count, value=1,
            )
    logger.info("transcripts message processed", extra={
        "call_sid": message.get("call_sid") or (message.get("detail") or {}).get("TranscriptionJobName"),
        "kind": message.get("type") or message.get("detail-type"),
        "outcome": outcome,
    })
    return outcome


@tracer.capture_lambda_handler
@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
