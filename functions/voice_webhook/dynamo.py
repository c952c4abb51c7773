"""Raw DynamoDB plumbing for the webhook (no PynamoDB on the cold path).

``client()`` is created lazily once per process with short timeouts and few retries, so a slow or
dead DynamoDB costs the caller about a second or two before the webhook fails open.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

_client: Any = None

CONNECT_TIMEOUT_S = 1.0
READ_TIMEOUT_S = 2.0
MAX_ATTEMPTS = 2


def client(region: str | None = None) -> Any:
    """The process's DynamoDB client (endpoint from AWS_ENDPOINT_URL* when set, e.g. the emulator)."""
    global _client
    if _client is None:
        import boto3
        from botocore.config import Config

        _client = boto3.session.Session().client(
            "dynamodb",
            region_name=region,
            config=Config(
                connect_timeout=CONNECT_TIMEOUT_S,
                read_timeout=READ_TIMEOUT_S,
                retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
                tcp_keepalive=True,
            ),
        )
    return _client


def reset_client() -> None:
    global _client
    _client = None


def to_attr(value: Any) -> dict[str, Any]:
    """Python -> DynamoDB attribute value (str S, bool BOOL, number N, None NULL, dict M, list L)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, (int, float, Decimal)):
        return {"N": _num_str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, dict):
        return {"M": {str(k): to_attr(v) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return {"L": [to_attr(v) for v in value]}
    raise TypeError(f"cannot store {type(value).__name__}")


def json_attr(value: Any) -> dict[str, Any]:
    """A PynamoDB JSONAttribute value: the JSON text as a string (S)."""
    return {"S": json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)}


def _num_str(value: int | float | Decimal) -> str:
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("not a finite number")
        if value.is_integer():
            return str(int(value))
        return repr(round(value, 6))
    return str(value)


def from_attr(attr: dict[str, Any]) -> Any:
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
        return list(value)
    return value


def from_item(item: dict[str, Any] | None) -> dict[str, Any] | None:
    if item is None:
        return None
    return {k: from_attr(v) for k, v in item.items()}
