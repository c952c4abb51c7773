"""The Twilio edge: signature check, body parsing and TwiML shapes."""

from __future__ import annotations

import base64
from urllib.parse import urlencode
from xml.etree import ElementTree as ET

import pytest

from calltrack.twilio_edge import (
    BadTwilioRequest,
    DialPlan,
    check_signature,
    dial_twiml,
    parse_event,
    request_problem,
    sign,
    signature_params,
)
from tests.support.events import http_event

VECTOR_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
VECTOR_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675310",
    "Digits": "1234",
    "From": "+14158675310",
    "To": "+18005551212",
}


def form_event(params: dict[str, str], *, query: str = "", b64: bool = False) -> dict:
    """Twilio's form POST to /twilio/voice as API Gateway hands it over, with a foreign Host header."""
    headers = {"content-type": "application/x-www-form-urlencoded", "host": "evil.example"}
    return http_event("POST", "/twilio/voice", headers=headers, body=urlencode(params), query=query, b64=b64)


def test_twilio_published_test_vector_validates():
    assert check_signature("12345", VECTOR_URL, VECTOR_PARAMS, "GvWf1cFY/Q7PnoempGyD5oXAezc=")


def test_test_vector_with_a_changed_param_or_token_fails():
    assert not check_signature(
        "12345", VECTOR_URL, {**VECTOR_PARAMS, "Digits": "9"}, "GvWf1cFY/Q7PnoempGyD5oXAezc="
    )
    assert not check_signature("54321", VECTOR_URL, VECTOR_PARAMS, "GvWf1cFY/Q7PnoempGyD5oXAezc=")
    assert not check_signature("12345", VECTOR_URL, VECTOR_PARAMS, "")


def test_base64_form_body_is_decoded_and_signed_url_uses_public_url_not_host():
    # Given a base64-encoded form body with a query string, sent with a foreign Host header
    params = {"CallSid": "CA" + "a" * 32, "AccountSid": "AC" + "0" * 32, "To": "+815012345678",
              "From": "+819012345678", "CallerName": "山田太郎"}
    event = form_event(params, query="t=1&vm=1", b64=True)
    # When it is parsed
    req = parse_event(event)
    # Then the params are decoded (non-ASCII intact) and the URL is the configured public one
    assert req.params["CallerName"] == "山田太郎"
    url = req.url("https://calls.example.jp/")
    assert url == "https://calls.example.jp/twilio/voice?t=1&vm=1"
    sig = sign("tok", url, signature_params(req))
    assert check_signature("tok", url, signature_params(req), sig)
    assert not check_signature(
        "tok", "https://evil.example/twilio/voice?t=1&vm=1", signature_params(req), sig
    )


def test_a_form_with_a_repeated_field_is_checked_not_crashed_on():
    # Given a form POST with one field twice (nobody signed it, or Twilio signed every value)
    pairs = [("CallSid", "CA" + "a" * 32), ("AccountSid", "AC" + "0" * 32), ("To", "+815012345678"),
             ("From", "+819012345678"), ("To", "x")]
    event = http_event("POST", "/twilio/voice", headers={"content-type": "application/x-www-form-urlencoded"},
                       body=urlencode(pairs))
    req = parse_event(event)
    url = req.url("https://calls.example.jp/")
    # When its signature is checked, Then a wrong one is refused rather than raising
    assert not check_signature("tok", url, signature_params(req), "bm90LWEtc2lnbmF0dXJl")
    # and Twilio's signature (every value of a repeated key, sorted, after its name) is accepted
    text = url + "".join(k + v for k, v in sorted(pairs))
    import hashlib
    import hmac

    expected = base64.b64encode(hmac.new(b"tok", text.encode(), hashlib.sha1).digest()).decode()
    assert check_signature("tok", url, signature_params(req), expected)


