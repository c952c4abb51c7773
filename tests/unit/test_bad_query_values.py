"""Query values that were read leniently: a yes/no flag that is neither (``?dry_run=on`` applied the
config for real), a date the calendar does not have (``since``, the audit's ``from``/``to``: an empty
answer, as if nothing were there) and a ``/v1/calls`` cursor whose keys DynamoDB refuses (a 500).
Each is a 400 naming the field, before anything is read or written."""

from __future__ import annotations

import json
from typing import Any

import pytest

from call_records.calls import decode_cursor, encode_cursor
from calltrack.api import query_flag
from calltrack.days import parse_instant
from calltrack.errors import BadRequest
from tests.support.events import http_event

# API Gateway joins a repeated parameter with a comma; "true " is ?dry_run=true%20
NEITHER_YES_NOR_NO = ["on", "off", "1,1", "true ", " 1", "y", "2", "tru", "null"]


def _get(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    body = json.loads(event["body"]) if event.get("body") else {}
    return event["statusCode"], body


def _event(method: str, path: str, token: str, query: dict[str, str] | None = None,
           body: dict[str, Any] | None = None) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    event = http_event(method, path, headers=headers, body=json.dumps(body) if body is not None else None)
    if query:
        event["queryStringParameters"] = query
        event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in query.items())
    return event


# ----------------------------------------------------------------------------- the shared flag


@pytest.mark.parametrize(("raw", "expected"), [
    ("1", True), ("true", True), ("YES", True), ("0", False), ("False", False), ("no", False),
    (None, None), ("", None),
])
def test_a_flag_is_yes_no_or_absent(raw: str | None, expected: bool | None) -> None:
    # Given a query flag as API Gateway hands it over, When it is read, Then yes, no, or not given
    assert query_flag(raw, "dry_run") is expected


@pytest.mark.parametrize("raw", NEITHER_YES_NOR_NO)
def test_a_flag_that_is_neither_yes_nor_no_is_a_400_naming_it(raw: str) -> None:
    # Given a flag value that is not one of 1/true/yes/0/false/no
    # When it is read, Then it is a 400 naming the parameter, not a silent "no"
    with pytest.raises(BadRequest) as caught:
        query_flag(raw, "test")
    assert caught.value.field == "test"


# ----------------------------------------------------------------------------- PUT /v1/accounts ?dry_run=


@pytest.fixture
def admin_api(monkeypatch: pytest.MonkeyPatch, operator_token: str) -> Any:
    """The admin function in process, its apply and audit recorded instead of stored."""
    from admin import handler

    applied: list[bool] = []

    def apply_account(principal: Any, account: str, body: Any, store: Any, **kw: Any) -> dict[str, Any]:
        applied.append(kw["dry_run"])
        return {"changed": [], "version": 1}

    monkeypatch.setattr(handler.accounts, "apply_account", apply_account)
    monkeypatch.setattr(handler, "store", lambda: object())
    monkeypatch.setattr(handler.audit, "record", lambda *a, **kw: None)

    def put(dry_run: str | None) -> tuple[int, dict[str, Any]]:
        query = {"dry_run": dry_run} if dry_run is not None else None
        event = _event("PUT", "/v1/accounts/acme", operator_token, query, {"account": "acme"})
        return _get(handler.app.resolve(event, None))  # type: ignore[arg-type]

    return put, applied


@pytest.mark.parametrize("raw", NEITHER_YES_NOR_NO)
def test_a_dry_run_that_is_neither_yes_nor_no_applies_nothing(admin_api: Any, raw: str) -> None:
    put, applied = admin_api
    # Given an operator previewing an account config with ?dry_run=<neither yes nor no>
    # When the config is PUT
    status, body = put(raw)
    # Then it is a 400 naming dry_run, and nothing was applied (it used to be applied for real)
    assert (status, body.get("field")) == (400, "dry_run"), body
    assert applied == []


@pytest.mark.parametrize(("raw", "dry_run"), [("1", True), ("true", True), ("yes", True),
                                              ("0", False), ("", False), (None, False)])
