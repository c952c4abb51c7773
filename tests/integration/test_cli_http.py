"""The CLI against HTTP answers that are not the calltrack API, and its secret input (127.0.0.1 only)."""

from __future__ import annotations

from tests.support.cli import run_cli
from tests.support.one_answer import OneAnswer


def test_a_url_that_is_not_the_api_is_a_one_line_error_not_a_traceback():
    # Given --url pointing at a web site that answers 200 with HTML
    site = OneAnswer(200, b"<html>welcome</html>", "text/html")
    try:
        result = run_cli("token", "create", "--account", "acme", "--role", "manager", "--token", "t",
                         "--url", site.url)
    finally:
        site.close()
    assert result.exit_code == 1 and "did not answer with JSON" in result.stderr
    assert "Traceback" not in result.output


def test_a_secret_read_from_a_windows_file_loses_its_line_end():
    import json

    api = OneAnswer(200, b'{"name": "ga4", "version": 1, "updated_at": "2026-12-01T00:00:00Z"}',
                   "application/json")
    try:
        result = run_cli("secret", "set", "ga4", "--account", "acme", "--token", "t", "--url", api.url,
                         input="api-secret-value\r\n")
    finally:
        api.close()
    assert result.exit_code == 0, result.output
    assert json.loads(api.got[-1]) == {"value": "api-secret-value"}
