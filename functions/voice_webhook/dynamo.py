"""The webhook's DynamoDB client (no PynamoDB on the cold path; the codec is ``calltrack.call_items``).

``client()`` is created lazily once per process with short timeouts and one retry: a request
that hangs costs at most 2 x 2 s, so a slow or dead DynamoDB costs the caller a few seconds before
the webhook fails open, and an incoming call (a read, a write, a hand-off; ``flow.WRITE_AFTER_S``)
stays inside the function's 12 s timeout. ``MAX_ATTEMPTS`` counts the first try.
"""

from __future__ import annotations

from typing import Any

_client: Any = None

CONNECT_TIMEOUT_S = 1.0
READ_TIMEOUT_S = 2.0
MAX_ATTEMPTS = 2  # in all: botocore's "max_attempts" would count retries only (3 in all)


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
                retries={"total_max_attempts": MAX_ATTEMPTS, "mode": "standard"},
                tcp_keepalive=True,
            ),
        )
    return _client


def reset_client() -> None:
    global _client
    _client = None
