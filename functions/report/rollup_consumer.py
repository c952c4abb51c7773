"""The rollup Lambda (``report.rollup_consumer.handler``): the calls stream into ``report.rollup``.

Its composition root and its one adapter: the rollups table written with a conditional
transaction per call record (``DynamoRollupStore``), and account time zones from the account reader.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from calltrack.days import DEFAULT_TIMEZONE
from calltrack.observability import make_tracer
from calltrack.settings import Needs
from report.rollup import Contribution, Marker, process_records, split_row_key

NEEDS = Needs(tables=("rollups", "rollup_markers", "accounts"))

tracer = make_tracer("rollup")


class DynamoRollupStore:
    """RollupStore over DynamoDB with the low-level client (one TransactWriteItems per change)."""

    def __init__(self, client: Any, rollups_table: str, markers_table: str) -> None:
        self.client = client
        self.rollups_table = rollups_table
        self.markers_table = markers_table

    def get_marker(self, call_sid: str) -> Marker | None:
        item = self.client.get_item(
            TableName=self.markers_table, Key={"call_sid": {"S": call_sid}}, ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        version = item.get("call_version", {}).get("N")
        return Marker(
            seq=int(item["seq"]["N"]),
            call_version=int(Decimal(version)) if version is not None else None,
            contribution=json.loads(item["contribution"]["S"]),
            account=item.get("account", {}).get("S"),
        )

    def commit(
        self, call_sid: str, account: str, previous: Marker | None, new: Marker, deltas: Contribution
    ) -> bool:
        marker_item: dict[str, Any] = {
            "call_sid": {"S": call_sid},
            "account": {"S": account},
            "seq": {"N": str(new.seq)},
            "contribution": {"S": json.dumps(new.contribution, sort_keys=True, separators=(",", ":"))},
        }
        if new.call_version is not None:
            marker_item["call_version"] = {"N": str(new.call_version)}
        put: dict[str, Any] = {"TableName": self.markers_table, "Item": marker_item}
        if previous is None:
            put["ConditionExpression"] = "attribute_not_exists(call_sid)"
        else:
            put["ConditionExpression"] = "seq = :prev"
            put["ExpressionAttributeValues"] = {":prev": {"N": str(previous.seq)}}
        items: list[dict[str, Any]] = [{"Put": put}]
        for key, delta in sorted(deltas.items()):
            dimension, sk = split_row_key(key)
            names = {f"#c{i}": counter for i, counter in enumerate(delta)}
            values = {f":v{i}": {"N": str(amount)} for i, amount in enumerate(delta.values())}
            items.append(
                {
                    "Update": {
                        "TableName": self.rollups_table,
                        "Key": {"pk": {"S": f"{account}#{dimension}"}, "sk": {"S": sk}},
                        "UpdateExpression": "ADD " + ", ".join(f"#c{i} :v{i}" for i in range(len(delta))),
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": values,
                    }
                }
            )
        try:
            self.client.transact_write_items(TransactItems=items)
        except self.client.exceptions.TransactionCanceledException:
            return False
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True


def account_timezone(account: str) -> str:
    """The account's time zone (the default for an account that no longer exists)."""
    from calltrack.accounts import account_reader

    config = account_reader().find(account)
    return config.timezone if config else DEFAULT_TIMEZONE


_store: DynamoRollupStore | None = None

def default_store() -> DynamoRollupStore:
    global _store
    if _store is None:
        import boto3

        from calltrack.settings import get_settings

        settings = get_settings(NEEDS)
        _store = DynamoRollupStore(
            boto3.client("dynamodb", region_name=settings.region),
            settings.table_name("rollups"),
            settings.table_name("rollup_markers"),
        )
    return _store


def reset() -> None:
    """Forget cached clients/time zones (tests; the local runtime after changing env)."""
    global _store
    _store = None

@tracer.capture_lambda_handler
def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    failures = process_records(event.get("Records") or [], default_store(), account_timezone)
    return {"batchItemFailures": failures}


