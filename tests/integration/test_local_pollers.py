"""Pollers and drain: stream records and queue messages reach their consumers, retries, DLQ.

Uses its own LocalStack whose wiring sends the calls stream and a private test queue to
tests.support.echo_handler.batch (the shared stack's pollers never see the test queue).
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from calltrack_cli.local.stack import LocalStack
from infra.wiring import WIRING, LambdaFunction, Queue, StreamConsumer
from tests.support import echo_handler, unique_account, unique_call_sid

BATCH = LambdaFunction("echo_batch", "support", "tests.support.echo_handler.batch")


@pytest.fixture(scope="module")
def stack(local_stack) -> Iterator[LocalStack]:
    # Shares the session stack's emulator (and so its environment): handlers' cached clients stay valid.
    wiring = dataclasses.replace(
        WIRING,
        functions=WIRING.functions + (BATCH,),
        # (4 receives before the dead-letter queue: a receive whose answer is lost under load counts as
        # one, and must not send a message another test expects delivered to the DLQ)
        queues=(Queue("localtest", consumer="echo_batch", batch_size=5, max_receive_count=4),),
        streams=(StreamConsumer("calls", consumer="echo_batch"),),
    )
    s = LocalStack(wiring=wiring, emulator_port=local_stack.stack.moto_port).start()
    try:
        yield s
    finally:
        s.stop()


def _sqs_bodies() -> list[str]:
    return [
        r["body"]
        for e in echo_handler.calls
        for r in e.get("Records", [])
        if r.get("eventSource") == "aws:sqs"
    ]


def test_drain_delivers_a_stream_record_and_a_queue_message(stack):
    # Given a call written to the calls table and a message sent to the queue
    sid, account = unique_call_sid(), unique_account()
    stack.client("dynamodb").put_item(
        TableName="calltrack-calls",
        Item={"call_sid": {"S": sid}, "account": {"S": account}, "started_at": {"S": "2026-11-02T01:00:00Z"}},
    )
    body = json.dumps({"probe": sid})
    stack.client("sqs").send_message(QueueUrl=stack.queue_urls["localtest"], MessageBody=body)
    # When the stack is drained
    result = stack.drain()
    # Then both reached the consumer as real-shaped events, and the stack is idle
    assert result["status"] == "idle"
    stream_records = [
        r for e in echo_handler.calls for r in e.get("Records", []) if r.get("eventSource") == "aws:dynamodb"
    ]
    mine = [r for r in stream_records if r["dynamodb"]["Keys"]["call_sid"]["S"] == sid]
    assert mine and mine[0]["eventName"] == "INSERT"
    assert mine[0]["dynamodb"]["NewImage"]["account"] == {"S": account}
    assert mine[0]["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert mine[0]["eventSourceARN"].startswith("arn:aws:dynamodb:")
    assert body in _sqs_bodies()
    attrs = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.queue_urls["localtest"], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0"


def test_a_message_the_consumer_keeps_failing_is_retried_then_dead_lettered(stack):
    # Given a message the consumer reports in batchItemFailures every time
    body = json.dumps({"fail": unique_call_sid()})
    stack.client("sqs").send_message(QueueUrl=stack.queue_urls["localtest"], MessageBody=body)
    # When the stack is drained
    stack.drain()
    # Then it reached the consumer and, received again after each failure, now sits in the
    # dead-letter queue: SQS moves a message there only at its fifth receive with
    # maxReceiveCount 4. (Receives, not deliveries, are what SQS counts: a receive whose answer
    # was lost, as one was under a loaded make test on 2026-12-02, counts without a delivery.)
    assert _sqs_bodies().count(body) >= 1
    sqs = stack.client("sqs")
    dead = sqs.receive_message(
        QueueUrl=stack.dlq_urls["localtest"], MaxNumberOfMessages=10, WaitTimeSeconds=0,
        AttributeNames=["ApproximateReceiveCount"],
    )
    moved = [m for m in dead.get("Messages", []) if m["Body"] == body]
    assert moved and int(moved[0]["Attributes"]["ApproximateReceiveCount"]) >= 5  # 4 + this one


def test_run_job_invokes_the_scheduled_function_with_the_eventbridge_input(local_stack):
    # Given a wiring whose job function is the echo handler
    from calltrack_cli.local.stack import LocalStack as _LS

    wiring = dataclasses.replace(
        WIRING,
        functions=WIRING.functions + (BATCH,),
        schedules=(dataclasses.replace(WIRING.schedules[0], function="echo_batch"),),
        queues=(),
        streams=(),
    )
    s = _LS(wiring=wiring, pollers=False)
    # (run_job needs no servers: call it on an unstarted stack's invoker)
    result = s.run_job(WIRING.schedules[0].name, "2026-11-30T09:00:00+09:00", force=True)
    assert result["event"] == {"job": WIRING.schedules[0].name, "time": "2026-11-30T00:00:00Z", "force": True}
    assert echo_handler.calls[-1] == result["event"]


def test_a_stream_record_reported_failed_is_redelivered_from_its_sequence_number(stack):
    # Given a call row the stream consumer fails the first time it sees it
    sid = unique_call_sid()
    stack.client("dynamodb").put_item(
        TableName="calltrack-calls",
        Item={
            "call_sid": {"S": sid},
            "account": {"S": unique_account()},
            "started_at": {"S": "2026-11-02T01:00:00Z"},
            "fail_once": {"BOOL": True},
        },
    )
    # When the stack is drained
    stack.drain()
    # Then the consumer saw that record twice: the failed delivery and the retry from its sequence number
    seen = [
        r["dynamodb"]["SequenceNumber"]
        for e in echo_handler.calls
        for r in e.get("Records", [])
        if r.get("eventSource") == "aws:dynamodb" and r["dynamodb"]["Keys"]["call_sid"]["S"] == sid
    ]
    assert len(seen) == 2 and seen[0] == seen[1]


def _stream_sids() -> set[str]:
    return {
        r["dynamodb"]["Keys"]["call_sid"]["S"]
        for e in echo_handler.calls
        for r in e.get("Records", [])
        if r.get("eventSource") == "aws:dynamodb"
    }


def test_records_written_after_a_cancelled_transaction_still_reach_the_consumer(stack):
    # Given the stream poller has already delivered a record (so it holds a read position)
    ddb = stack.client("dynamodb")
    account = unique_account()
    before, after = unique_call_sid(), unique_call_sid()
    item = {"account": {"S": account}, "started_at": {"S": "2026-11-02T01:00:00Z"}}
    ddb.put_item(TableName="calltrack-calls", Item={"call_sid": {"S": before}, **item})
    stack.drain()
    # And a transaction is cancelled (moto then swaps every table for a copy, stream shard included)
    with pytest.raises(ddb.exceptions.TransactionCanceledException):
        ddb.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": "calltrack-calls",
                        "Item": {"call_sid": {"S": before}, **item},
                        "ConditionExpression": "attribute_not_exists(call_sid)",
                    }
                }
            ]
        )
    # When another call is written and the stack drained
    ddb.put_item(TableName="calltrack-calls", Item={"call_sid": {"S": after}, **item})
    stack.drain()
    # Then the consumer saw both calls: the poller did not keep reading a stale shard
    assert {before, after} <= _stream_sids()


@pytest.fixture
def real_time_retries(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Handlers' delays at real time (as in `calltrack local serve` and the demo), for one test."""
    from calltrack.settings import reset_settings

    monkeypatch.setenv("CALLTRACK_RETRY_TIME_SCALE", "1")
    reset_settings()
    yield
    monkeypatch.undo()
    reset_settings()


