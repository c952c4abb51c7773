"""A small fake Twilio media server for the local stack, the demo and the tests.

Serves ``GET /2010-04-01/Accounts/{AccountSid}/Recordings/{RecordingSid}.mp3`` with an HTTP
Basic auth check, and ``DELETE .../Recordings/{RecordingSid}(.json)``, like Twilio's REST API.
Faults are programmable per recording and consumed one per media GET, in order:

- ``"timeout"``   hold the connection without answering (``hang_seconds``), then close it
- ``"500"``, ``"503"``, ``"404"``, ``"429"``  answer that status (404 = "not ready yet")
- ``"truncate"``  announce the full Content-Length, send half the body, close the connection
- ``"empty"``     200 with an empty body;  ``"html"``  200 text/html that is not an MP3
- ``"redirect"``  302 to the same file on a *second* server (another host:port, like Twilio's
  redirect to a storage host); that server needs no credentials and logs whether any arrived.

Every request is logged (``requests``) with the Authorization header, so tests can assert
"fetched once, with Basic auth, never leaked to the redirect host".

It also lists recordings as Twilio's Recordings API does:
``GET /2010-04-01/Accounts/{AccountSid}/Recordings.json?CallSid=CA…`` (Basic auth as for media, 401
otherwise or for another account's path; 400 for a malformed CallSid) answers
``{"recordings": [{"sid", "call_sid", "status", "duration", "channels", "date_created", …}], "page",
"page_size", "next_page_uri", …}`` with the recordings registered by ``list_recording`` (and
``fail(call_sid, "500")`` faults its next list requests for that call, as for media).

And Twilio's phone-number resources (IncomingPhoneNumbers list / fetch / update / purchase / release,
AvailablePhoneNumbers search), with the same Basic auth check, through ``numbers``
(``fake_twilio_numbers.FakePhoneNumbers``: stock numbers to buy, hold numbers configured elsewhere).
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from calltrack_cli.local.fake_twilio_numbers import ANY_PATH as _NUMBERS_PATH
from calltrack_cli.local.fake_twilio_numbers import FakePhoneNumbers
from calltrack_cli.local.mp3 import silent_mp3

_API_PATH = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>AC[0-9a-fA-F]{32})/Recordings/(?P<sid>RE[0-9a-fA-F]{32})(?P<ext>\.mp3|\.wav|\.json)?$"
)
_LIST_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Recordings\.json$")
_ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
_CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
_MEDIA_PATH = re.compile(r"^/media/(?P<sid>RE[0-9a-fA-F]{32})\.mp3$")


@dataclass(frozen=True)
class LoggedRequest:
    server: str  # "api" or "media" (the redirect target host)
    method: str
    path: str
    authorization: str | None
    status: int

    @property
    def recording_sid(self) -> str | None:
        match = re.search(r"(RE[0-9a-fA-F]{32})", self.path)
        return match.group(1) if match else None


@dataclass
class _Recording:
    account_sid: str
    body: bytes
    content_type: str
    deleted: bool = False


class FakeTwilioMedia:
    """Start with ``start()`` (or as a context manager); ``base_url`` is TWILIO_API_BASE_URL."""

    def __init__(
        self,
        *,
        credentials: Iterable[tuple[str, str]] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        hang_seconds: float = 5.0,
        serve_any: bool = False,
    ) -> None:
        self.credentials = set(credentials)
        self.serve_any = serve_any  # demo: any RecordingSid gets a silent MP3
        self.hang_seconds = hang_seconds
        self.requests: list[LoggedRequest] = []
        self._recordings: dict[str, _Recording] = {}
        self._faults: dict[str, list[str]] = {}
        self._listed: list[dict[str, Any]] = []  # recording resources, as the list API answers them
        self.numbers = FakePhoneNumbers()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._api = ThreadingHTTPServer((host, port), self._handler_class("api"))
        self._media = ThreadingHTTPServer((host, 0), self._handler_class("media"))
        self._api.daemon_threads = self._media.daemon_threads = True
        self._threads: list[threading.Thread] = []

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        host, port = self._api.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def media_base_url(self) -> str:
        host, port = self._media.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeTwilioMedia:
        for server in (self._api, self._media):
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-twilio", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopping.set()
        for server in (self._api, self._media):
            server.shutdown()
            server.server_close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- programming -------------------------------------------------------------------------
    def allow(self, username: str, password: str) -> None:
        with self._lock:
            self.credentials.add((username, password))

    def add_recording(
        self,
        account_sid: str,
        recording_sid: str,
        body: bytes | None = None,
        *,
        content_type: str = "audio/mpeg",
    ) -> bytes:
        """Serve ``body`` (default: one second of MP3 silence) for this recording; returns it."""
        data = silent_mp3(1.0) if body is None else body
        with self._lock:
            self._recordings[recording_sid] = _Recording(account_sid, data, content_type)
        return data

    def list_recording(
        self,
        account_sid: str,
        call_sid: str,
        recording_sid: str,
        *,
        status: str = "completed",
        duration: int = 7,
        channels: int = 2,
        source: str = "DialVerb",
        created: datetime | None = None,
    ) -> None:
        """Let the Recordings API list this recording for ``call_sid`` (its media: ``add_recording``)."""
        when = format_datetime((created or datetime.now(UTC)).astimezone(UTC), usegmt=False)
        uri = f"/2010-04-01/Accounts/{account_sid}/Recordings/{recording_sid}.json"
        resource = {
            "account_sid": account_sid, "api_version": "2010-04-01", "call_sid": call_sid,
            "conference_sid": None, "date_created": when, "date_updated": when, "start_time": when,
            "duration": str(duration), "sid": recording_sid, "price": None, "price_unit": "USD",
            "status": status, "channels": channels, "source": source, "error_code": None, "uri": uri,
            "encryption_details": None,
            "subresource_uris": {"transcriptions": uri.replace(".json", "/Transcriptions.json")},
            "media_url": f"{self.base_url}{uri.removesuffix('.json')}",
        }
        with self._lock:
            self._listed = [r for r in self._listed if r["sid"] != recording_sid] + [resource]

    def listings(self, call_sid: str) -> list[LoggedRequest]:
        """The Recordings list requests filtered by this CallSid, in order."""
        with self._lock:
            return [
                r
                for r in self.requests
                if r.method == "GET" and r.server == "api" and _LIST_PATH.match(urlsplit(r.path).path)
                and parse_qs(urlsplit(r.path).query).get("CallSid") == [call_sid]
            ]

    def fail(self, recording_sid: str, *faults: str) -> None:
        """Queue faults for the next media GETs of this recording (one consumed per GET), or with a
        CallSid for the next Recordings list requests filtered by that call."""
        with self._lock:
            self._faults.setdefault(recording_sid, []).extend(faults)

    def fetches(self, recording_sid: str, server: str = "api") -> list[LoggedRequest]:
        with self._lock:
            return [
                r
                for r in self.requests
                if r.method == "GET" and r.server == server and r.recording_sid == recording_sid
            ]

    def is_deleted(self, recording_sid: str) -> bool:
        with self._lock:
            rec = self._recordings.get(recording_sid)
            return bool(rec and rec.deleted)

    # -- serving -----------------------------------------------------------------------------
    def _authorized(self, header: str | None, account_sid: str | None = None) -> bool:
        """Known Basic credentials; with ``account_sid``, an account SID username must be that
        account's (an API key, ``SK…``, stands for the account it was created in)."""
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        if account_sid is not None and user.startswith("AC") and user != account_sid:
            return False
        with self._lock:
            return (user, password) in self.credentials

    def _page(self, account_sid: str, query: dict[str, list[str]]) -> dict[str, Any]:
        call_sid = query["CallSid"][0] if query.get("CallSid") else None
        try:
            size = max(1, min(1000, int((query.get("PageSize") or ["50"])[0])))
        except ValueError:
            size = 50
        with self._lock:
            found = [
                dict(r) for r in self._listed
                if r["account_sid"] == account_sid and (call_sid is None or r["call_sid"] == call_sid)
                and not (self._recordings.get(r["sid"]) and self._recordings[r["sid"]].deleted)
            ]
        page = found[:size]
        params = f"?CallSid={call_sid}&PageSize={size}" if call_sid else f"?PageSize={size}"
        uri = f"/2010-04-01/Accounts/{account_sid}/Recordings.json{params}"
        return {
            "recordings": page, "page": 0, "page_size": size, "start": 0, "end": max(len(page) - 1, 0),
            "uri": f"{uri}&Page=0", "first_page_uri": f"{uri}&Page=0",
            "next_page_uri": f"{uri}&Page=1&PageToken=PA{size}" if len(found) > size else None,
            "previous_page_uri": None,
        }

    def _next_fault(self, sid: str) -> str | None:
        with self._lock:
            queue = self._faults.get(sid)
            return queue.pop(0) if queue else None

    def _handler_class(self, server_name: str) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "FakeTwilio/1.0"

            def log_message(self, format: str, *args: Any) -> None:
                return  # keep test output quiet; requests are in fake.requests

            def _log(self, status: int) -> None:
                with fake._lock:
                    fake.requests.append(
                        LoggedRequest(
                            server_name, self.command, self.path, self.headers.get("Authorization"), status
                        )
                    )

            def _send(self, status: int, body: bytes = b"", content_type: str = "application/json") -> None:
                self._log(status)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                if status == 401:
                    self.send_header("WWW-Authenticate", 'Basic realm="Twilio API"')
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _hang(self) -> None:
                """Accept and never answer (until the server stops): a client-side timeout."""
                self._log(0)
                fake._stopping.wait(fake.hang_seconds)
                self.close_connection = True

            def _serve_media(self, rec: _Recording, sid: str) -> None:
                fault = fake._next_fault(sid)
                if fault == "timeout":
                    self._hang()
                    return
                if fault and fault.isdigit():
                    self._send(int(fault), b'{"code": 20404, "message": "fault"}')
                    return
                if fault == "redirect":
                    self._log(302)
                    self.send_response(302)
                    self.send_header("Location", f"{fake.media_base_url}/media/{sid}.mp3")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if fault == "empty":
                    self._send(200, b"", rec.content_type)
                    return
                if fault == "html":
                    self._send(200, b"<html><body>not audio</body></html>", "text/html")
                    return
                if fault == "drip":
                    # the whole body, a little at a time, each gap shorter than any socket timeout:
                    # only a deadline on the whole download ends it early
                    self._log(200)
                    self.send_response(200)
                    self.send_header("Content-Type", rec.content_type)
                    self.send_header("Content-Length", str(len(rec.body)))
                    self.end_headers()
                    step = max(1, len(rec.body) // 40)
                    try:
                        for i in range(0, len(rec.body), step):
                            self.wfile.write(rec.body[i : i + step])
                            self.wfile.flush()
                            if fake._stopping.wait(0.25):
                                break
                    except OSError:
                        pass  # the client gave up
                    self.close_connection = True
                    return
                if fault == "truncate":
                    self._log(200)
                    self.send_response(200)
                    self.send_header("Content-Type", rec.content_type)
                    self.send_header("Content-Length", str(len(rec.body)))
                    self.end_headers()
                    self.wfile.write(rec.body[: len(rec.body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self._send(200, rec.body, rec.content_type)

            def _serve_list(self, account_sid: str) -> None:
                if not _ACCOUNT_SID.fullmatch(account_sid):
                    self._send(404, b'{"code": 20404, "message": "The requested resource was not found"}')
                    return
                if not fake._authorized(self.headers.get("Authorization"), account_sid):
                    self._send(401, b'{"code": 20003, "message": "Authenticate", "status": 401}')
                    return
                query = parse_qs(urlsplit(self.path).query, keep_blank_values=True)
                call_sids = query.get("CallSid")
                if call_sids is not None and (len(call_sids) != 1 or not _CALL_SID.fullmatch(call_sids[0])):
                    self._send(400, b'{"code": 20001, "message": "Invalid CallSid", "status": 400}')
                    return
                fault = fake._next_fault(call_sids[0]) if call_sids else None
                if fault == "timeout":
                    self._hang()
                    return
                if fault and fault.isdigit():
                    self._send(int(fault), json.dumps({"code": 20500, "message": "fault",
                                                       "status": int(fault)}).encode())
                    return
                self._send(200, json.dumps(fake._page(account_sid, query)).encode())

            def _serve_numbers(self) -> None:
                """IncomingPhoneNumbers / AvailablePhoneNumbers: Basic auth for the path's account,
                then the form (POST) handed to the phone-number state."""
                account = self.path.split("/")[3] if self.path.count("/") >= 3 else ""
                if not _ACCOUNT_SID.fullmatch(account):
                    self._send(404, b'{"code": 20404, "message": "The requested resource was not found"}')
                    return
                if not fake._authorized(self.headers.get("Authorization"), account):
                    self._send(401, b'{"code": 20003, "message": "Authenticate", "status": 401}')
                    return
                form: dict[str, list[str]] = {}
                if self.command == "POST":
                    length = int(self.headers.get("Content-Length") or 0)
                    raw = self.rfile.read(length).decode("utf-8") if length else ""
                    form = parse_qs(raw, keep_blank_values=True)
                status, body = fake.numbers.handle(self.command, self.path, form)
                if status == 0:  # a lost reply: no answer at all
                    self.close_connection = True
                    return
                self._send(status, json.dumps(body).encode() if body is not None else b"")

            def _numbers_path(self) -> bool:
                return server_name == "api" and bool(_NUMBERS_PATH.match(self.path.split("?", 1)[0]))

            def do_POST(self) -> None:
                if self._numbers_path():
                    self._serve_numbers()
                    return
                self._send(404, b'{"message": "no such resource"}')

            def do_GET(self) -> None:
                if self._numbers_path():
                    self._serve_numbers()
                    return
                path = self.path.split("?", 1)[0]
                listing = _LIST_PATH.match(path) if server_name == "api" else None
                if listing:
                    self._serve_list(listing.group("account"))
                    return
                if server_name == "media":
                    m = _MEDIA_PATH.match(path)
                    rec = fake._recordings.get(m.group("sid")) if m else None
                    if not m or rec is None or rec.deleted:
                        self._send(404, b'{"message": "not found"}')
                    else:
                        self._send(200, rec.body, rec.content_type)
                    return
                m = _API_PATH.match(path)
                if not m:
                    self._send(404, b'{"message": "no such resource"}')
                    return
                if not fake._authorized(self.headers.get("Authorization")):
                    self._send(401, b'{"code": 20003, "message": "Authenticate"}')
                    return
                sid = m.group("sid")
                rec = fake._recordings.get(sid)
                if rec is None and fake.serve_any:
                    fake.add_recording(m.group("account"), sid)
                    rec = fake._recordings.get(sid)
                if rec is None or rec.deleted or rec.account_sid != m.group("account"):
                    self._send(404, b'{"code": 20404, "message": "not found"}')
                    return
                if m.group("ext") == ".json":
                    self._send(200, json.dumps({"sid": sid, "status": "completed"}).encode())
                    return
                self._serve_media(rec, sid)

            def do_DELETE(self) -> None:
                if self._numbers_path():
                    self._serve_numbers()
                    return
                m = _API_PATH.match(self.path.split("?", 1)[0]) if server_name == "api" else None
                if not m:
                    self._send(404, b'{"message": "no such resource"}')
                    return
                if not fake._authorized(self.headers.get("Authorization")):
                    self._send(401, b'{"code": 20003, "message": "Authenticate"}')
                    return
                with fake._lock:
                    rec = fake._recordings.get(m.group("sid"))
                    found = rec is not None and not rec.deleted and rec.account_sid == m.group("account")
                    if found and rec is not None:
                        rec.deleted = True
                self._send(204 if found else 404)

        return Handler


def main() -> None:  # pragma: no cover - manual/demo use
    """``python -m calltrack_cli.local.fake_twilio --port 8789``: serve until Ctrl-C.

    Accepts TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN (local defaults) as credentials and serves a
    one-second silent MP3 for any recording SID requested under that account. Its phone-number
    API has ``--stock`` Japanese 050 numbers (+8150 0000 0000 ...) and as many US 415 numbers to
    search and buy (Japanese ones, as at Twilio, only with a BundleSid and an AddressSid).
    """
    import argparse
    import os

    from calltrack.settings import LOCAL_TWILIO_ACCOUNT_SID, LOCAL_TWILIO_AUTH_TOKEN

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=8789)
    parser.add_argument("--stock", type=int, default=20, help="available numbers per country (JP, US)")
    args = parser.parse_args()
    sid = os.environ.get("TWILIO_ACCOUNT_SID", LOCAL_TWILIO_ACCOUNT_SID)
    token = os.environ.get("TWILIO_AUTH_TOKEN", LOCAL_TWILIO_AUTH_TOKEN)
    from calltrack.twilio_edge import auth_tokens

    # both tokens of a rotation ("<new> <old>") authenticate REST requests, as at Twilio
    fake = FakeTwilioMedia(credentials=[(sid, t) for t in auth_tokens(token)], port=args.port, serve_any=True)
    fake.numbers.add_available("JP", [f"+8150{i:08d}" for i in range(args.stock)], locality="Tokyo")
    fake.numbers.add_available("US", [f"+1415555{i:04d}" for i in range(args.stock)], locality="SF")
    fake.start()
    print(f"fake Twilio server at {fake.base_url} (recordings, phone numbers)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
