"""Validation of the browser's lease request: size caps, types, and 400s naming the field."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from calltrack.bodies import load_json_object
from calltrack.dni_match import AD_COOKIE_KEYS, CLICK_IDS, UTM_KEYS, click_id_or_none
from calltrack.errors import BadRequest

MAX_BODY_BYTES = 8 * 1024
MAX_URL = 2048
MAX_TEXT = 256
MAX_CLICK_ID = 512
_ACCOUNT = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")  # every pattern is used with fullmatch
_ID = re.compile(r"[A-Za-z0-9_.:-]{8,128}")
_E164 = re.compile(r"\+[1-9]\d{6,14}", re.ASCII)  # ASCII: \d alone matches every script's digits
# The ad platforms' cookie ids as dni.js sends them (conversions, issue 16): GA4 client id
# "1234567890.1712345678" and session id "1712345678"; Meta's "fb.1.<ms>.<random>" (_fbp) and
# "fb.1.<ms>.<fbclid>" (_fbc).
AD_COOKIE_PATTERNS = {
    "ga_client_id": re.compile(r"\d{1,20}\.\d{1,20}", re.ASCII),
    "ga_session_id": re.compile(r"\d{1,20}", re.ASCII),
    "fbp": re.compile(r"fb\.\d\.\d{10,16}\.\d{1,24}", re.ASCII),
    "fbc": re.compile(r"fb\.\d\.\d{10,16}\.[A-Za-z0-9_-]{1,500}", re.ASCII),
}


@dataclass(frozen=True)
class LeaseRequest:
    account: str
    visitor_id: str
    session_id: str
    page_url: str | None = None
    landing_page: str | None = None
    referrer: str | None = None
    keyword: str | None = None
    utm: dict[str, str | None] = field(default_factory=dict)
    click_ids: dict[str, str | None] = field(default_factory=dict)
    ad_cookies: dict[str, str | None] = field(default_factory=dict)  # AD_COOKIE_KEYS
    number: str | None = None  # the number the page currently shows (hint for stickiness)
    lease_id: str | None = None  # the session's lease of ``number``: a heartbeat's fast path
    release: bool = False  # the page was hidden or closed: end the lease now (sendBeacon)
    # A release's ``expires_at`` (the lease answer the page last had, epoch seconds): the lease is
    # ended only if no other page of the session renewed it since (tabs share the lease). A script
    # from before ``page_id``: a page that sends its id is told apart exactly instead.
    seen_expires_at: float | None = None
    # The page that sends the request (dni.js: random per page load, kept over a back/forward cache
    # restore): a take or renewal records it on the lease row, and a release of a page that sends it
    # ends the lease only if that page took or renewed it last (another tab or the next page of the
    # session that renewed it since still shows the number).
    page_id: str | None = None

    def attribution_fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "visitor_id": self.visitor_id,
            "session_id": self.session_id,
            "page_url": self.page_url,
            "landing_page": self.landing_page,
            "referrer": self.referrer,
            "keyword": self.keyword,
            "utm": dict(self.utm),
        }
        out.update(self.click_ids)
        out.update(self.ad_cookies)
        return out


def _string(body: dict[str, Any], label: str, name: str) -> str | None:
    """``body[name]``: a string, or None when absent or empty; another type is a 400."""
    value = body.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{label}: must be a string", field=label)
    return value


def _text(body: dict[str, Any], name: str, limit: int, *, path: str | None = None) -> str | None:
    label = path or name
    value = _string(body, label, name)
    if value is None:
        return None
    if len(value) > limit:
        raise BadRequest(f"{label}: longer than {limit} characters", field=label)
    if any(ord(c) < 32 for c in value):
        raise BadRequest(f"{label}: control characters are not allowed", field=label)
    if any(0xD800 <= ord(c) <= 0xDFFF for c in value):  # a lone surrogate: not text the store can keep
        raise BadRequest(f"{label}: not valid Unicode text", field=label)
    return value.strip() or None


def _tracking(body: dict[str, Any], name: str, limit: int, *, path: str | None = None) -> str | None:
    """Text a visitor's URL or browser hands in (utm values, keyword, referrer, page URLs): cut to
    ``limit`` and control characters made spaces, not refused — a 400 would repeat on every lease
    of that visitor (dni.js keeps the first touch), who would then never see a pool number. Only a
    wrong type (a broken script) is refused."""
    value = _string(body, path or name, name)
    if value is None:
        return None
    cleaned = "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in value[: limit * 2]
                      if not 0xD800 <= ord(c) <= 0xDFFF and c not in "\ufffe\uffff")
    return cleaned[:limit].strip() or None


def _click_id(body: dict[str, Any], name: str) -> str | None:
    """A click id, or None when the value is not one (too long, other characters): dropped, not
    refused, so the visitor still gets the number (a cut click id would be a wrong one)."""
    value = _string(body, name, name)
    return click_id_or_none(value) if value is not None and len(value) <= MAX_CLICK_ID else None


def _url(body: dict[str, Any], name: str) -> str | None:
    value = _tracking(body, name, MAX_URL)
    if value is not None and not re.match(r"^https?://", value, re.I):
        raise BadRequest(f"{name}: must be an http(s) URL", field=name)
    return value


def parse_lease_request(raw: str | bytes | None) -> LeaseRequest:
    body = load_json_object(raw, max_bytes=MAX_BODY_BYTES)

    account = body.get("account")
    if not isinstance(account, str) or not _ACCOUNT.fullmatch(account):
        raise BadRequest("account: required, lowercase letters, digits and hyphens", field="account")
    ids: dict[str, str] = {}
    for name in ("visitor_id", "session_id"):
        value = body.get(name)
        if not isinstance(value, str) or not _ID.fullmatch(value):
            raise BadRequest(f"{name}: required, 8-128 characters of A-Z a-z 0-9 _ . : -", field=name)
        ids[name] = value

    utm_raw = body.get("utm")
    if utm_raw is None:
        utm_raw = {}
    if not isinstance(utm_raw, dict):
        raise BadRequest("utm: must be an object", field="utm")
    utm = {key: _tracking(utm_raw, key, MAX_TEXT, path=f"utm.{key}") for key in UTM_KEYS}
    # a value that is not a click id is dropped, not refused: the visitor still gets the number
    click_ids = {name: _click_id(body, name) for name in CLICK_IDS}
    ad_cookies: dict[str, str | None] = {}
    for name in AD_COOKIE_KEYS:
        value = _text(body, name, MAX_CLICK_ID)
        if value is not None and not AD_COOKIE_PATTERNS[name].fullmatch(value):
            raise BadRequest(f"{name}: not a {name} as the platform's cookie holds it", field=name)
        ad_cookies[name] = value
    number = _text(body, "number", 20)
    if number is not None and not _E164.fullmatch(number):
        raise BadRequest("number: must be E.164", field="number")
    lease_id = body.get("lease_id")
    if lease_id is not None and (not isinstance(lease_id, str) or not _ID.fullmatch(lease_id)):
        raise BadRequest("lease_id: 8-128 characters of A-Z a-z 0-9 _ . : -", field="lease_id")
    release = body.get("release", False)
    if not isinstance(release, bool):
        raise BadRequest("release: must be true or false", field="release")
    if release and not (number and lease_id):
        raise BadRequest("release: needs number and lease_id", field="release")
    seen_expires_at = _instant(body, "expires_at")
    page_id = body.get("page_id")
    if page_id is not None and (not isinstance(page_id, str) or not _ID.fullmatch(page_id)):
        raise BadRequest("page_id: 8-128 characters of A-Z a-z 0-9 _ . : -", field="page_id")
    return LeaseRequest(
        account=account,
        visitor_id=ids["visitor_id"],
        session_id=ids["session_id"],
        page_url=_url(body, "page_url"),
        landing_page=_url(body, "landing_page"),
        referrer=_tracking(body, "referrer", MAX_URL),
        keyword=_tracking(body, "keyword", MAX_TEXT),
        utm=utm,
        click_ids=click_ids,
        ad_cookies=ad_cookies,
        number=number,
        lease_id=lease_id,
        release=release,
        seen_expires_at=seen_expires_at,
        page_id=page_id,
    )


def _instant(body: dict[str, Any], name: str) -> float | None:
    """An ISO 8601 UTC time as the lease answer gives it (``2026-12-01T09:30:00Z``) -> epoch."""
    value = body.get(name)
    if value is None:
        return None
    shape = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z"
    if not isinstance(value, str) or not re.fullmatch(shape, value, re.ASCII):
        raise BadRequest(f"{name}: the lease answer's expires_at (YYYY-MM-DDTHH:MM:SSZ)", field=name)
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise BadRequest(f"{name}: not a date and time", field=name) from None
