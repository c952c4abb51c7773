"""Bad input on the local stack (issue 15): malformed bodies are 4xx before anything parses them
(and 401 first on token-protected routes), ids are matched in full, Twilio requests carry the
parameters every Twilio request has, months are real months, and storage down is a 503."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import unique_call_sid, unique_number, unique_recording_sid
from tests.support.bodies import BAD_BODIES, headers_for
from tests.support.stack import apply_account, tokens
from tests.support.twilio import TWILIO_ACCOUNT_SID, voice_form

# (method, path template, token-protected); {account} and {sid} are filled per test
BODY_ROUTES = [
    ("PATCH", "/v1/calls/{sid}", True),
    ("POST", "/v1/crm/leads", True),
    ("PUT", "/v1/spend", True),
    ("PUT", "/v1/accounts/{account}", True),
    ("POST", "/v1/accounts/{account}/tokens", True),
    ("POST", "/dni/lease", False),
]


@pytest.fixture(scope="module")
def acct(local_stack: Any) -> dict[str, Any]:
    number = unique_number()
    account = apply_account(
        local_stack,
        "bad",
        numbers=[{"number": number, "channel": "flyer", "campaign": "c", "medium": "offline"}],
    )
    return {"account": account, "number": number, **tokens(local_stack, account, "admin")}


def _send(local_stack: Any, method: str, path: str, body: tuple[str | None, bytes], token: str | None) -> Any:
    content_type, raw = body
    return local_stack.session.request(
        method, local_stack.url + path, data=raw, headers=headers_for(content_type, token), timeout=30
    )


def _path(template: str, acct: dict[str, Any]) -> str:
    return template.format(account=acct["account"], sid=unique_call_sid())


@pytest.mark.parametrize("kind", sorted(BAD_BODIES))
@pytest.mark.parametrize(("method", "template", "protected"), BODY_ROUTES)
def test_bad_bodies_without_a_token_are_refused_before_parsing(
    local_stack: Any, acct: dict[str, Any], method: str, template: str, protected: bool, kind: str
) -> None:
    resp = _send(local_stack, method, _path(template, acct), BAD_BODIES[kind], token=None)
    assert resp.status_code < 500, resp.text
    if protected:  # auth comes before the body is read
        assert resp.status_code == 401, resp.text
    else:
        assert 400 <= resp.status_code < 500, resp.text


@pytest.mark.parametrize("kind", sorted(BAD_BODIES))
@pytest.mark.parametrize(("method", "template", "protected"), BODY_ROUTES)
def test_bad_bodies_with_a_valid_token_are_4xx_naming_the_body(
    local_stack: Any, acct: dict[str, Any], method: str, template: str, protected: bool, kind: str
) -> None:
    token = (
        acct["admin"]
        if template.startswith(("/v1/calls", "/v1/crm", "/v1/spend"))
        else local_stack.admin_token
    )
    resp = _send(
        local_stack, method, _path(template, acct), BAD_BODIES[kind], token=token if protected else None
    )
    assert 400 <= resp.status_code < 500, resp.text
    if protected or kind in (
        "nested-json",
        "nested-objects",
        "bad-utf8",
        "huge",
        "not-an-object",
        "not-json",
    ):
        assert resp.json().get("field") == "body", resp.text
    if kind == "huge":
        assert resp.status_code == 413, resp.text
    if protected and kind in ("multipart-no-boundary", "form", "text"):
        assert resp.status_code == 415, resp.text


def test_a_good_body_still_works_after_the_checks(local_stack: Any, acct: dict[str, Any]) -> None:
    resp = local_stack.request(
        "PUT", "/v1/spend", token=acct["admin"], json={"month": "2026-10", "channel": "flyer", "amount": 1000}
    )
    assert resp.status_code == 200, resp.text


# "２０２６-11" (full-width year, as a Japanese IME types it) was stored under a key no month reads
@pytest.mark.parametrize("month", ["0000-01", "1999-12", "2101-01", "2026-13", "2026-10\n", "２０２６-11"])
def test_spend_month_must_be_a_real_month(local_stack: Any, acct: dict[str, Any], month: str) -> None:
    resp = local_stack.request(
        "PUT", "/v1/spend", token=acct["admin"], json={"month": month, "channel": "flyer", "amount": 1}
    )
    assert resp.status_code == 400, resp.text
    assert resp.json()["field"] == "month", resp.text


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("PATCH", "/v1/calls/{sid}", {"tags": ["a;b"]}, "tags.0"),  # the CSV joins tags with ";"
    ("PATCH", "/v1/calls/{sid}", {"agent": "Sato\n=1+1"}, "agent"),  # one line per export row
    ("PATCH", "/v1/callbacks/{sid}", {"status": "done", "agent": "Sato\r"}, "agent"),
    ("PUT", "/v1/spend", {"month": "2026-10", "channel": "google-ads ", "amount": 1}, "channel"),
])
def test_text_that_would_split_a_report_row_or_a_channel_is_refused_naming_the_field(
    local_stack: Any, acct: dict[str, Any], method: str, path: str, body: dict[str, Any], field: str
) -> None:
    # When a value with a line break, a ";" in a tag, or a spend channel with a trailing space (the
    # rollups trim it: two rows, the spend on neither) is sent, Then it is a 400 naming the field
    resp = local_stack.request(method, _path(path, acct), token=acct["admin"], json=body)
    assert resp.status_code == 400 and resp.json()["field"] == field, resp.text


@pytest.mark.parametrize("month", ["0000-01", "2026-10\n"])
def test_review_month_must_be_a_real_month(local_stack: Any, acct: dict[str, Any], month: str) -> None:
    resp = local_stack.request("GET", f"/v1/reviews/{month}", token=acct["admin"])
    assert resp.status_code == 400, resp.text


def _get_call(local_stack: Any, sid: str, token: str) -> Any:
    return local_stack.request("GET", f"/v1/calls/{sid}", token=token)


def test_a_trailing_newline_call_sid_is_refused_and_writes_nothing(
    local_stack: Any, acct: dict[str, Any]
) -> None:
    sid = unique_call_sid()
    resp = local_stack.twilio_post("/twilio/voice", voice_form(acct["number"], call_sid=sid + "\n"))
    assert resp.status_code == 400, resp.text
    assert "CallSid" in resp.text
    local_stack.drain()
    assert _get_call(local_stack, sid, acct["admin"]).status_code == 404
    # the same call without the newline is answered (and is the only row)
    assert (
        local_stack.twilio_post("/twilio/voice", voice_form(acct["number"], call_sid=sid)).status_code == 200
    )


@pytest.mark.parametrize("path", ["/twilio/dial-status", "/twilio/call-status"])
def test_a_trailing_newline_call_sid_on_status_callbacks_is_refused(
    local_stack: Any, acct: dict[str, Any], path: str
) -> None:
    form = {**voice_form(acct["number"]), "DialCallStatus": "completed", "CallStatus": "completed"}
    form["CallSid"] += "\n"
    assert local_stack.twilio_post(path, form).status_code == 400


def test_a_trailing_newline_recording_sid_is_refused(local_stack: Any, acct: dict[str, Any]) -> None:
    form = {
        "AccountSid": TWILIO_ACCOUNT_SID,
        "CallSid": unique_call_sid(),
        "RecordingSid": unique_recording_sid() + "\n",
        "RecordingStatus": "completed",
        "RecordingDuration": "5",
        "RecordingChannels": "2",
    }
    resp = local_stack.twilio_post("/twilio/recording", form)
    assert resp.status_code == 400, resp.text  # refused before it is queued: nothing to dead-letter


@pytest.mark.parametrize("missing", ["To", "From", "CallSid", "AccountSid"])
def test_a_voice_request_without_a_parameter_every_twilio_request_has_is_refused(
    local_stack: Any, acct: dict[str, Any], missing: str
) -> None:
    form = voice_form(acct["number"])
    del form[missing]
    form.pop({"To": "Called", "From": "Caller"}.get(missing, ""), None)
    resp = local_stack.twilio_post("/twilio/voice", form)
    assert resp.status_code == 400, resp.text
    assert missing in resp.text
    if missing != "CallSid":
        local_stack.drain()
        assert _get_call(local_stack, form["CallSid"], acct["admin"]).status_code == 404


@pytest.mark.parametrize(
    ("path", "missing"),
    [
        ("/twilio/dial-status", "CallSid"),
        ("/twilio/call-status", "CallSid"),
        ("/twilio/recording", "RecordingSid"),
    ],
)
def test_callbacks_need_their_ids(local_stack: Any, acct: dict[str, Any], path: str, missing: str) -> None:
    form = {
        **voice_form(acct["number"]),
        "RecordingSid": unique_recording_sid(),
        "RecordingStatus": "completed",
    }
    del form[missing]
    resp = local_stack.twilio_post(path, form)
    assert resp.status_code == 400, resp.text


def test_storage_down_is_a_503_with_retry_after(local_stack: Any, acct: dict[str, Any]) -> None:
    local_stack.stop_emulator()
    try:
        resp = local_stack.request("GET", "/v1/calls", token=acct["admin"])
        assert resp.status_code == 503, resp.text
        assert resp.headers.get("Retry-After"), resp.headers
        assert resp.json()["error"] == "unavailable"
    finally:
        local_stack.start_emulator()
    assert local_stack.request("GET", "/v1/calls", token=acct["admin"]).status_code == 200


def test_spend_in_a_second_currency_is_refused_naming_the_currency(local_stack: Any) -> None:
    # Given an account whose facebook spend is in yen
    account = apply_account(local_stack, "fx", numbers=[{"number": unique_number(), "channel": "flyer"}])
    admin = tokens(local_stack, account, "admin")["admin"]

    def put(channel: str, month: str, amount: int, currency: str) -> Any:
        body = {"month": month, "channel": channel, "amount": amount, "currency": currency}
        return local_stack.request("PUT", "/v1/spend", token=admin, json=body)

    assert put("facebook", "2026-11", 150000, "JPY").status_code == 200
    # When google-ads spend is sent in dollars
    refused = put("google-ads", "2026-11", 1000, "USD")
    # Then it is refused naming the currency (the reports summed it as 151,000 JPY)
    assert refused.status_code == 409 and refused.json()["field"] == "currency", refused.text
    assert "JPY" in refused.json()["message"]
    # And the only row can change currency (replacing it is not mixing)
    assert put("facebook", "2026-11", 1000, "USD").status_code == 200


@pytest.mark.parametrize("dry_run", ["on", "1,1", "true "])
def test_a_dry_run_that_is_neither_yes_nor_no_is_refused_and_applies_nothing(
    local_stack: Any, dry_run: str
) -> None:
    from tests.support import unique_account
    from tests.support.accounts import account_config

    # Given a config for a new account, previewed with a dry_run that is neither yes nor no
    account = unique_account("dry")
    config = account_config(account, numbers=[{"number": unique_number(), "channel": "flyer"}])
    # When it is PUT
    resp = local_stack.request("PUT", f"/v1/accounts/{account}", token=local_stack.admin_token,
                               json=config, params={"dry_run": dry_run})
    # Then it is a 400 naming dry_run and the account was not created (it used to be, for real)
    assert resp.status_code == 400 and resp.json()["field"] == "dry_run", resp.text
    assert local_stack.request("GET", f"/v1/accounts/{account}", token=local_stack.admin_token
                               ).status_code == 404


@pytest.mark.parametrize(("method", "path", "json_body", "field"), [
    ("POST", "/v1/recordings/retry", {"since": "2026-02-30"}, "since"),
    ("POST", "/v1/recordings/retry", {"since": "2026-13-01"}, "since"),
    ("GET", "/v1/audit?from=2026-02-30&to=2026-03-01", None, "from"),
    ("GET", "/v1/audit?from=2026-01-01&to=2026-01-01T25:99:99Z", None, "to"),
])
def test_a_day_the_calendar_lacks_is_refused_naming_the_field(
    local_stack: Any, acct: dict[str, Any], method: str, path: str, json_body: Any, field: str
) -> None:
    # Given an admin asking from a day no calendar has, When it is asked,
    # Then it is a 400 naming the field (not an empty answer: "nothing to retry", "nobody did anything")
    resp = local_stack.request(method, path, token=acct["admin"], json=json_body)
    assert resp.status_code == 400 and resp.json()["field"] == field, resp.text


@pytest.mark.parametrize(("call_sid", "started_at"), [
    ("x" * 3000, "{now}"),  # DynamoDB refuses a hash key over 2,048 bytes
    (None, "{now}" + "x" * 1100),  # ... and a range key over 1,024 bytes
    (None, "{day}Tzz"),  # within the date range, but no time
])
def test_a_calls_cursor_with_keys_no_call_has_is_a_400_naming_cursor(
    local_stack: Any, acct: dict[str, Any], call_sid: str | None, started_at: str
) -> None:
    import base64
    import json
    from datetime import UTC, datetime, timedelta

    # Given a cursor of this account, within today's range, whose keys no stored call could have
    now = datetime.now(UTC) - timedelta(hours=1)
    key = {"call_sid": {"S": call_sid or unique_call_sid()}, "account": {"S": acct["account"]},
           "started_at": {"S": started_at.format(now=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                                 day=now.strftime("%Y-%m-%d"))}}
    cursor = base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")
    # When the next page is asked for, Then it is a 400 naming cursor, not a 500 from DynamoDB
    resp = local_stack.request("GET", "/v1/calls", token=acct["admin"], params={"cursor": cursor})
    assert resp.status_code == 400 and resp.json()["field"] == "cursor", resp.text
