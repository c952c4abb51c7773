"""One outbound HTTP request to an account's destination, through the SSRF guard.

The host is resolved and every address checked (``calltrack.outbound``), then the connection goes
to that checked address (TLS still verifies the host name), so DNS cannot answer differently in
between. Redirects are never followed: a 3xx is an answer like any other. 10 s timeout.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field

from calltrack.outbound import RefusedDestination, Resolver, check_url, public_address, resolve

TIMEOUT_S = 10.0
MAX_RESPONSE_BYTES = 256 * 1024


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def request(
    method: str,
    url: str,
    body: bytes | None,
    headers: Mapping[str, str],
    *,
    local_mode: bool,
    timeout_s: float = TIMEOUT_S,
    resolver: Resolver = resolve,
) -> Answer:
    """Send one request; -> the answer. Raises RefusedDestination (never retried) or OSError /
    http.client.HTTPException (network trouble: retried)."""
    target = check_url(url, local_mode=local_mode)
    address = public_address(target, local_mode=local_mode, resolver=resolver)
    cls = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    conn = cls(target.host, target.port, address, timeout_s)
    try:
        conn.request(method, target.path, body=body, headers=dict(headers))
        resp = conn.getresponse()
        data = resp.read(MAX_RESPONSE_BYTES)
        return Answer(resp.status, data, {k.lower(): v for k, v in resp.getheaders()})
    finally:
        conn.close()


def retryable(status: int) -> bool:
    """408, 429 and 5xx are tried again; every other answer is final."""
    return status in (408, 429) or status >= 500


__all__ = ["Answer", "RefusedDestination", "request", "retryable"]
