"""`calltrack verify --number`: which test calls a number as written names (the API's answer is
recorded: the unit tier has no sockets)."""

from __future__ import annotations

from typing import Any

from tests.support.cli import run_cli

NEW_YORK = {"tracking_number": "+12125550100", "status": "answered", "started_at": "2026-12-01T15:00:00Z",
            "channel": "flyer"}
TOKYO = {"tracking_number": "+815012340001", "status": "missed", "started_at": "2026-12-01T01:00:00Z",
         "channel": "flyer"}


def _api(monkeypatch: Any, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    asked: list[dict[str, Any]] = []

    def answer(method: str, url: str, token: str, body: Any, params: Any = None) -> dict[str, Any]:
        asked.append(dict(params or {}))
        return {"items": items}

    monkeypatch.setattr("calltrack_cli.admin_cmds._request", answer)
    return asked


def test_a_national_number_is_read_in_the_tracking_numbers_own_country(monkeypatch):
    # Given a New York account's test call that was answered, and a Tokyo one that was not
    _api(monkeypatch, [NEW_YORK, TOKYO])
    # When the New York number is given as its people write it (it was read as Japanese: +81212...)
    result = run_cli("verify", "--number", "(212) 555-0100", "--token", "t", "--url", "http://127.0.0.1:9")
    # Then its call is found and reached
    assert result.exit_code == 0, result.output
    assert "reached" in result.stdout and "NOT" not in result.stdout
    # And the Tokyo number, national or E.164, finds only its own call
    for written in ("050-1234-0001", "+81 50 1234 0001"):
        result = run_cli("verify", "--number", written, "--token", "t", "--url", "http://127.0.0.1:9")
        assert result.exit_code == 2 and "NOT reached (missed)" in result.stdout


def test_the_operator_token_names_the_account(monkeypatch):
    asked = _api(monkeypatch, [NEW_YORK])
    result = run_cli("verify", "--number", "+12125550100", "--account", "acme-ny", "--token", "t",
                     "--url", "http://127.0.0.1:9")
    assert result.exit_code == 0, result.output
    assert asked[0]["account"] == "acme-ny" and asked[0]["test"] == "1"
