"""Twilio's phone-number API and a website, as `calltrack numbers` and `calltrack doctor` meet them.

``serve_twilio_numbers`` is the fake Twilio REST server (``FakeTwilioMedia``, whose ``numbers`` hold
the account's phone numbers) with the CLI pointed at it through ``TWILIO_API_BASE_URL``; a test module
registers it as a fixture. ``TinySite`` serves one HTML page on 127.0.0.1 and answers every POST with
TwiML (a "webhook" that checks no signature).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from calltrack.settings import LOCAL_TWILIO_ACCOUNT_SID
from calltrack_cli.local.fake_twilio import FakeTwilioMedia
from calltrack_cli.twilio_numbers import stack_webhooks

OUR = LOCAL_TWILIO_ACCOUNT_SID


def serve_twilio_numbers(local_stack: Any) -> Iterator[FakeTwilioMedia]:
    """The fake Twilio REST server accepting the stack's account SID + auth token (the CLI reads the
    same TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN), with TWILIO_API_BASE_URL pointed at it."""
    fake = FakeTwilioMedia(credentials=[(OUR, local_stack.twilio_auth_token)]).start()
    saved = os.environ.get("TWILIO_API_BASE_URL")
    os.environ["TWILIO_API_BASE_URL"] = fake.base_url
    try:
        yield fake
    finally:
        if saved is None:
            os.environ.pop("TWILIO_API_BASE_URL", None)
        else:
            os.environ["TWILIO_API_BASE_URL"] = saved
        fake.stop()


def pointing_at(stack: Any) -> dict[str, str]:
    """IncomingPhoneNumber properties of a number correctly pointing at ``stack``."""
    wanted = stack_webhooks(stack.public_url)
    return {
        "voice_url": wanted["VoiceUrl"],
        "voice_method": "POST",
        "status_callback": wanted["StatusCallback"],
        "status_callback_method": "POST",
        "voice_fallback_url": wanted["VoiceFallbackUrl"],
        "voice_fallback_method": "POST",
    }


ELSEWHERE = {
    "voice_url": "https://old-tracker.example.com/voice",
    "voice_method": "GET",
    "status_callback": "",
    "voice_fallback_url": "",
}


class TinySite:
    """One page at ``url`` (``html``, changeable); every POST gets 200 TwiML without any check."""

    def __init__(self, html: str = "") -> None:
        self.html = html
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _send(self, body: str, content_type: str) -> None:
                data = body.encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._send(site.html, "text/html; charset=utf-8")

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._send("<Response><Say>ok</Say></Response>", "text/xml")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