def test_drain_waits_for_a_short_delay_but_not_for_work_scheduled_later(stack, real_time_retries):
    # Given two messages whose handler puts them off: one for 2 seconds, one for 15 minutes
    soon = json.dumps({"defer": 2, "n": unique_call_sid()})
    later = json.dumps({"defer": 900, "n": unique_call_sid()})
    for body in (soon, later):
        stack.client("sqs").send_message(QueueUrl=stack.queue_urls["localtest"], MessageBody=body)
    # When the stack is drained
    stack.drain()
    # Then the short delay was waited for (delivered again) and the 15-minute one is scheduled, not pending
    assert _sqs_bodies().count(soon) == 2
    assert _sqs_bodies().count(later) == 1
    [poller] = [p for p in stack.pollers if getattr(p, "name", "") == "queue-localtest"]
    assert poller.backlog()["scheduled"] == 1 and not poller.pending()


def test_a_message_left_in_flight_by_a_receiver_that_went_away_is_delivered_again(stack):
    import time as _time

    from calltrack_cli.local.pollers import _moto_queue

    # Given a message a consumer received 6 s ago and then went away without answering: in AWS it
    # would come back after the queue's 180 s visibility timeout (made so in the emulator's record:
    # sent delayed, so that the stack's own poller cannot take it first)
    body = json.dumps({"orphan": unique_call_sid()})
    url = stack.queue_urls["localtest"]
    stack.client("sqs").send_message(QueueUrl=url, MessageBody=body, DelaySeconds=60)
    [message] = [m for m in _moto_queue(url)._messages if m.body == body]
    message.visible_at = _time.time() * 1000 + (180 - 6) * 1000
    message.delayed_until = 0
    # When the stack is drained
    stack.drain()
    # Then the local runtime gave it to its consumer instead of waiting out the visibility timeout
    assert body in _sqs_bodies()


