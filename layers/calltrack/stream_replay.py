"""Replaying what a calls-stream consumer gave up on (used by the rollup and call_changes consumers).

When a stream consumer's retries run out (``infra/config.py`` ``stream_retry_attempts``) or its
records reach the mapping's maximum age, Lambda skips the batch and sends its on-failure
destination — this consumer's own stream-failures queue — a record of *where* the batch was, not the
records themselves (AWS Lambda Developer Guide, "Retaining discarded records for a DynamoDB event
source", https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html)::

    {"requestContext": {"functionArn": ..., "condition": "RetryAttemptsExhausted", ...},
     "DDBStreamBatchInfo": {"shardId": ..., "startSequenceNumber": ..., "endSequenceNumber": ...,
                            "batchSize": ..., "streamArn": ...}, ...}

The stream keeps its records 24 hours, so an hourly job (``stream-failures-<consumer>`` in
``infra/wiring.py``) reads each such message, fetches the range again (GetShardIterator at the
start sequence number, GetRecords until past the end) and hands the records to the consumer's own
batch logic, which is idempotent per record (the rollup's idempotency items; call event
subscribers deduplicate). A range replayed in full is deleted from the queue; a range the consumer
still fails stays for the next run; a range the stream no longer holds stays too, and the queue's
depth alarm keeps asking a person (README, "Stream failures").
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from calltrack.observability import make_logger
from calltrack.time_left import remaining

logger = make_logger("stream_replay")

Process = Callable[[list[dict[str, Any]]], list[dict[str, str]]]  # records -> batch item failures

RETRY_AFTER_S = 50 * 60  # a range not replayed comes back for the next hourly run
RECEIVE_VISIBILITY_S = 300
# A range the stream no longer holds comes back about twice a day, for the alarm. SQS counts a
# message's visibility from its receive and refuses more than 12 hours in all.
GONE_RETRY_AFTER_S = 12 * 3600 - RECEIVE_VISIBILITY_S - 600
MAX_EMPTY_PAGES = 10  # GetRecords may answer empty pages before the range (DynamoDB Streams docs)
EMPTY_PAGE_PAUSE_S = 0.2  # the calls stream has two live readers; a third must not hammer it
MAX_PAGES = 200  # 200 x 1,000 records: far past any batch (at most 10,000 records)
RESERVE_MS = 20_000  # no message is started with less of the invocation left


class RangeUnreadable(ValueError):
    """The message is not a DynamoDB stream batch record (kept in the queue; a person looks)."""


class StreamRangesNotReplayed(RuntimeError):
    """A replay run left ranges in the queue (still failing, gone or unreadable): the invocation
    fails so the function's Errors alarm tells a person."""


class RangeIncomplete(RuntimeError):
    """The range's last record was not reached (empty pages, the shard ended): try again later."""


class RecordsGone(RuntimeError):
    """The stream no longer holds the range (older than 24 hours, or the stream was replaced)."""


@dataclass(frozen=True)
class StreamRange:
    stream_arn: str
    shard_id: str
    start: str
    end: str
    condition: str = ""

    @classmethod
    def from_message(cls, body: str) -> StreamRange:
        try:
            doc = json.loads(body)
            info = doc["DDBStreamBatchInfo"]
            rng = cls(
                stream_arn=str(info["streamArn"]),
                shard_id=str(info["shardId"]),
                start=str(info["startSequenceNumber"]),
                end=str(info["endSequenceNumber"]),
                condition=str((doc.get("requestContext") or {}).get("condition", "")),
            )
            int(rng.start), int(rng.end)  # DynamoDB sequence numbers are decimal digits
        except (ValueError, KeyError, TypeError) as err:
            raise RangeUnreadable(f"not a DynamoDB stream batch record: {err}") from None
        return rng

    def holds(self, seq: str) -> bool:
        return int(self.start) <= int(seq) <= int(self.end)

    def past(self, seq: str) -> bool:
        return int(seq) > int(self.end)

    def is_last(self, seq: str) -> bool:
        return int(seq) == int(self.end)


def lambda_records(
    stream_arn: str, records: Iterable[Mapping[str, Any]], region: str
) -> list[dict[str, Any]]:
    """GetRecords' records in the shape an event source mapping gives a function."""
    out = []
    for rec in records:
        ddb = dict(rec.get("dynamodb") or {})
        created = ddb.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            ddb["ApproximateCreationDateTime"] = int(created.timestamp())
        out.append(
            {
                "eventID": rec.get("eventID"),
                "eventName": rec.get("eventName"),
                "eventVersion": rec.get("eventVersion", "1.1"),
                "eventSource": "aws:dynamodb",
                "awsRegion": rec.get("awsRegion", region),
                "dynamodb": ddb,
                "eventSourceARN": stream_arn,
            }
        )
    return out


def read_range(
    streams: Any, rng: StreamRange, pause: Callable[[float], None] = time.sleep
) -> list[dict[str, Any]]:
    """The range's records, in stream order (GetRecords' shape), up to and including its last one.
    Raises ``RecordsGone`` (trimmed: older than 24 hours, or the stream replaced) or
    ``RangeIncomplete`` (the last record not reached: the next run tries again)."""
    gone = {"TrimmedDataAccessException", "ResourceNotFoundException"}
    try:
        iterator = streams.get_shard_iterator(
            StreamArn=rng.stream_arn,
            ShardId=rng.shard_id,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=rng.start,
        ).get("ShardIterator")
        found: list[dict[str, Any]] = []
        empty = 0
        for _ in range(MAX_PAGES):
            if not iterator:
                break  # a closed shard ends
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            records = page.get("Records") or []
            iterator = page.get("NextShardIterator")
            if not records:
                empty += 1
                if empty >= MAX_EMPTY_PAGES:
                    break
                pause(EMPTY_PAGE_PAUSE_S)
                continue
            empty = 0
            for rec in records:
                seq = str((rec.get("dynamodb") or {}).get("SequenceNumber", ""))
                if rng.holds(seq):
                    found.append(rec)
                if rng.past(seq):
                    raise RangeIncomplete("the range's last record is not on the stream")
                if rng.is_last(seq):
                    return found  # the last record read: done
    except Exception as err:
        code = getattr(err, "response", {}).get("Error", {}).get("Code", "")
        if code in gone:
            raise RecordsGone(f"{code}: the stream no longer holds this range") from err
        raise
    raise RangeIncomplete(f"read {len(found)} record(s) without reaching the range's last one")