@pytest.mark.parametrize(
    "event_change",
    [
        {"body": "!!!not base64!!!", "isBase64Encoded": True},
        {"headers": {"content-type": "application/json"}, "body": '{"a": 1}'},
        {"body": base64.b64encode(b"\xff\xfe\xfa").decode(), "isBase64Encoded": True},
    ],
)
def test_bodies_no_twilio_request_has_are_refused(event_change):
    event = {**form_event({"To": "+815012345678"}), **event_change}
    with pytest.raises(BadTwilioRequest):
        parse_event(event)


def test_dial_twiml_has_announcement_caller_id_recording_action_timeout_and_whisper():
    plan = DialPlan(
        forward_to="+81312345678",
        caller_id="+819012345678",
        ring_timeout=25,
        language="ja-JP",
        announcement="録音します",
        record=True,
        whisper_url="https://x.example/twilio/whisper?say=a",
        action_url="https://x.example/twilio/dial-status?t=1",
        recording_callback_url="https://x.example/twilio/recording",
    )
    root = ET.fromstring(dial_twiml(plan))
    say = root.find("Say")
    assert say is not None and say.text == "録音します" and say.get("language") == "ja-JP"
    dial = root.find("Dial")
    assert dial is not None
    assert dial.get("callerId") == "+819012345678"
    assert dial.get("record") == "record-from-answer-dual"
    assert dial.get("recordingStatusCallback") == "https://x.example/twilio/recording"
    assert dial.get("action") == "https://x.example/twilio/dial-status?t=1"
    assert dial.get("timeout") == "25"
    number = dial.find("Number")
    assert number is not None and number.text == "+81312345678"
    assert number.get("url") == "https://x.example/twilio/whisper?say=a"


def test_dial_without_recording_has_no_announcement_or_record_attribute():
    root = ET.fromstring(dial_twiml(DialPlan(forward_to="+81312345678", caller_id=None, announcement="x")))
    assert root.find("Say") is None
    dial = root.find("Dial")
    assert dial is not None and dial.get("record") is None and dial.get("callerId") is None


FULL_VOICE = {"CallSid": "CA" + "a" * 32, "AccountSid": "AC" + "0" * 32, "To": "+815012345678",
              "From": "+819012345678"}


@pytest.mark.parametrize("missing", ["CallSid", "AccountSid", "From", "To"])
def test_a_voice_request_without_a_parameter_every_twilio_request_has_is_refused_naming_it(missing):
    params = {k: v for k, v in FULL_VOICE.items() if k != missing}
    with pytest.raises(BadTwilioRequest, match=missing):
        parse_event(form_event(params))


@pytest.mark.parametrize(
    ("name", "value"),
    [("CallSid", "CA" + "a" * 32 + "\n"), ("AccountSid", "AC" + "0" * 32 + "\n"),
     ("CallSid", "CA" + "A" * 32), ("RecordingSid", "RE" + "0" * 32 + "\n"),
     ("RecordingSid", "RE../../etc/passwd")],
)
def test_ids_are_matched_in_full(name, value):
    with pytest.raises(BadTwilioRequest, match=name):
        parse_event(form_event({**FULL_VOICE, name: value}))
    assert request_problem("/twilio/voice", FULL_VOICE) is None


def test_a_voice_request_with_an_empty_caller_id_is_still_a_call_but_one_without_from_is_not():
    from calltrack.twilio_edge import request_problem

    form = {"CallSid": "CA" + "a" * 32, "AccountSid": "AC" + "b" * 32, "To": "+81312345678"}
    # Given a call whose caller id the network withheld (From present, empty): forwarded as usual
    assert request_problem("/twilio/voice", {**form, "From": ""}) is None
    # Given no From at all (parameter boundaries shifted): refused, naming it
    assert (request_problem("/twilio/voice", form) or "").startswith("From: required")
    # Given an empty CallSid: refused (ids must be there and well formed)
    assert (request_problem("/twilio/voice", {**form, "From": "", "CallSid": ""}) or "").startswith("CallSid")
