"""Calls-stream batches a consumer gave up on are replayed by its hourly job (calltrack.stream_replay).

On the local stack, whose stream poller does what Lambda does when a consumer's retries run out:
it skips the records and records where they were in the consumer's stream-failures queue.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support import unique_number
from tests.support.stack import apply_account, tokens
from tests.support.twilio import play_call

CALL_AT = datetime(2026, 9, 14, 3, 0, tzinfo=UTC)  # a Monday, 12:00 in Tokyo


def channel_calls(stack: Any, token: str) -> int:
    resp = stack.request(
        "GET", "/v1/reports/channels", token=token, params={"from": "2026-09-14", "to": "2026-09-14"}
    )
    assert resp.status_code == 200, resp.text
    return sum(row["calls"] for row in resp.json()["rows"])


def failures_waiting(stack: Any, consumer: str) -> list[dict[str, Any]]:
    """The on-failure records in the consumer's queue (received and put straight back)."""
    sqs = stack.stack.client("sqs")
    url = stack.stack.stream_failure_urls[consumer]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    messages = messages.get("Messages", [])
    for m in messages:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    return [json.loads(m["Body"]) for m in messages]


def flyer_clinic(stack: Any, name: str) -> tuple[str, str]:
    """An account with one flyer number and its marketer's token, nothing pending on the stack:
    -> (number, marketer token)."""
    number = unique_number()
    account = apply_account(stack, "replay", name=name,
                            numbers=[{"number": number, "channel": "flyer", "medium": "offline"}])
    marketer = tokens(stack, account, "marketer")["marketer"]
    stack.drain()
    return number, marketer


@pytest.fixture
def rollup_without_dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The rollup consumer's DynamoDB client points at a closed port (an outage of its table
    writes, every retry included); every other client is untouched. Restored afterwards."""
    import report.rollup_consumer as rollup

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rollup.reset()
    with monkeypatch.context() as m:
        m.setenv("AWS_ENDPOINT_URL_DYNAMODB", f"http://127.0.0.1:{port}")
        m.setenv("AWS_MAX_ATTEMPTS", "1")
        rollup.default_store()  # built now, against the closed port
    try:
        yield
    finally:
        rollup.reset()


def test_a_batch_the_rollup_gave_up_on_is_counted_once_by_the_hourly_replay(
    local_stack: Any, rollup_without_dynamodb: None
) -> None:
    # Given an account with a flyer number, and nothing pending on the stack
    number, marketer = flyer_clinic(local_stack, "Replay clinic")
    assert failures_waiting(local_stack, "rollup") == []

    # When a call is played while the rollup cannot write, and its retries run out
    play_call(local_stack, number, CALL_AT, "answered", 40)
    local_stack.drain()

    # Then the call is not counted, and the rollup's failures queue says where its records were
    assert channel_calls(local_stack, marketer) == 0
    ranges = failures_waiting(local_stack, "rollup")  # one per batch the poller gave up on
    assert ranges
    for record in ranges:
        info = record["DDBStreamBatchInfo"]
        assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
        assert int(info["startSequenceNumber"]) <= int(info["endSequenceNumber"])
        assert info["streamArn"].split("/")[1].endswith("calls")

    # When the table is back and the hourly replay runs
    import report.rollup_consumer as rollup

    rollup.reset()
    out = local_stack.run_job("stream-failures-rollup", "2026-09-14T03:40:00Z")

    # Then the call is counted, once, and the range is gone from the queue
    assert out["result"]["replayed"] == len(ranges) and out["result"]["records"] >= len(ranges), out
    assert channel_calls(local_stack, marketer) == 1
    assert failures_waiting(local_stack, "rollup") == []

    # And a second run (the queue empty) and the records' own redelivery count nothing twice
    again = local_stack.run_job("stream-failures-rollup", "2026-09-14T04:40:00Z")
    assert again["result"]["replayed"] == 0
    assert channel_calls(local_stack, marketer) == 1


def test_a_range_the_consumer_still_fails_stays_for_the_next_run_and_fails_the_job(
    local_stack: Any, rollup_without_dynamodb: None
) -> None:
    from calltrack_cli.local.client import StackError

    # Given a batch the rollup gave up on while its table was down
    number, marketer = flyer_clinic(local_stack, "Still down clinic")
    play_call(local_stack, number, CALL_AT, "answered", 40)
    local_stack.drain()
    ranges = failures_waiting(local_stack, "rollup")
    assert ranges

    # When the hourly replay runs while the table is still down
    with pytest.raises(StackError, match="still_failing"):
        local_stack.run_job("stream-failures-rollup", "2026-09-14T03:40:00Z")

    # Then nothing is counted and the range is kept, out of sight until the next run
    assert channel_calls(local_stack, marketer) == 0
    assert failures_waiting(local_stack, "rollup") == []  # invisible for the next 50 minutes
    sqs = local_stack.stack.client("sqs")
    attrs = sqs.get_queue_attributes(QueueUrl=local_stack.stack.stream_failure_urls["rollup"],
                                     AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
    assert attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == str(len(ranges))

    # And once the table is back, the next run counts it
    import report.rollup_consumer as rollup

    rollup.reset()
    _make_visible(local_stack)
    out = local_stack.run_job("stream-failures-rollup", "2026-09-14T04:40:00Z")
    assert out["result"]["replayed"] == len(ranges), out
    assert channel_calls(local_stack, marketer) == 1


def _make_visible(stack: Any) -> None:
    """The next hourly run, 50 minutes on: the emulator's in-flight range made visible again."""
    from moto.sqs.models import sqs_backends

    from calltrack_cli.local.events import ACCOUNT_ID, REGION

    name = stack.stack.stream_failure_urls["rollup"].rsplit("/", 1)[-1]
    for message in sqs_backends[ACCOUNT_ID][REGION].queues[name]._messages:
        message.change_visibility(0)


