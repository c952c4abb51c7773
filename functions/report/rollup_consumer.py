"""The rollup Lambda (``report.rollup_consumer.handler``): the calls stream into ``report.rollup``.

Its composition root and its one adapter: the rollups table written in transactions of one
idempotency item (in the ``rollup_markers`` table) and up to 99 row updates (``DynamoRollupStore``),
and account time zones from the account reader.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from calltrack.days import DEFAULT_TIMEZONE
from calltrack.observability import make_tracer
from calltrack.settings import Needs
from report.rollup import Rows, process_records, split_row_key

if TYPE_CHECKING:
    from calltrack.accounts import AccountReader

NEEDS = Needs(tables=("rollups", "rollup_markers", "accounts"), stream_failures="rollup")

tracer = make_tracer("rollup")

# An idempotency item outlives every redelivery of its records: the stream keeps records 24 hours
# (the mapping skips them at 20 hours; the hourly replay reads them back until the stream trims them).
IDEMPOTENCY_TTL_S = 3 * 86400
KEY_PREFIX = "seq#"  # idempotency items share the markers table with the per-call markers of old


def idempotency_key(seq: str) -> str:
    return f"{KEY_PREFIX}{seq}"


class DynamoRollupStore:
    """RollupStore over DynamoDB with the low-level client: the batch's idempotency items in one
    consistent BatchGetItem per 100 records (``covered``), each transaction a TransactWriteItems
    of the item (``attribute_not_exists``) and its row ``ADD``s (``commit``)."""

    def __init__(
        self, client: Any, rollups_table: str, markers_table: str, now: Any = time.time
    ) -> None:
        self.client = client
        self.rollups_table = rollups_table
        self.markers_table = markers_table
        self.now = now

    def covered(self, seqs: list[str]) -> set[str]:
        out: set[str] = set()
        keys = [{"call_sid": {"S": idempotency_key(s)}} for s in dict.fromkeys(seqs)]
        for i in range(0, len(keys), 100):
            request: dict[str, Any] = {
                self.markers_table: {"Keys": keys[i : i + 100], "ConsistentRead": True}
            }
            while request:
                resp = self.client.batch_get_item(RequestItems=request)
                for item in resp.get("Responses", {}).get(self.markers_table, []):
                    out.update(item.get("seqs", {}).get("SS", []))
                request = resp.get("UnprocessedKeys") or {}
        return out

    def commit(self, seqs: list[str], rows: Rows) -> bool:
        key = {"call_sid": {"S": idempotency_key(seqs[0])}}
        item = {
            **key,
            "seqs": {"SS": list(dict.fromkeys(seqs))},
            "expire_at": {"N": str(int(self.now()) + IDEMPOTENCY_TTL_S)},
        }
        put = {
            "Put": {
                "TableName": self.markers_table,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(call_sid)",
            }
        }
        try:
            self.client.transact_write_items(TransactItems=[put, *self._row_updates(rows)])
        except self.client.exceptions.TransactionCanceledException as exc:
            reasons = exc.response.get("CancellationReasons") or []
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                return True  # the item exists: this transaction committed before
            if not reasons:  # no reasons given: ask the table
                return "Item" in self.client.get_item(
                    TableName=self.markers_table, Key=key, ConsistentRead=True
                )
            return False
        return True

    def _row_updates(self, rows: Rows) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for (account, key), delta in sorted(rows.items()):
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


def account_timezone(account: str, reader: AccountReader | None = None) -> str:
    """The account's time zone (the default for an account that no longer exists). An account
    whose stored config no longer validates still has its zone, a column of its own: its calls
    are counted, and the records after them in the stream are not held up behind them."""
    from calltrack.accounts import account_reader

    reader = reader or account_reader()
    try:
        config = reader.find(account)
    except Exception:  # noqa: BLE001 - not validating fails the config, not the zone (a read error raises again below)
        row = reader.stored(account)
        return row.timezone if row else DEFAULT_TIMEZONE
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

def apply(records: list[dict[str, Any]], remaining: Any = None) -> list[dict[str, str]]:
    return process_records(records, default_store(), account_timezone, remaining_ms=remaining)


@tracer.capture_lambda_handler
def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if "job" in event:  # hourly: the batches the stream gave up on (calltrack.stream_replay)
        from calltrack.stream_replay import replay_job

        return replay_job("rollup", NEEDS, lambda records: apply(records, remaining), context)
    return {"batchItemFailures": apply(list(event.get("Records") or []), remaining)}


