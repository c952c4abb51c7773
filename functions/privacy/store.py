"""The CallerStore on DynamoDB and S3 (raw boto3 clients; table names from settings)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date
from typing import Any

from calltrack.attribution import EARLIER_CALL_PREFIX, earlier_call_attribute, redial_key
from calltrack.call_items import call_from_item, from_item
from privacy.account_deletion import OutOfTime
from recording_ingest.ingest import ERASED, erased_row

EXPORTS_PREFIX = "calls/"  # call_records.export.CALLS_PREFIX: calls/account={a}/date={d}/calls.csv
EXPORT_SNAPSHOT_AT = "snapshot-at"  # call_records.export.SNAPSHOT_AT: when a day file's calls were read
# Items a Query page of account deletion reads before deleting them: bounds the time between two
# looks at the clock (privacy.account_deletion).
PAGE_ITEMS = 500
# What the callers table remembers per account (voice webhook): first call and last agent on the
# caller's row, last pool call on their redial item (``calltrack.attribution.EARLIER_CALL_PREFIX``,
# ``redial_key``); an item with none of them left is deleted.
CALLER_MARKS = ("first#", "agent#", EARLIER_CALL_PREFIX)
URL_TTL_SECONDS = 300  # as recording access: presigned URLs live at most 5 minutes


def _caller_marks(account: str) -> dict[str, str]:
    """Expression names of the account's marks on a callers row (``CALLER_MARKS``)."""
    return {"#f": f"first#{account}", "#g": f"agent#{account}", "#l": earlier_call_attribute(account)}


