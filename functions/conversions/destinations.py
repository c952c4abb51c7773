"""The platform adapters behind one port: ``send(rows, credentials) -> [Outcome]`` per row.

- Google Ads (REST, ``GOOGLE_ADS_API_VERSION``): ``customers/{id}:uploadClickConversions`` with
  ``partialFailure: true`` (each row's error is read from ``partialFailureError`` by its index),
  and ``customers/{id}:uploadConversionAdjustments`` (RESTATEMENT by ``orderId``) for a value that
  changed after it was sent. Access tokens come from the OAuth refresh-token flow (cached until
  shortly before they expire).
- Meta Conversions API: ``POST /{version}/{pixel_id}/events``, one event per request (Meta rejects a
  whole batch for one bad event), ``action_source: phone_call``, ``event_id`` = the order id,
  ``user_data.ph`` = SHA-256 of the caller's E.164 digits without "+", ``fbc``/``fbp`` when known.
- GA4 Measurement Protocol: ``POST /mp/collect?measurement_id=&api_secret=`` with the visitor's
  ``client_id`` (and ``session_id``) captured by dni.js; ``transaction_id`` = the order id (at
  most 100 characters).

Outcomes: ``sent`` (also a duplicate Google already holds: an earlier try landed); ``failed``
with the platform's reason (a permanent error: not retried); ``retry`` with a reason (429, 5xx, no
answer): the row stays pending and the message is retried with backoff; ``skipped`` with
``credentials_refused: <why>`` when the platform refused the credentials (revoked token, malformed
secret, no permission, a Google Ads 401 that a new access token does not cure): like a missing
secret, taken again on the call's next event once fixed, and in the Google Ads import file
meanwhile. Meta and GA4 event names are ``event_name(rule)`` (ASCII, at most 40 characters, one
per rule name); GA4's ``transaction_id`` is ``ga4_transaction_id(order id)`` (at most 100).
Nothing here logs a credential or a caller number.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from conversions import http
from conversions.rules import CREDENTIALS_REFUSED, Planned, parse_utc

GOOGLE_ADS_API_VERSION = "v26"  # the latest active version in Google's reference (2026-10)
META_GRAPH_VERSION = "v24.0"
SENT, FAILED, RETRY, SKIPPED = "sent", "failed", "retry", "skipped"


@dataclass(frozen=True)
class Outcome:
    status: str  # sent | failed | retry | skipped (the platform refused the credentials)
    reason: str | None = None
    wait_s: int = 0  # retry: the platform takes it only this much later (Google's "too recent")


def refused(why: str) -> Outcome:
    """The platform refused the credentials: skipped until the secret is fixed, then taken again."""
    return Outcome(SKIPPED, f"{CREDENTIALS_REFUSED}: {why}"[:300])


# A token or key pasted with a line break or space inside cannot be sent (a header value with a
# line break raises with the value in its message) and is refused like a wrong one.
_NOT_IN_A_SECRET = re.compile(r"[\x00-\x20\x7f]")
# Platforms' error texts can quote what they were sent ("Malformed access token EAAG..."): long
# token-like words are cut from every reason stored on a row (which marketers read).
_TOKEN_LIKE = re.compile(r"[A-Za-z0-9_\-./+=]{24,}")


def usable_secret(value: str) -> str | None:
    """The secret without surrounding whitespace, or None when a control character or space is
    left inside it."""
    value = value.strip()
    return None if _NOT_IN_A_SECRET.search(value) else value


def redacted(text: str, *secrets: str) -> str:
    """``text`` (a platform's error message) without the secrets it may quote or any token-like word."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _TOKEN_LIKE.sub("***", text)


class Destination(Protocol):
    def send(
        self, rows: Sequence[Planned], credentials: str, target: Any, timezone: str
    ) -> list[Outcome]: ...


Post = Callable[..., http.Answer]


def transient(answer: http.Answer) -> bool:
    return answer.status == 429 or answer.status >= 500


def local_time(iso_utc: str | datetime, timezone: str) -> str:
    """Google's conversion time: ``yyyy-mm-dd hh:mm:ss+09:00`` in the account's zone."""
    from calltrack.days import zone

    moment = parse_utc(iso_utc) if isinstance(iso_utc, str) else iso_utc
    text = moment.astimezone(zone(timezone)).strftime("%Y-%m-%d %H:%M:%S%z")
    return text[:-2] + ":" + text[-2:]


def _all(rows: Sequence[Planned], outcome: Outcome) -> list[Outcome]:
    return [outcome for _ in rows]


def _status_reason(prefix: str, answer: http.Answer) -> str:
    return f"{prefix}: HTTP {answer.status}"


# ----------------------------------------------------------------------------- Google Ads


class GoogleAds:
    """uploadClickConversions / uploadConversionAdjustments with the OAuth refresh-token flow."""

    def __init__(
        self,
        api_base: str,
        token_url: str,
        post: Post = http.post,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_base = api_base.rstrip("/")
        self.token_url = token_url
        self.post = post
        self.clock = clock
        # refresh-token hash -> (good until, access token, accepted by Google at least once)
        self._tokens: dict[str, tuple[float, str, bool]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _credentials(raw: str) -> dict[str, str] | None:
        try:
            creds = json.loads(raw)
        except ValueError:
            return None
        needed = ("developer_token", "client_id", "client_secret", "refresh_token")
        if not isinstance(creds, dict) or not all(isinstance(creds.get(k), str) and creds[k] for k in needed):
            return None
        clean = {k: usable_secret(creds[k]) for k in needed}
        if not all(clean.values()):
            return None
        return {**creds, **clean}

    @staticmethod
    def _cache_key(creds: Mapping[str, str]) -> str:
        return hashlib.sha256(creds["refresh_token"].encode()).hexdigest()

    def _access_token(self, creds: Mapping[str, str]) -> str | Outcome:
        cache_key = self._cache_key(creds)
        with self._lock:
            hit = self._tokens.get(cache_key)
        if hit and hit[0] > self.clock():
            return hit[1]
        try:
            answer = self.post(
                self.token_url,
                form={
                    "grant_type": "refresh_token",
                    "client_id": creds["client_id"],
                    "client_secret": creds["client_secret"],
                    "refresh_token": creds["refresh_token"],
                },
            )
        except http.Unreachable as err:
            return Outcome(RETRY, f"oauth: {err}")
        if transient(answer):
            return Outcome(RETRY, _status_reason("oauth", answer))
        token = answer.body.get("access_token") if isinstance(answer.body, dict) else None
        if answer.status != 200 or not token:
            error = answer.body.get("error") if isinstance(answer.body, dict) else None
            return refused(f"oauth: {error or answer.status}")  # invalid_grant: a revoked refresh token
        expires = float(answer.body.get("expires_in") or 3600)
        with self._lock:
            self._tokens[cache_key] = (self.clock() + max(60.0, expires - 300), str(token), False)
        return str(token)

    def _accepted(self, creds: Mapping[str, str], token: str) -> None:
        """Google took ``token`` (the request got past authentication): a later 401 on it means it
        expired, not that the refresh-token flow hands out tokens Google refuses."""
        key = self._cache_key(creds)
        with self._lock:
            hit = self._tokens.get(key)
            if hit is not None and hit[1] == token and not hit[2]:
                self._tokens[key] = (hit[0], hit[1], True)

    def _unauthenticated(self, creds: Mapping[str, str], token: str, body: Any) -> Outcome:
        """A 401 from the Google Ads API: ``error.details[].errors[].errorCode.authenticationError``
        (AuthenticationErrorEnum) says why. An expired or invalid access token (or a 401 without a
        readable code) on a token Google had accepted before is dropped and the row retried with a
        fresh one; the same 401 on a token just refreshed, and every other code (CUSTOMER_NOT_FOUND,
        NOT_ADS_USER, GOOGLE_ACCOUNT_DELETED, OAUTH_TOKEN_REVOKED, ...), will not pass by retrying:
        refused like a 403 (skipped, in the import file, taken again once the secret is fixed)."""
        code = _authentication_error(body)
        if code is not None and code not in GOOGLE_TOKEN_TO_REFRESH:
            return refused(f"google_ads: authenticationError={code}")
        why = code or "HTTP 401"
        key = self._cache_key(creds)
        with self._lock:
            hit = self._tokens.get(key)
            ours = hit is not None and hit[1] == token
            if ours:
                del self._tokens[key]  # the next try refreshes it
        if ours and hit is not None and not hit[2]:
            return refused(f"google_ads: {why} on an access token just refreshed")
        # (not ours: another request already dropped or replaced it; the next try has a new one)
        return Outcome(RETRY, f"google_ads: {why} (token refreshed next try)")

    def _call(
        self, method: str, target: Any, credentials: str, body: dict[str, Any], count: int
    ) -> tuple[list[Outcome] | None, Any]:
        """(outcomes for every row when the whole request failed, else None; the response body)."""
        creds = self._credentials(credentials)
        if creds is None:
            return [
                refused(
                    "the google-ads secret is not JSON with developer_token, "
                    "client_id, client_secret and refresh_token (each without spaces or line breaks)"
                )
            ] * count, None
        token = self._access_token(creds)
        if isinstance(token, Outcome):
            return [token] * count, None
        headers = {"Authorization": f"Bearer {token}", "developer-token": creds["developer_token"]}
        if target.login_customer_id:
            headers["login-customer-id"] = target.login_customer_id
        url = f"{self.api_base}/{GOOGLE_ADS_API_VERSION}/customers/{target.customer_id}:{method}"
        try:
            answer = self.post(url, json_body=body, headers=headers)
        except http.Unreachable as err:
            return [Outcome(RETRY, f"google_ads: {err}")] * count, None
        if transient(answer):
            return [Outcome(RETRY, _status_reason("google_ads", answer))] * count, None
        if answer.status == 401:
            return [self._unauthenticated(creds, token, answer.body)] * count, None
        self._accepted(creds, token)  # past authentication: a later 401 on it means it expired
        if answer.status == 403:  # no permission: developer token, login-customer-id, user access
            return [refused(f"google_ads: {_google_error(answer.body) or 403}")] * count, None
        if answer.status != 200:
            return [
                Outcome(FAILED, f"google_ads: {_google_error(answer.body) or answer.status}")
            ] * count, None
        return None, answer.body

    @staticmethod
    def _action(target: Any, row: Planned) -> str:
        """The row's rule's conversion action (``google_ads_conversion_action_id``), else the
        destination's."""
        action_id = row.extra.get("conversion_action_id") or target.conversion_action_id
        return f"customers/{target.customer_id}/conversionActions/{action_id}"

    def send(self, rows: Sequence[Planned], credentials: str, target: Any, timezone: str) -> list[Outcome]:
        conversions = []
        for row in rows:
            item: dict[str, Any] = {
                "conversionAction": self._action(target, row),
                "conversionDateTime": local_time(row.converted_at, timezone),
                "orderId": row.order_id,
                str(row.click_id_type): row.click_id,  # exactly one of gclid / gbraid / wbraid
            }
            if row.value is not None:
                item["conversionValue"] = row.value
                item["currencyCode"] = row.currency
            conversions.append(item)
        failed, body = self._call(
            "uploadClickConversions",
            target,
            credentials,
            {"conversions": conversions, "partialFailure": True},
            len(rows),
        )
        return failed if failed is not None else _per_row(body, len(rows))

    def restate(
        self,
        rows: Sequence[tuple[Planned, float]],
        credentials: str,
        target: Any,
        timezone: str,
        now: datetime,
    ) -> list[Outcome]:
        adjustments = [
            {
                "conversionAction": self._action(target, row),
                "adjustmentType": "RESTATEMENT",
                "orderId": row.order_id,
                "adjustmentDateTime": local_time(now, timezone),
                "restatementValue": {"adjustedValue": value, "currencyCode": row.currency},
            }
            for row, value in rows
        ]
        failed, body = self._call(
            "uploadConversionAdjustments",
            target,
            credentials,
            {"conversionAdjustments": adjustments, "partialFailure": True},
            len(rows),
        )
        return failed if failed is not None else _per_row(body, len(rows))


# AuthenticationError codes a new access token cures (the token expired or is not valid); the
# others (CUSTOMER_NOT_FOUND, NOT_ADS_USER, GOOGLE_ACCOUNT_DELETED, OAUTH_TOKEN_REVOKED, ...) it does not.
GOOGLE_TOKEN_TO_REFRESH = frozenset({"OAUTH_TOKEN_EXPIRED", "OAUTH_TOKEN_INVALID"})


def _authentication_error(body: Any) -> str | None:
    """The first ``errorCode.authenticationError`` of a Google Ads failure, else None."""
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    for detail in details if isinstance(details, list) else []:
        errors = detail.get("errors") if isinstance(detail, dict) else None
        for item in errors if isinstance(errors, list) else []:
            codes = item.get("errorCode") if isinstance(item, dict) else None
            code = codes.get("authenticationError") if isinstance(codes, dict) else None
            if isinstance(code, str) and code:
                return re.sub(r"[^A-Z0-9_]", "", code)[:60] or None
    return None


def _google_error(body: Any) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        for detail in error.get("details") or []:
            for item in detail.get("errors") or []:
                codes = item.get("errorCode") or {}
                if codes:
                    return ".".join(f"{k}={v}" for k, v in codes.items())
        return redacted(str(error.get("status") or error.get("message") or ""))[:200] or None
    return None


def _per_row(body: Any, count: int) -> list[Outcome]:
    """Partial failure: each error names its row by ``location.fieldPathElements[0].index``."""
    outcomes = [Outcome(SENT)] * count
    failure = body.get("partialFailureError") if isinstance(body, dict) else None
    if not failure:
        return outcomes
    for detail in failure.get("details") or []:
        for item in detail.get("errors") or []:
            path = (item.get("location") or {}).get("fieldPathElements") or []
            index = next((p.get("index") for p in path if "index" in p), None)
            codes = item.get("errorCode") or {}
            code = next(iter(codes.values()), None)
            reason = "google_ads: " + (code or item.get("message") or "error")
            if not (isinstance(index, int) and 0 <= index < count):
                continue
            if code in GOOGLE_DUPLICATES:
                # Google already holds it: an earlier try landed but its answer did not reach us
                outcomes[index] = Outcome(SENT)
            elif code in GOOGLE_TOO_RECENT:
                wait = GOOGLE_TOO_RECENT[code]
                outcomes[index] = Outcome(RETRY, f"{reason} (taken {wait // 3600} h later: tried again then)",
                                          wait_s=wait + TOO_RECENT_MARGIN_S)
            else:
                outcomes[index] = Outcome(FAILED, str(reason)[:300])
    return outcomes


# The row's order id (or click and time) is already at Google: the conversion (or restatement) is there.
GOOGLE_DUPLICATES = frozenset(
    {"ORDER_ID_ALREADY_IN_USE", "CLICK_CONVERSION_ALREADY_EXISTS", "RESTATEMENT_ALREADY_EXISTS"}
)

# Google takes the row, only later (ConversionUploadError / ConversionAdjustmentUploadError):
# TOO_RECENT_EVENT "the click ... occurred less than 6 hours ago. Retry after 6 hours have passed";
# TOO_RECENT_CONVERSION_ACTION "a conversion action that was just created. Try importing again in
# 6 hours"; TOO_RECENT_CONVERSION (adjustments) "try adjusting a conversion that occurred at least
# 24 hours ago". A call is often minutes after its click: these rows wait, they are not failed.
GOOGLE_TOO_RECENT = {"TOO_RECENT_EVENT": 6 * 3600, "TOO_RECENT_CONVERSION_ACTION": 6 * 3600,
                     "TOO_RECENT_CONVERSION": 24 * 3600}
TOO_RECENT_MARGIN_S = 900


# ----------------------------------------------------------------------------- Meta


def hashed_phone(e164: str) -> str:
    """Meta's ph: SHA-256 (hex) of the number's digits with the country code, no "+" or spaces."""
    digits = re.sub(r"\D", "", e164)
    return hashlib.sha256(digits.encode()).hexdigest()


# GA4 does not process an event name over 40 characters (its "collection limits"; the Measurement
# Protocol answers 2xx anyway) and counts a non-ASCII character as its URL-encoded length, and the
# Measurement Protocol takes ``[A-Za-z][A-Za-z0-9_]*``: names sent are ASCII and at most 40 long.
EVENT_NAME_MAX = 40
# GA4 drops an event parameter value over 100 characters (transaction_id among them).
GA4_PARAM_VALUE_MAX = 100
_NAME_HASH_LEN = 8


def _digest(text: str, length: int = _NAME_HASH_LEN) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


# Event names GA4 reserves (Analytics help "Event naming rules", web streams; the Measurement
# Protocol's own reserved prefixes): GA4 does not collect them, so such a rule's name gets ``ev_``.
GA4_RESERVED_NAMES = frozenset({
    "ad_impression", "app_remove", "app_store_refund", "app_store_subscription_cancel",
    "app_store_subscription_renew", "click", "error", "file_download", "first_open", "first_visit",
    "form_start", "form_submit", "in_app_purchase", "page_view", "scroll", "session_start",
    "user_engagement", "view_complete", "video_progress", "video_start", "view_search_results",
})
GA4_RESERVED_PREFIXES = ("query_id", "firebase_", "ga_", "google_", "gtag")


def event_name(rule: str) -> str:
    """A rule name as a GA4 / Meta event name: ASCII letters, digits and underscores, starting with
    a letter, at most 40 characters, not one GA4 reserves; the same name always gives the same event.

    A name GA4 took before keeps its event: a short ASCII name (other characters as ``_``), and one
    that starts with a digit (``c_`` before it, cut at 40, as it always was). A longer name, one
    with non-ASCII letters (電話問い合わせ) or nothing left ends in ``_`` and 8 hex digits of its
    SHA-256 instead, so two rules never become one event: ``phone_call_79e2ff5d``. A reserved name
    or prefix (``session_start``, ``google_…``) gets ``ev_`` before it."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", rule).strip("_")
    if name and not name[0].isalpha():
        return f"c_{name}"[:EVENT_NAME_MAX] if rule.isascii() else _hashed(f"c_{name}", rule)
    if name.lower() in GA4_RESERVED_NAMES or name.lower().startswith(GA4_RESERVED_PREFIXES):
        name = f"ev_{name}"
    if name and rule.isascii() and len(name) <= EVENT_NAME_MAX:
        return name
    return _hashed(name, rule)


def _hashed(name: str, rule: str) -> str:
    suffix = f"_{_digest(rule)}"
    return (name[: EVENT_NAME_MAX - len(suffix)].rstrip("_") or "phone_call") + suffix


def ga4_transaction_id(order_id: str) -> str:
    """The order id (``{CallSid}:{rule}``) as GA4's ``transaction_id``: unchanged when it is ASCII and
    at most 100 characters, else ``{CallSid}:{event_name(rule)}`` (unique per call and rule, at
    most 34 + 1 + 40 characters for a Twilio CallSid)."""
    if order_id.isascii() and len(order_id) <= GA4_PARAM_VALUE_MAX:
        return order_id
    call_sid, _, rule = order_id.partition(":")
    short = f"{call_sid}:{event_name(rule)}"
    if short.isascii() and len(short) <= GA4_PARAM_VALUE_MAX:
        return short
    return f"t_{_digest(order_id, 32)}"  # not a Twilio CallSid: a digest of the whole order id


class OneByOne:
    """A platform that takes one event per request (its whole batch fails for one bad event).
    Delivery hands it one row at a time and records each outcome at once: a Lambda cut off
    mid-batch then leaves at most one row sent but not recorded (sent again on the retry; GA4
    would count it twice)."""

    one_per_request = True

    def __init__(self, base_url: str, post: Post = http.post) -> None:
        self.base_url = base_url.rstrip("/")
        self.post = post

    def send(self, rows: Sequence[Planned], credentials: str, target: Any, timezone: str) -> list[Outcome]:
        secret = usable_secret(credentials)
        if secret is None:
            return [refused("the secret has a space, line break or control character inside")] * len(rows)
        return [self._one(row, secret, target) for row in rows]

    def _one(self, row: Planned, credentials: str, target: Any) -> Outcome:
        raise NotImplementedError


class Meta(OneByOne):

    def _one(self, row: Planned, credentials: str, target: Any) -> Outcome:
        user: dict[str, Any] = {}
        if row.extra.get("caller"):
            user["ph"] = [hashed_phone(str(row.extra["caller"]))]
        for key in ("fbc", "fbp"):
            if row.extra.get(key):
                user[key] = row.extra[key]
        event: dict[str, Any] = {
            "event_name": event_name(row.rule),
            "event_time": int(parse_utc(row.converted_at).timestamp()),
            "event_id": row.order_id,
            "action_source": "phone_call",
            "user_data": user,
        }
        if row.value is not None:
            event["custom_data"] = {"value": row.value, "currency": row.currency}
        body: dict[str, Any] = {"data": [event], "access_token": credentials}  # the pixel's access token
        if target.test_event_code:
            body["test_event_code"] = target.test_event_code
        url = f"{self.base_url}/{META_GRAPH_VERSION}/{target.pixel_id}/events"
        try:
            answer = self.post(url, json_body=body)
        except http.Unreachable as err:
            return Outcome(RETRY, f"meta: {err}")
        error = answer.body.get("error") if isinstance(answer.body, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        # Graph API throttling codes (4, 17, 32, 613) and 5xx are worth a retry; the rest is final.
        if transient(answer) or code in (4, 17, 32, 613):
            return Outcome(RETRY, f"meta: HTTP {answer.status}" + (f" code {code}" if code else ""))
        if answer.status != 200:
            text = str(error.get("message") or "") if isinstance(error, dict) else ""
            message = redacted(text, credentials)
            why = f"meta: {code or answer.status} {message[:200]}".strip()
            # 190: the access token is invalid or expired; 10 and 200-299: no permission
            if code in (102, 190, 10) or (isinstance(code, int) and 200 <= code <= 299):
                return refused(why)
            return Outcome(FAILED, why)
        return Outcome(SENT)


# ----------------------------------------------------------------------------- GA4


class Ga4(OneByOne):
    def _one(self, row: Planned, credentials: str, target: Any) -> Outcome:
        import urllib.parse

        params: dict[str, Any] = {
            "transaction_id": ga4_transaction_id(row.order_id),
            "engagement_time_msec": 1,
            "method": "phone_call",
        }
        if row.value is not None:
            params["value"] = row.value
            params["currency"] = row.currency
        if row.extra.get("session_id"):
            params["session_id"] = str(row.extra["session_id"])
        body = {
            "client_id": str(row.extra["client_id"]),
            "timestamp_micros": int(parse_utc(row.converted_at).timestamp() * 1_000_000),
            "events": [{"name": event_name(row.rule), "params": params}],
        }
        query = urllib.parse.urlencode({"measurement_id": target.measurement_id, "api_secret": credentials})
        try:
            answer = self.post(f"{self.base_url}/mp/collect?{query}", json_body=body)
        except http.Unreachable as err:
            return Outcome(RETRY, f"ga4: {err}")
        if transient(answer):
            return Outcome(RETRY, _status_reason("ga4", answer))
        if not 200 <= answer.status < 300:
            return Outcome(FAILED, _status_reason("ga4", answer))
        return Outcome(SENT)  # the Measurement Protocol answers 2xx without validating (docs)
