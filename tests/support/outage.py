"""Outages for the stack's tests: the voice webhook without DynamoDB."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import pytest


@contextlib.contextmanager
def webhook_without_dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The voice webhook in a fresh process (a cold container: nothing cached) whose DynamoDB is a
    closed port; a fresh process against the emulator again afterwards. The routing snapshot (S3)
    and the outbox (SQS) stay up."""
    import voice_webhook.handler as handler

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", f"http://127.0.0.1:{port}")
    handler.reset()
    try:
        yield
    finally:
        monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB")
        handler.reset()
