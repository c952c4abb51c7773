"""The voice webhook over the local stack with Twilio-signed requests (issue 3, "Done when")."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse
from xml.etree import ElementTree as ET

import pytest

from calltrack.twilio_edge import sign
from tests.support import unique_account, unique_call_sid, unique_number, unique_recording_sid
from tests.support.accounts import account_config
from tests.support.stack import tokens
from tests.support.twilio import dial_of, voice_form

FORWARD = "+81312345678"


def dental_config(account: str, static: str, pool: list[str], **over: Any) -> dict[str, Any]:
    """A Japanese clinic: recording, a whisper, a newspaper number and a google-ads pool."""
    config = account_config(
        account,
        name="テスト歯科",
        language="ja-JP",
        forward_to=FORWARD,
        ring_timeout=25,
        recording={"enabled": True, "announcement": "この通話は録音されます。"},
        whisper="{channel}からのお電話です",
        numbers=[
            {"number": static, "channel": "newspaper", "campaign": "2026-12-insert", "medium": "offline"}
        ],
        pools=[
            {
                "id": "google-ads",
                "channel": "google-ads",
                "campaign": "implant-search",
                "medium": "cpc",
                "match": {"utm_source": "google", "click_ids": ["gclid"]},
                "numbers": pool,
            }
        ],
    )
    config.update(over)
    return config


@pytest.fixture(scope="module")
def acct(local_stack) -> dict[str, Any]:
    account = unique_account("voice")
    static, pool = unique_number(), [unique_number(), unique_number()]
    local_stack.apply(dental_config(account, static, pool))
    return {
        "account": account,
        "static": static,
        "pool": pool,
        **tokens(local_stack, account, "manager", "marketer"),
    }


def voice(local_stack, to: str, caller: str | None = None, sid: str | None = None, **extra: str):
    params = voice_form(to, caller=caller, call_sid=sid, **extra)
    return params["CallSid"], params, local_stack.twilio_post("/twilio/voice", params)


def dial_status(local_stack, params: dict[str, str], status: str, duration: int | None = None, query=None):
    form = {**params, "DialCallStatus": status}
    if duration is not None:
        form["DialCallDuration"] = str(duration)
    return local_stack.twilio_post("/twilio/dial-status", form, query=query)


def call_status(local_stack, params: dict[str, str], status: str, duration: int):
    return local_stack.twilio_post(
        "/twilio/call-status", {**params, "CallStatus": status, "CallDuration": str(duration)}
    )


def get_call(local_stack, sid: str, token: str):
    return local_stack.request("GET", f"/v1/calls/{sid}", token=token)


def put_lease(
    local_stack, number: str, account: str, attribution: dict[str, Any], *, ends_in_s: float
) -> None:
    from calltrack.settings import get_settings

    now = time.time()
    local_stack.stack.client("dynamodb").put_item(
        TableName=get_settings().table_name("leases"),
        Item={
            "number": {"S": number},
            "account": {"S": account},
            "pool": {"S": "google-ads"},
            "kind": {"S": "pool"},
            "lease_id": {"S": "L-1"},
            "session_id": {"S": attribution["session_id"]},
            "leased_at": {"N": str(int(now - 300))},
            "expires_at": {"N": str(int(now + ends_in_s))},
            "released_at": {"N": str(int(now + ends_in_s))},
            "attribution": {"S": json.dumps(attribution, ensure_ascii=False)},
        },
    )


# ------------------------------------------------------------------------------------ TwiML


def test_static_number_call_is_forwarded_with_callerid_recording_and_whisper(local_stack, acct):
    # Given a static newspaper number; When a caller dials it
    caller = unique_number("+8190")
    sid, _, resp = voice(local_stack, acct["static"], caller)
    # Then Twilio gets the announcement and a <Dial> showing the caller's own number
    root = ET.fromstring(resp.text)
    say = root.find("Say")
    assert say is not None and say.text == "この通話は録音されます。" and say.get("language") == "ja-JP"
    dial = dial_of(resp)
    public = local_stack.public_url
    assert dial.get("callerId") == caller
    assert dial.get("record") == "record-from-answer-dual"
    assert dial.get("recordingStatusCallback") == f"{public}/twilio/recording"
    assert dial.get("action").startswith(f"{public}/twilio/dial-status")
    assert dial.get("timeout") == "25"
    number = dial.find("Number")
    assert number.text == FORWARD
    whisper_url = number.get("url")
    assert parse_qs(urlparse(whisper_url).query)["say"] == ["新聞折込からのお電話です"]
    # And the whisper route (signed like every Twilio request) says it to the business
    path, _, query = whisper_url[len(public) :].partition("?")
    spoken = local_stack.twilio_post(
        path,
        {"CallSid": sid},
        query={k: v[0] for k, v in parse_qs(query).items()},
    )
    assert ET.fromstring(spoken.text).find("Say").text == "新聞折込からのお電話です"
    # And the call is visible through the calls API with its source
    call = get_call(local_stack, sid, acct["manager"]).json()
    assert (call["account"], call["tracking_number"], call["caller"]) == (
        acct["account"],
        acct["static"],
        caller,
    )
    assert (call["channel"], call["campaign"], call["confidence"], call["status"]) == (
        "newspaper",
        "2026-12-insert",
        1.0,
        "ringing",
    )


def test_pool_number_call_carries_the_session_keyword_gclid_utm_and_landing_page(local_stack, acct):
    # Given a live DNI lease of a pool number with the visitor's session attribution
    number = acct["pool"][0]
    session = {
        "keyword": "インプラント 渋谷",
        "gclid": "Cj0KCQiA-test",
        "session_id": "sess-1",
        "visitor_id": "v-1",
        "utm": {"source": "google", "medium": "cpc", "campaign": "implant"},
        "landing_page": "https://acme.example.jp/implant?gclid=Cj0KCQiA-test",
        "referrer": "https://www.google.co.jp/",
    }
    put_lease(local_stack, number, acct["account"], session, ends_in_s=900)
    # When someone calls that number
    sid, _, resp = voice(local_stack, number)
    # Then the call is forwarded and attributed to the session with full confidence
    assert dial_of(resp).find("Number").text == FORWARD
    call = get_call(local_stack, sid, acct["manager"]).json()
    assert (call["channel"], call["campaign"]) == ("google-ads", "implant-search")
    assert (call["keyword"], call["gclid"], call["confidence"]) == ("インプラント 渋谷", "Cj0KCQiA-test", 1.0)
    assert call["utm"] == {"source": "google", "medium": "cpc", "campaign": "implant"}
    assert call["landing_page"].startswith("https://acme.example.jp/implant")
    assert call["referrer"] == "https://www.google.co.jp/"


def test_a_pool_call_whose_lease_read_is_throttled_is_recorded_by_the_replay_with_its_visitor(
    local_stack, acct, monkeypatch
):
    from calltrack.settings import get_settings
    from voice_webhook import dynamo

    # Given a live lease of a pool number, and DynamoDB leaving the leases key of the webhook's
    # read unprocessed (throttled) once
    number = acct["pool"][0]
    put_lease(local_stack, number, acct["account"],
              {"gclid": "throttled-1", "keyword": "歯医者", "session_id": "s-thr"}, ends_in_s=900)
    client = dynamo.client(get_settings().region)
    read = client.batch_get_item
    leases = get_settings().table_name("leases")
    throttled: list[str] = []

    def leaves_leases_unprocessed(**kwargs: Any) -> dict[str, Any]:
        resp = read(**kwargs)
        if not throttled and leases in kwargs["RequestItems"]:
            throttled.append(leases)
            resp["Responses"].pop(leases, None)
            resp["UnprocessedKeys"] = {leases: kwargs["RequestItems"][leases]}
        return resp

    monkeypatch.setattr(client, "batch_get_item", leaves_leases_unprocessed)
    # When someone calls that number
    sid, _, resp = voice(local_stack, number)
    # Then the call is put through at once, and recorded (by the outbox's replay) with the
    # session's click id and keyword, not as "pool only"
    assert throttled and dial_of(resp).find("Number").text == FORWARD
    local_stack.drain()
    call = get_call(local_stack, sid, acct["manager"]).json()
    assert (call["gclid"], call["keyword"], call["confidence"]) == ("throttled-1", "歯医者", 1.0)


def test_late_call_to_a_released_pool_number_keeps_the_session_with_lower_confidence(local_stack, acct):
    number = acct["pool"][1]
    put_lease(
        local_stack, number, acct["account"], {"gclid": "late-1", "session_id": "s-late"}, ends_in_s=-600
    )
    sid, _, resp = voice(local_stack, number)
    call = get_call(local_stack, sid, acct["manager"]).json()
    assert call["gclid"] == "late-1" and 0.5 <= call["confidence"] < 1.0


def test_unknown_number_gets_a_polite_message_and_hangup(local_stack):
    sid, _, resp = voice(local_stack, unique_number())
    assert resp.status_code == 200
    root = ET.fromstring(resp.text)
    assert root.find("Say") is not None and root.find("Hangup") is not None and root.find("Dial") is None


@pytest.mark.parametrize("hidden", ["anonymous", "+266696687", "restricted"])
def test_hidden_caller_is_forwarded_showing_the_tracking_number(local_stack, acct, hidden):
    sid, _, resp = voice(local_stack, acct["static"], hidden, CallerName="ヤマダ　ハナコ")
    assert dial_of(resp).get("callerId") == acct["static"]
    call = get_call(local_stack, sid, acct["manager"]).json()
    assert call["caller"] is None and call["status"] == "ringing"


# ------------------------------------------------------------------------------- outcomes


def test_answered_call_records_talk_time(local_stack, acct):
    sid, params, _ = voice(local_stack, acct["static"])
    resp = dial_status(local_stack, params, "completed", 42, query={"t": str(int(time.time()) - 50)})
    assert resp.status_code == 200 and ET.fromstring(resp.text).find("Hangup") is not None
    assert call_status(local_stack, params, "completed", 95).status_code == 200
    call = get_call(local_stack, sid, acct["manager"]).json()
    assert (call["status"], call["talk_seconds"]) == ("answered", 42)
    assert call["ring_seconds"] is not None and call["ring_seconds"] >= 0


@pytest.mark.parametrize("dial", ["no-answer", "busy"])
def test_unanswered_call_is_missed(local_stack, acct, dial):
    sid, params, _ = voice(local_stack, acct["static"])
    dial_status(local_stack, params, dial)
    call_status(local_stack, params, "completed", 30)
    call = get_call(local_stack, sid, acct["manager"]).json()
    assert (call["status"], call["talk_seconds"], call["outcome_reason"]) == ("missed", 0, dial)


def test_caller_who_hangs_up_while_ringing_is_missed(local_stack, acct):
    sid, params, _ = voice(local_stack, acct["static"])
    call_status(local_stack, params, "completed", 12)
    assert get_call(local_stack, sid, acct["manager"]).json()["status"] == "missed"


# ---------------------------------------------------------------------------- signatures


@pytest.mark.parametrize(
    "path",
    ["/twilio/voice", "/twilio/dial-status", "/twilio/call-status", "/twilio/recording", "/twilio/whisper",
     "/twilio/voicemail-done"],
)
@pytest.mark.parametrize("how", ["forged", "unsigned"])
def test_forged_or_unsigned_requests_are_refused_and_write_nothing(local_stack, acct, path, how):
    sid = unique_call_sid()
    form = {  # every parameter each route requires, so only the signature is wrong
        **voice_form(acct["static"], caller="+819011112222", call_sid=sid),
        "RecordingSid": unique_recording_sid(),
        "DialCallStatus": "completed",
        "CallStatus": "completed",
    }
    resp = local_stack.twilio_post(
        path, form, signature="bad" if how == "forged" else None, unsigned=how == "unsigned"
    )
    assert resp.status_code == 403
    assert get_call(local_stack, sid, acct["manager"]).status_code == 404


def test_signature_over_another_host_is_refused(local_stack, acct):
    form = voice_form(acct["static"], caller="+819011112222")
    sig = sign(local_stack.twilio_auth_token, "https://evil.example/twilio/voice", form)
    resp = local_stack.request(
        "POST", "/twilio/voice", data=form, headers={"X-Twilio-Signature": sig, "Host": "evil.example"}
    )
    assert resp.status_code == 403


def test_unsigned_garbage_is_a_4xx_not_a_5xx(local_stack):
    resp = local_stack.request(
        "POST", "/twilio/voice", data=b"\xff\x00garbage", headers={"Content-Type": "application/octet-stream"}
    )
    assert 400 <= resp.status_code < 500


@pytest.mark.parametrize("path", ["/twilio/voice", "/twilio/recording"])
def test_a_form_with_a_repeated_field_and_a_forged_signature_is_refused_not_a_5xx(local_stack, acct, path):
    # Given a form that names one field twice, not signed by Twilio
    form = [*voice_form(acct["static"], caller="+819011112222").items(), ("To", "x"),
            ("RecordingSid", unique_recording_sid())]
    # When it is posted, Then the signature check refuses it (it used to raise: a 500)
    resp = local_stack.request("POST", path, data=form, headers={"X-Twilio-Signature": "bad"})
    assert resp.status_code == 403


# --------------------------------------------------------------------- idempotent, order-free


def _final(local_stack, sid: str, token: str) -> dict[str, Any]:
    call = get_call(local_stack, sid, token).json()
    keep = (
        "account",
        "tracking_number",
        "caller",
        "status",
        "talk_seconds",
        "first_time",
        "channel",
        "campaign",
        "confidence",
        "outcome_reason",
    )
    return {k: call[k] for k in keep}


@pytest.mark.parametrize(
    "order",
    [
        ("voice", "dial", "status"),
        ("voice", "status", "dial"),
        ("dial", "status", "voice"),
        ("status", "voice", "dial"),
        ("voice", "dial", "dial", "status", "voice", "status"),
    ],
)
def test_duplicates_and_shuffled_callbacks_give_the_same_final_record(local_stack, acct, order):
    caller = unique_number("+8190")
    sid = unique_call_sid()
    base = {
        "CallSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "To": acct["static"],
        "Called": acct["static"],
        "From": caller,
        "Caller": caller,
    }
    steps = {
        "voice": lambda: local_stack.twilio_post("/twilio/voice", base),
        "dial": lambda: dial_status(local_stack, base, "completed", 61),
        "status": lambda: call_status(local_stack, base, "completed", 70),
    }
    for step in order:
        assert steps[step]().status_code == 200
    assert _final(local_stack, sid, acct["manager"]) == {
        "account": acct["account"],
        "tracking_number": acct["static"],
        "caller": caller,
        "status": "answered",
        "talk_seconds": 61,
        "first_time": True,
        "channel": "newspaper",
        "campaign": "2026-12-insert",
        "confidence": 1.0,
        "outcome_reason": "completed",
    }


def test_first_time_and_repeat_callers(local_stack, acct):
    caller = unique_number("+8190")
    first, _, _ = voice(local_stack, acct["static"], caller)
    second, _, _ = voice(local_stack, acct["pool"][0], caller)
    assert get_call(local_stack, first, acct["manager"]).json()["first_time"] is True
    assert get_call(local_stack, second, acct["manager"]).json()["first_time"] is False


def test_a_repeat_caller_of_one_account_is_first_time_at_another(local_stack, acct):
    # Given a caller who has called this account twice
    other = unique_account("voice-other")
    other_static = unique_number()
    local_stack.apply(dental_config(other, other_static, [unique_number()]))
    caller = unique_number("+8190")
    voice(local_stack, acct["static"], caller)
    voice(local_stack, acct["static"], caller)
    # When they call another account's number, twice
    first, _, _ = voice(local_stack, other_static, caller)
    second, _, _ = voice(local_stack, other_static, caller)
    # Then that account sees a first-time caller, then a repeat one
    other_manager = local_stack.create_token(other, "manager")
    assert get_call(local_stack, first, other_manager).json()["first_time"] is True
    assert get_call(local_stack, second, other_manager).json()["first_time"] is False


# -------------------------------------------------------------------------- round trips


def _requests_for_one_call(local_stack: Any, number: str, caller: str, *, cold: bool) -> list[str]:
    """The DynamoDB operations one /twilio/voice request sends. A retry of the same request
    (botocore's ``amz-sdk-request: attempt=2``: the in-process emulator answered after the
    webhook's 2 s read timeout, under CI's load) is the emulator's latency, not a request the
    design makes, and is not counted."""
    import voice_webhook.handler as handler
    from calltrack.settings import get_settings
    from voice_webhook import dynamo

    if cold:
        handler.reset()  # as a fresh Lambda container: no client, no cached routing
    client = dynamo.client(get_settings().region)
    seen: list[str] = []

    def count(request: Any, **_: Any) -> None:
        attempt = request.headers.get("amz-sdk-request", b"attempt=1")
        if not (attempt.decode() if isinstance(attempt, bytes) else str(attempt)).startswith("attempt=1;"):
            return  # a retry of the request just counted
        target = request.headers.get("X-Amz-Target", b"")
        seen.append((target.decode() if isinstance(target, bytes) else str(target)).rpartition(".")[2])

    client.meta.events.register("before-send.dynamodb", count)
    try:
        voice(local_stack, number, caller)
    finally:
        client.meta.events.unregister("before-send.dynamodb", count)
    return seen


@pytest.mark.parametrize("cold", [False, True], ids=["warm", "cold"])
def test_incoming_call_makes_at_most_two_aws_requests(local_stack, acct, cold):
    voice(local_stack, acct["static"])  # the process has served a call before
    caller = unique_number("+8190")
    # Given a first-time caller, then the same caller again (each on a cold or warm process)
    first_time = _requests_for_one_call(local_stack, acct["static"], caller, cold=cold)
    repeat = _requests_for_one_call(local_stack, acct["pool"][0], caller, cold=cold)
    # Then each call is one read and one write
    assert first_time == ["BatchGetItem", "TransactWriteItems"]
    assert repeat == ["BatchGetItem", "UpdateItem"]



@contextlib.contextmanager
def auth_token_in_ssm(monkeypatch, value: str) -> Iterator[tuple[Any, str]]:
    """The webhook as deployed: its Twilio auth token in an SSM parameter holding ``value``, read by
    a container that starts now; yields (the SSM client, the parameter's name)."""
    import boto3

    import voice_webhook.handler as handler
    from calltrack.settings import get_settings, reset_settings

    ssm = boto3.client("ssm", region_name=get_settings().region)
    name = f"/calltrack-test/{unique_account('token')}/twilio-auth-token"
    ssm.put_parameter(Name=name, Value=value, Type="SecureString")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN_PARAM", name)
    reset_settings()
    handler.reset()
    try:
        yield ssm, name
    finally:
        monkeypatch.delenv("TWILIO_AUTH_TOKEN_PARAM")
        reset_settings()
        handler.reset()


def _signed_by(local_stack, token: str, path: str, params: dict[str, str]):
    from twilio.request_validator import RequestValidator

    form = {k: str(v) for k, v in params.items()}
    signature = RequestValidator(token).compute_signature(local_stack.public_url + path, form)
    return local_stack.twilio_post(path, params, signature=signature)


def test_the_auth_token_outlives_an_ssm_outage_and_a_rotated_one_is_read_at_its_first_mismatch(
    local_stack, acct, monkeypatch
):
    import voice_webhook.auth_token as auth_token

    # Given the token in SSM, as deployed, and a container that read it at its first call
    with auth_token_in_ssm(monkeypatch, local_stack.twilio_auth_token) as (ssm, name):
        _, _, resp = voice(local_stack, acct["static"])
        assert resp.status_code == 200 and dial_of(resp).find("Number").text == FORWARD
        # When SSM cannot answer at the container's next re-read of the token
        ssm.delete_parameter(Name=name)
        monkeypatch.setattr(auth_token, "REFRESH_S", 0.0)
        monkeypatch.setattr(auth_token, "RECHECK_S", 0.0)
        sid, params, resp = voice(local_stack, acct["static"])
        ended = call_status(local_stack, params, "completed", 30)  # a callback re-reads: SSM fails
        # Then the call and its callback are verified with the token kept, the call put through
        # and recorded (it was a 503: Twilio's fallback number rang and nothing was recorded)
        assert resp.status_code == 200 and dial_of(resp).find("Number").text == FORWARD
        assert ended.status_code == 200
        shown = get_call(local_stack, sid, acct["manager"])
        assert shown.status_code == 200 and shown.json()["channel"] == "newspaper"

        # When the token is rotated (SSM holds the new one, Twilio signs with it) before the hourly
        # re-read is due
        rotated = "0f" * 16
        ssm.put_parameter(Name=name, Value=rotated, Type="SecureString")
        monkeypatch.setattr(auth_token, "REFRESH_S", 3600.0)
        resp = _signed_by(local_stack, rotated, "/twilio/voice", voice_form(acct["static"]))
        # Then the first request signed with it reads the token again and is put through
        assert resp.status_code == 200 and dial_of(resp).find("Number").text == FORWARD
        # and the old token no longer passes
        assert voice(local_stack, acct["static"])[2].status_code == 403


def test_while_the_auth_token_is_rotated_calls_signed_with_either_token_are_put_through(
    local_stack, acct, monkeypatch
):
    import voice_webhook.auth_token as auth_token

    old, new = local_stack.twilio_auth_token, "1e" * 16
    # Given the README's rotation: SSM holds the new token and the old one while Twilio still signs
    # with the old one (the new one is its secondary token, not promoted yet), and a container that
    # starts in between (before, it kept the new token alone and refused every call: 403)
    with auth_token_in_ssm(monkeypatch, f"{new} {old}") as (ssm, name):
        # When Twilio signs with the old token, Then the call and its callbacks are taken
        sid, params, resp = voice(local_stack, acct["static"])
        assert resp.status_code == 200 and dial_of(resp).find("Number").text == FORWARD
        assert dial_status(local_stack, params, "completed", 30).status_code == 200
        # When the new token is promoted and Twilio signs with it, Then calls are still put through
        params = voice_form(acct["static"])
        resp = _signed_by(local_stack, new, "/twilio/voice", params)
        assert resp.status_code == 200 and dial_of(resp).find("Number").text == FORWARD
        # When the old token is taken out of SSM, Then the container's next re-read (hourly, on a
        # callback) stops taking it
        ssm.put_parameter(Name=name, Value=new, Type="SecureString", Overwrite=True)
        monkeypatch.setattr(auth_token, "REFRESH_S", 0.0)
        monkeypatch.setattr(auth_token, "RECHECK_S", 0.0)
        ended = _signed_by(local_stack, new, "/twilio/call-status",
                           {**params, "CallStatus": "completed", "CallDuration": "30"})
        assert ended.status_code == 200
        assert voice(local_stack, acct["static"])[2].status_code == 403


# --------------------------------------------------------------------------------- fail open


def test_storage_down_still_forwards_the_call(local_stack, acct, monkeypatch, capsys):
    import voice_webhook.handler as handler
    from calltrack.settings import reset_settings

    voice(local_stack, acct["static"])  # warm: the routing of this number is cached
    local_stack.stop_emulator()
    try:
        # Warm process: the cached routing answers
        _, _, resp = voice(local_stack, acct["static"])
        dial = dial_of(resp)
        assert dial.find("Number").text == FORWARD
        # Cold process (nothing cached, settings read anew): the documented last-resort number answers
        handler.reset()
        monkeypatch.setenv("CALLTRACK_FALLBACK_FORWARD_TO", "+81300000000")
        reset_settings()
        _, _, resp = voice(local_stack, acct["static"])
        assert dial_of(resp).find("Number").text == "+81300000000"
    finally:
        local_stack.start_emulator()
        handler.reset()
        monkeypatch.delenv("CALLTRACK_FALLBACK_FORWARD_TO")
        reset_settings()
    # And the failures were counted as EMF metrics
    out = capsys.readouterr().out
    assert '"WebhookFailures"' in out


def test_a_voicemail_hangs_up_when_its_recording_ends(local_stack, acct):
    # Given the <Record> of a voicemail, whose action is the voicemail-done route
    form = {**voice_form(acct["static"], caller="+819011112222"), "RecordingSid": unique_recording_sid()}
    # When Twilio requests it as the recording ends, signed like every callback
    resp = local_stack.twilio_post("/twilio/voicemail-done", form)
    # Then the caller is hung up on (not played the voicemail prompt again)
    assert resp.status_code == 200 and "<Hangup" in resp.text


@pytest.mark.parametrize("path", ["/twilio/menu", "/twilio/ring-next"])
def test_a_caller_in_a_menu_or_ring_group_is_put_through_when_it_fails(local_stack, acct, monkeypatch, path):
    from voice_webhook import handler

    # Given a call answered by /twilio/voice (its number's routing is cached in this process)
    sid, params, first = voice(local_stack, acct["static"], caller="+819011112222")
    assert first.status_code == 200

    # When the caller's next step (a menu key, the next ring-group member) fails unexpectedly
    def broken(req, deps):
        raise RuntimeError("a bug")

    monkeypatch.setitem(handler.ROUTES, path, broken)
    resp = local_stack.twilio_post(path, {**params, "Digits": "1", "DialCallStatus": "no-answer"})

    # Then the caller is still put through (the number's routing), not hung up on
    assert resp.status_code == 200 and dial_of(resp) is not None


def test_a_failure_after_an_answered_ring_group_call_does_not_ring_the_business_again(
    local_stack, acct, monkeypatch
):
    from voice_webhook import handler

    sid, params, _ = voice(local_stack, acct["static"], caller="+819011112222")

    def broken(req, deps):
        raise RuntimeError("a bug")

    monkeypatch.setitem(handler.ROUTES, "/twilio/ring-next", broken)
    # When the ring-next callback of an answered (finished) conversation fails
    resp = local_stack.twilio_post("/twilio/ring-next", {**params, "DialCallStatus": "completed"})
    # Then the call ends: nobody is rung after the conversation
    assert resp.status_code == 200 and "<Dial" not in resp.text
