"""Calls as the report API reads and amends them (raw boto3: every attribute, typed plainly).

Reads use the calls table's ``by-account`` index (account, started_at); amendments (PATCH, CRM)
are one conditional UpdateItem that also increments the call's ``version`` so the rollup
consumer can order images. The stream then carries the change into the rollups.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from calltrack.errors import NotFound


def _client() -> Any:
    import boto3

    from calltrack.settings import get_settings

    return boto3.client("dynamodb", region_name=get_settings().region)


def _table() -> str:
    from calltrack.settings import get_settings

    return get_settings().table_name("calls")


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, set):
        return sorted(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeDeserializer

    des = TypeDeserializer()
    return {key: _plain(des.deserialize(value)) for key, value in item.items()}


def to_value(value: Any) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeSerializer

    if isinstance(value, float):
        value = Decimal(str(value))
    return dict(TypeSerializer().serialize(value))


def utc_bound(moment: datetime) -> str:
    """A started_at bound that sorts correctly against 'YYYY-MM-DDTHH:MM:SS(.fff)(Z|+00:00)'."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def calls_between(
    account: str, start: datetime, end: datetime, *, client: Any = None, counter: list[int] | None = None
) -> Iterator[dict[str, Any]]:
    """Calls of ``account`` with start <= started_at < end, oldest first."""
    client = client or _client()
    kwargs: dict[str, Any] = {
        "TableName": _table(),
        "IndexName": "by-account",
        "KeyConditionExpression": "account = :a AND started_at BETWEEN :lo AND :hi",
        "ExpressionAttributeValues": {
            ":a": {"S": account},
            ":lo": {"S": utc_bound(start)},
            ":hi": {"S": utc_bound(end)},
        },
    }
    hi = utc_bound(end)
    while True:
        page = client.query(**kwargs)
        if counter is not None:
            counter[0] += int(page.get("ScannedCount", 0))
        for item in page.get("Items", []):
            call = from_item(item)
            if str(call.get("started_at", ""))[:19] >= hi:
                continue  # exactly at the exclusive end
            yield call
        last = page.get("LastEvaluatedKey")
        if not last:
            return
        kwargs["ExclusiveStartKey"] = last


def get_call(account: str, call_sid: str, *, client: Any = None) -> dict[str, Any]:
    """The call, or NotFound when it does not exist or belongs to another account."""
    item = (client or _client()).get_item(TableName=_table(), Key={"call_sid": {"S": call_sid}}).get("Item")
    if not item:
        raise NotFound(f"call_sid: no such call {call_sid}", field="call_sid")
    call = from_item(item)
    if call.get("account") != account:
        raise NotFound(f"call_sid: no such call {call_sid}", field="call_sid")
    return call


def update_call(
    account: str, call_sid: str, changes: Mapping[str, Any], *, client: Any = None
) -> dict[str, Any]:
    """SET (or REMOVE for None) the given attributes and bump ``version``; returns the new call."""
    client = client or _client()
    names: dict[str, str] = {"#acct": "account", "#ver": "version"}
    values: dict[str, Any] = {":acct": {"S": account}, ":one": {"N": "1"}}
    sets: list[str] = []
    removes: list[str] = []
    for i, (name, value) in enumerate(changes.items()):
        names[f"#f{i}"] = name
        if value is None:
            removes.append(f"#f{i}")
        else:
            values[f":v{i}"] = to_value(value)
            sets.append(f"#f{i} = :v{i}")
    expression = "ADD #ver :one"
    if sets:
        expression = "SET " + ", ".join(sets) + " " + expression
    if removes:
        expression += " REMOVE " + ", ".join(removes)
    try:
        out = client.update_item(
            TableName=_table(),
            Key={"call_sid": {"S": call_sid}},
            UpdateExpression=expression,
            ConditionExpression="#acct = :acct",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
        )
    except client.exceptions.ConditionalCheckFailedException:
        raise NotFound(f"call_sid: no such call {call_sid}", field="call_sid") from None
    return from_item(out["Attributes"])
