"""Keeps the embedded emulator cheap where moto's cost grows with the history (local runtime only).

moto backs up every table a TransactWriteItems touches with a deep copy of the *whole* table
(stream records included) before applying it, and installs that copy again if the transaction
is cancelled. For the voice webhook and the rollup consumer, which write in transactions, that
made every call slower and the emulator's memory grow with the square of the history (a 300-call
demo peaked near 6 GB). This patch backs up only the items the transaction touches and puts just
those back on cancellation, which is what a transaction promises. Stream records of writes that
were rolled back stay in the stream; the consumers are idempotent by design (as they must be in
AWS, where stream records arrive at least once).

Two more, found by profiling a served stack under the demo (2026-12-03): every request to the
emulator listed moto's package directory (a ``stat`` per service, ~150) under the server's one lock
to find its backend; the list is now read once. And every message an SQS receive handed out
computed all of its queue's attributes three times to read the retention period, each time going
over every message in the queue (the visible and in-flight counts): receiving was quadratic in a
queue's depth. The retention period is now read from the queue itself.
"""

from __future__ import annotations

import copy
import threading
import types
from typing import Any

_installed = False
_lock = threading.Lock()


def _key_of(table: Any, op_type: str, op: dict[str, Any]) -> dict[str, Any] | None:
    if op_type == "Put":
        attrs = op.get("Item") or {}
        names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
        if any(name not in attrs for name in names):
            return None
        return {name: attrs[name] for name in names}
    key = op.get("Key")
    return key if isinstance(key, dict) else None


def _restore(table: Any, key: dict[str, Any], before: Any) -> None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    hash_value = DynamoType(key[table.hash_key_attr])
    range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
    if range_value is not None:
        bucket = table.items[hash_value]
        if before is None:
            bucket.pop(range_value, None)
        else:
            bucket[range_value] = before
    elif before is None:
        table.items.pop(hash_value, None)
    else:
        table.items[hash_value] = before


def install() -> None:
    """Patch moto's DynamoDB backend in this process (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        import moto.dynamodb.models as models

        # The original method deep-copies tables through the module's `copy`; hand it a `copy`
        # whose deepcopy leaves Table objects alone (we back up touched items ourselves).
        def _deepcopy(obj: Any, memo: Any = None) -> Any:
            if isinstance(obj, models.Table):
                return obj
            return copy.deepcopy(obj, memo)

        models.copy = types.SimpleNamespace(deepcopy=_deepcopy)  # type: ignore[assignment]
        original = models.DynamoDBBackend.transact_write_items

        def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
            backups: list[tuple[Any, dict[str, Any], Any]] = []
            for entry in transact_items:
                if len(entry) != 1:
                    continue
                op_type, op = next(iter(entry.items()))
                table = self.tables.get(op.get("TableName")) if isinstance(op, dict) else None
                key = _key_of(table, op_type, op) if table is not None else None
                if table is None or key is None:
                    continue
                try:
                    current = self.get_item(table.name, key)
                except Exception:  # a malformed key: the original raises the proper error
                    continue
                backups.append((table, key, copy.deepcopy(current)))
            try:
                original(self, transact_items)
            except Exception:
                for table, key, before in reversed(backups):
                    _restore(table, key, before)
                raise

        models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
        _install_request_routing()
        _install_sqs_retention_check()
        _installed = True


def _install_request_routing() -> None:
    import moto.backends as backends

    modules = tuple(backends.list_of_moto_modules())  # moto's own package: it does not change
    backends.list_of_moto_modules = lambda: modules


def _install_sqs_retention_check() -> None:
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention_period = int(self.get_queue(queue_name).message_retention_period)
        return retention_period + message.sent_timestamp / 1000 > unix_time()

    SQSBackend.is_message_valid_based_on_retention_period = (  # type: ignore[method-assign]
        is_message_valid_based_on_retention_period
    )
