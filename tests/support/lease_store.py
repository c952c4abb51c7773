"""In-memory twin of ``dni_lease.store.DynamoLeaseStore`` (same conditional semantics), for the
lease logic's unit tests and the benchmark's model rows (bench/p4_dni.py, bench/dni_support.py).
Test support, not product code: it is not in the dni_lease Lambda asset.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from calltrack.models.dni import STATS_TTL_DAYS, stats_key
from dni_lease.store import Row, sum_stats


class InMemoryLeaseStore:
    """Thread-safe twin of DynamoLeaseStore with the same conditional semantics.

    ``writes`` counts conditional lease writes (take/renew/release/revoke), ``reads`` batch reads.
    """

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}
        self.history_items: dict[tuple[str, float], Row] = {}
        self.lock = threading.Lock()
        self.writes = 0
        self.reads = 0

    def get_rows(self, numbers: Iterable[str]) -> dict[str, Row]:
        with self.lock:
            self.reads += 1
            return {n: copy.deepcopy(self.rows[n]) for n in numbers if n in self.rows}

    def take(self, number: str, row: Mapping[str, Any], now: float) -> bool:
        with self.lock:
            self.writes += 1
            cur = self.rows.get(number)
            if cur is not None and not (
                cur.get("expires_at") is None
                or cur["expires_at"] < now
                or cur.get("session_id") == row["session_id"]
            ):
                return False
            merged = dict(cur or {})
            merged.update({k: copy.deepcopy(v) for k, v in row.items() if v is not None})
            for k in [k for k, v in row.items() if v is None]:  # given as None: removed
                merged.pop(k, None)
            merged["number"] = number
            self.rows[number] = merged
            return True

    def renew(self, number: str, session_id: str, lease_id: str, expires_at: float,
              cookies: Any = None, *, now: float, page_id: str | None = None) -> bool:
        with self.lock:
            self.writes += 1
            cur = self.rows.get(number)
            if not cur or cur.get("session_id") != session_id or cur.get("lease_id") != lease_id:
                return False
            if not float(cur.get("expires_at") or 0) >= now:
                return False  # released or lapsed: taken again through the pool read
            cur["expires_at"] = cur["released_at"] = expires_at
            cur.update(cookies or {})
            if page_id:
                cur["page_id"] = page_id
            else:
                cur.pop("page_id", None)
            return True

    def release(
        self,
        number: str,
        session_id: str,
        lease_id: str,
        at: float,
        *,
        unless_renewed_after: float | None = None,
        page_id: str | None = None,
    ) -> bool:
        with self.lock:
            self.writes += 1
            cur = self._live_lease(number, session_id, lease_id, at)
            if cur is None:
                return False
            if page_id:
                if cur.get("page_id") != page_id:
                    return False
            elif unless_renewed_after is not None and not float(cur["expires_at"]) < unless_renewed_after:
                return False
            cur["expires_at"] = cur["released_at"] = at
            return True

    def _live_lease(self, number: str, session_id: str, lease_id: str, at: float) -> dict[str, Any] | None:
        """The row of ``number`` if it holds the live lease ``lease_id`` of ``session_id`` at ``at``."""
        cur = self.rows.get(number)
        if (not cur or cur.get("session_id") != session_id or cur.get("lease_id") != lease_id
                or not float(cur.get("expires_at") or 0) > at):
            return None
        return cur

    def revoke(self, number: str, session_id: str, lease_id: str, at: float) -> bool:
        with self.lock:
            self.writes += 1
            cur = self._live_lease(number, session_id, lease_id, at)
            if cur is None:
                return False
            cur["expires_at"] = cur["released_at"] = at
            del cur["lease_id"]
            cur.pop("client_key", None)
            return True

    def mark_called(self, number: str, session_id: str, at: float) -> bool:
        """What the voice webhook writes at a pool call's end (``voice_webhook.store``
        ``remember_pool_call``, its second UpdateItem): the holder ``session_id`` called, only
        while it is still the row's holder."""
        from calltrack.attribution import CALLED_AT, CALLED_SESSION

        with self.lock:
            cur = self.rows.get(number)
            if not cur or cur.get("session_id") != session_id:
                return False
            cur[CALLED_SESSION], cur[CALLED_AT] = session_id, at
            return True

    def mark_shared(self, number: str, until: float, base: Mapping[str, Any]) -> bool:
        with self.lock:
            cur = self.rows.setdefault(number, {"number": number})
            if cur.get("account") not in (None, base.get("account")):
                return False  # another account's session: the store's condition refuses it
            if cur.get("shared_until") is not None and cur["shared_until"] >= until:
                return True
            cur.update({k: copy.deepcopy(v) for k, v in base.items() if v is not None})
            cur["shared_until"] = until
            cur["shared_count"] = int(cur.get("shared_count") or 0) + 1
            return True

    def put_history(self, item: Mapping[str, Any]) -> None:
        with self.lock:
            self.history_items[(item["number"], item["leased_at"])] = copy.deepcopy(dict(item))

    def extend_history(self, number: str, leased_at: float, ended_at: float) -> None:
        with self.lock:
            item = self.history_items.get((number, leased_at))
            if item is not None:
                item["ended_at"] = ended_at

    def add_to_stats(self, account: str, pool: str, bucket_start: int, counter: str) -> None:
        with self.lock:
            key = (stats_key(account, pool), bucket_start)
            item = self.history_items.setdefault(
                key,
                {
                    "number": key[0],
                    "leased_at": bucket_start,
                    "kind": "stats",
                    "expire_at": bucket_start + STATS_TTL_DAYS * 86400,
                },
            )
            item[counter] = item.get(counter, 0) + 1

    def history(self, number: str, start: float, end: float) -> list[Row]:
        with self.lock:
            return [
                copy.deepcopy(v)
                for (n, t), v in sorted(self.history_items.items())
                if n == number and start <= t < end
            ]

    def stats(self, account: str, pool: str, start_bucket: int, end_bucket: int) -> dict[str, int]:
        return sum_stats(self.history(stats_key(account, pool), start_bucket, end_bucket))


@contextmanager
def moto_lease_store() -> Iterator[tuple[Any, Any]]:
    """``dni_lease.store.DynamoLeaseStore`` on in-process moto ``leases`` and ``history`` tables
    -> (the low-level client, the store)."""
    import boto3
    from moto import mock_aws

    from dni_lease.store import DynamoLeaseStore
    from tests.support.dynamo import create_table

    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x",
                              aws_secret_access_key="x")
        create_table(client, "leases", ("number", "S"))
        create_table(client, "history", ("number", "S"), ("leased_at", "N"))
        yield client, DynamoLeaseStore(client, "leases", "history")
