"""A platform's secret as it is pasted, and the error texts that quote it (2026-12-03 audit).

The adapters are the real ones; only their HTTP ``post`` is replaced by a recorder answering as
the platform's docs say it answers (Meta Graph API error object; Google OAuth token endpoint).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from conversions import http as platform_http
from conversions.destinations import SKIPPED, GoogleAds, Meta
from conversions.rules import plan
from tests.support.conversions import Recorder, call, config

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
META_TOKEN = "EAAGm0PX4ZCpsBAbcdefghijklmnopqrstuvwxyz0123456789"


def planned(destination: str) -> Any:
    return next(p for p in plan(call(), config(), NOW) if p.destination == destination)


def test_metas_error_text_quoting_the_access_token_is_stored_without_it():
    # Given Meta refusing a malformed token with a message that quotes it (code 190)
    post = Recorder(platform_http.Answer(400, {"error": {
        "code": 190, "type": "OAuthException", "message": f"Malformed access token {META_TOKEN}"}}))
    meta = Meta("https://graph.facebook.test", post=post)
    # When the conversion is sent
    [outcome] = meta.send([planned("meta")], META_TOKEN, config().destinations.meta, "Asia/Tokyo")
    # Then it waits for fixed credentials, and its reason (stored on the row, read by marketers)
    # says why without the token
    assert outcome.status == SKIPPED and "190" in outcome.reason
    assert "Malformed access token" in outcome.reason
    assert META_TOKEN not in outcome.reason and META_TOKEN[:24] not in outcome.reason


def test_a_meta_token_pasted_with_a_trailing_line_break_is_sent_without_it():
    post = Recorder(platform_http.Answer(200, {"events_received": 1}))
    [outcome] = Meta("https://graph.facebook.test", post=post).send(
        [planned("meta")], META_TOKEN + "\r\n", config().destinations.meta, "Asia/Tokyo")
    assert outcome.status == "sent"
    assert post.sent[0]["json_body"]["access_token"] == META_TOKEN


def test_a_meta_token_with_a_line_break_inside_is_refused_and_never_sent():
    post = Recorder()
    [outcome] = Meta("https://graph.facebook.test", post=post).send(
        [planned("meta")], "EAAG\nabc", config().destinations.meta, "Asia/Tokyo")
    assert outcome.status == SKIPPED and outcome.reason.startswith("credentials_refused")
    assert post.sent == []


def test_a_google_developer_token_with_a_line_break_is_refused_not_sent_in_a_header():
    # Given a google-ads secret whose developer token ends with a line break inside (as `jq
    # --rawfile` pastes it) and a working OAuth refresh
    secret = ('{"developer_token": "DEV\\nTOKEN", "client_id": "c", "client_secret": "s", '
              '"refresh_token": "r"}')
    post = Recorder(platform_http.Answer(200, {"access_token": "ya29.x", "expires_in": 3600}))
    ads = GoogleAds("https://googleads.test", "https://oauth2.test/token", post=post)
    # When the conversion is sent
    outcomes = ads.send([planned("google_ads")], secret, config().destinations.google_ads, "Asia/Tokyo")
    # Then it is refused as credentials to fix (it stayed pending, and the header's error quoted
    # the token into the logs), and nothing was requested
    assert [o.status for o in outcomes] == [SKIPPED]
    assert "DEV" not in outcomes[0].reason
    assert post.sent == []


def test_a_header_value_the_request_cannot_carry_is_unreachable_without_its_text():
    with pytest.raises(platform_http.Unreachable) as err:
        platform_http.post("http://127.0.0.1:9/x", json_body={}, headers={"developer-token": "SECRET\n"})
    assert "SECRET" not in str(err.value)


def test_an_oversized_answer_is_not_read_whole(monkeypatch):
    # Given a platform answering 2 MB (the unit tier has no sockets: urllib's opener answers here)
    asked: list[int] = []

    class Answer2MB:
        status = 200
        headers: dict[str, str] = {}

        def read(self, size: int = -1) -> bytes:
            asked.append(size)
            body = b'{"a": "' + b"x" * 2_000_000 + b'"}'
            return body if size < 0 else body[:size]

        def __enter__(self) -> Answer2MB:
            return self

        def __exit__(self, *exc: Any) -> None:
            pass

    class Opener:
        def add_handler(self, handler: Any) -> None:
            pass  # post's deadline handler: this opener opens no connection

        def open(self, request: Any, timeout: float) -> Answer2MB:
            return Answer2MB()

    monkeypatch.setattr("calltrack.outbound.direct_opener", lambda: Opener())
    # When it is posted to
    answer = platform_http.post("https://graph.facebook.test/x", json_body={})
    # Then at most the cap (and one byte) was read, the status counts and the body reads as none
    assert asked == [platform_http.MAX_ANSWER_BYTES + 1]
    assert (answer.status, answer.body) == (200, {})
