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


# Transcribe at its limit (too many jobs at once), a watched job not finished, or any other failure
# (Transcribe, S3 or DynamoDB down, a permission refused): the message comes back after these delays
# (the 1st..4th receive); the 5th, the queue's last (infra/wiring.py max_receive_count), gives up
# and shows the transcript failed with the reason. About 10 hours in all.
BUSY_DELAYS_S = (900, 3600, 3 * 3600, 6 * 3600)
MAX_RECEIVES = 5


def call_of(message: dict[str, Any]) -> str | None:
    """The call a transcripts message is about: a call event's or a watch's ``call_sid``, or the
    call named in a Transcribe job event's job name."""
    from transcripts.engine import job_ids

    if message.get("call_sid"):
        return str(message["call_sid"])
    ids = job_ids(str((message.get("detail") or {}).get("TranscriptionJobName", "")))
    return ids[0] if ids else None


def job_of(message: dict[str, Any]) -> str | None:
    """The job a watch or a Transcribe job event is about (None: a call event, which starts the
    job of the recording the call holds)."""
    return message.get("job") or (message.get("detail") or {}).get("TranscriptionJobName") or None


def record_handler(record: SQSRecord) -> str:
    from calltrack.queue_retry import defer
    from transcripts.engine import JobBusy
    from transcripts.pipeline import JobPending, give_up_transcription, handle
    from transcripts.runtime import ports, sqs

    message = json.loads(record.body)
    receives = int(record.attributes.approximate_receive_count or 1)
    about = call_of(message)
    delay = BUSY_DELAYS_S[min(receives, len(BUSY_DELAYS_S)) - 1]
    try:
        outcome = handle(message, ports(), first_look=receives == 1)
    except (JobBusy, JobPending) as later:
        if receives < MAX_RECEIVES:
            if isinstance(later, JobBusy):
                logger.warning("Transcribe is at its limit; trying again later",
                               extra={"call_sid": about, "code": str(later), "delay_s": delay})
                metrics.add_metric(name="TranscribeBusy", unit=MetricUnit.Count, value=1)
            defer(sqs(), record.event_source_arn, record.receipt_handle, delay)
            raise
        outcome = give_up_transcription(
            str(about), ports(),
            f"Amazon Transcribe stayed at its limit of jobs ({later}) through {receives} tries over about "
            f"{sum(BUSY_DELAYS_S) // 3600} hours; raise the quota or lower the volume"
            if isinstance(later, JobBusy) else
            f"Amazon Transcribe had not finished the job ({later}) after about "
            f"{sum(BUSY_DELAYS_S) // 3600} hours",
        )
    except Exception as failure:
        # anything else: tried again later; on the last receive the transcript is shown failed
        # rather than in progress for ever (the message then goes to the dead-letter queue)
        logger.warning("transcripts message failed; trying again later", extra={
            "call_sid": about, "error": type(failure).__name__, "receive_count": receives})
        if receives < MAX_RECEIVES:
            defer(sqs(), record.event_source_arn, record.receipt_handle, delay)
        elif about is not None:
            try:
                give_up_transcription(about, ports(), f"the transcription failed {receives} times over "
                                      f"about {sum(BUSY_DELAYS_S) // 3600} hours ({type(failure).__name__})",
                                      job=job_of(message))
            except Exception as giving_up:  # noqa: BLE001 - the message's own failure is raised
                logger.warning("could not show the transcript failed", extra={
                    "call_sid": about, "error": type(giving_up).__name__})
        raise
    for part in outcome.split(","):
        part = part.split(":", 1)[1] if part.startswith(("recovered:", "restarted:")) else part
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