def test_a_message_put_off_for_hours_by_a_receiver_that_went_away_is_delivered_again(stack):
    import time as _time

    from calltrack_cli.local.pollers import _moto_queue

    # Given a message a consumer received, put off for two hours (a backoff it set itself), and then
    # went away without answering: its visibility no longer tells when it was received (made so in
    # the emulator's record: sent delayed, so that the stack's own poller cannot take it first)
    body = json.dumps({"put-off": unique_call_sid()})
    url = stack.queue_urls["localtest"]
    stack.client("sqs").send_message(QueueUrl=url, MessageBody=body, DelaySeconds=60)
    [message] = [m for m in _moto_queue(url)._messages if m.body == body]
    message.visible_at = _time.time() * 1000 + 2 * 3600 * 1000
    message.delayed_until = 0
    # When the stack is drained
    stack.drain()
    # Then the local runtime gave it to its consumer once it had seen it unclaimed for a while,
    # instead of every drain for the next two hours failing on a message nobody holds
    assert body in _sqs_bodies()


class _ReceiveCounter:
    """The emulator's SQS client, counting the ReceiveMessage calls under way at once (each held a
    little longer, so that two receivers overlapping at all are seen to)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._lock = threading.Lock()
        self._now = 0
        self.most_at_once = 0
        self.receives = 0

    def receive_message(self, **kwargs: Any) -> Any:
        with self._lock:
            self._now += 1
            self.receives += 1
            self.most_at_once = max(self.most_at_once, self._now)
        try:
            time.sleep(0.05)
            return self.inner.receive_message(**kwargs)
        finally:
            with self._lock:
                self._now -= 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_drain_and_the_background_loop_never_receive_from_one_queue_at_once(stack):
    from calltrack_cli.local.pollers import QueuePoller, wait_idle
    from calltrack_cli.local.stack import create_queue, queue_arn

    # Given a queue with a dead-letter queue, polled by its background loop (the emulator's receive
    # is not atomic: two at once left messages in flight for their whole visibility timeout, and a
    # redriven one invisible in the DLQ), holding messages the consumer fails and messages it takes
    sqs = stack.client("sqs")
    queue = Queue(f"localrace-{unique_call_sid()[-8:]}", "echo_batch", batch_size=1, max_receive_count=2)
    url, dlq = create_queue(sqs, queue)
    counter = _ReceiveCounter(sqs)
    poller = QueuePoller(stack.invoker, queue, url, queue_arn(sqs, url),
                         lambda service: counter if service == "sqs" else stack.client(service))
    failing = [json.dumps({"fail": unique_call_sid()}) for _ in range(3)]
    taken = [json.dumps({"take": unique_call_sid()}) for _ in range(3)]
    poller.start()
    try:
        for body in failing + taken:
            sqs.send_message(QueueUrl=url, MessageBody=body)
        # When the queue is drained while its background loop runs
        result = wait_idle([poller], stack.invoker, timeout_s=60)
    finally:
        poller.stop()
    # Then no two receives were ever under way at once, every message taken was delivered, and every
    # failing one sits visible in the dead-letter queue
    assert result["status"] == "idle" and counter.receives > 1
    assert counter.most_at_once == 1
    assert all(body in _sqs_bodies() for body in taken)
    dead = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
    assert sorted(m["Body"] for m in dead) == sorted(failing)
