"""calltrack.stream_replay: what the hourly replay does with each on-failure record it finds.

SQS and the table's stream are the local stack's emulator (a table and queue of each test's own),
except for a stream that has trimmed the range (moto never trims), which answers as DynamoDB
Streams does: TrimmedDataAccessException.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from calltrack.stream_replay import StreamRange, replay

REGION = "us-east-1"


@pytest.fixture
def aws(local_stack: Any) -> Iterator[dict[str, Any]]:
    """A table with a stream and a queue of their own on the session's emulator (never reset: the
    emulator's state is this process's, shared with the local stack)."""
    name = f"replay-{uuid.uuid4().hex[:10]}"
    ddb, sqs = local_stack.stack.client("dynamodb"), local_stack.stack.client("sqs")
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "call_sid", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "call_sid", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    try:
        yield {"ddb": ddb, "sqs": sqs, "url": url, "table": name,
               "streams": local_stack.stack.client("dynamodbstreams")}
    finally:
        ddb.delete_table(TableName=name)
        sqs.delete_queue(QueueUrl=url)


def write_calls(aws: dict[str, Any], *sids: str) -> list[str]:
    """Put one call item per sid; -> the stream's sequence numbers of those writes."""
    for sid in sids:
        aws["ddb"].put_item(TableName=aws["table"], Item={"call_sid": {"S": sid}})
    arn = aws["ddb"].describe_table(TableName=aws["table"])["Table"]["LatestStreamArn"]
    [shard] = aws["streams"].describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    it = aws["streams"].get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                           ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records = aws["streams"].get_records(ShardIterator=it)["Records"]
    return [r["dynamodb"]["SequenceNumber"] for r in records
            if r["dynamodb"]["Keys"]["call_sid"]["S"] in sids]


def on_failure(aws: dict[str, Any], start: str, end: str) -> None:
    arn = aws["ddb"].describe_table(TableName=aws["table"])["Table"]["LatestStreamArn"]
    [shard] = aws["streams"].describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    body = {"requestContext": {"condition": "RetryAttemptsExhausted"},
            "DDBStreamBatchInfo": {"shardId": shard["ShardId"], "startSequenceNumber": start,
                                   "endSequenceNumber": end, "batchSize": 1, "streamArn": arn}}
    aws["sqs"].send_message(QueueUrl=aws["url"], MessageBody=json.dumps(body))


def in_flight(aws: dict[str, Any]) -> int:
    attrs = aws["sqs"].get_queue_attributes(QueueUrl=aws["url"], AttributeNames=["All"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessagesNotVisible"]) + int(attrs["ApproximateNumberOfMessages"])


def test_only_the_recorded_range_is_replayed_in_stream_order(aws: dict[str, Any]) -> None:
    # Given five writes on the stream, of which Lambda gave up on the 2nd to the 4th
    seqs = write_calls(aws, "CA1", "CA2", "CA3", "CA4", "CA5")
    on_failure(aws, seqs[1], seqs[3])
    seen: list[list[str]] = []

    def process(records: list[dict[str, Any]]) -> list[dict[str, str]]:
        seen.append([r["dynamodb"]["Keys"]["call_sid"]["S"] for r in records])
        assert all(r["eventSource"] == "aws:dynamodb" and r["eventSourceARN"] for r in records)
        return []

    # When the replay runs
    result = replay(aws["url"], aws["sqs"], aws["streams"], process, region=REGION)

    # Then exactly those three records reach the consumer, in order, as one batch (as Lambda
    # delivered them), and the record is deleted
    assert seen == [["CA2", "CA3", "CA4"]]
    assert (result.replayed, result.records) == (1, 3)
    assert in_flight(aws) == 0


def test_a_range_the_consumer_fails_again_is_kept(aws: dict[str, Any]) -> None:
    seqs = write_calls(aws, "CA1")
    on_failure(aws, seqs[0], seqs[0])
    result = replay(aws["url"], aws["sqs"], aws["streams"],
                    lambda records: [{"itemIdentifier": seqs[0]}], region=REGION)
    assert (result.replayed, result.still_failing) == (0, 1)
    assert in_flight(aws) == 1


def test_a_range_the_stream_no_longer_holds_is_kept_for_a_person(aws: dict[str, Any]) -> None:
    # Given a record of a range older than the stream's 24 hours
    seqs = write_calls(aws, "CA1")
    on_failure(aws, seqs[0], seqs[0])

    class Trimmed:
        def get_shard_iterator(self, **_: Any) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "TrimmedDataAccessException", "Message": "trimmed"}},
                              "GetShardIterator")

    called: list[Any] = []
    # When the replay runs
    result = replay(aws["url"], aws["sqs"], Trimmed(), lambda r: called.append(r) or [], region=REGION)
    # Then nothing is processed; the record stays (the queue's alarm and the job's error say so)
    assert (result.gone, result.replayed, called) == (1, 0, [])
    assert in_flight(aws) == 1


def test_a_message_that_is_not_a_stream_batch_record_is_kept_unread(aws: dict[str, Any]) -> None:
    aws["sqs"].send_message(QueueUrl=aws["url"], MessageBody='{"Records": []}')
    result = replay(aws["url"], aws["sqs"], aws["streams"], lambda r: [], region=REGION)
    assert result.unreadable == 1 and in_flight(aws) == 1


def test_no_range_is_started_without_time_left(aws: dict[str, Any]) -> None:
    seqs = write_calls(aws, "CA1")
    on_failure(aws, seqs[0], seqs[0])
    result = replay(aws["url"], aws["sqs"], aws["streams"], lambda r: [], region=REGION,
                    remaining_ms=lambda: 5_000)
    assert result.replayed == 0 and in_flight(aws) == 1


def test_the_range_is_read_from_lambdas_record() -> None:
    body = json.dumps({"requestContext": {"condition": "RecordAgeExceeded"},
                       "DDBStreamBatchInfo": {"shardId": "shardId-1", "startSequenceNumber": "100",
                                              "endSequenceNumber": "900", "streamArn": "arn:s"}})
    rng = StreamRange.from_message(body)
    assert rng.holds("100") and rng.holds("900") and not rng.holds("99") and rng.past("1000")
    assert rng.condition == "RecordAgeExceeded"


def test_a_range_whose_last_record_is_not_reached_is_kept_not_deleted(aws: dict[str, Any]) -> None:
    # Given a record of a range whose last record the stream does not give back (empty pages)
    seqs = write_calls(aws, "CA1", "CA2")
    on_failure(aws, seqs[0], str(int(seqs[1]) + 10**6))  # past the last record written
    called: list[Any] = []
    # When the replay runs
    result = replay(aws["url"], aws["sqs"], aws["streams"], lambda r: called.append(r) or [],
                    region=REGION)
    # Then nothing is applied and the range stays for the next run
    assert (result.replayed, result.still_failing, called) == (0, 1, [])
    assert in_flight(aws) == 1


def test_a_consumer_that_raises_leaves_the_range_for_the_next_run(aws: dict[str, Any]) -> None:
    seqs = write_calls(aws, "CA1")
    on_failure(aws, seqs[0], seqs[0])

    def process(records: list[dict[str, Any]]) -> list[dict[str, str]]:
        raise RuntimeError("table down")

    result = replay(aws["url"], aws["sqs"], aws["streams"], process, region=REGION)
    assert (result.replayed, result.still_failing) == (0, 1) and in_flight(aws) == 1
