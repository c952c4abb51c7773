"""Plays a Scenario through the product's own HTTP paths, as Twilio, browsers, a CRM and marketers would.

Every request goes over HTTP to the (local) API gateway. Each request carries the local runtime's
clock header so the webhooks run "at" the simulated instant; nothing else is special about the demo.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from calltrack.settings import LOCAL_TWILIO_ACCOUNT_SID
from calltrack_cli.demo.scenario import Scenario, SimCall, national
from calltrack_cli.local.client import StackClient
from calltrack_cli.local.events import CLOCK_HEADER, SOURCE_IP_HEADER


class DemoError(RuntimeError):
    """A step of the demo got an answer it should not have; the message says which."""


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _check(resp: Any, what: str, ok: Iterable[int] = (200, 201, 204)) -> Any:
    if resp.status_code not in tuple(ok):
        raise DemoError(f"{what}: HTTP {resp.status_code} {resp.text[:200]}")
    return resp


class Player:
    def __init__(self, client: StackClient, scenario: Scenario, *, manager: str, marketer: str) -> None:
        self.client = client
        self.scenario = scenario
        self.manager = manager
        self.marketer = marketer
        self.account_sid = os.environ.get("TWILIO_ACCOUNT_SID", LOCAL_TWILIO_ACCOUNT_SID)

    # -- Twilio ----------------------------------------------------------------------------------
    def _twilio(self, path: str, params: dict[str, Any], at: datetime) -> None:
        # The clock header is a local-runtime header; it is not part of the signed form.
        resp = self._signed(path, params, at)
        _check(resp, f"POST {path} {params.get('CallSid')}")

    def _signed(self, path: str, params: dict[str, Any], at: datetime) -> Any:
        from twilio.request_validator import RequestValidator

        from calltrack.twilio_edge import rest_auth_token

        form = {k: str(v) for k, v in params.items()}
        signature = RequestValidator(rest_auth_token(self.client.twilio_auth_token)).compute_signature(
            self.client.public_url + path, form
        )
        headers = {"X-Twilio-Signature": signature, CLOCK_HEADER: _iso(at)}
        return self.client.session.post(self.client.url + path, data=form, headers=headers, timeout=60)

    def _lease(self, call: SimCall, account: str) -> str:
        session = call.session
        assert session is not None
        body: dict[str, Any] = {
            "account": account,
            "visitor_id": session.visitor_id,
            "session_id": session.session_id,
            "page_url": session.page_url,
            "referrer": session.referrer,
            "utm": {k: v for k, v in session.utm.items()},
            **session.click_ids,
            # the site runs GA4 and the Meta pixel: the browser has their first-party cookies (dni.js)
            "ga_client_id": f"{_digits(session.visitor_id)}.{int(session.at.timestamp())}",
            "fbp": f"fb.1.{int(session.at.timestamp() * 1000)}.{_digits(session.session_id)}",
        }
        origin = "/".join(session.page_url.split("/", 3)[:3])  # what the visitor's browser sends
        # each visitor from its own network (an IPv6 /64 of the documentation prefix): DNI caps how
        # many numbers one address holds, and the demo's visitors are not one script
        headers = {CLOCK_HEADER: _iso(session.at), "Origin": origin,
                   SOURCE_IP_HEADER: _visitor_address(session.visitor_id)}
        resp = self.client.request("POST", "/dni/lease", json=body, headers=headers)
        lease = _check(resp, f"POST /dni/lease (session {session.session_id[:8]})").json()
        if not lease.get("number"):
            raise DemoError(f"no pool matched the {call.source.channel} visitor: {lease}")
        return str(lease["number"])

    def play_call(self, call: SimCall) -> None:
        to = call.source.number or self._lease(call, self.scenario.account)
        base = {
            "CallSid": call.call_sid,
            "AccountSid": self.account_sid,
            "From": call.caller,
            "To": to,
            "Caller": call.caller,
            "Called": to,
            "Direction": "inbound",
            "ApiVersion": "2010-04-01",
            "FromCountry": "JP",
            "ToCountry": "JP",
        }
        end = call.at + timedelta(seconds=call.ring_seconds + call.talk_seconds)
        voice = ("/twilio/voice", {**base, "CallStatus": "ringing"}, call.at)
        dial = (
            "/twilio/dial-status",
            {
                **base,
                "CallStatus": "in-progress",
                "DialCallStatus": call.dial_status,
                "DialCallSid": "CA" + call.call_sid[-32:][::-1],
                "DialCallDuration": call.talk_seconds,
            },
            end,
        )
        status = (
            "/twilio/call-status",
            {**base, "CallStatus": "completed", "CallDuration": call.ring_seconds + call.talk_seconds},
            end + timedelta(seconds=1),
        )
        steps: list[tuple[str, dict[str, Any], datetime]] = [voice, dial, status]
        if call.recording_sid and call.conversation:
            self.client.script_transcript(call.call_sid, call.conversation)
        if call.recording_sid:
            steps.append(
                (
                    "/twilio/recording",
                    {
                        "AccountSid": self.account_sid,
                        "CallSid": call.call_sid,
                        "RecordingSid": call.recording_sid,
                        "RecordingStatus": "completed",
                        "RecordingDuration": call.talk_seconds,
                        "RecordingChannels": 2,
                        "RecordingSource": "DialVerb",
                        "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{self.account_sid}/Recordings/"
                        f"{call.recording_sid}",
                    },
                    end + timedelta(seconds=5),
                )
            )
        if call.out_of_order:  # callbacks overtaking each other, as Twilio's sometimes do
            steps = [steps[0], *reversed(steps[1:])]
        if call.duplicate_callbacks:  # Twilio retries: the same callbacks again
            steps += steps[1:]
        for path, params, at in steps:
            self._twilio(path, params, at)

    def play_calls(self, advance: Callable[[int], None]) -> None:
        """One call at a time, in time order: pool leases must happen in the order visits happen."""
        for call in self.scenario.calls:
            self.play_call(call)
            advance(1)

    # -- outcomes, CRM and spend -----------------------------------------------------------------
    def post_outcomes(self) -> dict[str, Any]:
        """Managers mark some calls; the CRM posts the rest as leads (some with national numbers)."""
        leads: list[dict[str, Any]] = []
        for call in self.scenario.calls:
            if not call.stage:
                continue
            if call.crm:
                phone = national(call.caller) if call.crm_phone_format == "national" else call.caller
                leads.append(
                    {
                        "external_id": f"crm-{call.call_sid[2:14]}",
                        "phone": phone,
                        "created_at": _iso(call.at + timedelta(hours=2)),
                        "stage": call.stage,
                        **({"value": call.value} if call.value else {}),
                    }
                )
            else:
                body: dict[str, Any] = {"stage": call.stage}
                if call.value:
                    body["value"] = call.value
                _check(
                    self.client.request("PATCH", f"/v1/calls/{call.call_sid}", token=self.manager, json=body),
                    f"PATCH /v1/calls/{call.call_sid}",
                )
        leads += self.scenario.unmatched_leads
        answers: list[dict[str, Any]] = []
        for i in range(0, len(leads), 200):
            resp = self.client.request(
                "POST", "/v1/crm/leads", token=self.manager, json={"leads": leads[i : i + 200]}
            )
            data = _check(resp, "POST /v1/crm/leads", ok=(200, 201, 207)).json()
            answers += list(data.get("results") or [])
        return {"posted": len(leads), "answers": answers}

    def put_spend(self) -> None:
        for (month, channel), amount in sorted(self.scenario.spend.items()):
            body = {"month": month, "channel": channel, "amount": amount, "currency": "JPY"}
            _check(
                self.client.request("PUT", "/v1/spend", token=self.marketer, json=body),
                f"PUT /v1/spend {channel}",
            )


def _visitor_address(visitor_id: str) -> str:
    """The visitor's own IPv6 /64 in the documentation prefix 2001:db8::/32."""
    import hashlib

    h = hashlib.sha256(visitor_id.encode()).hexdigest()
    return f"2001:db8:{h[:4]}:{h[4:8]}::1"


def _digits(text: str) -> int:
    """A stable number from an id (the demo's stand-in for the random part of a cookie)."""
    return int(text.encode().hex()[:8], 16)
