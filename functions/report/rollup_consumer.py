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
from report.rollup import Change, Contribution, Marker, process_records, split_row_key

NEEDS = Needs(tables=("rollups", "rollup_markers", "accounts"))

tracer = make_tracer("rollup")


def _marker_of(item: Mapping[str, Any]) -> Marker:
    version = item.get("call_version", {}).get("N")
    return Marker(
        seq=int(item["seq"]["N"]),
        call_version=int(Decimal(version)) if version is not None else None,
        contribution=json.loads(item["contribution"]["S"]),
        account=item.get("account", {}).get("S"),
    )


class DynamoRollupStore:
    """RollupStore over DynamoDB with the low-level client: a stream batch's markers in one
    BatchGetItem per 100 calls, its changes in TransactWriteItems of up to 100 items
    (``commit_batch``); ``get_marker``/``commit`` are the call-by-call fallback."""

    def __init__(self, client: Any, rollups_table: str, markers_table: str) -> None:
        self.client = client
        self.rollups_table = rollups_table
        self.markers_table = markers_table

    def get_marker(self, call_sid: str) -> Marker | None:
        item = self.client.get_item(
            TableName=self.markers_table, Key={"call_sid": {"S": call_sid}}, ConsistentRead=True
        ).get("Item")
        return _marker_of(item) if item else None

    def get_markers(self, call_sids: list[str]) -> dict[str, Marker]:
        out: dict[str, Marker] = {}
        keys = [{"call_sid": {"S": sid}} for sid in dict.fromkeys(call_sids)]
        for i in range(0, len(keys), 100):
            request: dict[str, Any] = {
                self.markers_table: {"Keys": keys[i : i + 100], "ConsistentRead": True}
            }
            while request:
                resp = self.client.batch_get_item(RequestItems=request)
                for item in resp.get("Responses", {}).get(self.markers_table, []):
                    out[item["call_sid"]["S"]] = _marker_of(item)
                request = resp.get("UnprocessedKeys") or {}
        return out

    def commit(
        self, call_sid: str, account: str, previous: Marker | None, new: Marker, deltas: Contribution
    ) -> bool:
        return self._transact(
            [self._marker_put(call_sid, account, previous, new)] + self._row_updates(account, deltas)
        )

    def commit_batch(self, changes: list[Change], rows: Contribution) -> bool:
        if not changes:
            return True
        account = changes[0].account
        puts = [self._marker_put(c.call_sid, c.account, c.previous, c.new) for c in changes]
        return self._transact(puts + self._row_updates(account, rows))

    def _marker_put(
        self, call_sid: str, account: str, previous: Marker | None, new: Marker
    ) -> dict[str, Any]:
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
        return {"Put": put}

    def _row_updates(self, account: str, deltas: Contribution) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
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
        return items

    def _transact(self, items: list[dict[str, Any]]) -> bool:
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


