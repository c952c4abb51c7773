"""Twilio's phone-number REST API, as the CLI uses it (never imported by a function).

A small client over ``requests`` (form-encoded requests, HTTP Basic auth, Twilio's JSON errors),
for IncomingPhoneNumbers (list, update, purchase, release) and AvailablePhoneNumbers (search).
Credentials and base URL come from the environment the stack also reads: ``TWILIO_ACCOUNT_SID``,
``TWILIO_AUTH_TOKEN`` (or ``TWILIO_API_KEY`` + ``TWILIO_API_SECRET``) and ``TWILIO_API_BASE_URL``
(default https://api.twilio.com; http only to 127.0.0.1 / localhost, for the fake Twilio).

What "pointing at this stack" means is here too: ``stack_webhooks`` gives the number settings the
stack expects, from its public URL (voice, call-status and fallback routes).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

DEFAULT_BASE_URL = "https://api.twilio.com"
API_VERSION = "2010-04-01"
TIMEOUT_S = 30.0
ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
NUMBER_TYPES = {"local": "Local", "mobile": "Mobile", "toll-free": "TollFree"}

# The stack's Twilio routes (infra/wiring.py ROUTES and infra/components/voice.py FALLBACK_PATH;
# tests/unit/test_twilio_numbers.py keeps them equal).
VOICE_PATH = "/twilio/voice"
CALL_STATUS_PATH = "/twilio/call-status"
FALLBACK_PATH = "/twilio/fallback"


class TwilioFailure(Exception):
    """A Twilio request failed: ``status`` 0 when Twilio could not be reached."""

    def __init__(self, message: str, status: int = 0, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.retry_after: float | None = None  # seconds, when Twilio's answer named them


def stack_webhooks(public_url: str, fallback_url: str | None = None) -> dict[str, str]:
    """The IncomingPhoneNumber settings that make a number call this stack (form parameter names)."""
    base = public_url.rstrip("/")
    return {
        "VoiceUrl": base + VOICE_PATH,
        "VoiceMethod": "POST",
        "StatusCallback": base + CALL_STATUS_PATH,
        "StatusCallbackMethod": "POST",
        "VoiceFallbackUrl": fallback_url or base + FALLBACK_PATH,
        "VoiceFallbackMethod": "POST",
    }


_RESOURCE_FIELD = {
    "VoiceUrl": "voice_url",
    "VoiceMethod": "voice_method",
    "StatusCallback": "status_callback",
    "StatusCallbackMethod": "status_callback_method",
    "VoiceFallbackUrl": "voice_fallback_url",
    "VoiceFallbackMethod": "voice_fallback_method",
}


def drift(resource: Mapping[str, Any], wanted: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Settings of a number that differ from ``wanted``: {param: (current, wanted)}. A number
    handled by a TwiML App (``voice_application_sid``) or a SIP trunk (``trunk_sid``) ignores its
    URLs, and one receiving faxes (``voice_receive_mode``) takes no calls, so those are drift too
    (Twilio's IncomingPhoneNumber resource: "If a trunk_sid is present, we ignore all of the voice
    URLs and voice applications and use those set on the Trunk")."""
    out: dict[str, tuple[str, str]] = {}
    for param, value in wanted.items():
        current = str(resource.get(_RESOURCE_FIELD[param]) or "")
        same = current.upper() == value.upper() if param.endswith("Method") else current == value
        if not same:
            out[param] = (current, value)
    if resource.get("voice_application_sid"):
        out["VoiceApplicationSid"] = (str(resource["voice_application_sid"]), "")
    if resource.get("trunk_sid"):
        out["TrunkSid"] = (str(resource["trunk_sid"]), "")
    if str(resource.get("voice_receive_mode") or "voice").lower() != "voice":
        out["VoiceReceiveMode"] = (str(resource["voice_receive_mode"]), "voice")
    return out


# What sync sends for each overriding setting drift found (see ``drift``).
OVERRIDES_CLEARED = {"VoiceApplicationSid": "", "TrunkSid": "", "VoiceReceiveMode": "voice"}