def test_a_dry_run_yes_previews_and_no_or_none_applies(
    admin_api: Any, raw: str | None, dry_run: bool
) -> None:
    put, applied = admin_api
    # Given ?dry_run=yes/no/empty or none, When the config is PUT, Then it is previewed or applied
    status, body = put(raw)
    assert status == 200, body
    assert applied == [dry_run]


def test_a_recording_download_that_is_neither_yes_nor_no_is_a_400_and_grants_nothing(
    monkeypatch: pytest.MonkeyPatch, operator_token: str
) -> None:
    from types import SimpleNamespace

    from calltrack import audit
    from report.handler import app

    sid = "CA" + "a" * 32
    stored = {"status": "stored", "recording_sid": "RE" + "b" * 32, "s3_key": "recordings/acme/x.mp3"}
    the_call = {"call_sid": sid, "account": "acme", "started_at": "2026-11-25T01:02:03Z", "recording": stored}
    granted: list[Any] = []
    monkeypatch.setattr(audit, "record", lambda *a, **kw: granted.append(("audit", a)))
    ports = SimpleNamespace(calls=SimpleNamespace(get=lambda _sid: the_call),
                            accounts=SimpleNamespace(get=lambda _a: SimpleNamespace(timezone="Asia/Tokyo")),
                            presign=lambda *a: granted.append(("url", a)) or "http://s3.local/x")
    for raw, status in (("on", 400), ("1,1", 400), ("1", 200)):
        granted.clear()
        # Given a listener asking for a recording with ?download=<raw>
        event = _event("GET", f"/v1/calls/{sid}/recording", operator_token, {"download": raw})
        app.append_context(ports=ports)
        # When it is answered
        answer, body = _get(app.resolve(event, None))  # type: ignore[arg-type]
        # Then neither yes nor no is a 400 naming download, with no URL granted or audited
        assert answer == status, body
        if status == 400:
            assert body.get("field") == "download" and granted == [], body


# ----------------------------------------------------------------------------- dates the calendar has


@pytest.mark.parametrize("raw", ["2026-02-28", "2026-02-28T23:59", "2026-02-28T23:59:59",
                                 "2026-02-28T23:59:59Z", "2028-02-29"])
def test_an_instant_the_calendar_has_is_read_as_utc(raw: str) -> None:
    assert parse_instant(raw, "since").isoformat().startswith(raw.removesuffix("Z")[:10])


@pytest.mark.parametrize("raw", ["2026-02-30", "2026-13-01", "2026-00-10", "2027-02-29",
                                 "2026-01-01T25:00:00Z", "2026-01-01T23:99:99Z", "2026-01-01T24:00",
                                 "2026-01-01 ", "2026-1-1", "", "yesterday"])