def _recorded_range(stack: Any, call_sid: str, consumer: str) -> dict[str, Any]:
    """Put into ``consumer``'s failures queue Lambda's record of the stream range holding the call's
    records (as if it had given up on them), and return the record."""
    ddb, streams = stack.stack.client("dynamodb"), stack.stack.client("dynamodbstreams")
    arn = ddb.describe_table(TableName="calltrack-calls")["Table"]["LatestStreamArn"]
    [shard] = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    seqs: list[str] = []
    while iterator:
        page = streams.get_records(ShardIterator=iterator, Limit=1000)
        if not page["Records"]:
            break
        seqs += [r["dynamodb"]["SequenceNumber"] for r in page["Records"]
                 if r["dynamodb"]["Keys"]["call_sid"]["S"] == call_sid]
        iterator = page.get("NextShardIterator")
    assert seqs, "the call's records are on the stream"
    record = {
        "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": 6},
        "version": "1.0",
        "DDBStreamBatchInfo": {"shardId": shard["ShardId"], "startSequenceNumber": seqs[0],
                               "endSequenceNumber": seqs[-1], "batchSize": len(seqs), "streamArn": arn},
    }
    stack.stack.client("sqs").send_message(QueueUrl=stack.stack.stream_failure_urls[consumer],
                                           MessageBody=json.dumps(record))
    return record


@pytest.mark.parametrize(("consumer", "job"), [("rollup", "stream-failures-rollup"),
                                               ("call_changes", "stream-failures-call-changes")])
def test_each_consumer_replays_a_recorded_range_with_its_own_grants(local_stack: Any, consumer: str,
                                                                    job: str) -> None:
    # Given a call counted and fanned out as usual
    number, marketer = flyer_clinic(local_stack, "Grants clinic")
    sid = play_call(local_stack, number, CALL_AT, "answered", 40)
    local_stack.drain()
    assert channel_calls(local_stack, marketer) == 1
    # And a failures record of the consumer naming the call's range of the calls stream
    _recorded_range(local_stack, sid, consumer)

    # When the consumer's hourly replay runs (as deployed: under its own role)
    out = local_stack.run_job(job, "2026-09-14T03:40:00Z")
    local_stack.drain()

    # Then the range is read from the stream, handed to the consumer and deleted from the queue
    assert out["result"]["replayed"] == 1 and out["result"]["records"] >= 2, out
    assert failures_waiting(local_stack, consumer) == []
    # And the replayed records count nothing twice
    assert channel_calls(local_stack, marketer) == 1
