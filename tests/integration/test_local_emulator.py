"""The embedded emulator's transactions keep their promise with the light backup patch."""

from __future__ import annotations

import pytest

from tests.support import unique_account, unique_call_sid

TABLE = "calltrack-calls"


def _item(sid: str, **extra: dict[str, str]) -> dict[str, dict[str, str]]:
    return {
        "call_sid": {"S": sid},
        "account": {"S": unique_account()},
        "started_at": {"S": "2026-11-02T01:00:00Z"},
        **extra,
    }


def test_a_cancelled_transaction_leaves_every_item_as_it_was(local_stack):
    ddb = local_stack.stack.client("dynamodb")
    updated, existing, created = unique_call_sid(), unique_call_sid(), unique_call_sid()
    # Given two calls, one of which the transaction's condition will find
    ddb.put_item(TableName=TABLE, Item=_item(updated, status={"S": "ringing"}))
    ddb.put_item(TableName=TABLE, Item=_item(existing))
    # When a transaction updates one, creates another and then fails its condition on the third
    with pytest.raises(ddb.exceptions.TransactionCanceledException):
        ddb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": {"call_sid": {"S": updated}},
                        "UpdateExpression": "SET #s = :a",
                        "ExpressionAttributeNames": {"#s": "status"},
                        "ExpressionAttributeValues": {":a": {"S": "answered"}},
                    }
                },
                {"Put": {"TableName": TABLE, "Item": _item(created)}},
                {
                    "Put": {
                        "TableName": TABLE,
                        "Item": _item(existing),
                        "ConditionExpression": "attribute_not_exists(call_sid)",
                    }
                },
            ]
        )
    # Then the update is undone and the new item was never created
    got = ddb.get_item(TableName=TABLE, Key={"call_sid": {"S": updated}}, ConsistentRead=True)["Item"]
    assert got["status"] == {"S": "ringing"}
    assert "Item" not in ddb.get_item(TableName=TABLE, Key={"call_sid": {"S": created}}, ConsistentRead=True)


def test_a_transaction_that_succeeds_applies_every_write(local_stack):
    ddb = local_stack.stack.client("dynamodb")
    first, second = unique_call_sid(), unique_call_sid()
    ddb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": TABLE, "Item": _item(first)}},
            {"Put": {"TableName": TABLE, "Item": _item(second)}},
        ]
    )
    for sid in (first, second):
        assert "Item" in ddb.get_item(TableName=TABLE, Key={"call_sid": {"S": sid}}, ConsistentRead=True)
