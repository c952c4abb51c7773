"""The local gateway serves the console's build at /console/ (issue 23): redirect, index.html,
content types, the security headers of infra.console_headers, and nothing outside the build."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from calltrack_cli.local import console_static
from calltrack_cli.local.gateway import LocalGateway
from infra.console_headers import CONSOLE_HEADERS, console_headers
from infra.wiring import Wiring

EMPTY = Wiring(functions=(), routes=(), queues=(), streams=())  # type: ignore[arg-type]


@pytest.fixture
def build(tmp_path: Path) -> Path:
    root = tmp_path / "build" / "console"
    (root / "js" / "pages").mkdir(parents=True)
    (root / "css").mkdir()
    (root / "vendor").mkdir()
    (root / "index.html").write_text("<!doctype html><title>calltrack</title>", encoding="utf-8")
    (root / "js" / "app.js").write_text("export const x = 1;\n", encoding="utf-8")
    (root / "js" / "pages" / "calls.js").write_text("export const y = 2;\n", encoding="utf-8")
    (root / "css" / "console.css").write_text("body{margin:0}\n", encoding="utf-8")
    (root / "vendor" / "chart.umd.min.js").write_text("/*! Chart.js */\n", encoding="utf-8")
    (root / ".built").write_text("", encoding="utf-8")
    (tmp_path / "secret.txt").write_text("outside the build", encoding="utf-8")
    return root


def _gateway(root: Path | None) -> LocalGateway:
    return LocalGateway(wiring=EMPTY, bind=False, console_root=root)


def _get(gw: LocalGateway, target: str, method: str = "GET"):
    return gw.dispatch(method, target, [("host", "127.0.0.1:8787")], b"", "127.0.0.1")


def _headers(result) -> dict[str, str]:
    return {k.lower(): v for k, v in result.headers}


def test_console_without_slash_redirects_to_the_directory(build: Path) -> None:
    result = _get(_gateway(build), "/console")
    assert result.status == 301
    assert _headers(result)["location"] == "/console/"


@pytest.mark.parametrize("target", ["/console/", "/console/index.html", "/console/?x=1#/calls"])
def test_the_directory_is_index_html_with_the_security_headers(build: Path, target: str) -> None:
    result = _get(_gateway(build), target)
    assert result.status == 200
    assert result.body.startswith(b"<!doctype html>")
    headers = _headers(result)
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["cache-control"] == "no-cache"
    for name, value in CONSOLE_HEADERS.items():
        if name != "Content-Security-Policy":
            assert headers[name.lower()] == value
    csp = headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp


@pytest.mark.parametrize(
    ("path", "ctype"),
    [
        ("/console/js/app.js", "text/javascript; charset=utf-8"),
        ("/console/js/pages/calls.js", "text/javascript; charset=utf-8"),
        ("/console/css/console.css", "text/css; charset=utf-8"),
        ("/console/vendor/chart.umd.min.js", "text/javascript; charset=utf-8"),
    ],
)
def test_files_are_served_with_their_content_type(build: Path, path: str, ctype: str) -> None:
    result = _get(_gateway(build), path)
    assert result.status == 200
    assert _headers(result)["content-type"] == ctype
    assert _headers(result)["x-content-type-options"] == "nosniff"
    assert result.body == (build / path.removeprefix("/console/")).read_bytes()


def test_head_answers_like_get(build: Path) -> None:
    result = _get(_gateway(build), "/console/js/app.js", method="HEAD")
    assert result.status == 200


@pytest.mark.parametrize(
    "path",
    [
        "/console/../secret.txt",
        "/console/%2e%2e/secret.txt",
        "/console/js/%2e%2e/%2e%2e/secret.txt",
        "/console/..%2fsecret.txt",
        "/console/js/..%5c..%5csecret.txt",
        "/console/%00index.html",
        "/console/.built",
        "/console/js/",
        "/console/js",
        "/console/missing.js",
        "/console//etc/passwd",
        "/console/%2fetc%2fpasswd",
    ],
)
def test_nothing_outside_the_build_and_no_listing(build: Path, path: str) -> None:
    result = _get(_gateway(build), path)
    assert result.status == 404
    assert b"outside the build" not in result.body
    assert "content-security-policy" in _headers(result)


def test_a_symlink_out_of_the_build_is_not_followed(build: Path) -> None:
    os.symlink(build.parent.parent / "secret.txt", build / "js" / "link.js")
    assert _get(_gateway(build), "/console/js/link.js").status == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_only_get_and_head(build: Path, method: str) -> None:
    result = _get(_gateway(build), "/console/", method=method)
    assert result.status == 405
    assert _headers(result)["allow"] == "GET, HEAD"


def test_an_unbuilt_console_is_404_saying_how_to_build_it(tmp_path: Path) -> None:
    result = _get(_gateway(tmp_path / "nothing"), "/console/")
    assert result.status == 404
    assert b"make setup" in result.body


def test_other_paths_are_not_the_consoles(build: Path) -> None:
    assert console_static.serve(build, "GET", "/consoles") is None
    assert console_static.serve(build, "GET", "/v1/calls") is None
    assert _get(_gateway(build), "/consolex/index.html").status == 404  # the API's 404, not a file


def test_the_emulators_origin_may_serve_media_locally(build: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:45123")
    csp = _headers(_get(_gateway(build), "/console/"))["content-security-policy"]
    media = next(d for d in csp.split("; ") if d.startswith("media-src "))
    assert media == "media-src 'self' https://*.amazonaws.com http://127.0.0.1:45123"
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    assert _headers(_get(_gateway(build), "/console/"))["content-security-policy"] == CONSOLE_HEADERS[
        "Content-Security-Policy"
    ]


def test_the_header_dict_is_strict() -> None:
    csp = dict(d.split(" ", 1) for d in CONSOLE_HEADERS["Content-Security-Policy"].split("; "))
    assert csp["default-src"] == "'self'"
    assert csp["script-src"] == "'self'" and csp["style-src"] == "'self'"
    assert csp["object-src"] == "'none'" and csp["base-uri"] == "'none'"
    assert csp["frame-ancestors"] == "'none'"
    assert csp["connect-src"] == "'self'"
    assert CONSOLE_HEADERS["X-Frame-Options"] == "DENY"
    assert CONSOLE_HEADERS["X-Content-Type-Options"] == "nosniff"
    assert CONSOLE_HEADERS["Referrer-Policy"] in ("no-referrer", "same-origin")
    assert CONSOLE_HEADERS["Strict-Transport-Security"].startswith("max-age=")
    assert console_headers() == CONSOLE_HEADERS and console_headers() is not CONSOLE_HEADERS