def _pages(call: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
    while True:
        page = call(**kwargs)
        yield from page.get("Items", [])
        if not page.get("LastEvaluatedKey"):
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _pages_until(
    find: Any, kwargs: dict[str, Any], start: dict[str, Any] | None, out_of_time: Callable[[], bool]
) -> Iterator[dict[str, Any]]:
    """The pages of ``find(**kwargs)`` from ``start``; before each, ``OutOfTime`` (nothing done yet,
    the key to go on from) when ``out_of_time()``. While a page is handled, ``kwargs`` still holds
    the key it was read from."""
    if start:
        kwargs["ExclusiveStartKey"] = start
    while True:
        if out_of_time():
            raise OutOfTime(0, kwargs.get("ExclusiveStartKey"))
        page = find(**kwargs)
        yield page
        if not page.get("LastEvaluatedKey"):
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class DynamoCallerStore:
    def __init__(self, dynamodb: Any, s3: Any, tables: Mapping[str, str], *, recordings_bucket: str,
                 exports_bucket: str, routing_bucket: str = "") -> None:
        self.db, self.s3, self.tables = dynamodb, s3, dict(tables)
        self.recordings_bucket, self.exports_bucket = recordings_bucket, exports_bucket
        self.buckets = {"recordings": recordings_bucket, "exports": exports_bucket, "routing": routing_bucket}
        self._keys: dict[str, list[str]] = {}

    # ------------------------------------------------------------------ reads

    def calls(self, account: str, number: str) -> list[dict[str, Any]]:
        # Erasure requests are rare: one account's calls are read through by-account with a
        # filter (decisions.md, 2026-11-30) rather than keeping a by-caller index on every call write.
        items = _pages(
            self.db.query, TableName=self.tables["calls"], IndexName="by-account",
            KeyConditionExpression="account = :a", FilterExpression="caller = :n",
            ExpressionAttributeValues={":a": {"S": account}, ":n": {"S": number}},
        )
        return [c for c in (call_from_item(i) for i in items) if c]

    def leads(self, account: str, number: str) -> list[dict[str, Any]]:
        items = _pages(
            self.db.query, TableName=self.tables["crm_leads"],
            KeyConditionExpression="account = :a", FilterExpression="phone = :n",
            ExpressionAttributeValues={":a": {"S": account}, ":n": {"S": number}},
        )
        return [r for r in (from_item(i) for i in items) if r]

    def recordings(self, account: str, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
        sids = {str(c["call_sid"]) for c in calls}
        if not sids:
            return []
        found: dict[str, dict[str, Any]] = {}
        for item in _pages(
            self.db.query, TableName=self.tables["recordings"], IndexName="by-account",
            KeyConditionExpression="account = :a", ExpressionAttributeValues={":a": {"S": account}},
        ):
            row = from_item(item) or {}
            if row.get("call_sid") in sids:
                found[str(row["recording_sid"])] = row
        for call in calls:  # rows not (or no longer) stored are not in the sparse index
            rec = call.get("recording") if isinstance(call.get("recording"), dict) else {}
            sid = str((rec or {}).get("recording_sid") or "")
            if sid and sid not in found:
                item = self.db.get_item(TableName=self.tables["recordings"],
                                        Key={"recording_sid": {"S": sid}}).get("Item")
                row = from_item(item) or {}
                if row and row.get("call_sid") in sids and row.get("status") != ERASED:
                    found[sid] = row  # (an erased row is what an earlier erasure left)
        return list(found.values())

    def conversions(self, account: str, call_sids: list[str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for sid in call_sids:
            # consistent: the erasure's second sweep must see a row written just before the calls went
            for item in _pages(self.db.query, TableName=self.tables["conversions"], ConsistentRead=True,
                               KeyConditionExpression="call_sid = :s",
                               ExpressionAttributeValues={":s": {"S": sid}}):
                row = from_item(item) or {}
                if row.get("account") == account:
                    out.append(row)
        return out

    def deliveries(self, account: str, call_sids: list[str]) -> list[dict[str, Any]]:
        sids = set(call_sids)
        if not sids:
            return []
        out = []
        for item in _pages(
            self.db.query, TableName=self.tables["webhook_deliveries"], ConsistentRead=True,
            KeyConditionExpression="account = :a", ExpressionAttributeValues={":a": {"S": account}},
            ProjectionExpression="delivery_id, call_sid, #s, destination",
            ExpressionAttributeNames={"#s": "status"},
        ):
            row = from_item(item) or {}
            link_sid = str(row.get("delivery_id", "")).rsplit("#", 1)[-1]
            if row.get("call_sid") in sids or link_sid in sids:
                out.append(row)
        return out

    def object_versions(self, prefixes: list[str]) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for prefix in prefixes:
            for page in self.s3.get_paginator("list_object_versions").paginate(
                Bucket=self.recordings_bucket, Prefix=prefix
            ):
                for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                    out.append((str(entry["Key"]), str(entry.get("VersionId") or "null")))
        return out

    def presign(self, key: str) -> str:
        return str(self.s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.recordings_bucket, "Key": key}, ExpiresIn=URL_TTL_SECONDS
        ))

    def stage_export(self, key: str, body: bytes) -> str:
        """Put a caller export too large to answer in the exports bucket; -> a presigned GET
        (``URL_TTL_SECONDS``). The bucket's lifecycle removes the object after a day."""
        self.s3.put_object(Bucket=self.exports_bucket, Key=key, Body=body,
                           ContentType="application/json; charset=utf-8")
        return str(self.s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.exports_bucket, "Key": key}, ExpiresIn=URL_TTL_SECONDS
        ))

    def delete_staged_exports(self, prefix: str) -> int:
        """Delete the staged caller exports under ``prefix``; how many."""
        return self.delete_prefixes("exports", [prefix], lambda: False)

    # ------------------------------------------------------------------ erasure

    def _export_keys(self, account: str, days: set[date] | None) -> Iterator[str]:
        if days is not None:
            # call_records.export.day_key: calls/account={a}/date={YYYY-MM-DD}/calls.csv
            prefix = f"{EXPORTS_PREFIX}account={account}"
            yield from (f"{prefix}/date={d.isoformat()}/calls.csv" for d in sorted(days))
            return
        for page in self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.exports_bucket, Prefix=f"{EXPORTS_PREFIX}account={account}/"
        ):
            yield from (str(entry["Key"]) for entry in page.get("Contents", []))

    def drop_export_rows(self, account: str, call_sids: set[str], days: set[date] | None) -> int:
        dropped = 0
        for key in self._export_keys(account, days):
            try:
                obj = self.s3.get_object(Bucket=self.exports_bucket, Key=key)
            except self.s3.exceptions.NoSuchKey:
                continue  # no export that day (no calls, or the export did not run)
            text = obj["Body"].read().decode("utf-8")
            rows = list(csv.reader(io.StringIO(text)))
            if not rows:
                continue
            header = rows[0]
            col = header.index("call_sid") if "call_sid" in header else 1
            kept = [header] + [r for r in rows[1:] if not (len(r) > col and r[col] in call_sids)]
            if len(kept) == len(rows):
                continue
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\r\n" if "\r\n" in text else "\n").writerows(kept)
            # when the file's calls were read stays as it was (call_records.export.SNAPSHOT_AT): the
            # nightly export still sees the calls changed since then as changed
            metadata = dict(obj.get("Metadata") or {})
            written = obj["LastModified"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            metadata.setdefault(EXPORT_SNAPSHOT_AT, written)
            self.s3.put_object(Bucket=self.exports_bucket, Key=key, Body=buf.getvalue().encode("utf-8"),
                               ContentType=str(obj.get("ContentType") or "text/csv; charset=utf-8"),
                               Metadata=metadata)
            dropped += len(rows) - len(kept)
        return dropped

    def delete_object_versions(self, versions: list[tuple[str, str]]) -> None:
        for start in range(0, len(versions), 1000):
            chunk = versions[start:start + 1000]
            result = self.s3.delete_objects(Bucket=self.recordings_bucket, Delete={
                "Objects": [{"Key": k, "VersionId": v} for k, v in chunk], "Quiet": True})
            if result.get("Errors"):
                raise RuntimeError(f"{len(result['Errors'])} recording object version(s) not deleted")

    def _delete_keys(self, table: str, keys: list[dict[str, Any]]) -> None:
        self._write(table, [{"DeleteRequest": {"Key": k}} for k in keys])

    def _write(self, table: str, writes: list[dict[str, Any]]) -> None:
        """BatchWriteItem, 25 at a time, unprocessed ones sent again (8 rounds, then an error)."""
        for start in range(0, len(writes), 25):
            requests = {self.tables[table]: writes[start:start + 25]}
            for _ in range(8):
                left = self.db.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}
                if not left:
                    break
                requests = left
            else:
                raise RuntimeError(f"{table}: writes left unprocessed (throttled)")

    def erase_recordings(self, recordings: list[dict[str, Any]], at: float) -> None:
        rows = [erased_row(str(r["recording_sid"]), str(r["call_sid"]), at) for r in recordings]
        def item(row: dict[str, Any]) -> dict[str, Any]:
            return {k: {"N": str(v)} if isinstance(v, int) else {"S": str(v)} for k, v in row.items()}

        self._write("recordings", [{"PutRequest": {"Item": item(row)}} for row in rows])

    def delete_conversions(self, keys: list[tuple[str, str]]) -> None:
        self._delete_keys("conversions", [{"call_sid": {"S": s}, "key": {"S": k}} for s, k in keys])

    def delete_deliveries(self, account: str, delivery_ids: list[str]) -> None:
        self._delete_keys("webhook_deliveries",
                          [{"account": {"S": account}, "delivery_id": {"S": d}} for d in delivery_ids])

    def delete_rollup_markers(self, call_sids: list[str]) -> None:
        self._delete_keys("rollup_markers", [{"call_sid": {"S": s}} for s in call_sids])

    def delete_leads(self, account: str, external_ids: list[str]) -> None:
        self._delete_keys("crm_leads",
                          [{"account": {"S": account}, "external_id": {"S": e}} for e in external_ids])

    def forget_first_call(self, account: str, number: str) -> bool:
        """Remove the account's marks from the number's callers row (``first#{account}``: first
        call; ``agent#{account}``: the agent who last answered, call flows) and from its redial item
        (``last#{account}``: the last pool call, for a redial); each goes when no other account's
        mark is left on it. True when one was there."""
        return any([self._forget_marks(account, {"caller": {"S": number}}),
                    self._forget_marks(account, {"caller": {"S": redial_key(number)}})])

    def _forget_marks(self, account: str, key: dict[str, Any]) -> bool:
        names = _caller_marks(account)
        try:
            new = self.db.update_item(
                TableName=self.tables["callers"], Key=key, UpdateExpression="REMOVE #f, #g, #l",
                ConditionExpression="attribute_exists(#f) OR attribute_exists(#g) OR attribute_exists(#l)",
                ExpressionAttributeNames=names, ReturnValues="ALL_NEW",
            ).get("Attributes") or {}
        except self.db.exceptions.ConditionalCheckFailedException:
            return False
        if not any(name.startswith(CALLER_MARKS) for name in new):
            # No other account remembers this caller: the item goes. (A mark for another account
            # written between these two requests would be forgotten too: that caller then counts
            # as first-time there once more. No condition can name "no first#* attribute".)
            self.db.delete_item(TableName=self.tables["callers"], Key=key)
        return True

    def mark_erased(
        self, account: str, number: str, at: float, call_sids: list[str], days: set[date] | None
    ) -> None:
        from calltrack.erasure_marks import (
            CALLS_PREFIX,
            DAYS_PREFIX,
            EVERY_DAY,
            MARK_TTL_S,
            account_attribute,
            mark_key,
        )

        names = {"#a": account_attribute(account)}
        values: dict[str, Any] = {":at": {"N": str(at)}, ":exp": {"N": str(int(at) + MARK_TTL_S)}}
        adds = []
        day_names = [EVERY_DAY] if days is None else sorted(d.isoformat() for d in days)
        for tag, prefix, items in (("c", CALLS_PREFIX, call_sids), ("d", DAYS_PREFIX, day_names)):
            if call_sids and items:  # a set is never empty in DynamoDB
                names[f"#{tag}"] = prefix + account
                values[f":{tag}"] = {"SS": sorted(set(items))}
                adds.append(f"#{tag} :{tag}")
        self.db.update_item(
            TableName=self.tables["callers"], Key={"caller": {"S": mark_key(number)}},
            UpdateExpression="SET #a = :at, expire_at = :exp" + (" ADD " + ", ".join(adds) if adds else ""),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def forget_erased_calls(self, account: str, number: str) -> None:
        from calltrack.erasure_marks import CALLS_PREFIX, DAYS_PREFIX, mark_key

        self.db.update_item(
            TableName=self.tables["callers"], Key={"caller": {"S": mark_key(number)}},
            UpdateExpression="REMOVE #c, #d",
            ExpressionAttributeNames={"#c": CALLS_PREFIX + account, "#d": DAYS_PREFIX + account},
        )

    def erased_calls(self, account: str, number: str) -> tuple[list[str], set[date] | None]:
        from calltrack.erasure_marks import CALLS_PREFIX, DAYS_PREFIX, EVERY_DAY, mark_key

        item = self.db.get_item(
            TableName=self.tables["callers"], Key={"caller": {"S": mark_key(number)}}, ConsistentRead=True,
        ).get("Item") or {}
        sids = sorted((item.get(CALLS_PREFIX + account) or {}).get("SS") or [])
        day_names = (item.get(DAYS_PREFIX + account) or {}).get("SS") or []
        if EVERY_DAY in day_names:
            return sids, None
        return sids, {date.fromisoformat(d) for d in day_names}

    def delete_calls(self, call_sids: list[str]) -> None:
        self._delete_keys("calls", [{"call_sid": {"S": s}} for s in call_sids])

    # ------------------------------------------------------------------ account deletion

    def _key_names(self, table: str) -> list[str]:
        if table not in self._keys:
            schema = self.db.describe_table(TableName=self.tables[table])["Table"]["KeySchema"]
            self._keys[table] = [k["AttributeName"] for k in schema]
        return self._keys[table]

    def account_numbers(self, account: str) -> list[str]:
        items = _pages(self.db.scan, TableName=self.tables["numbers"], FilterExpression="account = :a",
                       ExpressionAttributeValues={":a": {"S": account}}, ProjectionExpression="#n",
                       ExpressionAttributeNames={"#n": "number"})
        return [str(i["number"]["S"]) for i in items]

    def delete_found(
        self,
        table: str,
        out_of_time: Callable[[], bool],
        *,
        start: dict[str, Any] | None = None,
        **search: Any,
    ) -> int:
        names = self._key_names(table)
        aliases = {f"#k{i}": n for i, n in enumerate(names)}
        query = "KeyConditionExpression" in search
        kwargs: dict[str, Any] = {
            "TableName": self.tables[table],
            # A Query page holds only the account's items; a Scan reads whole 1 MB pages, mostly of
            # other accounts (a small Limit there would only mean more requests).
            **({"Limit": PAGE_ITEMS} if query else {}),
            "ProjectionExpression": ", ".join(aliases),
            **search,
            "ExpressionAttributeNames": {**aliases, **search.get("ExpressionAttributeNames", {})},
        }
        done = 0
        try:
            for page in _pages_until((self.db.query if query else self.db.scan), kwargs, start, out_of_time):
                keys = [{n: item[n] for n in names} for item in page.get("Items", [])]
                self._delete_keys(table, keys)
                done += len(keys)
        except OutOfTime as stop:
            raise OutOfTime(done, stop.resume) from None
        return done

    def strip_callers(
        self, account: str, out_of_time: Callable[[], bool], *, start: dict[str, Any] | None = None
    ) -> int:
        names = _caller_marks(account)
        kwargs: dict[str, Any] = {
            "TableName": self.tables["callers"],
            "FilterExpression": "attribute_exists(#f) OR attribute_exists(#g) OR attribute_exists(#l)",
            "ExpressionAttributeNames": names,
        }
        stripped = 0
        try:
            for page in _pages_until(self.db.scan, kwargs, start, out_of_time):
                for item in page.get("Items", []):
                    if out_of_time():  # this page again next time: its stripped rows no longer match
                        raise OutOfTime(stripped, kwargs.get("ExclusiveStartKey"))
                    key = {"caller": item["caller"]}
                    new = self.db.update_item(
                        TableName=self.tables["callers"], Key=key, UpdateExpression="REMOVE #f, #g, #l",
                        ExpressionAttributeNames=names, ReturnValues="ALL_NEW",
                    ).get("Attributes") or {}
                    if not any(n.startswith(CALLER_MARKS) for n in new):
                        self.db.delete_item(TableName=self.tables["callers"], Key=key)
                    stripped += 1
        except OutOfTime as stop:
            raise OutOfTime(stripped, stop.resume) from None
        return stripped

    def deletion_progress(self, account: str) -> dict[str, Any] | None:
        item = self.db.get_item(
            TableName=self.tables["accounts"], Key={"account": {"S": account}},
            ProjectionExpression="deletion_progress", ConsistentRead=True,
        ).get("Item") or {}
        raw = (item.get("deletion_progress") or {}).get("S")
        try:
            progress = json.loads(raw) if raw else None
        except ValueError:
            return None
        return progress if isinstance(progress, dict) else None

    def save_deletion_progress(self, account: str, progress: dict[str, Any]) -> None:
        try:
            self.db.update_item(
                TableName=self.tables["accounts"], Key={"account": {"S": account}},
                UpdateExpression="SET deletion_progress = :p",
                ConditionExpression="attribute_exists(account)",
                ExpressionAttributeValues={":p": {"S": json.dumps(progress, separators=(",", ":"))}},
            )
        except self.db.exceptions.ConditionalCheckFailedException:
            pass  # no accounts row (already gone): the next run starts over

    def delete_prefixes(self, bucket: str, prefixes: list[str], out_of_time: Callable[[], bool]) -> int:
        """Delete every object version and delete marker under the prefixes, a listed page (at
        most 1,000) at a time; how many keys."""
        name, keys = self.buckets[bucket], set[str]()
        for prefix in prefixes:
            for page in self.s3.get_paginator("list_object_versions").paginate(Bucket=name, Prefix=prefix):
                if out_of_time():
                    raise OutOfTime(len(keys))
                versions = [(str(e["Key"]), str(e.get("VersionId") or "null"))
                            for e in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]]
                if not versions:
                    continue
                result = self.s3.delete_objects(Bucket=name, Delete={
                    "Objects": [{"Key": k, "VersionId": v} for k, v in versions], "Quiet": True})
                if result.get("Errors"):
                    raise RuntimeError(f"{len(result['Errors'])} object version(s) not deleted from {bucket}")
                keys |= {k for k, _ in versions}
        return len(keys)
