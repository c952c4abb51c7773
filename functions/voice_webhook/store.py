"""Storage port of the voice webhook: one read of number, lease and caller; idempotent upserts of the call.

Call items are built and written by ``calltrack.call_items.CallItems`` (the one module that writes
calls); this module adds the routing read and the callers row's first-call mark.

Requests on the incoming-call path, warm or cold, new or repeat caller: two.
1. ``BatchGetItem``: numbers[To] + leases[To] + callers[From]. The callers row is keyed by the
   caller's number alone and holds one ``first#<account>`` attribute per account the caller has
   called, so it joins the read before the account is known;
2. one write: ``TransactWriteItems`` (call upsert + conditional ``SET first#<account>`` on the
   callers row) for a first-time caller, else a single ``UpdateItem`` of the call. Only when the
   transaction is cancelled for the callers row — two first calls of one caller to one account
   racing, the callers read throttled and the attribute there after all, or a conflict on that row
   — does one more ``UpdateItem`` write the call (as a repeat call, or with first_time unknown).
   A round-robin ring group's counter (``rr#<flow>#<target>`` on the numbers row, read with the
   row) is bumped inside that same write: its ``ADD`` joins the transaction (a repeat caller's
   write becomes a two-item transaction), so fairness costs no request. Should the transaction be
   cancelled for the counter alone (two calls racing on one number), it is sent once more without
   it: that one call does not advance the rotation.

The read's callers key is two keys of one table: the caller's row and their redial item
(``redial#<caller>``, ``calltrack.attribution.redial_key``), whose ``last#<account>`` attributes join
the row as read. At a pool call's end (``/twilio/call-status``, not the incoming call) two more
UpdateItems: the redial item keeps the call (``last#<account>``, expiring after
``REDIAL_KEEP_S``) so that a redial to the same number is attributed as this call was, whoever holds
the number by then; then the number's lease row records that its holder called
(``called_session``), which lets the number go to the next visitor first.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal, Protocol

from calltrack.attribution import (
    CALLED_AT,
    CALLED_SESSION,
    EARLIER_CALL_PREFIX,
    REDIAL_KEEP_S,
    earlier_call_attribute,
    redial_key,
)
from calltrack.call_items import CallItems, error_code, from_item


class _Unknown(Enum):
    CALLERS_ROW = "unknown"


class _Unread(Enum):
    LEASE_ROW = "unread"


# The callers row could not be read (no caller number, or the key came back unprocessed).
UNKNOWN = _Unknown.CALLERS_ROW
CallersRow = dict[str, Any] | None | Literal[_Unknown.CALLERS_ROW]
# The leases row came back unprocessed (throttled): not "no lease" -- a pool number's call would
# lose its visitor (keyword, click id) without a word.
LEASE_UNREAD = _Unread.LEASE_ROW
LeaseRow = dict[str, Any] | None | Literal[_Unread.LEASE_ROW]


def first_call_attribute(account: str) -> str:
    """The callers-row attribute that records a caller's first call to ``account``."""
    return f"first#{account}"


def is_first_call(callers_row: CallersRow, account: str | None) -> bool | None:
    """True / False when the callers row was read, None when it is not known."""
    if callers_row is UNKNOWN or not account:
        return None
    return first_call_attribute(account) not in (callers_row or {})


