"""The webhook's DynamoDB client (no PynamoDB on the cold path; the codec is ``calltrack.call_items``).

``client()`` is created lazily once per process with short timeouts and few retries, so a slow or
dead DynamoDB costs the caller about a second or two before the webhook fails open.
"""

from __future__ import annotations

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
