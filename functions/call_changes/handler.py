"""The call_changes Lambda: calls stream batches -> one SQS message per (call event, subscriber).

Records are handled in order; the first record whose messages cannot all be sent is reported
(``batchItemFailures``) and the batch stops there, so Lambda retries from it and a call's events
stay in order. A retried record may reach a subscriber twice: subscribers deduplicate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from call_changes.events import call_events
from call_changes.runtime import NEEDS as NEEDS
from calltrack.observability import make_logger, make_tracer
from calltrack.sqs_body import sqs_json

logger = make_logger("call_changes")
tracer = make_tracer("call_changes")


class Sender(Protocol):
    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]: ...


def _body(event: Mapping[str, Any]) -> str:
    # SQS refuses a batch with a character it does not take (a visitor's U+FFFF in a UTM field):
    # every event of the call would fail, and the stream's retries hold the records after it
    return sqs_json(event, separators=(",", ":"), sort_keys=True)


def fan_out(
    records: Sequence[Mapping[str, Any]], queues: Mapping[str, str], sqs: Sender
) -> list[dict[str, str]]:
    """Send every record's events to every subscriber queue; -> the batch item failures."""
    for record in records:
        sequence = str((record.get("dynamodb") or {}).get("SequenceNumber", ""))
        try:
            events = call_events(record)
            entries = [{"Id": str(i), "MessageBody": _body(event)} for i, event in enumerate(events)]
            for name, url in queues.items():
                if not entries:
                    break
                result = sqs.send_message_batch(QueueUrl=url, Entries=entries)
                if result.get("Failed"):
                    raise RuntimeError(f"{name}: {len(result['Failed'])} call event(s) not accepted")
        except Exception:
            logger.exception("call events not sent; the stream retries from this record",
                             extra={"sequence": sequence})
            return [{"itemIdentifier": sequence}]
    return []


def send(records: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    from call_changes.runtime import sqs, subscriber_queues

    queues = subscriber_queues()
    if not queues:
        return []
    return fan_out(records, queues, sqs())


@tracer.capture_lambda_handler
def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    if "job" in event:  # hourly: the batches the stream gave up on (calltrack.stream_replay)
        from calltrack.stream_replay import replay_job

        return replay_job("call_changes", NEEDS, send, context)
    return {"batchItemFailures": send(event.get("Records") or [])}
