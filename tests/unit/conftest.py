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
