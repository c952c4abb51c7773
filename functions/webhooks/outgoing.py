"""One outbound HTTP request to an account's destination, through the SSRF guard.

The host is resolved and every address checked (``calltrack.outbound``), then the connection goes
to those checked addresses, in turn and IPv4 first (TLS still verifies the host name), so DNS
cannot answer differently in between. Redirects are never followed: a 3xx is an answer like any
other. 10 s timeout.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field

from calltrack.outbound import RefusedDestination, Resolver, check_url, public_addresses, resolve

TIMEOUT_S = 10.0
MAX_RESPONSE_BYTES = 256 * 1024


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


MIN_ATTEMPT_S = 2.0


def _connect(addresses: list[str], port: int, timeout: float | None) -> socket.socket:
    """A connection to the first of the checked addresses that answers (IPv4 first), all of them
    within ``timeout`` together (each try gets what is left, at least MIN_ATTEMPT_S): a host with
    many unreachable addresses costs one timeout, not one per address."""
    import time

    failure: OSError = ConnectionError("no address")
    started = time.monotonic()
    for address in addresses:
        left = None if timeout is None else timeout - (time.monotonic() - started)
        if left is not None and left <= 0:
            break
        try:
            attempt = None if left is None else max(MIN_ATTEMPT_S, left)
            return socket.create_connection((address, port), attempt)
        except OSError as exc:
            failure = exc
    raise failure


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, addresses: list[str], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._addresses = addresses

    def connect(self) -> None:
        self.sock = _connect(self._addresses, self.port, self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, addresses: list[str], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._addresses = addresses

    def connect(self) -> None:
        sock = _connect(self._addresses, self.port, self.timeout)
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
    addresses = public_addresses(target, local_mode=local_mode, resolver=resolver)
    cls = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    conn = cls(target.host, target.port, addresses, timeout_s)
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
