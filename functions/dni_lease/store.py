"""The lease store port (``LeaseStore``) and its DynamoDB adapter (boto3, conditional writes).

The function and the integration tests run on ``DynamoLeaseStore``; the lease logic's unit tests
and the benchmark's model rows run on an in-memory twin with the same semantics, which lives with
the tests (``tests/support/lease_store.py``), not in the Lambda asset.
Rows are plain dicts with the attribute names of ``calltrack.models.dni``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Protocol

from calltrack.models.dni import HISTORY_TTL_DAYS, STATS_COUNTERS, STATS_TTL_DAYS, stats_key

Row = dict[str, Any]
# What the pools report reads of a history item (``history``): not the session's attribution.
HISTORY_FIELDS = ("leased_at", "ended_at", "kind", "lease_id", "session_id", "account", "pool")


class LeaseStore(Protocol):
    def get_rows(self, numbers: Iterable[str]) -> dict[str, Row]:
        """Current leases rows of ``numbers`` (absent numbers are left out); one round trip."""

    def take(self, number: str, row: Mapping[str, Any], now: float) -> bool:
        """Write ``row`` unless another live session holds ``number``. True if taken. Attributes
        ``row`` gives as None are removed (the previous holder's ``client_key``)."""

    def renew(self, number: str, session_id: str, lease_id: str, expires_at: float,
              cookies: Mapping[str, str] | None = None, *, now: float, page_id: str | None = None) -> bool:
        """Push ``expires_at`` if ``session_id`` still holds the row (lease ``lease_id``) and the
        lease is live at ``now`` (a released or lapsed lease is taken again through a pool read,
        where the address cap is counted); keep the ad platforms' browser ids the page sent
        (``cookies``: ga_client_id, fbp, ...) as row attributes: the analytics and pixel scripts
        often set them after the first lease. The row's ``page_id`` becomes the renewing page's
        (removed for a page that sends none)."""

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
        """End the live lease ``lease_id`` of ``session_id`` at ``at``. True if it was live and,
        with ``page_id``, that page took or renewed it last (else, with ``unless_renewed_after``,
        its expiry is still before that: nobody renewed it since)."""

    def revoke(self, number: str, session_id: str, lease_id: str, at: float) -> bool:
        """End the live lease ``lease_id`` of ``session_id`` at ``at`` for good: like ``release``,
        the row keeps the session (late calls), but ``lease_id`` is removed, so the page's
        heartbeats (``renew``) fail and it must ask again; its ``client_key`` goes too. True if it
        was live."""

    def mark_shared(self, number: str, until: float, base: Mapping[str, Any]) -> bool:
        """Record that ``number`` was handed out without a lease until ``until``; False when the
        row is another account's (the number must not be shown)."""

    def put_history(self, item: Mapping[str, Any]) -> None: ...

    def extend_history(self, number: str, leased_at: float, ended_at: float) -> None: ...

    def add_to_stats(self, account: str, pool: str, bucket_start: int, counter: str) -> None:
        """ADD 1 to ``counter`` (one of ``STATS_COUNTERS``) of the pool's stats item of that hour."""

    def history(self, number: str, start: float, end: float) -> list[Row]:
        """History items of ``number`` with ``start <= leased_at < end``."""

    def stats(self, account: str, pool: str, start_bucket: int, end_bucket: int) -> dict[str, int]:
        """Each of ``STATS_COUNTERS`` summed over the hours start_bucket <= hour < end_bucket (one
        read)."""


# --------------------------------------------------------------------------------------------
# DynamoDB


def _to_ddb(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(round(value, 3)))
    if isinstance(value, dict):
        return {k: _to_ddb(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_ddb(v) for v in value]
    return value


def _json_out(row: Mapping[str, Any]) -> dict[str, Any]:
    """``attribution`` is stored as a JSON string (PynamoDB JSONAttribute in calltrack.models.dni)."""
    out = dict(row)
    if isinstance(out.get("attribution"), dict):
        out["attribution"] = json.dumps(out["attribution"], ensure_ascii=False, separators=(",", ":"))
    return out


def _from_ddb(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_ddb(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_ddb(v) for v in value]
    return value


class DynamoLeaseStore:
    """Leases and history in DynamoDB via the low-level client (one request per operation)."""

    def __init__(self, client: Any, leases_table: str, history_table: str) -> None:
        from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

        self.client = client
        self.leases = leases_table
        self.history_table = history_table
        self._ser = TypeSerializer()
        self._de = TypeDeserializer()

    def _item(self, row: Mapping[str, Any]) -> dict[str, Any]:
        return {k: self._ser.serialize(_to_ddb(v)) for k, v in _json_out(row).items() if v is not None}

    def _row(self, item: Mapping[str, Any]) -> Row:
        row = {k: _from_ddb(self._de.deserialize(v)) for k, v in item.items()}
        if isinstance(row.get("attribution"), str):
            try:
                row["attribution"] = json.loads(row["attribution"])
            except ValueError:
                row["attribution"] = None
        return row

    def _vals(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return {k: self._ser.serialize(_to_ddb(v)) for k, v in values.items()}

    def get_rows(self, numbers: Iterable[str]) -> dict[str, Row]:
        keys = [{"number": {"S": n}} for n in dict.fromkeys(numbers)]
        out: dict[str, Row] = {}
        for i in range(0, len(keys), 100):
            request: dict[str, Any] = {self.leases: {"Keys": keys[i : i + 100], "ConsistentRead": True}}
            for _ in range(8):
                resp = self.client.batch_get_item(RequestItems=request)
                for item in resp.get("Responses", {}).get(self.leases, []):
                    row = self._row(item)
                    out[row["number"]] = row
                request = resp.get("UnprocessedKeys") or {}
                if not request:
                    break
        return out

    def take(self, number: str, row: Mapping[str, Any], now: float) -> bool:
        fields = {k: v for k, v in _json_out(row).items() if k != "number" and v is not None}
        gone = [k for k, v in row.items() if k != "number" and v is None]
        names = {f"#f{i}": k for i, k in enumerate(fields)}
        names.update({f"#r{i}": k for i, k in enumerate(gone)})
        values = {f":v{i}": v for i, v in enumerate(fields.values())}
        sets = ", ".join(f"#f{i} = :v{i}" for i in range(len(fields)))
        if gone:
            sets += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(gone)))
        names["#n"] = "number"
        names["#sid"] = "session_id"
        names["#exp"] = "expires_at"
        values[":now"] = now
        values[":sid"] = row["session_id"]
        try:
            self.client.update_item(
                TableName=self.leases,
                Key={"number": {"S": number}},
                UpdateExpression=f"SET {sets}",
                # a row no session holds (no expires_at: only ever marked shared) is free, as in the
                # in-memory store the lease logic's tests run on
                ConditionExpression="attribute_not_exists(#n) OR attribute_not_exists(#exp) OR #exp < :now "
                                    "OR #sid = :sid",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=self._vals(values),
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def renew(self, number: str, session_id: str, lease_id: str, expires_at: float,
              cookies: Mapping[str, str] | None = None, *, now: float, page_id: str | None = None) -> bool:
        sets, names = ["expires_at = :e", "released_at = :e"], {}
        values: dict[str, Any] = {":e": expires_at, ":sid": session_id, ":lid": lease_id, ":now": now}
        for i, (key, value) in enumerate(sorted((cookies or {}).items())):
            sets.append(f"#c{i} = :c{i}")
            names[f"#c{i}"], values[f":c{i}"] = key, value
        if page_id:
            sets.append("page_id = :pg")
            values[":pg"] = page_id
        try:
            self.client.update_item(
                TableName=self.leases,
                Key={"number": {"S": number}},
                UpdateExpression="SET " + ", ".join(sets) + ("" if page_id else " REMOVE page_id"),
                ConditionExpression="session_id = :sid AND lease_id = :lid AND expires_at >= :now",
                ExpressionAttributeValues=self._vals(values),
                **({"ExpressionAttributeNames": names} if names else {}),
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
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
        if page_id:
            return self._end(number, session_id, lease_id, at, also=" AND page_id = :pg",
                             values={":pg": page_id})
        if unless_renewed_after is None:
            return self._end(number, session_id, lease_id, at)
        return self._end(number, session_id, lease_id, at, also=" AND expires_at < :seen",
                         values={":seen": unless_renewed_after})

    def revoke(self, number: str, session_id: str, lease_id: str, at: float) -> bool:
        return self._end(number, session_id, lease_id, at, remove=" REMOVE lease_id, client_key")

    def _end(self, number: str, session_id: str, lease_id: str, at: float, *, also: str = "",
             values: Mapping[str, Any] | None = None, remove: str = "") -> bool:
        """End the live lease ``lease_id`` of ``session_id`` at ``at`` (``release``, ``revoke``)."""
        try:
            self.client.update_item(
                TableName=self.leases,
                Key={"number": {"S": number}},
                UpdateExpression="SET expires_at = :e, released_at = :e" + remove,
                ConditionExpression="session_id = :sid AND lease_id = :lid AND expires_at > :e" + also,
                ExpressionAttributeValues=self._vals(
                    {":e": at, ":sid": session_id, ":lid": lease_id, **(values or {})}
                ),
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def mark_shared(self, number: str, until: float, base: Mapping[str, Any]) -> bool:
        """Show ``number`` to an exhausted pool's session too; False when the row is another
        account's (True also when a later share already pushed ``shared_until`` further)."""
        fields = {k: v for k, v in _json_out(base).items() if v is not None and k != "number"}
        names = {f"#b{i}": k for i, k in enumerate(fields)}
        values: dict[str, Any] = {f":b{i}": v for i, v in enumerate(fields.values())}
        sets = [f"#b{i} = :b{i}" for i in range(len(fields))]
        values.update({":u": until, ":one": 1, ":acct": base.get("account")})
        sets.append("shared_until = :u")
        kwargs: dict[str, Any] = {
            "TableName": self.leases,
            "Key": {"number": {"S": number}},
            "UpdateExpression": f"SET {', '.join(sets)} ADD shared_count :one",
            # Only push shared_until forward; never pull it back. Never over another account's
            # session (a number an apply moved between accounts while a lease was live).
            "ConditionExpression": "(attribute_not_exists(shared_until) OR shared_until < :u)"
                                   " AND (attribute_not_exists(#acct) OR #acct = :acct)",
            "ExpressionAttributeValues": self._vals(values),
        }
        names["#acct"] = "account"
        if names:
            kwargs["ExpressionAttributeNames"] = names
        try:
            self.client.update_item(**kwargs)
        except self.client.exceptions.ConditionalCheckFailedException:
            # refused: a later share pushed shared_until further (fine), or the row is another
            # account's (rare: read it to tell which)
            now = self.client.get_item(TableName=self.leases, Key={"number": {"S": number}},
                                       ConsistentRead=True).get("Item") or {}
            return (now.get("account") or {}).get("S") in (None, base.get("account"))
        return True

    def put_history(self, item: Mapping[str, Any]) -> None:
        self.client.put_item(TableName=self.history_table, Item=self._item(item))

    def extend_history(self, number: str, leased_at: float, ended_at: float) -> None:
        try:
            self._extend_history(number, leased_at, ended_at)
        except self.client.exceptions.ConditionalCheckFailedException:
            pass  # the history item is gone (TTL): nothing to extend

    def _extend_history(self, number: str, leased_at: float, ended_at: float) -> None:
        self.client.update_item(
            TableName=self.history_table,
            Key=self._item({"number": number, "leased_at": leased_at}),
            UpdateExpression="SET ended_at = :e",
            ConditionExpression="attribute_exists(#n)",
            ExpressionAttributeNames={"#n": "number"},
            ExpressionAttributeValues=self._vals({":e": ended_at}),
        )

    def add_to_stats(self, account: str, pool: str, bucket_start: int, counter: str) -> None:
        self.client.update_item(
            TableName=self.history_table,
            Key=self._item({"number": stats_key(account, pool), "leased_at": bucket_start}),
            UpdateExpression="SET #k = :k, #a = :a, #p = :p, expire_at = :x ADD #c :one",
            ExpressionAttributeNames={"#k": "kind", "#a": "account", "#p": "pool", "#c": counter},
            ExpressionAttributeValues=self._vals(
                {
                    ":k": "stats",
                    ":a": account,
                    ":p": pool,
                    ":x": bucket_start + STATS_TTL_DAYS * 86400,
                    ":one": 1,
                }
            ),
        )

    def _query(self, number: str, start: float, end: float, *, fields: tuple[str, ...] = ()) -> list[Row]:
        out: list[Row] = []
        names = {"#n": "number", **{f"#f{i}": f for i, f in enumerate(fields)}}
        kwargs: dict[str, Any] = {
            "TableName": self.history_table,
            "KeyConditionExpression": "#n = :n AND leased_at BETWEEN :s AND :e",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": self._vals({":n": number, ":s": start, ":e": end}),
        }
        if fields:
            kwargs["ProjectionExpression"] = ", ".join(["#n", *(f"#f{i}" for i in range(len(fields)))])
        while True:
            resp = self.client.query(**kwargs)
            out.extend(self._row(i) for i in resp.get("Items", []))
            if not resp.get("LastEvaluatedKey"):
                return out
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def history(self, number: str, start: float, end: float) -> list[Row]:
        return [r for r in self._query(number, start, end, fields=HISTORY_FIELDS) if r["leased_at"] < end]

    def stats(self, account: str, pool: str, start_bucket: int, end_bucket: int) -> dict[str, int]:
        return sum_stats(r for r in self._query(stats_key(account, pool), start_bucket, end_bucket)
                         if r["leased_at"] < end_bucket)


def sum_stats(items: Iterable[Row]) -> dict[str, int]:
    """Each of ``STATS_COUNTERS`` summed over a pool's hourly stats items."""
    rows = list(items)
    return {c: sum(int(item.get(c) or 0) for item in rows) for c in STATS_COUNTERS}


__all__ = ["DynamoLeaseStore", "LeaseStore", "HISTORY_TTL_DAYS"]
