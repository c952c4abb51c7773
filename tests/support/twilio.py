"""Twilio as it calls the local stack: the inbound-call form, signed webhook POSTs at a chosen
instant (the local gateway's clock header), a whole call played through its webhooks, and the
<Dial> of a TwiML answer.

Signatures are computed with ``calltrack.twilio_edge.sign``, the same function the handlers'
check mirrors, over ``public_url + path [+ ?query]`` as Twilio signs them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from xml.etree import ElementTree as ET

import requests

from calltrack.twilio_edge import sign
from calltrack_cli.local.gateway import CLOCK_HEADER
from tests.support import unique_call_sid, unique_number

TWILIO_ACCOUNT_SID = "AC" + "0" * 32


def voice_form(
    to: str, *, caller: str | None = None, call_sid: str | None = None, **extra: str
) -> dict[str, str]:
    """The /twilio/voice form of an inbound call ringing ``to`` (fresh CallSid and caller unless given)."""
    caller = caller or unique_number("+8190")
    return {
        "CallSid": call_sid or unique_call_sid(),
        "AccountSid": TWILIO_ACCOUNT_SID,
        "To": to,
        "Called": to,
        "From": caller,
        "Caller": caller,
        "CallStatus": "ringing",
        "Direction": "inbound",
        **extra,
    }


def dial_of(twiml: str | requests.Response) -> ET.Element:
    """The <Dial> of a TwiML answer (a webhook's response must be a 200 first); fails if there is none."""
    if isinstance(twiml, requests.Response):
        assert twiml.status_code == 200, twiml.text
        twiml = twiml.text
    dial = ET.fromstring(twiml).find("Dial")
    assert dial is not None, twiml
    return dial


def signed_post(
    stack: Any, path: str, params: dict[str, Any], at: datetime, query: str = ""
) -> requests.Response:
    """POST a Twilio webhook form, correctly signed, as if it arrived at the instant ``at``.

    ``query`` is the literal query string, ``?`` included (signed as part of the URL).
    """
    form = {k: str(v) for k, v in params.items()}
    signature = sign(stack.twilio_auth_token, stack.public_url + path + query, form)
    return stack.session.post(
        stack.url + path + query,
        data=form,
        headers={"X-Twilio-Signature": signature, CLOCK_HEADER: at.isoformat()},
        timeout=30,
    )


def play_call(
    stack: Any,
    number: str,
    at: datetime,
    outcome: str = "answered",
    talk: int = 95,
    *,
    call_sid: str | None = None,
    caller: str | None = None,
) -> str:
    """One whole inbound call to ``number`` starting at ``at``: /twilio/voice, then
    /twilio/dial-status (``outcome`` "answered" or a DialCallStatus such as "no-answer" or "busy",
    with ``talk`` seconds) and /twilio/call-status 15 + ``talk`` seconds later. Returns the CallSid.
    """
    call_sid = call_sid or unique_call_sid()
    base = {
        "CallSid": call_sid,
        "AccountSid": TWILIO_ACCOUNT_SID,
        "From": caller or unique_number("+8190"),
        "To": number,
        "Direction": "inbound",
        "CallStatus": "ringing",
    }
    end = at + timedelta(seconds=15 + talk)
    dial = "completed" if outcome == "answered" else outcome
    steps = [
        ("/twilio/voice", base, at, ""),
        (
            "/twilio/dial-status",
            {**base, "DialCallStatus": dial, "DialCallDuration": str(talk)},
            end,
            f"?t={int(at.timestamp())}",
        ),
        ("/twilio/call-status", {**base, "CallStatus": "completed", "CallDuration": str(15 + talk)}, end, ""),
    ]
    for path, form, when, query in steps:
        resp = signed_post(stack, path, form, when, query)
        assert resp.status_code == 200, resp.text
    return call_sid
