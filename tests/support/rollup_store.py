"""In-memory twin of ``report.rollup_consumer.DynamoRollupStore`` (same conditional semantics) for
the rollup tests and the benchmark's rollup rows: markers conditioned on ``seq``, ADD deltas on
rollup rows, whole transactions or nothing. It counts what DynamoDB would bill: a transactional
write costs 2 write units per 1 KB of item (https://aws.amazon.com/dynamodb/pricing/on-demand/).

``conflict_window_s`` models DynamoDB's transaction conflicts: a transaction touching an item
another transaction is writing at the same time is cancelled (TransactionConflict). Each
transaction then takes that long (a real sleep: benchmark only; tests leave it at 0).
Test support, not product code.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import defaultdict
from typing import Any

from report.rollup import Change, Contribution, Marker, split_row_key


def _wu(size_bytes: int) -> int:
    return 2 * max(1, math.ceil(size_bytes / 1024))


class InMemoryRollupStore:
    def __init__(self, conflict_window_s: float = 0.0) -> None:
        self.markers: dict[str, Marker] = {}
        self.rows: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
        self.lock = threading.Lock()
        self.in_flight: set[Any] = set()
        self.conflict_window_s = conflict_window_s
        self.transactions = 0
        self.cancelled = 0  # a marker moved, or a conflict with a concurrent transaction
        self.conflicts = 0  # of which: concurrent transactions on one item
        self.write_units = 0
        self.marker_write_units = 0  # of which: the per-call markers
        self.row_write_units = 0  # of which: the rollup rows
        self.items_written = 0
        self.rows_written = 0
        self.marker_reads = 0

    def get_marker(self, call_sid: str) -> Marker | None:
        with self.lock:
            self.marker_reads += 1
            return self.markers.get(call_sid)

    def get_markers(self, call_sids: list[str]) -> dict[str, Marker]:
        with self.lock:
            self.marker_reads += len(call_sids)
            return {c: self.markers[c] for c in call_sids if c in self.markers}

    def commit(
        self, call_sid: str, account: str, previous: Marker | None, new: Marker, deltas: Contribution
    ) -> bool:
        return self.commit_batch([Change(call_sid, account, previous, new, deltas)], deltas)

    def commit_batch(self, changes: list[Change], rows: Contribution) -> bool:
        account = changes[0].account if changes else ""
        keys: set[Any] = {("m", c.call_sid) for c in changes} | {(account, k) for k in rows}
        with self.lock:
            self.transactions += 1
            if keys & self.in_flight:
                self.cancelled += 1
                self.conflicts += 1
                return False
            for c in changes:
                current = self.markers.get(c.call_sid)
                if (current.seq if current else None) != (c.previous.seq if c.previous else None):
                    self.cancelled += 1
                    return False
            self.in_flight |= keys
        if self.conflict_window_s:
            time.sleep(self.conflict_window_s)
        with self.lock:
            self.in_flight -= keys
            for c in changes:
                self.markers[c.call_sid] = c.new
                size = len(c.call_sid) + len(account) + 40 + len(json.dumps(c.new.contribution))
                self.marker_write_units += _wu(size)
            for key, delta in rows.items():
                dimension, sk = split_row_key(key)
                row = self.rows[(f"{account}#{dimension}", sk)]
                for counter, amount in delta.items():
                    row[counter] = row.get(counter, 0) + amount
                self.row_write_units += _wu(len(account) + len(key) + 16 * max(len(row), 1))
            self.items_written += len(changes) + len(rows)
            self.rows_written += len(rows)
            self.write_units = self.marker_write_units + self.row_write_units
            return True

    def counters(self, account: str, dimension: str) -> dict[str, dict[str, float]]:
        return {
            sk: {k: v for k, v in row.items() if v}
            for (pk, sk), row in self.rows.items()
            if pk == f"{account}#{dimension}" and any(row.values())
        }
