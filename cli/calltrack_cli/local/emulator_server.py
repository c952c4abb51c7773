"""The embedded AWS emulator's HTTP server: moto's application, with keep-alive connections.

moto's ``ThreadedMotoServer`` serves through Werkzeug's development server, which closes every
connection after its answer ("Connection: close", by design: it cannot drain a request body it did
not read). Every boto3 call of every handler, poller and test then opened a new TCP connection
(a name lookup, a socket, a handshake, a close): profiling a served stack under the demo
(2026-12-03) found about a fifth of the process's busy time there. This server keeps connections
open, as AWS's endpoints do: it reads each request's body whole before the application sees it
(so the next request starts where it should, whatever the application reads), and writes each
answer's head and body in one write with Nagle's algorithm off (two small writes waited 40 ms for
the client's delayed ACK).

``stop()`` also closes the connections still open: a stopped emulator (``LocalStack.stop_emulator``,
the storage-outage tests) must refuse every request, also on a connection a client keeps.
"""

from __future__ import annotations

import io
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

log = logging.getLogger(__name__)
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


def _read_chunked(rfile: Any) -> bytes:
    body = bytearray()
    while True:
        size_line = rfile.readline(65537)
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return bytes(body)
        body += rfile.read(size)
        rfile.readline(65537)  # the chunk's CRLF


def _handler_class(track: Callable[..., None]) -> type:
    """The request handler; ``track(connection, add=...)`` keeps the server's open connections."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class KeepAliveHandler(MotoRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def setup(self) -> None:
            super().setup()
            track(self.connection, add=True)

        def finish(self) -> None:
            try:
                super().finish()
            finally:
                track(self.connection, add=False)

        def run_wsgi(self) -> None:
            # (an "Expect: 100-continue" was answered by http.server's parse_request already)
            chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
            if chunked:
                body = _read_chunked(self.rfile)
            else:
                size = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(size) if size > 0 else b""
            environ = self.make_environ()
            environ["wsgi.input"] = io.BytesIO(body)
            environ["wsgi.input_terminated"] = False
            environ["CONTENT_LENGTH"] = str(len(body))
            environ.pop("HTTP_TRANSFER_ENCODING", None)
            answer: dict[str, Any] = {}

            def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                answer["status"], answer["headers"] = status, headers
                return lambda data: answer.setdefault("written", []).append(data)

            try:
                result = self.server.app(environ, start_response)
                try:
                    chunks = [*answer.get("written", []), *result]
                finally:
                    if hasattr(result, "close"):
                        result.close()
            except Exception:  # noqa: BLE001 - the application's error is the client's 500
                log.exception("emulator request %s %s failed", self.command, self.path)
                answer = {"status": "500 INTERNAL SERVER ERROR", "headers": []}
                chunks = [b"internal emulator error"]
            payload = b"".join(chunks)
            code = int(answer["status"].split(None, 1)[0])
            head = [f"HTTP/1.1 {answer['status']}\r\n"]
            length = None
            for name, value in answer["headers"]:
                if name.lower() == "content-length":
                    length = value
                if name.lower() not in _HOP_BY_HOP:
                    head.append(f"{name}: {value}\r\n")
            no_body = self.command == "HEAD" or code in (204, 304) or 100 <= code < 200
            if not no_body:
                length = str(len(payload))
            if length is not None and code not in (204, 304):
                head.append(f"Content-Length: {length}\r\n")
            if self.close_connection or self.headers.get("Connection", "").lower() == "close":
                self.close_connection = True
                head.append("Connection: close\r\n")
            head.append("\r\n")
            data = "".join(head).encode("latin-1") + (b"" if no_body else payload)
            self.wfile.write(data)

    return KeepAliveHandler


class EmulatorServer:
    """``ThreadedMotoServer``'s interface (start, stop, get_host_and_port) over keep-alive."""

    def __init__(self, ip_address: str = "127.0.0.1", port: int = 0) -> None:
        self._ip_address = ip_address
        self._port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            (self._open.add if add else self._open.discard)(conn)

    def start(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        app = DomainDispatcherApplication(create_backend_app)
        server = make_server(
            self._ip_address, self._port, app, threaded=True, request_handler=_handler_class(self._track)
        )
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="calltrack-emulator", daemon=True)
        self._thread.start()

    def get_host_and_port(self) -> tuple[str, int]:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            conns, self._open = list(self._open), set()
        for conn in conns:  # kept-alive connections would go on being answered
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server = self._thread = None