@dataclass
class ReplayResult:
    replayed: int = 0  # ranges replayed in full and deleted
    records: int = 0
    still_failing: int = 0  # the consumer failed a record again: kept for the next run
    gone: int = 0  # the stream no longer holds the range: kept, for a person (the alarm)
    unreadable: int = 0
    left_for_next_run: int = 0  # no time left in this invocation
    ranges: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def settle(self, where: Mapping[str, Any], outcome: str, **detail: Any) -> str:
        """Count a range's ``outcome`` (``replayed``, ``still_failing``, ``gone``) and list it."""
        setattr(self, outcome, getattr(self, outcome) + 1)
        self.ranges.append({**where, "outcome": outcome, **detail})
        return outcome


def replay(
    queue_url: str,
    sqs: Any,
    streams: Any,
    process: Process,
    *,
    region: str,
    remaining_ms: Callable[[], int] | None = None,
    max_messages: int = 100,
) -> ReplayResult:
    """Replay every range in the consumer's stream-failures queue through ``process``."""
    result = ReplayResult()
    seen: set[str] = set()
    deadline_ok = (lambda: remaining_ms() >= RESERVE_MS) if remaining_ms else (lambda: True)
    while len(seen) < max_messages:
        if not deadline_ok():
            break
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
            VisibilityTimeout=RECEIVE_VISIBILITY_S
        ).get("Messages") or []
        fresh = [m for m in messages if m["MessageId"] not in seen]
        if not fresh:
            break
        for message in fresh:
            seen.add(message["MessageId"])
            if not deadline_ok():
                result.left_for_next_run += 1
                _later(sqs, queue_url, message, 0)
                continue
            outcome = _replay_one(message, streams, process, region, result)
            if outcome == "replayed":
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            else:
                _later(sqs, queue_url, message, GONE_RETRY_AFTER_S if outcome == "gone" else RETRY_AFTER_S)
    logger.info("stream failures replayed", extra=result.as_dict())
    return result


def _replay_one(
    message: Mapping[str, Any], streams: Any, process: Process, region: str, result: ReplayResult,
) -> str:
    try:
        rng = StreamRange.from_message(str(message.get("Body", "")))
    except RangeUnreadable:
        logger.exception("stream failure record unreadable; left in the queue",
                         extra={"message_id": message.get("MessageId")})
        result.unreadable += 1
        return "unreadable"
    where = {"shard": rng.shard_id, "start": rng.start, "end": rng.end, "condition": rng.condition}
    try:
        records = lambda_records(rng.stream_arn, read_range(streams, rng), region)
    except RecordsGone:
        logger.exception("stream records gone before they were replayed", extra=where)
        return result.settle(where, "gone")
    except Exception:  # noqa: BLE001 - the stream unreadable now: the next run tries again
        logger.exception("stream range unreadable now; the next run tries again", extra=where)
        return result.settle(where, "still_failing")
    # One call, as Lambda delivered it: a range is the tail of one batch, so it is never larger than
    # the mapping's batch (and the rollup's idempotency items are keyed by the batch's first record).
    try:
        failures = process(records)
    except Exception:  # noqa: BLE001 - the consumer failed: the next run tries again
        logger.exception("stream range still fails; the next run tries again", extra=where)
        return result.settle(where, "still_failing")
    if failures:
        logger.error("stream range still fails; the next run tries again",
                     extra={**where, "failed_at": failures[0].get("itemIdentifier")})
        return result.settle(where, "still_failing")
    result.records += len(records)
    return result.settle(where, "replayed", records=len(records))


def _later(sqs: Any, queue_url: str, message: Mapping[str, Any], seconds: int) -> None:
    try:
        sqs.change_message_visibility(
            QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=int(seconds)
        )
    except Exception:  # noqa: BLE001 - it comes back after the receive's own visibility timeout
        logger.warning("could not set when the range comes back", exc_info=True)


def replay_job(consumer: str, needs: Any, process: Process, context: Any) -> dict[str, Any]:
    """A stream consumer's scheduled replay: its failures queue (from the environment the stack
    sets) through ``process``, the consumer's own batch logic. Returns what the run did."""
    import os

    import boto3

    from calltrack.settings import SettingsError, get_settings, stream_failures_env

    settings = get_settings(needs)
    queue_url = os.environ.get(stream_failures_env(consumer), "")
    if not queue_url:
        raise SettingsError(f"{stream_failures_env(consumer)} is not set: the stack sets it")
    session = boto3.session.Session()
    result = replay(
        queue_url,
        session.client("sqs", region_name=settings.region),
        session.client("dynamodbstreams", region_name=settings.region),
        process,
        region=settings.region,
        remaining_ms=remaining(context),  # calltrack.time_left
    )
    summary = {"consumer": consumer, **result.as_dict()}
    if result.still_failing or result.gone or result.unreadable:
        # The function's Errors alarm pages ops while a range stays unreplayed (README).
        raise StreamRangesNotReplayed(json.dumps(summary))
    return summary
