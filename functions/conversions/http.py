"""One small JSON-over-HTTPS client for the platform adapters (stdlib only: no new dependency).

Base URLs come from settings (https outside local mode; settings refuse anything else). A network
error, or no whole answer within the request's deadline, is ``Unreachable`` (retried like a 5xx);
every answer, 2xx or not, is returned with its parsed JSON body so the adapter decides what it means.
"""

from __future__ import annotations

import functools
import http.client
import io
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

# The whole request: connect, TLS handshake, request, headers and body together (the conversions
# handler's MESSAGE_BUDGET_MS counts on it). Each wait on the socket is cut to what is left of it,
# so a platform that drips its answer a byte at a time cannot outlast it.
TIMEOUT_S = 10.0
# The platforms answer a few KB; a larger answer is not read whole (it is read as no JSON body).
MAX_ANSWER_BYTES = 1_000_000


class Unreachable(Exception):
    """No HTTP answer (connection refused, reset, no whole answer before the deadline)."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # parsed JSON, {} when empty or not JSON
    retry_after: str | None = None


def post(
    url: str,
    *,
    json_body: Any = None,
    form: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout_s: float = TIMEOUT_S,
) -> Answer:
    """POST and return the answer; ``timeout_s`` bounds the whole request (not each wait on the
    socket): past it, ``Unreachable`` that says the deadline was exceeded."""
    deadline_at = time.monotonic() + timeout_s
    if form is not None:
        data = urllib.parse.urlencode(dict(form)).encode()
        content_type = "application/x-www-form-urlencoded"
    else:
        data = json.dumps(json_body, ensure_ascii=False, separators=(",", ":")).encode()
        content_type = "application/json"
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": content_type, **dict(headers or {})}
    )
    from calltrack.outbound import direct_opener

    # no redirect followed (it would carry the platform's token along) and no proxy variable: a
    # 3xx is an answer like any other non-2xx; the connection is opened by _WithinDeadline
    opener = direct_opener()
    opener.add_handler(_WithinDeadline(deadline_at))
    try:
        try:
            with opener.open(request, timeout=timeout_s) as resp:
                body = resp.read(MAX_ANSWER_BYTES + 1)
                return Answer(resp.status, _json(body), resp.headers.get("Retry-After"))
        except urllib.error.HTTPError as err:
            try:  # a non-2xx answer's body comes over the same connection, under the same deadline
                return Answer(err.code, _json(err.read(MAX_ANSWER_BYTES + 1)),
                              err.headers.get("Retry-After") if err.headers else None)
            finally:
                err.close()
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as err:
        if isinstance(err, TimeoutError) or isinstance(getattr(err, "reason", None), TimeoutError):
            # every wait was cut to what was left: a timeout is the whole request's deadline
            raise Unreachable(f"deadline exceeded: no whole answer within {timeout_s:g} s") from None
        raise Unreachable(f"{type(err).__name__}: {str(err)[:200]}") from None
    except (ValueError, http.client.HTTPException) as err:
        # a header value the request cannot carry, a malformed answer: named by its type only (a
        # header's message quotes the header's value, a platform's token)
        raise Unreachable(type(err).__name__) from None


def _json(raw: bytes) -> Any:
    if not raw or len(raw) > MAX_ANSWER_BYTES:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        return {}


def _left(deadline_at: float) -> float:
    """The seconds left before ``deadline_at``; TimeoutError once there are none."""
    left = deadline_at - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline exceeded")
    return left


class _WithinDeadline(urllib.request.AbstractHTTPHandler):
    """Opens http(s) connections whose every wait is cut to what is left before ``deadline_at``.
    Added to ``direct_opener``'s handlers ahead of urllib's own (lower ``handler_order``), which are
    then never asked; its redirect and proxy handling stay as they are."""

    handler_order = urllib.request.HTTPHandler.handler_order - 1

    def __init__(self, deadline_at: float) -> None:
        super().__init__()
        self.deadline_at = deadline_at

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_Connection, deadline_at=self.deadline_at), req)

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_TLSConnection, deadline_at=self.deadline_at), req)


class _Connection(http.client.HTTPConnection):
    """``http.client``'s connection with a deadline on the whole request: each address's connect
    and the TLS handshake after it get what is left (one wait each), so does each send, and the
    answer (status line, header lines, body) is read through ``_ReadsWithin``. The name lookup
    before the connect cannot be cut; no connect starts after the deadline."""

    def __init__(self, host: str, *, deadline_at: float, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        self.deadline_at = deadline_at
        # http.client's own hooks: its connect calls _create_connection; getresponse builds the
        # answer from response_class(self.sock, ...)
        self._create_connection = self._connect_within
        self.response_class = cast(
            "type[http.client.HTTPResponse]",
            functools.partial(_DeadlineResponse, deadline_at=deadline_at),
        )

    def _connect_within(self, address: tuple[str, int], timeout: object = None,
                        source_address: tuple[str, int] | None = None) -> socket.socket:
        # socket.create_connection gives each address the whole timeout: here the tries share it
        host, port = address
        failure: OSError = ConnectionError("the host has no address")
        for family, kind, proto, _name, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
            wait = _left(self.deadline_at)
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(wait)
                if source_address:
                    sock.bind(source_address)
                sock.connect(sockaddr)
                sock.settimeout(_left(self.deadline_at))  # what the TLS handshake may take
                return sock
            except OSError as err:
                sock.close()
                failure = err
        raise failure

    def send(self, data: Any) -> None:
        if self.sock is None:
            self.connect()
        self.sock.settimeout(_left(self.deadline_at))
        super().send(data)


class _TLSConnection(_Connection, http.client.HTTPSConnection):
    """https: ``HTTPSConnection.connect`` wraps what ``_connect_within`` returned (its handshake
    within what was left); everything else as ``_Connection``."""


class _DeadlineResponse(http.client.HTTPResponse):
    """The answer, read from the socket through ``_ReadsWithin``."""

    def __init__(self, sock: socket.socket, *args: Any, deadline_at: float, **kwargs: Any) -> None:
        # HTTPResponse only calls sock.makefile("rb") to get the file it reads everything from
        super().__init__(cast(socket.socket, _SocketWithin(sock, deadline_at)), *args, **kwargs)


class _SocketWithin:
    """The socket as ``HTTPResponse`` is given it: its file reads within the deadline."""

    def __init__(self, sock: socket.socket, deadline_at: float) -> None:
        self._sock, self._deadline_at = sock, deadline_at

    def makefile(self, mode: str, *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(_ReadsWithin(self._sock, self._deadline_at))


class _ReadsWithin(io.RawIOBase):
    """The socket read one wait at a time, each cut to what is left before the deadline (as
    recording_ingest.fetch reads an MP3's body with read1, here below the header lines too)."""

    def __init__(self, sock: socket.socket, deadline_at: float) -> None:
        super().__init__()
        self._sock, self._deadline_at = sock, deadline_at
        # the socket's own unbuffered file: it keeps the socket open after urllib closes the
        # connection (as HTTPResponse's file would) until the answer is closed
        self._raw = sock.makefile("rb", buffering=0)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        self._sock.settimeout(_left(self._deadline_at))
        return self._raw.readinto(buffer)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()
