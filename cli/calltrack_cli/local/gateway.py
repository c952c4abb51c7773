"""The local API gateway: HTTP on 127.0.0.1 -> API Gateway HTTP API v2.0 events -> real handlers.

Routes come from a ``Wiring`` (default ``infra.wiring.WIRING``): the same declaration the CDK
stack builds its HTTP API from. A few local-only routes (``/health`` and ``/_local/...``) are
served by the ``LocalControl`` the stack passes in; they exist only here, never in AWS.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from calltrack_cli.local import console_static
from calltrack_cli.local.events import (
    CLOCK_HEADER,
    MAX_BODY_BYTES,
    SOURCE_IP_HEADER,
    HttpResult,
    http_api_event,
    http_response,
    parse_instant,
    route_pattern,
)
from calltrack_cli.local.invoker import Invoker
from infra.wiring import WIRING, Route, Wiring

log = logging.getLogger("calltrack.local")


class LocalControl(Protocol):
    """What the local-only routes call (implemented by LocalStack)."""

    def health(self) -> tuple[bool, dict[str, Any]]: ...

    def drain(self) -> dict[str, Any]: ...

    def run_job(self, name: str, at: str, force: bool = False) -> dict[str, Any]: ...

    def outbox(self) -> list[dict[str, Any]]: ...

    def stop_emulator(self) -> None: ...

    def start_emulator(self) -> None: ...

    def script_transcript(self, call_sid: str, lines: list[Any]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class CompiledRoute:
    route: Route
    pattern: re.Pattern[str]

    @property
    def route_key(self) -> str:
        return f"{self.route.method.upper()} {self.route.path}"

    @property
    def specificity(self) -> tuple[int, int]:
        # API Gateway prefers exact paths over {params}, and {params} over greedy {proxy+}.
        return (self.route.path.count("+}"), self.route.path.count("{"))


def compile_routes(wiring: Wiring) -> list[CompiledRoute]:
    compiled = [CompiledRoute(r, route_pattern(r.path)) for r in wiring.routes]
    return sorted(compiled, key=lambda c: c.specificity)


def match_route(
    routes: list[CompiledRoute], method: str, path: str
) -> tuple[CompiledRoute, dict[str, str]] | None:
    for compiled in routes:
        if compiled.route.method.upper() not in (method.upper(), "ANY"):
            continue
        m = compiled.pattern.match(path)
        if m:
            return compiled, m.groupdict()
    return None


class _Server(ThreadingHTTPServer):
    # socketserver's default listen backlog is 5: a burst of concurrent browsers/webhooks would see
    # connection resets that API Gateway never produces.
    request_queue_size = 256
    daemon_threads = True
    allow_reuse_address = True


def _json(status: int, payload: Any) -> HttpResult:
    return HttpResult(status, [("content-type", "application/json")], json.dumps(payload).encode())


class LocalGateway:
    def __init__(
        self,
        invoker: Invoker | None = None,
        *,
        wiring: Wiring | None = None,
        control: LocalControl | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        bind: bool = True,
        console_root: Path | None = None,
    ) -> None:
        self.wiring = wiring if wiring is not None else (invoker.wiring if invoker else WIRING)
        self.invoker = invoker if invoker is not None else Invoker(self.wiring)
        self.routes = compile_routes(self.wiring)
        self.control = control
        # The manager console's build (build/console in the checkout), served at /console/.
        self.console_root = console_root if console_root is not None else console_static.default_root()
        self._thread: threading.Thread | None = None
        self._server: ThreadingHTTPServer | None = None
        if bind:  # bind now: the port is known (and the public URL can be derived) before start()
            self._server = _Server((host, port), _make_handler(self))

    @property
    def server(self) -> ThreadingHTTPServer:
        if self._server is None:
            raise RuntimeError("this gateway was created with bind=False; use dispatch()")
        return self._server

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        host = self.server.server_address[0]
        return f"http://{host if isinstance(host, str) else host.decode()}:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="calltrack-gateway", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        if self._thread is not None:
            self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    # -- dispatch ---------------------------------------------------------------------------
    def dispatch(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, source_ip: str
    ) -> HttpResult:
        parts = urlsplit(target)
        path = parts.path or "/"
        console = console_static.serve(self.console_root, method.upper(), path)
        if console is not None:
            return console
        local = self._local_route(method, path, parts.query, body)
        if local is not None:
            return local
        found = match_route(self.routes, method, path)
        if found is None:
            return _json(404, {"message": "Not Found"})
        compiled, params = found
        at: float | None = None
        clock = [v for k, v in headers if k.lower() == CLOCK_HEADER]
        if clock:
            try:
                at = parse_instant(clock[-1]).timestamp()
            except ValueError as exc:
                return _json(400, {"message": f"{CLOCK_HEADER}: {exc}"})
            headers = [(k, v) for k, v in headers if k.lower() != CLOCK_HEADER]
        source = [v for k, v in headers if k.lower() == SOURCE_IP_HEADER]
        if source:
            try:
                source_ip = str(ipaddress.ip_address(source[-1].strip()))
            except ValueError:
                return _json(400, {"message": f"{SOURCE_IP_HEADER}: not an IP address"})
            headers = [(k, v) for k, v in headers if k.lower() != SOURCE_IP_HEADER]
        host = next((v for k, v in headers if k.lower() == "host"), "127.0.0.1")
        event = http_api_event(
            method=method,
            raw_path=path,
            raw_query=parts.query,
            headers=headers,
            body=body,
            route_key=compiled.route_key,
            path_parameters=params,
            source_ip=source_ip,
            domain_name=host.split(":", 1)[0],
        )
        try:
            result = self.invoker.invoke(compiled.route.function, event, at=at)
        except Exception:
            log.exception("handler %s raised on %s", compiled.route.function, compiled.route_key)
            return _json(500, {"message": "Internal Server Error"})
        try:
            return http_response(result)
        except Exception:
            log.exception("handler %s returned a malformed response", compiled.route.function)
            return _json(500, {"message": "Internal Server Error"})

    def _local_route(self, method: str, path: str, query: str, body: bytes = b"") -> HttpResult | None:
        if path == "/health" and method == "GET":
            if self.control is None:
                return _json(200, {"status": "ok", "gateway": "up"})
            ok, detail = self.control.health()
            return _json(200 if ok else 503, {"status": "ok" if ok else "degraded", **detail})
        if not path.startswith("/_local/"):
            return None
        if self.control is None:
            return _json(404, {"message": "Not Found"})
        control = self.control
        qs = {k: v[-1] for k, v in parse_qs(query).items()}
        def emulator(up: bool) -> dict[str, str]:
            if up:
                control.start_emulator()
            else:
                control.stop_emulator()
            return {"emulator": "up" if up else "down"}

        actions: dict[tuple[str, str], Callable[[], Any]] = {
            ("POST", "/_local/drain"): control.drain,
            ("GET", "/_local/outbox"): control.outbox,
            ("POST", "/_local/emulator/stop"): lambda: emulator(False),
            ("POST", "/_local/emulator/start"): lambda: emulator(True),
        }
        iam_status = getattr(control, "iam_status", None)  # as-deployed stacks only
        if iam_status is not None:
            actions[("GET", "/_local/iam")] = iam_status
        job = re.fullmatch(r"/_local/jobs/([\w.-]+)", path)
        script = re.fullmatch(r"/_local/transcripts/(CA[0-9a-fA-F]{32})", path)
        try:
            if script and method == "PUT":
                lines = json.loads(body or b"{}").get("lines")
                if not isinstance(lines, list):
                    return _json(400, {"message": "body: {\"lines\": [[speaker, start seconds, text], ...]}"})
                return _json(200, control.script_transcript(script.group(1), lines))
            if job and method == "POST":
                if "at" not in qs:
                    return _json(400, {"message": "query parameter 'at' (ISO 8601) is required"})
                force = qs.get("force", "0").lower() in ("1", "true", "yes")
                return _json(200, control.run_job(job.group(1), qs["at"], force))
            action = actions.get((method, path))
            if action is None:
                return _json(404, {"message": "Not Found"})
            return _json(200, action())
        except (KeyError, ValueError) as exc:
            message = exc.args[0] if exc.args else str(exc)
            return _json(400, {"message": str(message)})
        except TimeoutError as exc:  # a drain still busy also says what it did meanwhile
            records = getattr(exc, "records", None)
            return _json(504, {"message": str(exc), **({"records": records} if records is not None else {})})
        except Exception as exc:
            log.exception("local route %s %s failed", method, path)
            return _json(500, {"message": f"{type(exc).__name__}: {exc}"})


def _make_handler(gateway: LocalGateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "calltrack-local"
        # The head and the body go out as two writes: with Nagle's algorithm on, the body waited
        # for the client's delayed ACK of the head, 40 ms on every keep-alive request (2026-12-03)
        disable_nagle_algorithm = True

        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_BODY_BYTES:
                self._send(_json(413, {"message": "Request Entity Too Large"}), close=True)
                return
            body = self.rfile.read(length) if length else b""
            headers = [(k, v) for k, v in self.headers.items()]
            result = gateway.dispatch(self.command, self.path, headers, body, self.client_address[0])
            try:
                self._send(result)
            except (BrokenPipeError, ConnectionResetError):
                # the client went away before its answer (a browser leaving the page, a timed-out
                # test client): the request was handled; there is nobody to answer
                self.close_connection = True

        def _send(self, result: HttpResult, close: bool = False) -> None:
            self.send_response(result.status)
            has_ctype = False
            for name, value in result.headers:
                if name.lower() in ("content-length", "connection", "transfer-encoding"):
                    continue
                has_ctype = has_ctype or name.lower() == "content-type"
                self.send_header(name, value)
            self.send_header("apigw-requestid", str(uuid.uuid4()))
            self.send_header("content-length", str(len(result.body)))
            if close:
                self.send_header("connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(result.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _handle

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            log.debug("%s - %s", self.address_string(), format % args)

    return Handler
