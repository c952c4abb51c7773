"""The one data-access module for call items: key names, the DynamoDB value codec, every read and write.

Table ``calls`` (logical name), hash key ``call_sid``, GSI ``by-account`` on (``account``,
``started_at``); attribute names and types are those of ``calltrack.models.calls.Call`` (the one
declaration of the table; a unit test round-trips these items through it). ``attribution`` and
``recording`` are stored as JSON text, like PynamoDB's JSONAttribute.

Who writes what, all through ``CallItems``:
- the voice webhook: the call's origin once (``origin_update``, sent alone or in its transaction
  with the callers row; it creates the call, stamped with the account's zone ``CALL_TIMEZONE``)
  and each callback's outcome (``apply_outcome``); what its call flow learns
  during the call, the menu choice and the agent who answered (``note``);
- call records: stage, value, tags, score, agent from a PATCH or a CRM lead (``amend``);
- recordings: the call's ``recording`` view (``set_recording``);
- transcripts: the call's ``transcript`` and, for call rules, ``rule_hits`` with the tags, stage and
  score they change (``amend``, ``amend_at_version``: a write only if nobody wrote in between).
Every write increments ``version`` (the rollup consumer orders a call's images by it) and sets
``updated_at``.

Import-light (no boto3, no PynamoDB): the voice webhook imports it on its cold path and passes
its own short-timeout client; everyone else uses ``call_items()``, one client per process.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from calltrack.errors import NotFound

TABLE = "calls"
KEY = "call_sid"
BY_ACCOUNT = "by-account"
JSON_FIELDS = frozenset({"attribution", "recording", "transcript", "rule_hits"})
# The calls table's DynamoDB TTL attribute (epoch seconds), set with the call's origin from the
# account's ``retention.calls_days`` (in the number's routing; default below when absent).
TTL_ATTRIBUTE = "expire_at"
DEFAULT_CALLS_DAYS = 1095  # three years; rollups (no personal data) are kept
# The account's time zone (IANA name) when the call was created, written with the call's origin
# from the number's routing: the rollup consumer buckets both images of a call by it, so a later
# change of the account's zone cannot move a counted call between days (docs/decisions.md
# 2026-12-01). Absent on calls created before: they are bucketed in the account's current zone.
CALL_TIMEZONE = "timezone"


def expire_at(start_epoch: float, days: int | None) -> int | None:
    """The TTL of a call started at ``start_epoch`` kept ``days`` days (None: kept forever)."""
    return int(start_epoch) + int(days) * 86400 if days else None


# --------------------------------------------------------------------------- the value codec


def to_attr(value: Any) -> dict[str, Any]:
    """Python -> DynamoDB attribute value (str S, bool BOOL, number N, None NULL, dict M, list L)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float | Decimal):
        return {"N": _num_str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, dict):
        return {"M": {str(k): to_attr(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [to_attr(v) for v in value]}
    raise TypeError(f"cannot store {type(value).__name__}")


def json_attr(value: Any) -> dict[str, Any]:
    """A PynamoDB JSONAttribute value: the JSON text as a string (S)."""
    return {"S": json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)}


def attr_for(name: str, value: Any) -> dict[str, Any]:
    """The stored form of the call attribute ``name`` (JSON text for the JSON fields)."""
    return json_attr(value) if name in JSON_FIELDS else to_attr(value)


def _num_str(value: int | float | Decimal) -> str:
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("not a finite number")
        if value.is_integer():
            return str(int(value))
        return repr(round(value, 6))
    return str(value)


def from_attr(attr: Mapping[str, Any]) -> Any:
    """DynamoDB attribute value -> Python (numbers become int or float)."""
    ((kind, value),) = attr.items()
    if kind == "S":
        return value
    if kind == "N":
        number = Decimal(value)
        return int(number) if number == number.to_integral_value() else float(number)
    if kind == "BOOL":
        return bool(value)
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: from_attr(v) for k, v in value.items()}
    if kind == "L":
        return [from_attr(v) for v in value]
    if kind in ("SS", "NS", "BS"):
        return sorted(from_attr({kind[0]: v}) for v in value)
    return value


