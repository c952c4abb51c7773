"""The audit trail: one item per management action and per recording or transcript access.

Table ``audit`` (``calltrack.models.accounts.AuditEntry``): hash ``account``, range ``at_id``
(``{ISO time}#{random}``). Written with the process's DynamoDB client before the answer is sent,
so an access that cannot be audited fails (503) instead of going unrecorded. A caller's number
never appears: ``caller_ref`` is an HMAC of it keyed with a stack secret (the salted hash).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from calltrack.auth import Principal

TABLE = "audit"


def caller_ref(number: str, salt: str) -> str:
    """``caller#`` + the salted hash of a number: the same number gives the same reference."""
    digest = hmac.new(salt.encode(), number.encode(), hashlib.sha256).hexdigest()
    return "caller#" + digest[:32]


def entry(account: str, principal: Principal, action: str, *, target: str | None = None,
          result: str = "ok", detail: Mapping[str, Any] | None = None,
          now: datetime | None = None) -> dict[str, Any]:
    at = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    who = principal.who
    item: dict[str, Any] = {
        "account": {"S": account}, "at_id": {"S": f"{at}#{secrets.token_hex(6)}"}, "at": {"S": at},
        "action": {"S": action}, "result": {"S": result}, "token_id": {"S": str(who["token_id"])},
        "role": {"S": str(who["role"])},
    }
    if target:
        item["target"] = {"S": target}
    if who["label"]:
        item["label"] = {"S": str(who["label"])}
    if detail:
        item["detail"] = {"S": json.dumps(dict(detail), sort_keys=True)}
    return item


def record(account: str, principal: Principal, action: str, *, target: str | None = None,
           result: str = "ok", detail: Mapping[str, Any] | None = None) -> None:
    """Write one audit item (the process's DynamoDB client; the function must have ``audit``)."""
    from calltrack.clients import dynamodb
    from calltrack.settings import get_settings

    dynamodb().put_item(TableName=get_settings().table_name(TABLE),
                        Item=entry(account, principal, action, target=target, result=result, detail=detail))


def read(client: Any, table: str, account: str, start: str, end: str,
         limit: int = 1000) -> list[dict[str, Any]]:
    """The account's audit items with start <= at < end (ISO), oldest first, at most ``limit``."""
    from calltrack.call_items import from_item

    out: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": table, "KeyConditionExpression": "account = :a AND at_id BETWEEN :lo AND :hi",
        "ExpressionAttributeValues": {":a": {"S": account}, ":lo": {"S": start}, ":hi": {"S": end}},
    }
    while len(out) < limit:
        page = client.query(**kwargs)
        for item in page.get("Items", []):
            row = from_item(item) or {}
            row.pop("at_id", None)
            if isinstance(row.get("detail"), str):
                row["detail"] = json.loads(row["detail"])
            out.append(row)
        if not page.get("LastEvaluatedKey"):
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return out[:limit]
