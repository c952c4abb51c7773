"""A webhook receiver on 127.0.0.1 for integration tests: records every request as it arrived and
answers as told (``status``, ``refuse`` to drop the connection, ``redirect_to`` for a 302), after
running ``on_request`` (if set) while the sender waits for the answer."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parents[2] / "README.md"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


@dataclass
class Receiver:
    status: int = 200
    refuse: bool = False  # close the connection without an answer (a receiver that is down)
    redirect_to: str | None = None
    on_request: Callable[[], None] | None = None  # runs before the answer (what happens meanwhile)
    received: list[Received] = field(default_factory=list)
    attempts: int = 0
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        """Bodies of the accepted (2xx) requests, of one type if given."""
        out = [r.json() for r in self.received]
        return [e for e in out if event_type is None or e["type"] == event_type]

    def wait_for_attempts(self, n: int, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.attempts < n:
            assert time.monotonic() < deadline, f"only {self.attempts} attempts reached the receiver"
            time.sleep(0.02)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            receiver.attempts += 1
            if receiver.on_request is not None:
                receiver.on_request()
            if receiver.refuse:
                self.close_connection = True
                self.connection.close()
                return
            if receiver.redirect_to:
                self.send_response(302)
                self.send_header("Location", receiver.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if 200 <= receiver.status < 300:
                receiver.received.append(Received(self.path, dict(self.headers.items()), body))
            self.send_response(receiver.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST  # noqa: N815 - the same answers to a GET (a client fetching keys, a page)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
            return

    return Handler


def serve(receiver: Receiver) -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def readme_verify() -> Callable[[str, str, bytes], bool]:
    """The receiver example of README "Webhooks and CRM", run as written."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Webhooks and CRM"):]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code, "README: no python example in Webhooks and CRM"
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), "README.md", "exec"), namespace)  # noqa: S102 - our own README
    return namespace["verify"]  # type: ignore[no-any-return]
