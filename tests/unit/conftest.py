"""Unit tier: pure logic, no network. Every unit test runs with sockets disabled."""

from __future__ import annotations

from collections.abc import Iterator

# X-Ray's global recorder opens its UDP emitter socket on import (it sends nothing until a trace
# is emitted): import it before sockets are disabled, so a test may import a traced handler.
import aws_xray_sdk.core  # noqa: F401
import pytest
from pytest_socket import disable_socket, enable_socket


@pytest.fixture(autouse=True)
def _no_sockets() -> Iterator[None]:
    disable_socket(allow_unix_socket=True)
    try:
        yield
    finally:
        enable_socket()


OPERATOR_TOKEN = "op"


@pytest.fixture
def operator_token(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The operator token (``CALLTRACK_ADMIN_TOKEN``) set for a test that resolves API events in
    process: authenticating it needs no token table, so no socket."""
    from calltrack.settings import reset_settings

    monkeypatch.setenv("CALLTRACK_ADMIN_TOKEN", OPERATOR_TOKEN)
    reset_settings()
    try:
        yield OPERATOR_TOKEN
    finally:
        monkeypatch.undo()
        reset_settings()
