"""One outbound HTTP request to an account's destination, through the SSRF guard.

The host is resolved and every address checked (``calltrack.outbound``), then the connection goes
to those checked addresses, in turn and IPv4 first (TLS still verifies the host name), so DNS
cannot answer differently in between. Redirects are never followed: a 3xx is an answer like any
other. 10 s for each socket operation, and ``DEADLINE_S`` for the whole request: a receiver that
drips its answer a byte at a time is cut off there (the connection is shut down under the read).
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from calltrack.outbound import RefusedDestination, Resolver, check_url, public_addresses, resolve

TIMEOUT_S = 10.0
DEADLINE_S = 20.0  # the whole request: connect, send, answer
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
        # The TLS socket is the connection's before its handshake, so the deadline can shut it
        # down during a handshake that drips too.
        self.sock = self._context.wrap_socket(  # type: ignore[attr-defined]
            sock, server_hostname=self.host, do_handshake_on_connect=False
        )
        self.sock.do_handshake()


def request(
    method: str,
    url: str,
    body: bytes | None,
    headers: Mapping[str, str],
    *,
    local_mode: bool,
    timeout_s: float = TIMEOUT_S,
    deadline_s: float = DEADLINE_S,
    resolver: Resolver = resolve,
) -> Answer:
    """Send one request; -> the answer. Raises RefusedDestination (never retried) or OSError /
    http.client.HTTPException (network trouble: retried; TimeoutError past ``deadline_s``)."""
    target = check_url(url, local_mode=local_mode)
    started = time.monotonic()
    # the account chooses its receiver's name servers: their answer counts towards the deadline
    addresses = _within(
        deadline_s, lambda: public_addresses(target, local_mode=local_mode, resolver=resolver)
    )
    left = deadline_s - (time.monotonic() - started)
    cls = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    conn = cls(target.host, target.port, addresses, timeout_s)
    cut = threading.Event()
    watchdog = threading.Timer(max(0.0, left), _cut_off, (conn, cut))
    watchdog.daemon = True
    watchdog.start()
    try:
        conn.connect()
        if cut.is_set():  # the connection took the whole deadline
            raise TimeoutError(f"no whole answer within {deadline_s:g} s")
        conn.request(method, target.path, body=body, headers=dict(headers))
        resp = conn.getresponse()
        data = resp.read(MAX_RESPONSE_BYTES)
        answer = Answer(resp.status, data, {k.lower(): v for k, v in resp.getheaders()})
    except (OSError, http.client.HTTPException) as exc:
        if cut.is_set():
            raise TimeoutError(f"no whole answer within {deadline_s:g} s") from exc
        raise
    finally:
        watchdog.cancel()
        conn.close()
    if cut.is_set():  # the read ended at the cut: the body may be short
        raise TimeoutError(f"no whole answer within {deadline_s:g} s")
    return answer


def _within(deadline_s: float, work: Callable[[], list[str]]) -> list[str]:
    """``work()``'s answer, or TimeoutError when it takes longer than ``deadline_s`` (a name lookup
    cannot be interrupted: it goes on in its daemon thread and its answer is dropped)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["answer"] = work()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller as it was raised
            box["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(deadline_s)
    if worker.is_alive():
        raise TimeoutError(f"no whole answer within {deadline_s:g} s (name lookup)")
    if "error" in box:
        raise box["error"]
    return list(box["answer"])


def _cut_off(conn: http.client.HTTPConnection, cut: threading.Event) -> None:
    """Past the deadline: shut the connection's socket down, which ends a read blocked on it."""
    cut.set()
    sock = conn.sock
    if sock is not None:
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket's, under TLS too
        except OSError:
            pass


def retryable(status: int) -> bool:
    """408, 429 and 5xx are tried again; every other answer is final."""
    return status in (408, 429) or status >= 500


__all__ = ["Answer", "RefusedDestination", "request", "retryable"]