class Storage(Protocol):
    def read_routing(
        self, number: str, caller: str | None
    ) -> tuple[dict[str, Any] | None, LeaseRow, CallersRow]: ...

    def write_origin(
        self,
        call_sid: str,
        fields: dict[str, Any],
        *,
        caller: str | None,
        first_time: bool | None,
        now_iso: str,
        bump: str | None = None,
    ) -> str: ...

    def note(self, call_sid: str, fields: dict[str, Any], *, now_iso: str) -> dict[str, Any]: ...

    def record_agent(self, call_sid: str, agent: str, *, now_iso: str) -> None: ...

    def note_flow(self, call_sid: str, fields: dict[str, Any], *, now_iso: str) -> bool:
        """The flow's choice on a call whose origin a callback wrote; False when it has one."""

    def remember_pool_call(
        self, caller: str, account: str, number: str, session_id: str, earlier: str, *, called_at: float,
        mark: bool = True,
    ) -> bool:
        """A pool call ended: the caller's redial item keeps it (``earlier``, for a redial), then (``mark``)
        the number's lease row says its holder ``session_id`` called; False when not marked (another
        session holds the number by now, or not asked to)."""
        ...

    def bump(self, number: str, counter: str) -> None: ...

    def lease_at(self, number: str, at: float) -> dict[str, Any] | None:
        """The number's lease that was live at ``at`` (its history), as a lease row; None if none."""
        ...

    def apply_outcome(
        self,
        call_sid: str,
        fields: dict[str, Any],
        status_fields: dict[str, Any],
        *,
        rank: int,
        marker: str,
        now_iso: str,
        orphan_expire_at: int | None = None,
    ) -> tuple[str, dict[str, Any] | None]: ...


# The tables DynamoStorage reads and writes (logical names; the settings give the physical ones).
STORAGE_TABLES = ("numbers", "leases", "calls", "callers", "lease_history")


