"""Twilio's phone-number REST resources, as the fake Twilio server (``fake_twilio``) serves them.

Follows Twilio's public reference (API version 2010-04-01; pages listed in docs/decisions.md,
2026-11-30): IncomingPhoneNumber (list with ``PhoneNumber`` filter and paging, fetch, update,
purchase, release) and AvailablePhoneNumbers ``{Country}/Local|Mobile|TollFree`` (``AreaCode``,
``Contains``, ``PageSize``). Requests are form-encoded like Twilio's; errors are Twilio's JSON error
body ``{"code", "message", "more_info", "status"}`` with its codes:

- 20003 (401) bad or missing Basic credentials, or another account's path; 20404 (404) unknown SID;
- 21402 (400) a ``*Url`` / ``StatusCallback`` that is not an absolute http(s) URL;
- 20001 (400) a ``*Method`` other than GET or POST, a malformed ``BundleSid`` / ``AddressSid``;
- 21422 (400) purchasing a number that is not in the available inventory;
- 21649 (400) a regulated number (Japan, and any inventory added with ``bundle_required``) bought
  without ``BundleSid``; 21631 (400) without ``AddressSid`` where an address is required.

The state is programmable: ``add_available`` stocks numbers to search and buy, ``add_number`` puts a
number in an account as if bought earlier (pointing anywhere: another stack, a TwiML Bin, nothing).
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

API_VERSION = "2010-04-01"
_ACCOUNT = r"(?P<account>AC[0-9a-fA-F]{32})"
INCOMING_LIST = re.compile(rf"^/{API_VERSION}/Accounts/{_ACCOUNT}/IncomingPhoneNumbers\.json$")
INCOMING_ONE = re.compile(
    rf"^/{API_VERSION}/Accounts/{_ACCOUNT}/IncomingPhoneNumbers/(?P<sid>PN[0-9a-fA-F]{{32}})\.json$"
)
AVAILABLE = re.compile(
    rf"^/{API_VERSION}/Accounts/{_ACCOUNT}/AvailablePhoneNumbers/(?P<country>[A-Z]{{2}})/"
    r"(?P<type>Local|Mobile|TollFree)\.json$"
)
ANY_PATH = re.compile(rf"^/{API_VERSION}/Accounts/[^/]+/(IncomingPhoneNumbers|AvailablePhoneNumbers)")
_BUNDLE_SID = re.compile(r"BU[0-9a-fA-F]{32}")
_ADDRESS_SID = re.compile(r"AD[0-9a-fA-F]{32}")
_TRUNK_SID = re.compile(r"TK[0-9a-fA-F]{32}")
# Countries whose numbers Twilio provisions only with a regulatory bundle and an address (Japan:
# every number type needs an approved bundle; the fake applies it to every JP number).
REGULATED = {"JP"}

UPDATABLE = (
    "FriendlyName",
    "VoiceUrl",
    "VoiceMethod",
    "VoiceFallbackUrl",
    "VoiceFallbackMethod",
    "StatusCallback",
    "StatusCallbackMethod",
    "VoiceApplicationSid",
    "TrunkSid",
    "VoiceReceiveMode",
    "BundleSid",
    "AddressSid",
)
_FIELD = {  # form parameter -> resource property
    "FriendlyName": "friendly_name",
    "VoiceUrl": "voice_url",
    "VoiceMethod": "voice_method",
    "VoiceFallbackUrl": "voice_fallback_url",
    "VoiceFallbackMethod": "voice_fallback_method",
    "StatusCallback": "status_callback",
    "StatusCallbackMethod": "status_callback_method",
    "VoiceApplicationSid": "voice_application_sid",
    "TrunkSid": "trunk_sid",
    "VoiceReceiveMode": "voice_receive_mode",
    "BundleSid": "bundle_sid",
    "AddressSid": "address_sid",
}


def _now() -> str:
    return format_datetime(datetime.now(UTC), usegmt=False)


def twilio_error(status: int, code: int, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


@dataclass
class _Stock:
    phone_number: str
    country: str
    type: str  # Local | Mobile | TollFree
    locality: str | None
    bundle_required: bool
    address_required: bool


class FakePhoneNumbers:
    """The phone-number state of the fake Twilio; ``handle`` answers one request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._numbers: dict[str, dict[str, Any]] = {}  # sid -> resource
        self._stock: dict[str, _Stock] = {}  # E.164 -> available number
        self.purchases: list[dict[str, str]] = []  # every accepted purchase's form, in order
        # Tests: the next accepted purchases are made but answered with these statuses instead:
        # 0 = the reply is lost (the connection closes without an answer, as when a client's
        # request times out after Twilio acted), 5xx = Twilio's error after it acted.
        self.purchase_replies: list[int] = []
        # run (each once, in order) while a purchase is being answered: a test's "meanwhile"
        self.during_purchase: list[Callable[[], None]] = []
        # Tests: the next requests other than purchases are answered with these statuses instead
        # (429: Twilio's "Too Many Requests", error 20429; 503: busy), as Twilio does under load.
        self.busy_answers: list[int] = []

    # -- programming -------------------------------------------------------------------------
    def add_available(
        self,
        country: str,
        numbers: list[str],
        *,
        type: str = "Local",
        locality: str | None = None,
        bundle_required: bool | None = None,
        address_required: bool | None = None,
    ) -> None:
        """Stock numbers that AvailablePhoneNumbers lists and IncomingPhoneNumbers sells."""
        regulated = country.upper() in REGULATED
        with self._lock:
            for number in numbers:
                self._stock[number] = _Stock(
                    number,
                    country.upper(),
                    type,
                    locality,
                    regulated if bundle_required is None else bundle_required,
                    regulated if address_required is None else address_required,
                )

    def add_number(self, account_sid: str, phone_number: str, **properties: Any) -> str:
        """A number already in ``account_sid`` (bought earlier, configured anyhow); returns its SID.
        ``properties`` are resource properties: voice_url=..., status_callback=..., ..."""
        sid = "PN" + secrets.token_hex(16)
        resource = self._resource(account_sid, sid, phone_number)
        resource.update(properties)
        with self._lock:
            self._numbers[sid] = resource
        return sid

    def configure(self, phone_number: str, **properties: Any) -> None:
        """Change an owned number's properties behind the CLI's back (as the Console would)."""
        with self._lock:
            for resource in self._numbers.values():
                if resource["phone_number"] == phone_number:
                    resource.update(properties)
                    return
        raise KeyError(phone_number)

    def number(self, phone_number: str) -> dict[str, Any] | None:
        """The resource of an owned number (any account), or None."""
        with self._lock:
            for resource in self._numbers.values():
                if resource["phone_number"] == phone_number:
                    return dict(resource)
        return None

    # -- resources ---------------------------------------------------------------------------
    @staticmethod
    def _resource(account_sid: str, sid: str, phone_number: str) -> dict[str, Any]:
        when = _now()
        return {
            "account_sid": account_sid,
            "address_requirements": "none",
            "address_sid": None,
            "api_version": API_VERSION,
            "beta": False,
            "bundle_sid": None,
            "capabilities": {"voice": True, "sms": False, "mms": False, "fax": False},
            "date_created": when,
            "date_updated": when,
            "emergency_status": "Inactive",
            "friendly_name": phone_number,
            "identity_sid": None,
            "origin": "twilio",
            "phone_number": phone_number,
            "sid": sid,
            "sms_url": "",
            "status": "in-use",
            "status_callback": "",
            "status_callback_method": "POST",
            "trunk_sid": None,
            "uri": f"/{API_VERSION}/Accounts/{account_sid}/IncomingPhoneNumbers/{sid}.json",
            "voice_application_sid": None,
            "voice_caller_id_lookup": False,
            "voice_fallback_method": "POST",
            "voice_fallback_url": "",
            "voice_method": "POST",
            "voice_receive_mode": "voice",
            "voice_url": "",
        }

    # -- serving -----------------------------------------------------------------------------
    def handle(
        self, method: str, raw_path: str, form: dict[str, list[str]]
    ) -> tuple[int, dict[str, Any] | None]:
        """(status, JSON body) for an authenticated request on one of this module's paths."""
        parts = urlsplit(raw_path)
        query = parse_qs(parts.query, keep_blank_values=True)
        path = parts.path
        purchase = method == "POST" and INCOMING_LIST.match(path) is not None
        with self._lock:
            busy = self.busy_answers.pop(0) if self.busy_answers and not purchase else None
        if busy is not None:
            code, text = (20429, "Too Many Requests") if busy == 429 else (20503, "Service Unavailable")
            return busy, twilio_error(busy, code, text)
        if m := INCOMING_LIST.match(path):
            if method == "GET":
                return self._list(m.group("account"), query)
            if method == "POST":
                return self._purchase(m.group("account"), _single(form))
        elif m := INCOMING_ONE.match(path):
            if method == "GET":
                return self._fetch(m.group("account"), m.group("sid"))
            if method == "POST":
                return self._update(m.group("account"), m.group("sid"), _single(form))
            if method == "DELETE":
                return self._release(m.group("account"), m.group("sid"))
        elif (m := AVAILABLE.match(path)) and method == "GET":
            return self._search(m.group("account"), m.group("country"), m.group("type"), query)
        return 404, twilio_error(404, 20404, "The requested resource was not found")

    def _owned(self, account_sid: str, sid: str) -> dict[str, Any] | None:
        resource = self._numbers.get(sid)
        return resource if resource and resource["account_sid"] == account_sid else None

    def _list(self, account_sid: str, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        wanted: str | None = query["PhoneNumber"][0] if query.get("PhoneNumber") else None
        try:
            size = max(1, min(1000, int((query.get("PageSize") or ["50"])[0])))
            page = max(0, int((query.get("Page") or ["0"])[0]))
        except ValueError:
            return 400, twilio_error(400, 20001, "PageSize and Page must be integers")
        with self._lock:
            found = [
                dict(r)
                for r in self._numbers.values()
                if r["account_sid"] == account_sid and (wanted is None or r["phone_number"] == wanted.strip())
            ]
        found.sort(key=lambda r: r["phone_number"])
        chunk = found[page * size : (page + 1) * size]
        base = f"/{API_VERSION}/Accounts/{account_sid}/IncomingPhoneNumbers.json?PageSize={size}"
        more = len(found) > (page + 1) * size
        return 200, {
            "incoming_phone_numbers": chunk,
            "page": page,
            "page_size": size,
            "start": page * size,
            "end": page * size + max(len(chunk) - 1, 0),
            "uri": f"{base}&Page={page}",
            "first_page_uri": f"{base}&Page=0",
            "next_page_uri": f"{base}&Page={page + 1}&PageToken=PA{page + 1}" if more else None,
            "previous_page_uri": f"{base}&Page={page - 1}" if page else None,
        }

    def _fetch(self, account_sid: str, sid: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            resource = self._owned(account_sid, sid)
        if resource is None:
            return 404, twilio_error(404, 20404, f"The requested resource {sid} was not found")
        return 200, dict(resource)

    @staticmethod
    def _invalid(params: dict[str, str]) -> tuple[int, dict[str, Any]] | None:
        for name, value in params.items():
            if (name.endswith("Url") or name == "StatusCallback") and value:
                parts = urlsplit(value)
                if parts.scheme not in ("http", "https") or not parts.hostname:
                    return 400, twilio_error(400, 21402, f"{name} is not valid: {value}")
            if name.endswith("Method") and value.upper() not in ("GET", "POST"):
                return 400, twilio_error(400, 20001, f"{name} must be GET or POST")
        if params.get("BundleSid") and not _BUNDLE_SID.fullmatch(params["BundleSid"]):
            return 400, twilio_error(400, 20001, "BundleSid is not a valid Bundle SID (BU...)")
        if params.get("AddressSid") and not _ADDRESS_SID.fullmatch(params["AddressSid"]):
            return 400, twilio_error(400, 20001, "AddressSid is not a valid Address SID (AD...)")
        if params.get("TrunkSid") and not _TRUNK_SID.fullmatch(params["TrunkSid"]):
            return 400, twilio_error(400, 20001, "TrunkSid is not a valid Trunk SID (TK...)")
        if "VoiceReceiveMode" in params and params["VoiceReceiveMode"] not in ("voice", "fax"):
            return 400, twilio_error(400, 20001, "VoiceReceiveMode must be voice or fax")
        return None

    def _apply(self, resource: dict[str, Any], params: dict[str, str]) -> None:
        for name in UPDATABLE:
            if name in params:
                value = params[name]
                resource[_FIELD[name]] = value.upper() if name.endswith("Method") else value
        # "Setting a trunk_sid will automatically delete your voice_application_sid and vice versa"
        if params.get("TrunkSid"):
            resource["voice_application_sid"] = None
        elif params.get("VoiceApplicationSid"):
            resource["trunk_sid"] = None
        resource["date_updated"] = _now()

    def _update(self, account_sid: str, sid: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if (bad := self._invalid(params)) is not None:
            return bad
        with self._lock:
            resource = self._owned(account_sid, sid)
            if resource is None:
                return 404, twilio_error(404, 20404, f"The requested resource {sid} was not found")
            self._apply(resource, params)
            return 200, dict(resource)

    def _purchase(self, account_sid: str, params: dict[str, str]) -> tuple[int, dict[str, Any] | None]:
        number = params.get("PhoneNumber", "").strip()
        if not number and not params.get("AreaCode"):
            return 400, twilio_error(400, 21451, "PhoneNumber or AreaCode is required")
        if (bad := self._invalid(params)) is not None:
            return bad
        with self._lock:
            stock = (
                self._stock.get(number)
                if number
                else next(
                    (s for s in self._stock.values() if s.phone_number.startswith("+1" + params["AreaCode"])),
                    None,
                )
            )
            if stock is None:
                return 400, twilio_error(
                    400, 21422, f"PhoneNumber {number or params.get('AreaCode')} is not available"
                )
            if stock.bundle_required and not params.get("BundleSid"):
                return 400, twilio_error(
                    400,
                    21649,
                    f"Phone Number {stock.phone_number} requires a Bundle (BundleSid) in {stock.country}",
                )
            if stock.address_required and not params.get("AddressSid"):
                return 400, twilio_error(
                    400, 21631, f"Phone Number {stock.phone_number} requires an Address (AddressSid)"
                )
            del self._stock[stock.phone_number]
            sid = "PN" + secrets.token_hex(16)
            resource = self._resource(account_sid, sid, stock.phone_number)
            resource["address_requirements"] = "local" if stock.address_required else "none"
            self._apply(resource, params)
            self._numbers[sid] = resource
            self.purchases.append(dict(params))
            if self.during_purchase:
                self.during_purchase.pop(0)()
            if self.purchase_replies:
                status = self.purchase_replies.pop(0)
                if status == 0:
                    return 0, None  # status 0: the server closes the connection without answering
                return status, twilio_error(status, 20500, "An internal server error has occurred")
            return 201, dict(resource)

    def _release(self, account_sid: str, sid: str) -> tuple[int, None | dict[str, Any]]:
        with self._lock:
            if self._owned(account_sid, sid) is None:
                return 404, twilio_error(404, 20404, f"The requested resource {sid} was not found")
            del self._numbers[sid]
        return 204, None

    def _search(
        self, account_sid: str, country: str, kind: str, query: dict[str, list[str]]
    ) -> tuple[int, dict[str, Any]]:
        area = (query.get("AreaCode") or [""])[0].strip()
        contains = (query.get("Contains") or [""])[0].strip()
        if contains and not 2 <= len(contains) <= 16:
            return 400, twilio_error(400, 20001, "Contains must be between 2 and 16 characters")
        try:
            size = max(1, min(1000, int((query.get("PageSize") or ["50"])[0])))
        except ValueError:
            return 400, twilio_error(400, 20001, "PageSize must be an integer")
        pattern = _contains_pattern(contains) if contains else None
        with self._lock:
            stock = [s for s in self._stock.values() if s.country == country and s.type == kind]
        out = []
        for s in sorted(stock, key=lambda s: s.phone_number):
            # AreaCode applies to US and Canada numbers only (Twilio's reference).
            if area and s.phone_number.startswith("+1") and not s.phone_number.startswith("+1" + area):
                continue
            if pattern is not None and not pattern.search(s.phone_number):
                continue
            out.append(
                {
                    "friendly_name": s.phone_number,
                    "phone_number": s.phone_number,
                    "lata": None,
                    "locality": s.locality,
                    "rate_center": None,
                    "latitude": None,
                    "longitude": None,
                    "region": None,
                    "postal_code": None,
                    "iso_country": s.country,
                    "address_requirements": "local" if s.address_required else "none",
                    "beta": False,
                    "capabilities": {"voice": True, "SMS": False, "MMS": False, "fax": False},
                }
            )
        uri = f"/{API_VERSION}/Accounts/{account_sid}/AvailablePhoneNumbers/{country}/{kind}.json"
        return 200, {"available_phone_numbers": out[:size], "uri": uri}


def _single(form: dict[str, list[str]]) -> dict[str, str]:
    return {k: v[-1] for k, v in form.items() if v}


def _contains_pattern(contains: str) -> re.Pattern[str]:
    """Twilio's ``Contains``: digits (letters as on a phone keypad), ``*`` one character, a leading
    ``+`` anchors at the start of the E.164 number, a trailing ``$`` at its end."""
    keypad = {
        c: d
        for d, letters in {
            "2": "abc",
            "3": "def",
            "4": "ghi",
            "5": "jkl",
            "6": "mno",
            "7": "pqrs",
            "8": "tuv",
            "9": "wxyz",
        }.items()
        for c in letters
    }
    anchored = contains.startswith("+")
    body = contains[1:] if anchored else contains
    end = body.endswith("$")
    body = body.rstrip("$")
    regex = "".join(
        "." if c in "*" else ".*" if c == "%" else re.escape(keypad.get(c.lower(), c)) for c in body
    )
    return re.compile(("^\\+" if anchored else "") + regex + ("$" if end else ""))