def test_an_instant_the_calendar_lacks_is_a_400_naming_the_field(raw: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_instant(raw, "since")
    assert caught.value.field == "since"


@pytest.mark.parametrize("since", ["2026-02-30", "2026-13-01", "2026-01-01T25:61"])
def test_a_recordings_retry_since_the_calendar_lacks_is_a_400_and_requeues_nothing(
    operator_token: str, since: str
) -> None:
    from types import SimpleNamespace

    from report.handler import app

    asked: list[Any] = []

    def requeue(account: str | None, since: str | None, cursor: str | None) -> dict[str, Any]:
        asked.append(since)
        return {"requeued": 0, "skipped": 0, "next_cursor": None}

    # Given an operator asking to retry an account's recordings since a day the calendar lacks
    event = _event("POST", "/v1/recordings/retry", operator_token, body={"account": "acme", "since": since})
    # When the request is answered
    app.append_context(ports=SimpleNamespace(requeue_recordings=requeue))
    status, body = _get(app.resolve(event, None))  # type: ignore[arg-type]
    # Then it is a 400 naming since (not "requeued 0": nothing would ever have matched)
    assert (status, body.get("field")) == (400, "since"), body
    assert asked == []
    # And a real day is asked for as written (the cursor is bound to the same text)
    event = _event("POST", "/v1/recordings/retry", operator_token,
                   body={"account": "acme", "since": "2026-02-28"})
    app.append_context(ports=SimpleNamespace(requeue_recordings=requeue))
    status, body = _get(app.resolve(event, None))  # type: ignore[arg-type]
    assert status == 200 and asked == ["2026-02-28"], body


@pytest.mark.parametrize(("field", "query"), [
    ("from", {"from": "2026-02-30", "to": "2026-03-01"}),
    ("from", {"from": "2026-13-01", "to": "2027-01-01"}),
    ("to", {"from": "2026-01-01", "to": "2026-01-01T25:99:99Z"}),
    ("to", {"from": "2026-01-01", "to": "2026-04-31"}),
])
def test_an_audit_bound_the_calendar_lacks_is_a_400_naming_it(
    monkeypatch: pytest.MonkeyPatch, operator_token: str, field: str, query: dict[str, str]
) -> None:
    from types import SimpleNamespace

    from calltrack import settings
    from privacy import handler

    read: list[Any] = []
    monkeypatch.setattr(handler.audit, "read", lambda *a, **kw: read.append(a) or [])
    monkeypatch.setattr(handler.runtime, "store", lambda: SimpleNamespace(db=None))
    real = settings.get_settings  # the route's own look-up of the audit table needs no stack
    monkeypatch.setattr(settings, "get_settings",
                        lambda *needs: SimpleNamespace(table_name=str) if needs else real())
    # Given an admin reading the audit log from or to a day the calendar lacks
    event = _event("GET", "/v1/audit", operator_token, {"account": "acme", **query})
    # When the request is answered
    status, body = _get(handler.app.resolve(event, None))  # type: ignore[arg-type]
    # Then it is a 400 naming the bound (not an empty log, as if nobody had done anything)
    assert (status, body.get("field")) == (400, field), body
    assert read == []


def test_audit_bounds_the_calendar_has_are_read_as_before() -> None:
    from privacy.handler import _instant

    assert _instant("from", "2028-02-29") == "2028-02-29T00:00:00Z"
    assert _instant("to", "2026-02-28") == "2026-02-28T23:59:59Z~"
    assert _instant("to", "2026-02-28T12:00:00Z") == "2026-02-28T12:00:00Z"


# ----------------------------------------------------------------------------- the /v1/calls cursor

KEY = {"call_sid": {"S": "CA" + "a" * 32}, "account": {"S": "acme"},
       "started_at": {"S": "2026-11-25T01:02:03Z"}}
BOUNDS = ("2026-11-25T00:00:00", "2026-11-26T00:00:00~")


@pytest.mark.parametrize(("name", "value"), [
    ("call_sid", "CA" + "a" * 63),  # over 64 characters
    ("call_sid", "x" * 3000),  # DynamoDB refuses a hash key over 2,048 bytes: a 500
    ("started_at", "2026-11-25T01:02:03Z" + "x" * 1100),  # a range key over 1,024 bytes: a 500
    ("started_at", "2026-11-25T01:02:03" + "0" * 30 + "Z"),  # within the range, but no timestamp
    ("started_at", "2026-11-25Tzz"),
    ("started_at", "2026-11-25T01:02:03"),  # no Z or offset: no stored call starts so
])
def test_a_cursor_whose_keys_no_call_has_is_a_400_naming_cursor(name: str, value: str) -> None:
    # Given a cursor of this account and date range whose call sid or start no stored call has
    cursor = encode_cursor({**KEY, name: {"S": value}})
    # When it is decoded, Then it is a 400 naming cursor (not a ValidationException from DynamoDB)
    with pytest.raises(BadRequest) as caught:
        decode_cursor(cursor, "acme", BOUNDS)
    assert caught.value.field == "cursor"


def test_a_cursor_of_a_stored_call_still_decodes() -> None:
    # Given cursors as the API returns them (whole and fractional seconds)
    for started_at in ("2026-11-25T01:02:03Z", "2026-11-25T01:02:03.5Z", "2026-11-25T01:02:03+00:00"):
        key = {**KEY, "started_at": {"S": started_at}}
        # When decoded, Then they are the key they carried
        assert decode_cursor(encode_cursor(key), "acme", BOUNDS) == key