class DynamoStorage:
    """The DynamoDB implementation over a low-level boto3 client."""

    def __init__(self, client: Any, tables: dict[str, str]) -> None:
        self.client = client
        self.tables = tables  # logical -> physical: STORAGE_TABLES
        self.calls = CallItems(client, tables["calls"])
        # Apply a callback once: the call items' own write, nothing added here.
        self.apply_outcome = self.calls.apply_outcome

    # ------------------------------------------------------------ read
    def read_routing(
        self, number: str, caller: str | None
    ) -> tuple[dict[str, Any] | None, LeaseRow, CallersRow]:
        """(number row, lease row | None | LEASE_UNREAD, callers row | None | UNKNOWN) with one
        BatchGetItem; raises on storage failure."""
        request: dict[str, Any] = {
            self.tables["numbers"]: {"Keys": [{"number": {"S": number}}]},
            self.tables["leases"]: {"Keys": [{"number": {"S": number}}]},
        }
        if caller:
            # the caller's row and their redial item (last pool calls, expiring): one table, two keys
            request[self.tables["callers"]] = {
                "Keys": [{"caller": {"S": caller}}, {"caller": {"S": redial_key(caller)}}]
            }
        resp = self.client.batch_get_item(RequestItems=request)
        unprocessed = resp.get("UnprocessedKeys") or {}
        if unprocessed.get(self.tables["numbers"]):
            raise RuntimeError("numbers read left unprocessed (throttled)")
        found = resp.get("Responses") or {}

        def first(table: str) -> dict[str, Any] | None:
            rows = found.get(self.tables[table]) or []
            return from_item(rows[0]) if rows else None

        callers: CallersRow = UNKNOWN
        if caller:
            left = {k["caller"]["S"] for k in (unprocessed.get(self.tables["callers"]) or {}).get("Keys", [])}
            items = {str(item["caller"]["S"]): from_item(item) or {}
                     for item in found.get(self.tables["callers"]) or []}
            if caller not in left:
                callers = items.get(caller)
                # the redial item's last pool calls join the row (``calltrack.attribution.earlier_call``)
                redial = {k: v for k, v in (items.get(redial_key(caller)) or {}).items()
                          if k.startswith(EARLIER_CALL_PREFIX)}
                if redial:
                    callers = {**(callers or {}), **redial}
        lease: LeaseRow = LEASE_UNREAD if unprocessed.get(self.tables["leases"]) else first("leases")
        return first("numbers"), lease, callers

    def erasure_marks(self, caller: str) -> dict[str, float]:
        """account -> when ``caller`` was erased from it (``calltrack.erasure_marks``; the replay's
        read, never the live webhook's)."""
        from calltrack.erasure_marks import erased_at, mark_key

        item = self.client.get_item(TableName=self.tables["callers"], Key={"caller": {"S": mark_key(caller)}},
                                    ConsistentRead=True).get("Item")
        return erased_at(from_item(item) if item else None)

    # items: the last lease, past the shared hand-outs made since (each shared heartbeat of an
    # exhausted pool writes one; a replay is rare, and 100 small items are one Query)
    HISTORY_LOOKBACK = 100

    def lease_at(self, number: str, at: float) -> dict[str, Any] | None:
        """One Query of the lease history: the number's row as it stood at ``at``. Like the live
        row, it is the last *lease* begun at or before ``at`` (an exhausted pool's shared hand-outs
        since then only lower the confidence), with its previous holder (the ambiguity cap)."""
        resp = self.client.query(
            TableName=self.tables["lease_history"],
            KeyConditionExpression="#n = :n AND leased_at <= :at",
            ExpressionAttributeNames={"#n": "number"},
            ExpressionAttributeValues={":n": {"S": number}, ":at": {"N": repr(float(at))}},
            ScanIndexForward=False,
            Limit=self.HISTORY_LOOKBACK,
        )
        items = [from_item(i) or {} for i in resp.get("Items") or []]
        if not items:
            return None
        # newest first: the shared hand-outs since the last lease, then that lease (if in reach)
        lease = next((i for i in items if i.get("kind") != "shared"), None)
        shared = items[: items.index(lease)] if lease is not None else items
        item = lease if lease is not None else items[0]
        row = {k: item.get(k) for k in ("number", "account", "pool", "lease_id", "session_id", "attribution",
                                        "leased_at", "prev_released_at", "prev_session_id")}
        # a history item ends where the lease row would: its release, or the last expiry it had
        row["expires_at"] = item.get("ended_at")
        if shared:  # shown to an exhausted pool's sessions too: lower confidence
            row["shared_until"] = max(float(i.get("ended_at") or 0) for i in shared)
        return row

    # ------------------------------------------------------------ writes
    def _bump_update(self, number: str, counter: str) -> dict[str, Any]:
        return {
            "TableName": self.tables["numbers"],
            "Key": {"number": {"S": number}},
            "UpdateExpression": "ADD #counter :one",
            "ConditionExpression": "attribute_exists(#number)",
            "ExpressionAttributeNames": {"#counter": counter, "#number": "number"},
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        }

    def bump(self, number: str, counter: str) -> None:
        """Advance a round-robin counter of a number (a menu's choice: not the incoming call)."""
        self.client.update_item(**self._bump_update(number, counter))

    def note(self, call_sid: str, fields: dict[str, Any], *, now_iso: str) -> dict[str, Any]:
        return self.calls.note(call_sid, fields, now_iso)

    def note_flow(self, call_sid: str, fields: dict[str, Any], *, now_iso: str) -> bool:
        return self.calls.note_once(call_sid, fields, now_iso, unless="flow")

    def record_agent(self, call_sid: str, agent: str, *, now_iso: str) -> None:
        """The member who answered becomes the call's agent, and the caller's last agent for this
        account (``sticky_attribute`` on the callers row), so their next call goes to them first."""
        from calltrack.call_flows import sticky_attribute

        call = self.calls.note(call_sid, {"agent": agent}, now_iso)
        caller, account = call.get("caller"), call.get("account")
        if caller and account:
            self.client.update_item(
                TableName=self.tables["callers"],
                Key={"caller": {"S": str(caller)}},
                UpdateExpression="SET #agent = :agent",
                ExpressionAttributeNames={"#agent": sticky_attribute(str(account))},
                ExpressionAttributeValues={":agent": {"S": agent}},
            )

    def remember_pool_call(
        self, caller: str, account: str, number: str, session_id: str, earlier: str, *, called_at: float,
        mark: bool = True,
    ) -> bool:
        self.client.update_item(
            TableName=self.tables["callers"],
            Key={"caller": {"S": redial_key(caller)}},
            UpdateExpression="SET #last = :last, expire_at = :ttl",
            ExpressionAttributeNames={"#last": earlier_call_attribute(account)},
            ExpressionAttributeValues={":last": {"S": earlier},
                                       ":ttl": {"N": str(int(called_at + REDIAL_KEEP_S))}},
        )
        if not mark:
            return False
        try:
            self.client.update_item(
                TableName=self.tables["leases"],
                Key={"number": {"S": number}},
                UpdateExpression="SET #called = :sid, #at = :at",
                ConditionExpression="session_id = :sid",
                ExpressionAttributeNames={"#called": CALLED_SESSION, "#at": CALLED_AT},
                ExpressionAttributeValues={":sid": {"S": session_id}, ":at": {"N": f"{called_at:.3f}"}},
            )
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def write_origin(
        self,
        call_sid: str,
        fields: dict[str, Any],
        *,
        caller: str | None,
        first_time: bool | None,
        now_iso: str,
        bump: str | None = None,
    ) -> str:
        """Upsert the call's origin (account, source, caller) once. Returns created / duplicate.

        ``first_time`` is what the read saw (None: not known); the conditional write on the callers
        row decides it for good, so two racing first calls cannot both count as first-time.
        ``bump`` names a round-robin counter of the number to advance in the same request."""
        account = fields.get("account")
        number = fields.get("tracking_number")
        known_caller = bool(caller and account)
        bumps = [{"Update": self._bump_update(str(number), bump)}] if bump and number else []
        items: list[dict[str, Any]] = []
        if known_caller and first_time is not False:
            update = self.calls.origin_update(call_sid, {**fields, "first_time": True}, now_iso)
            mark_first = {
                "TableName": self.tables["callers"],
                "Key": {"caller": {"S": str(caller)}},
                "UpdateExpression": "SET #first = :first",
                "ConditionExpression": "attribute_not_exists(#first)",
                "ExpressionAttributeNames": {"#first": first_call_attribute(str(account))},
                "ExpressionAttributeValues": {
                    ":first": {
                        "M": {
                            "call_sid": {"S": call_sid},
                            "at": {"S": str(fields.get("started_at") or now_iso)},
                        }
                    }
                },
            }
            items = [{"Update": update}, {"Update": mark_first}]
            reasons = self._transact(items + bumps)
            if bumps and reasons and len(reasons) > 2 and _failed(reasons) == [2]:
                reasons = self._transact(items)  # cancelled for the counter alone: once more without it
            if reasons is None:
                return "created"
            if reasons and reasons[0] == "ConditionalCheckFailed":
                return "duplicate"
            # Cancelled for the callers row: already marked (a repeat caller after all), or a
            # conflict / throttle on it. The call is recorded anyway with one plain update.
            marked = len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed"
            first_time = False if marked else None
            bumps = []
        payload = {**fields}
        if known_caller and first_time is not None:
            payload["first_time"] = first_time
        if bumps:
            origin = self.calls.origin_update(call_sid, payload, now_iso)
            reasons = self._transact([{"Update": origin}, *bumps])
            if reasons is None:
                return "created"
            if reasons and reasons[0] == "ConditionalCheckFailed":
                return "duplicate"
        try:
            self.client.update_item(**self.calls.origin_update(call_sid, payload, now_iso))
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return "duplicate"
            raise
        return "created"

    def _transact(self, items: list[dict[str, Any]]) -> list[str | None] | None:
        """TransactWriteItems; None when written, else the cancellation reason codes per item."""
        try:
            self.client.transact_write_items(TransactItems=items)
            return None
        except Exception as exc:  # botocore ClientError; typed loosely to keep imports cheap
            if error_code(exc) != "TransactionCanceledException":
                raise
            return [r.get("Code") for r in (getattr(exc, "response", {}).get("CancellationReasons") or [])]


def _failed(reasons: list[str | None]) -> list[int]:
    """The items a cancelled transaction failed on (DynamoDB says "None" for the others)."""
    return [i for i, code in enumerate(reasons) if code not in (None, "None")]
