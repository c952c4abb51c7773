"""A PynamoDB model's table on an in-process DynamoDB (moto), for unit tests of a store's
conditional writes: the conditions DynamoDB evaluates, not a fake's reading of them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest


@contextmanager
def moto_table(monkeypatch: pytest.MonkeyPatch, model: Any, keys: Mapping[str, str],
               indexes: Mapping[str, tuple[str, str]] | None = None) -> Iterator[None]:
    """``model``'s table with ``keys`` (attribute -> HASH/RANGE, string attributes) and ``indexes``
    (name -> (hash, range) attributes, all projected), for the duration of the block."""
    from moto import mock_aws

    for name, value in (("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "testing"),
                        ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    saved = {k: getattr(model.Meta, k, None) for k in ("host", "region")}
    indexes = indexes or {}
    attributes = dict.fromkeys([*keys, *(a for pair in indexes.values() for a in pair)])
    with mock_aws():
        model.Meta.host, model.Meta.region = None, "us-east-1"
        model._connection = None
        import boto3

        extra: dict[str, Any] = {}
        if indexes:
            extra["GlobalSecondaryIndexes"] = [{
                "IndexName": name, "Projection": {"ProjectionType": "ALL"},
                "KeySchema": [{"AttributeName": h, "KeyType": "HASH"},
                              {"AttributeName": r, "KeyType": "RANGE"}],
            } for name, (h, r) in indexes.items()]
        boto3.client("dynamodb", region_name="us-east-1").create_table(
            TableName=model.Meta.table_name, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": k, "KeyType": t} for k, t in keys.items()],
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in attributes],
            **extra,
        )
        try:
            yield
        finally:
            for k, v in saved.items():
                setattr(model.Meta, k, v)
            model._connection = None


def create_table(client: Any, name: str, hash_key: tuple[str, str],
                 range_key: tuple[str, str] | None = None) -> None:
    """An on-demand table on the (moto) low-level ``client``: keys as (attribute, type S/N)."""
    keys = [(hash_key, "HASH"), *([(range_key, "RANGE")] if range_key else [])]
    client.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": a, "KeyType": kind} for (a, _), kind in keys],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": t} for (a, t), _ in keys],
    )
