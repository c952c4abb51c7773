"""recording_redrive: the hourly job that moves recording dead letters back to the queue.

A message lands in the recording DLQ after the consumer's whole backoff ladder (~29 h, see
recording_ingest.backoff) failed. Each run receives every dead letter and, per message:
- the recording is ``stored``/``expired``, or ``failed`` for a reason of ours (Twilio no longer
  has it; its call never got a row): the dead letter is deleted (never redriven again);
- the message is not a valid recording message (ids malformed), or its AccountSid is not this
  stack's Twilio account (``twilioAccountSid`` was changed while it waited: the consumer would
  refuse it again, forever): it stays in the DLQ for an operator (the DLQ depth alarm) and the
  14-day DLQ retention;
- otherwise it is sent back to the queue (the consumer starts the ladder again) and deleted here.
The consumer ends the cycle: it stores the recording, or marks it ``failed: gone from Twilio``
after Twilio answers 404 a few times, or ``failed`` (``NO_CALL_ROW``) when the call still has no
row after a whole ladder. Sending before deleting: a crash in between leaves a
duplicate, which the consumer handles (idempotent by RecordingSid).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from calltrack.observability import make_logger, make_tracer
from calltrack.settings import Needs
from recording_ingest.ids import ACCOUNT_SID, CALL_SID, RECORDING_SID
from recording_ingest.ingest import ENDED, ERASED, ERASED_KEEP_DAYS, TERMINAL, RecordingRepo, iso

logger = make_logger("recording_redrive")
tracer = make_tracer("recording_redrive")
NEEDS = Needs(tables=("recordings",), queues=("recording",), dead_letter_queues=("recording",))
MAX_MESSAGES_PER_RUN = 10_000


@dataclass
class RedrivePorts:
    receive: Callable[[], list[tuple[str, str]]]  # -> [(receipt handle, body)], empty when drained
    delete: Callable[[str], None]  # receipt handle
    send: Callable[[str], None]  # body -> the recording queue
    rows: RecordingRepo  # only get() and mark() are used
    now: Callable[[], datetime]
    account_sid: str  # this stack's Twilio account: the consumer refuses any other


def finished(row: Mapping[str, Any] | None) -> bool:
    """Nothing left to fetch: stored, expired, gone from Twilio, or its call never got a row."""
    if not row:
        return False
    status = row.get("status")
    return status in TERMINAL or (status == "failed" and row.get("reason") in ENDED)


def _valid(message: Any) -> bool:
    return (
        isinstance(message, dict)
        and bool(RECORDING_SID.match(str(message.get("recording_sid") or "")))
        and bool(CALL_SID.match(str(message.get("call_sid") or "")))
        and bool(ACCOUNT_SID.match(str(message.get("account_sid") or "")))
    )


def _older_than(message: Mapping[str, Any], now: datetime, age: timedelta) -> bool:
    from calltrack.days import parse_started_at

    sent = parse_started_at(message.get("received_at"))
    return sent is not None and now - sent > age


def redrive(ports: RedrivePorts) -> dict[str, int]:
    counts = {"redriven": 0, "finished": 0, "kept": 0}
    seen = 0
    while seen < MAX_MESSAGES_PER_RUN:
        batch = ports.receive()
        if not batch:
            break
        for receipt, body in batch:
            seen += 1
            try:
                message = json.loads(body)
            except ValueError:
                message = None
            if not _valid(message) or message["account_sid"] != ports.account_sid:
                counts["kept"] += 1  # invisible until the next run; the DLQ alarm shows it
                continue
            sid = str(message["recording_sid"])
            if message.get("status") == ERASED:
                # an erasure's delete at Twilio that kept failing: tried again (its row, erased and
                # terminal, is not the message's to change) until as old as the erased row's keep
                if _older_than(message, ports.now(), timedelta(days=ERASED_KEEP_DAYS)):
                    logger.warning("an erased call's recording could not be deleted at Twilio in "
                                   f"{ERASED_KEEP_DAYS} days: delete it in Twilio's console",
                                   extra={"recording_sid": sid})
                    ports.delete(receipt)
                    counts["finished"] += 1
                    continue
                ports.send(body)
                ports.delete(receipt)
                counts["redriven"] += 1
                continue
            if finished(ports.rows.get(sid)):
                ports.delete(receipt)
                counts["finished"] += 1
                continue
            ports.send(body)
            now = ports.now()
            ports.rows.mark(
                sid, call_sid=str(message["call_sid"]), status="retrying", reason="redriven from the DLQ",
                now=now, next_attempt_at=iso(now),
            )
            ports.delete(receipt)
            counts["redriven"] += 1
    return counts


def _ports() -> RedrivePorts:
    import boto3  # type: ignore[import-untyped,unused-ignore]

    from calltrack import clock
    from calltrack.models import start
    from calltrack.models.recordings import Recording
    from recording_ingest.store import DynamoRecordings

    settings = start(NEEDS, [Recording])
    sqs = boto3.client("sqs")
    dlq, queue = settings.recording_dlq_url, settings.recording_queue_url

    def receive() -> list[tuple[str, str]]:
        # Received messages stay invisible for this run (5 min), so each is seen once per run. A
        # short poll (WaitTimeSeconds=0) samples some of SQS's servers and may answer empty while
        # dead letters wait, which would end the run: a long poll asks them all.
        resp = sqs.receive_message(
            QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=2, VisibilityTimeout=300
        )
        return [(m["ReceiptHandle"], m["Body"]) for m in resp.get("Messages", [])]

    return RedrivePorts(
        receive=receive,
        delete=lambda receipt: sqs.delete_message(QueueUrl=dlq, ReceiptHandle=receipt),
        send=lambda body: sqs.send_message(QueueUrl=queue, MessageBody=body),
        rows=DynamoRecordings(),
        now=clock.now,
        account_sid=settings.twilio_account_sid,
    )


@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    counts = redrive(_ports())
    logger.info("recording dead letters redriven", extra=counts)
    return {"job": str((event or {}).get("job") or "recording-dlq-redrive"), **counts}
