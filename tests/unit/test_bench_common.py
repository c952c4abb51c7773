"""bench.common: percentiles, naming AWS requests, and attributing them to the function that sent them."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from bench.common import RequestCounter, describe_request, percentile

DDB_AUTH = "AWS4-HMAC-SHA256 Credential=testing/20261125/us-east-1/dynamodb/aws4_request, SignedHeaders=x"
S3_AUTH = "AWS4-HMAC-SHA256 Credential=testing/20261125/us-east-1/s3/aws4_request, SignedHeaders=x"
SNS_AUTH = "AWS4-HMAC-SHA256 Credential=testing/20261125/us-east-1/sns/aws4_request, SignedHeaders=x"


def ddb(op: str, payload: dict[str, Any]) -> tuple[str, dict[str, Any], bytes]:
    headers = {"X-Amz-Target": f"DynamoDB_20120810.{op}".encode(), "Authorization": DDB_AUTH.encode()}
    return "POST", headers, json.dumps(payload).encode()


def test_percentile_is_nearest_rank():
    samples = [float(i) for i in range(1, 101)]
    assert percentile(samples, 50) == 50.0
    assert percentile(samples, 99) == 99.0
    assert percentile(samples, 100) == 100.0
    assert percentile([], 50) == 0.0


@pytest.mark.parametrize(
    "op,payload,items",
    [
        ("BatchGetItem", {"RequestItems": {"a": {"Keys": [{}, {}]}, "b": {"Keys": [{}]}}}, 3),
        ("TransactWriteItems", {"TransactItems": [{"Update": {}}, {"Put": {}}]}, 2),
        ("BatchWriteItem", {"RequestItems": {"r": [{}] * 25}}, 25),
        ("UpdateItem", {"TableName": "calls"}, 1),
    ],
)
def test_dynamodb_requests_are_named_with_the_items_they_touch(op, payload, items):
    assert describe_request(*ddb(op, payload)) == (f"dynamodb:{op}", items)


def test_other_protocols_are_named_by_target_action_or_method():
    sqs = {"X-Amz-Target": "AmazonSQS.SendMessage", "Authorization": DDB_AUTH.replace("dynamodb", "sqs")}
    assert describe_request("POST", sqs, b"{}") == ("sqs:SendMessage", 1)
    assert describe_request("POST", {"Authorization": SNS_AUTH}, "Action=Publish&TopicArn=x") == (
        "sns:Publish",
        1,
    )
    assert describe_request("PUT", {"Authorization": S3_AUTH}, None) == ("s3:PUT", 1)


class FakeInvoker:
    """Stands in for the local stack's Invoker: the handler 'sends' requests through the counter."""

    def __init__(self) -> None:
        self.counter: RequestCounter | None = None

    def invoke(self, function_name: str, event: Any, **kwargs: Any) -> Any:
        assert self.counter is not None
        for op in event.get("ops", []):
            method, headers, body = ddb(op, {})
            self.counter._record_send(SimpleNamespace(method=method, headers=headers, body=body))
        return {"ok": True}


def test_requests_are_counted_per_function_only_while_its_handler_runs():
    # Given a counter around an invoker
    invoker = FakeInvoker()
    with RequestCounter(invoker) as counter:
        invoker.counter = counter
        # When a handler sends two requests, and someone outside any handler sends one
        invoker.invoke("voice_webhook", {"ops": ["BatchGetItem", "UpdateItem"]})
        method, headers, body = ddb("GetItem", {})
        counter._record_send(SimpleNamespace(method=method, headers=headers, body=body))
        invoker.invoke("rollup", {"ops": ["GetItem"], "Records": [{}, {}, {}]})
        tallies = counter.snapshot()
    # Then only the handlers' requests count, each under its function, with invocations and records
    assert dict(tallies["voice_webhook"].requests) == {"dynamodb:BatchGetItem": 1, "dynamodb:UpdateItem": 1}
    assert tallies["voice_webhook"].invocations == 1
    assert tallies["rollup"].records == 3 and tallies["rollup"].request_count == 1
    # And leaving the context restores the invoker's own method
    assert "invoke" not in invoker.__dict__


def test_attribute_to_counts_a_directly_driven_store():
    with RequestCounter() as counter:
        with counter.attribute_to("dni_lease"):
            method, headers, body = ddb("UpdateItem", {})
            counter._record_send(SimpleNamespace(method=method, headers=headers, body=body))
    assert counter.snapshot()["dni_lease"].request_count == 1


def test_an_sqs_batch_counts_its_entries_as_messages():
    sqs = {"X-Amz-Target": "AmazonSQS.SendMessageBatch", "Authorization": DDB_AUTH.replace("dynamodb", "sqs")}
    body = json.dumps({"QueueUrl": "q", "Entries": [{"Id": "1"}, {"Id": "2"}, {"Id": "3"}]}).encode()
    assert describe_request("POST", sqs, body) == ("sqs:SendMessageBatch", 3)


def test_the_tables_a_write_goes_to_are_counted_for_their_indexes():
    from bench.common import written_tables

    # Given a transaction writing a call and a callers row, a batch and a single update
    tx = ddb("TransactWriteItems", {"TransactItems": [{"Update": {"TableName": "calls"}},
                                                      {"Put": {"TableName": "callers"}},
                                                      {"ConditionCheck": {"TableName": "numbers"}}]})
    batch = ddb("BatchWriteItem", {"RequestItems": {"rollups": [{}] * 3}})
    single = ddb("UpdateItem", {"TableName": "calls"})
    read = ddb("GetItem", {"TableName": "calls"})
    # Then each item written is counted on its table (a condition check writes nothing; a read none)
    assert written_tables(tx[1], tx[2]) == {"calls": 1, "callers": 1}
    assert written_tables(batch[1], batch[2]) == {"rollups": 3}
    assert written_tables(single[1], single[2]) == {"calls": 1}
    assert written_tables(read[1], read[2]) == {}


def test_twilio_bills_each_leg_in_whole_minutes_and_transcripts_are_amazon_transcribes():
    from bench import twilio_cost

    p = twilio_cost.prices()
    talk, ring = p["call"]["talk_minutes"], p["call"]["ring_minutes"]
    usage = twilio_cost.per_call_usd(p)
    # each leg gains half a minute on average from the rounding up of its last partial minute
    assert usage["forwarded minutes"] == (talk + 0.5) * p["twilio"]["forward_minute_jp_mobile"]["usd"]
    assert usage["inbound minutes"] == (talk + ring + 0.5) * p["twilio"]["inbound_minute_jp_national"]["usd"]
    assert "transcription" not in usage  # not Twilio's: calltrack transcribes with Amazon Transcribe
    rows, details = twilio_cost.rows(0.06, {1000: {"p7": 26, "rule": 50}})
    assert details["transcribe_per_1000_calls_usd"] == round(talk * 0.024 * 1000, 2)
    assert any("Amazon Transcribe" in r.figure for r in rows)