def from_item(item: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A low-level item (or stream image) as a plain dict; JSON fields stay JSON text."""
    if item is None:
        return None
    return {k: from_attr(v) for k, v in item.items()}


def call_from_item(item: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A call item (or stream image) as a plain dict with its JSON fields parsed."""
    call = from_item(item)
    if call is not None:
        for name in JSON_FIELDS:
            value = call.get(name)
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError:
                    value = None
            if name in call:
                # Each JSON field is an object; any other shape (a list written by hand or by a
                # tool, text that is not JSON) reads as absent, so no reader trips over it.
                call[name] = value if isinstance(value, dict) else None
    return call


# A missed or busy call (voicemails included) of a real caller is an open callback until someone
# calls back (``callback_status: done``); test calls and hidden numbers open none.
CALLBACK_STATUSES = frozenset({"missed", "busy"})


def callback_status(call: Mapping[str, Any]) -> str | None:
    """The call's callback: "open", "done" or None (no callback)."""
    if call.get("callback_status") == "done":
        return "done"
    if call.get("status") in CALLBACK_STATUSES and not call.get("test") and call.get("caller"):
        return "open"
    return None


def utc_bound(moment: datetime) -> str:
    """A started_at bound that sorts correctly against 'YYYY-MM-DDTHH:MM:SS(.fff)(Z|+00:00)'."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def error_code(exc: Exception) -> str:
    """A botocore ClientError's code (typed loosely to keep imports cheap)."""
    response = getattr(exc, "response", None) or {}
    return str((response.get("Error") or {}).get("Code", ""))


# --------------------------------------------------------------------------- update expressions


class _Update:
    def __init__(self) -> None:
        self.names: dict[str, str] = {"#updated_at": "updated_at", "#version": "version"}
        self.values: dict[str, Any] = {":zero": {"N": "0"}, ":one": {"N": "1"}}
        self.sets: list[str] = []
        self.removes: list[str] = []

    def set(self, prefix: str, items: Mapping[str, Any], *, if_absent: bool = False) -> None:
        for i, (name, value) in enumerate(sorted(items.items())):
            if value is None:
                continue
            self.names[f"#{prefix}{i}"] = name
            self.values[f":{prefix}{i}"] = attr_for(name, value)
            target = f"if_not_exists(#{prefix}{i}, :{prefix}{i})" if if_absent else f":{prefix}{i}"
            self.sets.append(f"#{prefix}{i} = {target}")

    def remove(self, prefix: str, names: list[str]) -> None:
        for i, name in enumerate(sorted(names)):
            self.names[f"#{prefix}{i}"] = name
            self.removes.append(f"#{prefix}{i}")

    def expression(self, now_iso: str) -> str:
        self.values[":updated_at"] = {"S": now_iso}
        parts = [*self.sets, "#updated_at = :updated_at", "#version = if_not_exists(#version, :zero) + :one"]
        text = "SET " + ", ".join(parts)
        return text + (" REMOVE " + ", ".join(self.removes) if self.removes else "")


def _now_iso() -> str:
    from calltrack import clock

    return clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- reads and writes


class CallItems:
    """Every read and write of the calls table, over a low-level DynamoDB client."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    # ------------------------------------------------------------------ reads
    def get(self, call_sid: str, *, consistent: bool = False) -> dict[str, Any] | None:
        resp = self.client.get_item(
            TableName=self.table, Key={KEY: {"S": call_sid}}, ConsistentRead=consistent
        )
        return call_from_item(resp.get("Item"))

    def versions(self, call_sids: Iterable[str]) -> dict[str, Any]:
        """Each call's ``version`` as the table holds it now (consistent reads, 100 calls a
        request); a call that is gone is left out."""
        sids = list(dict.fromkeys(call_sids))
        out: dict[str, Any] = {}
        for i in range(0, len(sids), 100):
            request: dict[str, Any] = {self.table: {
                "Keys": [{KEY: {"S": sid}} for sid in sids[i:i + 100]],
                "ConsistentRead": True,
                "ProjectionExpression": "#k, #v",
                "ExpressionAttributeNames": {"#k": KEY, "#v": "version"},
            }}
            while request:
                resp = self.client.batch_get_item(RequestItems=request)
                for item in resp.get("Responses", {}).get(self.table, []):
                    call = call_from_item(item) or {}
                    out[str(call.get(KEY))] = call.get("version")
                request = resp.get("UnprocessedKeys") or {}
        return out

    def get_in_account(self, account: str, call_sid: str) -> dict[str, Any]:
        """The call, or NotFound when it does not exist or belongs to another account."""
        call = self.get(call_sid) if call_sid and len(call_sid) <= 64 else None
        if call is None or call.get("account") != account:
            raise NotFound(f"call_sid: no such call {call_sid[:64]}", field="call_sid")
        return call

    def between(
        self, account: str, start: datetime, end: datetime, *, counter: list[int] | None = None,
        fields: tuple[str, ...] = (),
    ) -> Iterator[dict[str, Any]]:
        """Calls of ``account`` with start <= started_at < end, oldest first (``by-account``);
        only ``fields`` (and ``started_at``) of each when given."""
        hi = utc_bound(end)
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": BY_ACCOUNT,
            "KeyConditionExpression": "#a = :a AND #s BETWEEN :lo AND :hi",
            "ExpressionAttributeNames": {"#a": "account", "#s": "started_at"},
            "ExpressionAttributeValues": {
                ":a": {"S": account},
                ":lo": {"S": utc_bound(start)},
                ":hi": {"S": hi},
            },
        }
        if fields:
            names = {f"#f{i}": name for i, name in enumerate(fields)}
            kwargs["ExpressionAttributeNames"].update(names)
            kwargs["ProjectionExpression"] = ", ".join(["#s", *names])
        while True:
            page = self.client.query(**kwargs)
            if counter is not None:
                counter[0] += int(page.get("ScannedCount", 0))
            for item in page.get("Items", []):
                call = call_from_item(item) or {}
                if str(call.get("started_at", ""))[:19] >= hi:
                    continue  # exactly at the exclusive end
                yield call
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last

    def newest_first(
        self,
        account: str,
        lo: str,
        hi: str,
        *,
        limit: int,
        channel: str | None = None,
        statuses: list[str] | None = None,
        cursor_key: dict[str, Any] | None = None,
        keep: Callable[[dict[str, Any]], bool] | None = None,
        max_read: int | None = None,
        agent: str | None = None,
        test: bool | None = None,
        stage: str | None = None,
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None, int]:
        """One page of an account's calls between started_at bounds lo..hi, newest first:
        (calls, the key to continue from or None, items read). ``test``: only test calls (True),
        only real ones (False). ``stage``: a funnel stage, or ``none`` for calls not yet staged.

        ``keep`` filters calls after reading (what a FilterExpression cannot say, e.g. transcript
        search); with ``max_read`` the page also ends once that many items were read, continuing
        from the last one read, so a rare match never reads an unbounded range in one request."""
        names = {"#a": "account", "#s": "started_at"}
        values: dict[str, Any] = {":a": {"S": account}, ":lo": {"S": lo}, ":hi": {"S": hi}}
        filters = []
        if channel:
            filters.append("#ch = :ch")
            names["#ch"] = "channel"
            values[":ch"] = {"S": channel}
        if agent:
            filters.append("#ag = :ag")
            names["#ag"] = "agent"
            values[":ag"] = {"S": agent}
        if stage:
            names["#stage"] = "stage"
            if stage == "none":
                filters.append("attribute_not_exists(#stage)")
            else:
                filters.append("#stage = :stage")
                values[":stage"] = {"S": stage}
        if test is not None:
            names["#test"] = "test"
            values[":true"] = {"BOOL": True}
            filters.append("#test = :true" if test else "(attribute_not_exists(#test) OR #test <> :true)")
        if statuses:
            for i, status in enumerate(statuses):
                values[f":st{i}"] = {"S": status}
            names["#st"] = "status"
            filters.append(f"#st IN ({', '.join(f':st{i}' for i in range(len(statuses)))})")
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": BY_ACCOUNT,
            "KeyConditionExpression": "#a = :a AND #s BETWEEN :lo AND :hi",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
        }
        if filters:
            kwargs["FilterExpression"] = " AND ".join(filters)
        if cursor_key:
            kwargs["ExclusiveStartKey"] = cursor_key
        items: list[dict[str, Any]] = []
        read = 0
        while True:
            unfiltered = not filters and keep is None
            kwargs["Limit"] = max(limit - len(items), 1) if unfiltered else max(limit, 25)
            if max_read is not None:
                kwargs["Limit"] = max(1, min(kwargs["Limit"], max_read - read))
            page = self.client.query(**kwargs)
            read += int(page.get("ScannedCount", 0))
            page_items = page.get("Items", [])
            for index, item in enumerate(page_items):
                call = call_from_item(item) or {}
                if keep is not None and not keep(call):
                    continue
                items.append(call)
                if len(items) == limit:
                    more = index < len(page_items) - 1 or bool(page.get("LastEvaluatedKey"))
                    return items, (self.index_key(item) if more else None), read
            last = page.get("LastEvaluatedKey")
            if not last:
                return items, None, read
            if max_read is not None and read >= max_read:
                return items, self.index_key(page_items[-1]) if page_items else last, read
            kwargs["ExclusiveStartKey"] = last

    @staticmethod
    def index_key(item: Mapping[str, Any]) -> dict[str, Any]:
        """The ``by-account`` LastEvaluatedKey of an item (table key + index key)."""
        return {name: item[name] for name in (KEY, "account", "started_at")}

    # ------------------------------------------------------------------ writes
    def _update_args(self, call_sid: str, update: _Update, condition: str, now_iso: str) -> dict[str, Any]:
        """The UpdateItem arguments of ``update`` to the call ``call_sid`` under ``condition`` (every
        write of a call is one of these)."""
        args = {
            "TableName": self.table,
            "Key": {KEY: {"S": call_sid}},
            "UpdateExpression": update.expression(now_iso),
            "ExpressionAttributeNames": update.names,
            "ExpressionAttributeValues": update.values,
        }
        if condition:
            args["ConditionExpression"] = condition
        return args

    # ------------------------------------------------------------------ the voice webhook's writes
    def origin_update(self, call_sid: str, fields: Mapping[str, Any], now_iso: str) -> dict[str, Any]:
        """UpdateItem arguments that write a call's origin once (condition: no account yet).

        ``started_at``, ``status`` (ringing), ``status_rank`` (0) and ``created_by`` only if absent
        (a callback may have built the row first); the rest is set."""
        if_absent = {
            "started_at": fields.get("started_at"),
            "status": "ringing",
            "status_rank": 0,
            "created_by": fields.get("created_by"),
        }
        update = _Update()
        update.set("s", {k: v for k, v in fields.items() if k not in if_absent and k != KEY})
        update.set("a", if_absent, if_absent=True)
        if TTL_ATTRIBUTE in fields and fields[TTL_ATTRIBUTE] is None:
            update.remove("r", [TTL_ATTRIBUTE])  # kept forever: a callback's provisional TTL goes
        update.names["#account"] = "account"
        return self._update_args(call_sid, update, "attribute_not_exists(#account)", now_iso)

    def apply_outcome(
        self,
        call_sid: str,
        fields: Mapping[str, Any],
        status_fields: Mapping[str, Any],
        *,
        rank: int,
        marker: str,
        now_iso: str,
        orphan_expire_at: int | None = None,
    ) -> tuple[str, dict[str, Any] | None]:
        """Apply a callback once (``marker`` attribute absent). ``status_fields`` only when ``rank``
        is above the stored ``status_rank``. Returns (applied | fields-only | duplicate, new row).

        A callback that arrives before the call's origin creates the row; ``orphan_expire_at`` is
        the TTL it gets then (never over an existing one), so a row whose origin never comes (a
        number that is no longer ours) does not stay for ever. The origin's TTL, or its removal for
        a call kept forever, replaces it."""
        attempts = [
            ("applied", {**fields, **status_fields, "status_rank": rank}, True),
            ("fields-only", dict(fields), False),
        ]
        for outcome, sets, with_rank in attempts:
            update = _Update()
            update.set("s", sets)
            update.names["#marker"] = marker
            condition = "attribute_not_exists(#marker)"
            if with_rank:
                update.names["#rank"] = "status_rank"
                update.values[":rank"] = {"N": str(rank)}
                condition += " AND (attribute_not_exists(#rank) OR #rank < :rank)"
            try:
                resp = self.client.update_item(
                    **self._update_args(call_sid, update, condition, now_iso), ReturnValues="ALL_NEW"
                )
            except Exception as exc:  # botocore ClientError; typed loosely to keep imports cheap
                if error_code(exc) == "ConditionalCheckFailedException":
                    continue
                raise
            row = call_from_item(resp.get("Attributes"))
            if orphan_expire_at is not None and row is not None and not row.get("account"):
                row = self._expire_orphan(call_sid, orphan_expire_at, now_iso) or row
            return outcome, row
        return "duplicate", None

    def _expire_orphan(self, call_sid: str, at: int, now_iso: str) -> dict[str, Any] | None:
        """Give a row without its origin a TTL (one more write, only then); None when the origin
        or a TTL got there first. A call kept forever has no TTL, so this cannot be one
        ``if_not_exists`` in the callback's own write."""
        update = _Update()
        update.set("t", {TTL_ATTRIBUTE: at})
        update.names["#account"] = "account"
        update.names["#ttl"] = TTL_ATTRIBUTE
        condition = "attribute_not_exists(#account) AND attribute_not_exists(#ttl)"
        try:
            resp = self.client.update_item(
                **self._update_args(call_sid, update, condition, now_iso), ReturnValues="ALL_NEW"
            )
        except Exception:  # the origin got there first, or the write failed: the callback stands
            return None
        return call_from_item(resp.get("Attributes"))

    # ------------------------------------------------------------------ amendments
    def amend(self, account: str, call_sid: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """SET (or REMOVE, for None) the given attributes of an existing call of ``account``;
        returns the new call. NotFound when the call does not exist or is another account's."""
        update = _Update()
        update.set("f", {k: v for k, v in changes.items() if v is not None})
        update.remove("r", [k for k, v in changes.items() if v is None])
        update.names["#acct"] = "account"
        update.values[":acct"] = {"S": account}
        try:
            out = self.client.update_item(
                **self._update_args(call_sid, update, "#acct = :acct", _now_iso()), ReturnValues="ALL_NEW"
            )
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise NotFound(f"call_sid: no such call {call_sid[:64]}", field="call_sid") from None
            raise
        return call_from_item(out["Attributes"]) or {}

    def amend_at_version(
        self, account: str, call_sid: str, version: int, changes: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """``amend`` only if the call is still at ``version`` (nobody wrote since it was read);
        None when it moved on (read it again and recompute). NotFound as ``amend``."""
        update = _Update()
        update.set("f", {k: v for k, v in changes.items() if v is not None})
        update.remove("r", [k for k, v in changes.items() if v is None])
        update.names["#acct"] = "account"
        update.values[":acct"] = {"S": account}
        update.values[":seen"] = {"N": str(int(version))}
        condition = "#acct = :acct AND " + (
            "(attribute_not_exists(#version) OR #version = :seen)" if not version else "#version = :seen"
        )
        try:
            out = self.client.update_item(
                **self._update_args(call_sid, update, condition, _now_iso()), ReturnValues="ALL_NEW"
            )
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            current = self.get(call_sid, consistent=True)
            if current is None or current.get("account") != account:  # another account's: not found
                raise NotFound(f"call_sid: no such call {call_sid[:64]}", field="call_sid") from None
            return None
        return call_from_item(out["Attributes"]) or {}

    def note(self, call_sid: str, fields: Mapping[str, Any], now_iso: str) -> dict[str, Any]:
        """SET what a call flow learnt during the call (the menu choice, the agent who answered);
        returns the new call. Unconditional like every webhook write: a row the origin has not
        reached yet gets its origin later (``origin_update`` only needs ``account`` absent)."""
        update = _Update()
        update.set("f", {k: v for k, v in fields.items() if k != KEY})
        args = self._update_args(call_sid, update, "", now_iso)
        out = self.client.update_item(**args, ReturnValues="ALL_NEW")
        return call_from_item(out.get("Attributes")) or {}

    def note_once(self, call_sid: str, fields: Mapping[str, Any], now_iso: str, *, unless: str) -> bool:
        """SET ``fields`` on an existing call that has no ``unless`` attribute yet; False when it has
        one (or there is no such call). A replayed incoming call writes its flow's choice this way
        after a callback rebuilt the call first: once, and never over the live call's own."""
        update = _Update()
        update.set("f", {k: v for k, v in fields.items() if k != KEY})
        update.names.update({"#key": KEY, "#unless": unless})
        args = self._update_args(call_sid, update, "attribute_exists(#key) AND attribute_not_exists(#unless)",
                                 now_iso)
        try:
            self.client.update_item(**args)
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def set_recording(self, call_sid: str, recording: Mapping[str, Any]) -> bool:
        """The call's ``recording`` view, only on an existing call (never a half-empty row);
        False when there is no such call (not written yet, expired or erased)."""
        update = _Update()
        update.set("f", {"recording": dict(recording)})
        update.names["#key"] = KEY
        args = self._update_args(call_sid, update, "attribute_exists(#key)", _now_iso())
        try:
            self.client.update_item(**args)
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True


@functools.cache
def call_items() -> CallItems:
    """The process's CallItems (settings read, the process's DynamoDB client, on first use)."""
    from calltrack.clients import dynamodb
    from calltrack.settings import get_settings

    return CallItems(dynamodb(), get_settings().table_name(TABLE))


def reset() -> None:
    """Forget the process's CallItems and client (tests; the local runtime after changing the environment)."""
    from calltrack.clients import dynamodb

    call_items.cache_clear()
    dynamodb.cache_clear()