@dataclass(frozen=True)
class Credentials:
    account_sid: str
    username: str
    password: str
    base_url: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Credentials:
        env = os.environ if env is None else env
        sid = env.get("TWILIO_ACCOUNT_SID", "").strip()
        if not ACCOUNT_SID.fullmatch(sid):
            raise TwilioFailure(
                "TWILIO_ACCOUNT_SID is not set to your Twilio account SID (AC + 32 hex digits)"
            )
        key, secret = env.get("TWILIO_API_KEY", "").strip(), env.get("TWILIO_API_SECRET", "")
        token = env.get("TWILIO_AUTH_TOKEN", "")
        if key and secret:
            username, password = key, secret
        elif token:
            from calltrack.twilio_edge import rest_auth_token  # "<new> <old>" mid-rotation: the new

            username, password = sid, rest_auth_token(token)
        else:
            raise TwilioFailure("set TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and TWILIO_API_SECRET)")
        base = (env.get("TWILIO_API_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        parts = urlsplit(base)
        local = parts.hostname in ("127.0.0.1", "localhost")
        if parts.scheme != "https" and not (parts.scheme == "http" and local):
            raise TwilioFailure(f"TWILIO_API_BASE_URL must be https (http only to 127.0.0.1): {base}")
        return cls(sid, username, password, base)


class TwilioNumbers:
    def __init__(self, credentials: Credentials) -> None:
        import requests

        self.credentials = credentials
        self.session = requests.Session()
        self.session.auth = (credentials.username, credentials.password)
        self._account = f"{credentials.base_url}/{API_VERSION}/Accounts/{credentials.account_sid}"

    # Twilio answers 429 (error 20429) when requests come too fast, and 503 when it is busy; it
    # asks clients to back off and try again (https://www.twilio.com/docs/usage/rest-api-best-practices).
    RETRY_STATUSES = frozenset({429, 503})
    RETRY_DELAYS_S = (1.0, 2.0, 4.0, 8.0)

    def _call(
        self, method: str, url: str, *, params: Any = None, data: Any = None, retry: bool = True
    ) -> Any:
        """One request; with ``retry`` (every request but a purchase, which may have been made) a
        429/503 is tried again after the delays (Retry-After when Twilio names one, up to 30 s)."""
        import time

        for delay in (*self.RETRY_DELAYS_S, None):
            try:
                return self._once(method, url, params=params, data=data)
            except TwilioFailure as exc:
                if not retry or delay is None or exc.status not in self.RETRY_STATUSES:
                    raise
                time.sleep(min(30.0, exc.retry_after if exc.retry_after is not None else delay))
        raise AssertionError("unreachable")

    def _once(self, method: str, url: str, *, params: Any = None, data: Any = None) -> Any:
        import requests

        try:
            resp = self.session.request(
                method, url, params=params, data=data, timeout=TIMEOUT_S, allow_redirects=False
            )
        except requests.RequestException as exc:
            raise TwilioFailure(
                f"cannot reach Twilio at {self.credentials.base_url}: {type(exc).__name__}"
            ) from None
        if resp.status_code == 204:
            return None
        try:
            body = resp.json()
        except ValueError:
            body = None
        if resp.status_code >= 300:
            code = body.get("code") if isinstance(body, dict) else None
            message = body.get("message") if isinstance(body, dict) else resp.reason
            if resp.status_code == 401:
                message = "Twilio refused the credentials (TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN)"
            failure = TwilioFailure(
                f"Twilio {resp.status_code}{f' (error {code})' if code else ''}: {message}",
                resp.status_code,
                code,
            )
            try:
                failure.retry_after = float(resp.headers.get("Retry-After", ""))
            except ValueError:
                pass
            raise failure
        return body

    def list_numbers(self, phone_number: str | None = None) -> Iterator[dict[str, Any]]:
        """Every IncomingPhoneNumber of the account (following ``next_page_uri``)."""
        params: dict[str, Any] | None = {"PageSize": 1000}
        if phone_number and params is not None:
            params["PhoneNumber"] = phone_number
        url = f"{self._account}/IncomingPhoneNumbers.json"
        while url:
            page = self._call("GET", url, params=params)
            yield from page.get("incoming_phone_numbers") or []
            nxt = page.get("next_page_uri")
            url = f"{self.credentials.base_url}{nxt}" if nxt else ""
            params = None

    def by_number(self) -> dict[str, dict[str, Any]]:
        return {n["phone_number"]: n for n in self.list_numbers()}

    def update(self, sid: str, settings: Mapping[str, str]) -> dict[str, Any]:
        return dict(
            self._call("POST", f"{self._account}/IncomingPhoneNumbers/{sid}.json", data=dict(settings))
        )

    def search(
        self,
        country: str,
        kind: str,
        *,
        area_code: str | None = None,
        contains: str | None = None,
        limit: int = 20,
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"PageSize": limit}
        if area_code:
            params["AreaCode"] = area_code
        if contains:
            params["Contains"] = contains
        url = f"{self._account}/AvailablePhoneNumbers/{country.upper()}/{NUMBER_TYPES[kind]}.json"
        return list(self._call("GET", url, params=params).get("available_phone_numbers") or [])[:limit]

    def buy(
        self,
        phone_number: str,
        settings: Mapping[str, str],
        *,
        bundle_sid: str | None = None,
        address_sid: str | None = None,
    ) -> dict[str, Any]:
        data = {"PhoneNumber": phone_number, **settings}
        if bundle_sid:
            data["BundleSid"] = bundle_sid
        if address_sid:
            data["AddressSid"] = address_sid
        # never retried: Twilio may have bought the number (numbers_cmds checks instead)
        bought = self._call("POST", f"{self._account}/IncomingPhoneNumbers.json", data=data, retry=False)
        return dict(bought)

    def release(self, sid: str) -> None:
        self._call("DELETE", f"{self._account}/IncomingPhoneNumbers/{sid}.json")
