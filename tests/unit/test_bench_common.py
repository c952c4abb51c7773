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
