"""dni.js: small, in sync with its source, served with the right headers; the handler's edges."""

from __future__ import annotations

import json
import re

import pytest

from calltrack_cli.dni_js import MAX_BYTES, minify, paths
from tests.support.events import http_event, lambda_context

SOURCE, MINIFIED = paths()


def test_minified_script_is_under_its_budget_and_matches_its_source():
    text = MINIFIED.read_text(encoding="utf-8")
    assert len(text.encode("utf-8")) < MAX_BYTES
    assert text == minify(SOURCE.read_text(encoding="utf-8")), (
        "functions/dni_lease/static/dni.min.js is stale: run `make dni-js` "
        "(.venv/bin/python -m calltrack_cli.dni_js) and commit it"
    )


def test_the_function_serves_the_committed_minified_file():
    from dni_lease import script

    assert script.MINIFIED.resolve() == MINIFIED.resolve()


def test_minifier_keeps_literals_renames_locals_and_writes_ascii():
    # Given a script shaped like dni.js (one function) with comments, literals and a local name
    literals = ["'a, b: c'", "'x // y'", "/[a-z]+ \\/ ,/g", "`x ${ a } , y`", "'/* not a comment */'"]
    src = (
        "// a line comment\n"
        "(function () {\n"
        f"  var someLongLocalName = {literals[0]};  /* a block comment */\n"
        f"  window.keep(someLongLocalName, \"x // y\", {literals[2]}, {literals[3]}, {literals[4]},"
        " '\uff10\u30fc');\n"
        "})();\n"
    )
    # When it is minified
    out = minify(src)
    # Then every literal keeps its value (single quotes, as the source writes them), comments and
    # the local name are gone, and the full-width text is written as ASCII escapes
    for literal in literals:
        assert literal.replace("${ a }", "${a}") in out, (literal, out)
    assert "line comment" not in out and "a block comment" not in out
    assert "someLongLocalName" not in out
    assert out.isascii() and "\\uff10\\u30fc" in out.lower()
    assert len(out) < len(src)


def test_minifier_keeps_every_string_literal_of_the_real_script():
    literal = re.compile(r"'(?:[^'\\\n]|\\.)*'")
    src = SOURCE.read_text(encoding="utf-8")
    src_no_comments = re.sub(r"/\*[\s*].*?\*/", "", src, flags=re.S)
    src_no_comments = re.sub(r"^\s*//.*$", "", src_no_comments, flags=re.M)
    assert set(literal.findall(MINIFIED.read_text(encoding="utf-8"))) == set(literal.findall(src_no_comments))


def test_get_script_is_javascript_and_cacheable_with_etag():
    from dni_lease.handler import handler

    resp = handler(http_event("GET", "/dni.js"), lambda_context("dni_lease"))
    assert resp["statusCode"] == 200
    headers = {k.lower(): v for k, v in resp["headers"].items()}
    assert headers["content-type"].startswith("application/javascript")
    assert "max-age" in headers["cache-control"]
    again = handler(
        http_event("GET", "/dni.js", headers={"if-none-match": headers["etag"]}), lambda_context("dni_lease")
    )
    assert again["statusCode"] == 304


def test_preflight_reflects_the_origin():
    from dni_lease.handler import handler

    preflight = http_event("OPTIONS", "/dni/lease", headers={"origin": "https://acme.example.jp"})
    resp = handler(preflight, lambda_context("dni_lease"))
    headers = {k.lower(): v for k, v in resp["headers"].items()}
    assert resp["statusCode"] == 204
    assert headers["access-control-allow-origin"] == "https://acme.example.jp"
    assert "POST" in headers["access-control-allow-methods"]


def test_service_rejects_disallowed_origin_and_rate_limits(monkeypatch):
    import pytest

    from calltrack.errors import Forbidden, NotFound, TooManyRequests
    from dni_lease import service
    from tests.support.accounts import InMemoryAccounts, account_config
    from tests.support.lease_store import InMemoryLeaseStore

    accounts = InMemoryAccounts(
        {"acme": account_config("acme", site={"origins": ["https://acme.example.jp"], "numbers": []})}
    )
    limits = service.Limits()
    raw = json.dumps({"account": "acme", "visitor_id": "visitor-0001", "session_id": "session-0001"})
    kw = {"store": InMemoryLeaseStore(), "accounts": accounts, "limits": limits, "now": 1000.0}
    with pytest.raises(Forbidden):
        service.handle_lease(raw, origin="https://evil.example", source_ip="1.2.3.4", **kw)
    assert (
        service.handle_lease(raw, origin="https://acme.example.jp", source_ip="1.2.3.4", **kw)["number"]
        is None
    )
    with pytest.raises(NotFound):
        service.handle_lease(raw.replace('"acme"', '"nope"'), origin=None, source_ip="1.2.3.4", **kw)
    with pytest.raises(TooManyRequests) as err:
        for _ in range(100):
            service.handle_lease(raw, origin="https://acme.example.jp", source_ip="1.2.3.4", **kw)
    assert err.value.field == "visitor_id"


def test_a_visitor_switching_tabs_is_not_refused_a_lease_for_the_releases_it_sent():
    from calltrack.errors import TooManyRequests
    from dni_lease import service
    from dni_lease.ratelimit import VISITOR_BURST
    from tests.support.accounts import InMemoryAccounts, account_config
    from tests.support.lease_store import InMemoryLeaseStore

    # Given a visitor whose two tabs release and lease the number on every switch, one a second
    cfg = account_config("acme", site={"origins": [], "numbers": ["+81312345678"]},
                         pools=[{"id": "g", "channel": "direct", "numbers": ["+815022220001"]}])
    kw = {"store": InMemoryLeaseStore(), "accounts": InMemoryAccounts({"acme": cfg}),
          "limits": service.Limits(), "origin": None, "source_ip": "198.51.100.7"}
    ids = {"account": "acme", "visitor_id": "visitor-tabs", "session_id": "session-tabs"}
    got = service.handle_lease(json.dumps(ids), now=1000.0, **kw)
    for switch in range(VISITOR_BURST + 10):
        gone = {**ids, "number": got["number"], "lease_id": got["lease_id"], "release": True}
        assert service.handle_lease(json.dumps(gone), now=1001.0 + switch, **kw) == {"released": True}
        # When the tab shown next asks for the number again
        got = service.handle_lease(json.dumps({**ids, "number": got["number"]}), now=1001.5 + switch, **kw)
        # Then it gets it: only its leases count against the visitor's 30 a minute
        assert got["lease_id"] and got["number"] == "+815022220001"
    # And leases alone are still limited
    with pytest.raises(TooManyRequests):
        for _ in range(VISITOR_BURST + 1):
            service.handle_lease(json.dumps(ids), now=1100.0, **kw)


def test_one_address_may_make_300_leases_a_minute_but_not_unlimited():
    from dni_lease.ratelimit import IP_BURST, IP_PER_MINUTE, RateLimiter

    limiter = RateLimiter(IP_PER_MINUTE, IP_BURST)
    assert all(limiter.allow("203.0.113.9", 1000.0 + i * 0.2) for i in range(300))  # 300 in one minute
    assert not all(limiter.allow("203.0.113.9", 1060.0) for _ in range(IP_BURST + 1))
    assert limiter.allow("203.0.113.10", 1060.0)  # other addresses unaffected
