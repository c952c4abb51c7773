"""In-memory twin of ``report.rollup_consumer.DynamoRollupStore`` (same semantics) for the rollup
tests and the benchmark's rollup rows: idempotency items put only if absent, ADD deltas on rollup
rows, whole transactions or nothing. It counts what DynamoDB would bill: a transactional write
costs 2 write units per 1 KB of item (https://aws.amazon.com/dynamodb/pricing/on-demand/).

``conflict_window_s`` models DynamoDB's transaction conflicts: a transaction touching an item
another transaction is writing at the same time is cancelled (TransactionConflict). Each
transaction then takes that long (a real sleep: benchmark only; tests leave it at 0).
Test support, not product code.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from typing import Any

from report.rollup import Rows, split_row_key

ITEM_OVERHEAD_BYTES = 100  # DynamoDB's per-item overhead and attribute names, roughly


def _wu(size_bytes: int) -> int:
    return 2 * max(1, math.ceil(size_bytes / 1024))


def idempotency_item_bytes(seqs: list[str]) -> int:
    """Key "seq#<first>", the string set of sequence numbers, ``expire_at``."""
    return len("call_sid") + 4 + len(seqs[0]) + len("seqs") + sum(len(s) for s in seqs) + 20 + 40


class InMemoryRollupStore:
    def __init__(self, conflict_window_s: float = 0.0) -> None:
        self.items: dict[str, list[str]] = {}  # idempotency key (first seq) -> covered seqs
        self.rows: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
        self.lock = threading.Lock()
        self.in_flight: set[Any] = set()
        self.conflict_window_s = conflict_window_s
        self.transactions = 0
        self.committed = 0
        self.cancelled = 0  # a conflict with a concurrent transaction
        self.conflicts = 0  # the same, kept for the benchmark's row
        self.duplicates = 0  # commits whose item already existed (nothing written)
        self.write_units = 0
        self.marker_write_units = 0  # of which: the idempotency items
        self.row_write_units = 0  # of which: the rollup rows
        self.items_written = 0
        self.rows_written = 0
        self.marker_reads = 0  # idempotency keys read

    def covered(self, seqs: list[str]) -> set[str]:
        with self.lock:
            self.marker_reads += len(seqs)
            out: set[str] = set()
            for seq in seqs:
                out.update(self.items.get(seq, ()))
            return out

    def commit(self, seqs: list[str], rows: Rows) -> bool:
        keys: set[Any] = {("item", seqs[0])} | set(rows)
        with self.lock:
            self.transactions += 1
            if keys & self.in_flight:
                self.cancelled += 1
                self.conflicts += 1
                return False
            if seqs[0] in self.items:
                # DynamoDB's answer (the conditional put fails: "committed before") is right only
                # for the same transaction tried again; any other would lose its other records.
                if self.items[seqs[0]] != list(seqs):
                    raise AssertionError(f"transaction at {seqs[0]}: other records than the committed one")
                self.duplicates += 1
                return True
            self.in_flight |= keys
        if self.conflict_window_s:
            time.sleep(self.conflict_window_s)
        with self.lock:
            self.in_flight -= keys
            self.items[seqs[0]] = list(seqs)
            self.committed += 1
            self.marker_write_units += _wu(idempotency_item_bytes(seqs))
            for (account, key), delta in rows.items():
                dimension, sk = split_row_key(key)
                row = self.rows[(f"{account}#{dimension}", sk)]
                for counter, amount in delta.items():
                    row[counter] = row.get(counter, 0) + amount
                self.row_write_units += _wu(len(account) + len(key) + 16 * max(len(row), 1))
            self.items_written += 1 + len(rows)
            self.rows_written += len(rows)
            self.write_units = self.marker_write_units + self.row_write_units
            return True

    def counters(self, account: str, dimension: str) -> dict[str, dict[str, float]]:
        return {
            sk: {k: v for k, v in row.items() if v}
            for (pk, sk), row in self.rows.items()
            if pk == f"{account}#{dimension}" and any(row.values())
        }


class InMemoryRecount:
    """``report.recount.RecountPorts`` over lists: the stored calls, rollup rows keyed (account,
    row key), and ``raise_row`` with the DynamoDB adapter's condition (each raised counter still
    holds what was read, or is absent). ``before_raise`` runs before each raise (a consumer's write
    in between); ``index`` stands for a by-account index that lags the table (``calls`` answers it,
    ``versions`` the table); ``after_first_read`` runs once, after the recount's first read of either kind (a
    call changed, and counted by the consumer, while the recount reads). Test support, not product
    code."""

    def __init__(self, calls: list[dict[str, Any]], rows: dict[tuple[str, str], dict[str, float]]) -> None:
        self.stored_calls = calls
        self.stored_rows = rows
        self.writes: list[tuple[str, dict[str, float]]] = []
        self.before_raise: Any = None
        self.after_first_read: Any = None
        self.index: list[dict[str, Any]] | None = None  # what the by-account index answers, if stale

    def versions(self, call_sids: Any) -> dict[str, Any]:
        wanted = set(call_sids)
        return {c["call_sid"]: c.get("version") for c in self.stored_calls if c["call_sid"] in wanted}

    def _read(self) -> None:
        hook, self.after_first_read = self.after_first_read, None
        if hook:
            hook()

    @property
    def raiser(self) -> InMemoryRecount:
        return self

    def calls(self, account: str, start: Any, end: Any) -> list[dict[str, Any]]:
        lo, hi = start.strftime("%Y-%m-%dT%H:%M:%S"), end.strftime("%Y-%m-%dT%H:%M:%S")
        out = [dict(c) for c in (self.stored_calls if self.index is None else self.index)
               if c["account"] == account and lo <= c["started_at"][:19] < hi]
        self._read()
        return out

    def rows(self, account: str, dimension: str, from_day: Any, to_day: Any) -> list[Any]:
        from report.rollup_store import RollupRow

        out = []
        for (acct, key), counters in sorted(self.stored_rows.items()):
            dim, sk = split_row_key(key)
            day, _, value = sk.partition("#")
            if acct == account and dim == dimension and str(from_day) <= day <= str(to_day):
                out.append(RollupRow(day=day, key=value, counters=dict(counters)))
        self._read()
        return out

    def raise_row(self, account: str, row_key: str, raises: Any, seen: Any) -> bool:
        if self.before_raise:
            self.before_raise(account, row_key)
        row = self.stored_rows.setdefault((account, row_key), {})
        if any(row.get(c) != seen.get(c) for c in raises):
            return False
        for counter, amount in raises.items():
            row[counter] = row.get(counter, 0) + amount
        self.writes.append((row_key, dict(raises)))
        return True
