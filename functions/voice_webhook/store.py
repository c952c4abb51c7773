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
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal, Protocol

from calltrack.call_items import CallItems, error_code, from_item


class _Unknown(Enum):
    CALLERS_ROW = "unknown"


# The callers row could not be read (no caller number, or the key came back unprocessed).
UNKNOWN = _Unknown.CALLERS_ROW
CallersRow = dict[str, Any] | None | Literal[_Unknown.CALLERS_ROW]


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
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None, CallersRow]: ...

    def write_origin(
        self,
        call_sid: str,
        fields: dict[str, Any],
        *,
        caller: str | None,
        first_time: bool | None,
        now_iso: str,
    ) -> str: ...

    def apply_outcome(
        self,
        call_sid: str,
        fields: dict[str, Any],
        status_fields: dict[str, Any],
        *,
        rank: int,
        marker: str,
        now_iso: str,
    ) -> tuple[str, dict[str, Any] | None]: ...


class DynamoStorage:
    """The DynamoDB implementation over a low-level boto3 client."""

    def __init__(self, client: Any, tables: dict[str, str]) -> None:
        self.client = client
        self.tables = tables  # logical -> physical: numbers, leases, calls, callers
        self.calls = CallItems(client, tables["calls"])
        # Apply a callback once: the call items' own write, nothing added here.
        self.apply_outcome = self.calls.apply_outcome

    # ------------------------------------------------------------ read
    def read_routing(
        self, number: str, caller: str | None
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None, CallersRow]:
        """(number row, lease row, callers row | None | UNKNOWN) with one BatchGetItem; raises on
        storage failure."""
        request: dict[str, Any] = {
            self.tables["numbers"]: {"Keys": [{"number": {"S": number}}]},
            self.tables["leases"]: {"Keys": [{"number": {"S": number}}]},
        }
        if caller:
            request[self.tables["callers"]] = {"Keys": [{"caller": {"S": caller}}]}
        resp = self.client.batch_get_item(RequestItems=request)
        unprocessed = resp.get("UnprocessedKeys") or {}
        if unprocessed.get(self.tables["numbers"]):
            raise RuntimeError("numbers read left unprocessed (throttled)")
        found = resp.get("Responses") or {}

        def first(table: str) -> dict[str, Any] | None:
            rows = found.get(self.tables[table]) or []
            return from_item(rows[0]) if rows else None

        callers: CallersRow = UNKNOWN
        if caller and not unprocessed.get(self.tables["callers"]):
            callers = first("callers")
        return first("numbers"), first("leases"), callers

    # ------------------------------------------------------------ writes
    def write_origin(
        self,
        call_sid: str,
        fields: dict[str, Any],
        *,
        caller: str | None,
        first_time: bool | None,
        now_iso: str,
    ) -> str:
        """Upsert the call's origin (account, source, caller) once. Returns created / duplicate.

        ``first_time`` is what the read saw (None: not known); the conditional write on the callers
        row decides it for good, so two racing first calls cannot both count as first-time."""
        account = fields.get("account")
        known_caller = bool(caller and account)
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
            try:
                self.client.transact_write_items(TransactItems=[{"Update": update}, {"Update": mark_first}])
                return "created"
            except Exception as exc:  # botocore ClientError; typed loosely to keep imports cheap
                if error_code(exc) != "TransactionCanceledException":
                    raise
                reasons = [
                    r.get("Code") for r in (getattr(exc, "response", {}).get("CancellationReasons") or [])
                ]
                if reasons and reasons[0] == "ConditionalCheckFailed":
                    return "duplicate"
                # Cancelled for the callers row: already marked (a repeat caller after all), or a
                # conflict / throttle on it. The call is recorded anyway with one plain update.
                marked = len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed"
                first_time = False if marked else None
        payload = {**fields}
        if known_caller and first_time is not None:
            payload["first_time"] = first_time
        try:
            self.client.update_item(**self.calls.origin_update(call_sid, payload, now_iso))
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return "duplicate"
            raise
        return "created"
