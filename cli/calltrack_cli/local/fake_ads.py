"""Local fakes of the ad platforms the conversions consumer delivers to (one HTTP server, 127.0.0.1).

They validate requests the way the platforms' public docs describe (docs/decisions.md, 2026-11-30):

- Google OAuth (``POST /token``): ``grant_type=refresh_token`` with a registered client id, secret
  and refresh token -> ``{"access_token", "expires_in", "token_type": "Bearer"}``; else 400
  ``invalid_client`` / ``invalid_grant``.
- Google Ads REST (``POST /v26/customers/{id}:uploadClickConversions`` and
  ``:uploadConversionAdjustments``): a live Bearer token and the developer token, else 401/403.
  A 401 is shaped as the Google Ads API's "Handle API errors" / "Understand API errors" guides
  (developers.google.com/google-ads/api/docs/get-started/handle-errors,
  .../docs/best-practices/understand-api-errors) and the ``AuthenticationErrorEnum`` reference
  describe it: HTTP 401, ``error.status: UNAUTHENTICATED``, and a ``GoogleAdsFailure`` in
  ``error.details[]`` whose ``errors[].errorCode.authenticationError`` names the cause:
  ``OAUTH_TOKEN_INVALID`` for a token it never issued, ``OAUTH_TOKEN_EXPIRED`` for one past its
  lifetime (``expire_google_tokens()`` ages every issued token), or the code programmed with
  ``google_auth_error(customer_id, "CUSTOMER_NOT_FOUND")`` (``NOT_ADS_USER``,
  ``GOOGLE_ACCOUNT_DELETED``, ...) for every request on that customer, checked after the token;
  ``partialFailure: true`` required; per row: a registered conversion action of that customer,
  exactly one of gclid / gbraid / wbraid, ``conversionDateTime`` as ``yyyy-mm-dd hh:mm:ss+hh:mm``
  no older than 90 days, an order id not used before; a click id in ``recent_click_ids`` is
  answered ``TOO_RECENT_EVENT`` (Google: the click is under 6 hours old) for that many more
  uploads, a count standing in for the clock; failed rows are reported in
  ``partialFailureError`` by index and the rest are accepted. Adjustments (RESTATEMENT) need the
  order id of an accepted conversion and a ``restatementValue.adjustedValue``.
- Meta Conversions API (``POST /v24.0/{pixel_id}/events``): the pixel's access token, events with
  event_name, integer event_time at most 7 days old, a known action_source, user_data with a
  hashed ``ph`` (64 lowercase hex) or fbc/fbp; an event whose (event_name, event_id) was received
  before is deduplicated (counted once), as Meta does.
- GA4 Measurement Protocol (``POST /mp/collect``): answers 2xx whatever it gets, like the real
  endpoint; what the validation server (``/debug/mp/collect``) would say is kept in
  ``ga4_validation`` so tests can assert there is nothing to say.

Faults are programmable per API and consumed one per request: ``fail("google", "429", "503")``.
Every request is logged (``requests``: api, path, status) without credentials.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

GOOGLE_VERSION = "v26"
META_VERSION = "v24.0"
FAILURE_TYPE_PREFIX = "type.googleapis.com/google.ads.googleads"
_GOOGLE_PATH = re.compile(
    rf"^/{GOOGLE_VERSION}/customers/(?P<cid>\d{{10}}):(?P<method>uploadClickConversions|"
    r"uploadConversionAdjustments)$"
)
_META_PATH = re.compile(rf"^/{re.escape(META_VERSION)}/(?P<pixel>\d+)/events$")
_GOOGLE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_GA4_EVENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")
META_ACTION_SOURCES = {
    "email",
    "website",
    "app",
    "phone_call",
    "chat",
    "physical_store",
    "system_generated",
    "business_messaging",
    "other",
}


@dataclass
class GoogleClient:
    client_id: str
    client_secret: str
    refresh_token: str
    developer_token: str
    customers: dict[str, set[str]] = field(default_factory=dict)  # customer id -> conversion action ids


@dataclass(frozen=True)
class Logged:
    api: str  # oauth | google | meta | ga4
    path: str
    status: int


class FakeAdPlatforms:
    """``start()``; point the settings at ``env()``; program with ``google_client``, ``meta_pixel``,
    ``ga4_stream`` and ``fail``; read ``google_conversions``, ``google_adjustments``, ``meta_events``,
    ``ga4_events``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, now: Any = None) -> None:
        self.now = now or (lambda: datetime.now(UTC))
        self.google_clients: list[GoogleClient] = []
        self.meta_pixels: dict[str, str] = {}  # pixel id -> access token
        self.ga4_streams: dict[str, str] = {}  # measurement id -> api secret
        self.invalid_click_ids: set[str] = set()
        self.recent_click_ids: dict[str, int] = {}  # click id -> uploads still "too recent"
        self.google_auth_errors: dict[str, str] = {}  # customer id -> AuthenticationError (401)
        self.google_conversions: list[dict[str, Any]] = []
        self.google_adjustments: list[dict[str, Any]] = []
        self.meta_events: list[dict[str, Any]] = []
        self.meta_received = 0
        self.ga4_events: list[dict[str, Any]] = []
        self.ga4_validation: list[str] = []
        self.requests: list[Logged] = []
        self._tokens: dict[str, tuple[GoogleClient, float]] = {}
        self._faults: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def env(self) -> dict[str, str]:
        """The settings that point calltrack's adapters here."""
        return {
            "GOOGLE_ADS_API_BASE_URL": self.base_url,
            "GOOGLE_OAUTH_TOKEN_URL": f"{self.base_url}/token",
            "META_GRAPH_BASE_URL": self.base_url,
            "GA4_MP_BASE_URL": self.base_url,
        }

    def start(self) -> Self:
        threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-ads",
            daemon=True,
        ).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- programming ---------------------------------------------------------------------------
    def google_client(self, customer_id: str, action_id: str) -> dict[str, str]:
        """Register an OAuth client + developer token allowed on that customer and action; -> the
        JSON calltrack keeps as the account's google-ads secret."""
        client = GoogleClient(
            client_id=f"{secrets.token_hex(6)}.apps.googleusercontent.com",
            client_secret=secrets.token_hex(12),
            refresh_token="1//" + secrets.token_hex(16),
            developer_token=secrets.token_hex(11),
            customers={customer_id: {action_id}},
        )
        with self._lock:
            self.google_clients.append(client)
        return {
            "developer_token": client.developer_token,
            "client_id": client.client_id,
            "client_secret": client.client_secret,
            "refresh_token": client.refresh_token,
        }

    def google_auth_error(self, customer_id: str, code: str | None) -> None:
        """Requests on ``customer_id`` with a live token answer 401 with this AuthenticationError
        (``CUSTOMER_NOT_FOUND``, ``NOT_ADS_USER``, ``GOOGLE_ACCOUNT_DELETED``, ...); None: normal."""
        with self._lock:
            if code is None:
                self.google_auth_errors.pop(customer_id, None)
            else:
                self.google_auth_errors[customer_id] = code

    def expire_google_tokens(self) -> None:
        """Every access token issued so far has expired (answered ``OAUTH_TOKEN_EXPIRED``)."""
        with self._lock:
            self._tokens = {t: (client, 0.0) for t, (client, _) in self._tokens.items()}

    def meta_pixel(self, pixel_id: str) -> str:
        token = "EAAB" + secrets.token_hex(16)
        with self._lock:
            self.meta_pixels[pixel_id] = token
        return token

    def ga4_stream(self, measurement_id: str) -> str:
        secret = secrets.token_urlsafe(16)
        with self._lock:
            self.ga4_streams[measurement_id] = secret
        return secret

    def fail(self, api: str, *faults: str) -> None:
        """The next requests to ``api`` (oauth | google | meta | ga4) answer these statuses, in order."""
        with self._lock:
            self._faults.setdefault(api, []).extend(faults)

    def recover(self, api: str) -> None:
        """``api`` answers normally again: the faults still queued for it are dropped."""
        with self._lock:
            self._faults.pop(api, None)

    def _fault(self, api: str) -> int | None:
        with self._lock:
            queue = self._faults.get(api) or []
            return int(queue.pop(0)) if queue else None

    def requests_to(self, api: str) -> list[Logged]:
        with self._lock:
            return [r for r in self.requests if r.api == api]

    # -- HTTP ----------------------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                api, status, body = fake._route(
                    url.path, parse_qs(url.query), dict(self.headers.items()), raw
                )
                with fake._lock:
                    fake.requests.append(Logged(api, url.path, status))
                payload = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                if payload:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler

    def _route(
        self, path: str, query: dict[str, list[str]], headers: dict[str, str], raw: bytes
    ) -> tuple[str, int, Any]:
        if path == "/token":
            return ("oauth", *self._with_fault("oauth", lambda: self._token(raw)))
        match = _GOOGLE_PATH.match(path)
        if match:
            return ("google", *self._with_fault("google", lambda: self._google(match, headers, raw)))
        match = _META_PATH.match(path)
        if match:
            return ("meta", *self._with_fault("meta", lambda: self._meta(match["pixel"], query, raw)))
        if path == "/mp/collect":
            return ("ga4", *self._with_fault("ga4", lambda: self._ga4(query, raw)))
        return "unknown", 404, {"error": {"code": 404, "message": "not found"}}

    def _with_fault(self, api: str, answer: Any) -> tuple[int, Any]:
        status = self._fault(api)
        if status is None:
            result: tuple[int, Any] = answer()
            return result
        if api == "meta":
            return status, {
                "error": {
                    "message": "fake fault",
                    "type": "OAuthException",
                    "code": 2,
                    "fbtrace_id": "fake",
                }
            }
        if api == "ga4":
            return status, None
        names = {429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
        return status, {
            "error": {"code": status, "message": "fake fault", "status": names.get(status, "UNKNOWN")}
        }

    # -- Google --------------------------------------------------------------------------------
    def _token(self, raw: bytes) -> tuple[int, Any]:
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        if form.get("grant_type") != "refresh_token":
            return 400, {"error": "unsupported_grant_type"}
        client = next((c for c in self.google_clients if c.client_id == form.get("client_id")), None)
        if client is None or client.client_secret != form.get("client_secret"):
            return 401, {"error": "invalid_client"}
        if client.refresh_token != form.get("refresh_token"):
            return 400, {
                "error": "invalid_grant",
                "error_description": "Token has been expired or revoked.",
            }
        token = "ya29." + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = (client, time.monotonic() + 3599)
        return 200, {
            "access_token": token,
            "expires_in": 3599,
            "token_type": "Bearer",
            "scope": "https://www.googleapis.com/auth/adwords",
        }

    def _google(self, match: re.Match[str], headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        lower = {k.lower(): v for k, v in headers.items()}
        bearer = lower.get("authorization", "")
        with self._lock:
            entry = (
                self._tokens.get(bearer.removeprefix("Bearer "))
                if bearer.startswith("Bearer ")
                else None
            )
        if entry is None:
            return 401, _unauthenticated("OAUTH_TOKEN_INVALID", "OAuth token in the header is not valid.")
        if entry[1] < time.monotonic():
            return 401, _unauthenticated("OAUTH_TOKEN_EXPIRED", "OAuth token in the header has expired.")
        client = entry[0]
        with self._lock:
            refused = self.google_auth_errors.get(match["cid"])
        if refused:
            return 401, _unauthenticated(refused, refused.replace("_", " ").capitalize() + ".")
        if lower.get("developer-token") != client.developer_token:
            return 403, _google_failure(
                403, "PERMISSION_DENIED", {"authenticationError": "DEVELOPER_TOKEN_INVALID"}
            )
        customer = match["cid"]
        if customer not in client.customers:
            return 403, _google_failure(
                403, "PERMISSION_DENIED", {"authorizationError": "USER_PERMISSION_DENIED"}
            )
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, _google_failure(400, "INVALID_ARGUMENT", {"requestError": "INVALID_INPUT"})
        if body.get("partialFailure") is not True:
            return 400, _google_failure(
                400,
                "INVALID_ARGUMENT",
                {"requestError": "INVALID_INPUT"},
                "partial_failure must be true",
            )
        if match["method"] == "uploadClickConversions":
            return self._upload(customer, client, body.get("conversions") or [])
        return self._adjust(customer, client, body.get("conversionAdjustments") or [])

    def _action_ok(self, customer: str, client: GoogleClient, resource: Any) -> bool:
        prefix = f"customers/{customer}/conversionActions/"
        return (
            isinstance(resource, str)
            and resource.startswith(prefix)
            and resource[len(prefix) :] in client.customers.get(customer, set())
        )

    def _upload(self, customer: str, client: GoogleClient, rows: list[Any]) -> tuple[int, Any]:
        if not rows:
            return 400, _google_failure(400, "INVALID_ARGUMENT", {"collectionSizeError": "TOO_FEW"})
        errors: list[dict[str, Any]] = []
        results: list[dict[str, Any]] = []
        for i, row in enumerate(rows):
            error = self._conversion_error(customer, client, row)
            if error:
                errors.append(_row_error(i, "conversions", *error))
                results.append({})
                continue
            with self._lock:
                self.google_conversions.append({"customer_id": customer, **row})
            results.append(
                {
                    k: row[k]
                    for k in ("conversionAction", "conversionDateTime", "gclid", "gbraid", "wbraid")
                    if k in row
                }
            )
        body: dict[str, Any] = {"results": results}
        if errors:
            body["partialFailureError"] = _google_failure(400, "INVALID_ARGUMENT", None, errors=errors)[
                "error"
            ]
        return 200, body

    def _conversion_error(self, customer: str, client: GoogleClient, row: Any) -> tuple[str, str] | None:
        if not isinstance(row, dict):
            return "requestError", "INVALID_INPUT"
        if not self._action_ok(customer, client, row.get("conversionAction")):
            return "conversionUploadError", "NO_CONVERSION_ACTION_FOUND"
        ids = [k for k in ("gclid", "gbraid", "wbraid") if row.get(k)]
        if len(ids) > 1:
            return (
                "conversionUploadError",
                "GBRAID_WBRAID_BOTH_SET" if "gclid" not in ids else "INVALID_INPUT",
            )
        if not ids:
            return "fieldError", "REQUIRED"
        if row[ids[0]] in self.invalid_click_ids:
            return "conversionUploadError", "UNPARSEABLE_GCLID"
        with self._lock:
            if self.recent_click_ids.get(row[ids[0]], 0) > 0:
                self.recent_click_ids[row[ids[0]]] -= 1
                return "conversionUploadError", "TOO_RECENT_EVENT"
        when = row.get("conversionDateTime")
        if not isinstance(when, str) or not _GOOGLE_TIME.match(when):
            return "dateError", "INVALID_FIELD_FORMAT"
        moment = datetime.strptime(when[:19], "%Y-%m-%d %H:%M:%S").replace(
            tzinfo=timezone(timedelta(hours=int(when[19:22]), minutes=int(when[19] + when[23:25])))
        )
        if moment < self.now() - timedelta(days=90):
            return "conversionUploadError", "EXPIRED_EVENT"
        if moment > self.now() + timedelta(minutes=10):
            return "conversionUploadError", "CONVERSION_PRECEDES_EVENT"
        value = row.get("conversionValue")
        if value is not None and (
            not isinstance(value, int | float)
            or not re.fullmatch(r"[A-Z]{3}", str(row.get("currencyCode")))
        ):
            return "fieldError", "INVALID_VALUE"
        with self._lock:
            if any(
                c.get("orderId") == row.get("orderId")
                and c["conversionAction"] == row["conversionAction"]
                for c in self.google_conversions
                if row.get("orderId")
            ):
                return "conversionUploadError", "ORDER_ID_ALREADY_IN_USE"
        return None

    def _adjust(self, customer: str, client: GoogleClient, rows: list[Any]) -> tuple[int, Any]:
        if not rows:
            return 400, _google_failure(400, "INVALID_ARGUMENT", {"collectionSizeError": "TOO_FEW"})
        errors: list[dict[str, Any]] = []
        results: list[dict[str, Any]] = []
        for i, row in enumerate(rows):
            error: tuple[str, str] | None = None
            if not self._action_ok(customer, client, row.get("conversionAction")):
                error = (
                    "conversionAdjustmentUploadError",
                    "CONVERSION_ACTION_NOT_ELIGIBLE_FOR_RESTATEMENT",
                )
            elif row.get("adjustmentType") != "RESTATEMENT" or not isinstance(
                (row.get("restatementValue") or {}).get("adjustedValue"), int | float
            ):
                error = (
                    "conversionAdjustmentUploadError",
                    "RESTATEMENT_ALREADY_EXISTS"
                    if row.get("adjustmentType") == "RESTATEMENT"
                    else "INVALID_ADJUSTMENT_TYPE",
                )
            elif not _GOOGLE_TIME.match(str(row.get("adjustmentDateTime"))):
                error = ("dateError", "INVALID_FIELD_FORMAT")
            else:
                with self._lock:
                    known = any(c.get("orderId") == row.get("orderId") for c in self.google_conversions)
                if not known:
                    error = ("conversionAdjustmentUploadError", "CONVERSION_NOT_FOUND")
            if error:
                errors.append(_row_error(i, "conversion_adjustments", *error))
                results.append({})
                continue
            with self._lock:
                self.google_adjustments.append({"customer_id": customer, **row})
            results.append(
                {"conversionAction": row["conversionAction"], "adjustmentType": "RESTATEMENT"}
            )
        body: dict[str, Any] = {"results": results}
        if errors:
            body["partialFailureError"] = _google_failure(400, "INVALID_ARGUMENT", None, errors=errors)[
                "error"
            ]
        return 200, body

    # -- Meta ----------------------------------------------------------------------------------
    def _meta(self, pixel: str, query: dict[str, list[str]], raw: bytes) -> tuple[int, Any]:
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, _meta_error(100, "Invalid parameter")
        token = body.get("access_token") or (query.get("access_token") or [""])[0]
        with self._lock:
            expected = self.meta_pixels.get(pixel)
        if expected is None or token != expected:
            return 400, _meta_error(190, "Invalid OAuth access token - Cannot parse access token")
        events = body.get("data")
        if not isinstance(events, list) or not events or len(events) > 1000:
            return 400, _meta_error(100, "The parameter data is required")
        for event in events:
            problem = self._meta_problem(event)
            if problem:
                return 400, _meta_error(100, problem)  # one bad event rejects the whole batch
        with self._lock:
            for event in events:
                key = (event["event_name"], event.get("event_id"))
                if event.get("event_id") and any(
                    (e["event_name"], e.get("event_id")) == key for e in self.meta_events
                ):
                    continue  # deduplicated on event_name + event_id
                self.meta_events.append(
                    {"pixel_id": pixel, "test_event_code": body.get("test_event_code"), **event}
                )
            self.meta_received += len(events)
        return 200, {"events_received": len(events), "messages": [], "fbtrace_id": secrets.token_hex(6)}

    def _meta_problem(self, event: Any) -> str | None:
        if not isinstance(event, dict) or not event.get("event_name"):
            return "event_name is required"
        when = event.get("event_time")
        if not isinstance(when, int):
            return "event_time must be a Unix timestamp in seconds"
        now = self.now().timestamp()
        if when > now + 60 or when < now - 7 * 86400:
            return "event_time is too far in the past or in the future"
        if event.get("action_source") not in META_ACTION_SOURCES:
            return "action_source is required and must be a known value"
        user = event.get("user_data")
        if not isinstance(user, dict) or not any(
            user.get(k) for k in ("ph", "em", "fbc", "fbp", "external_id")
        ):
            return "user_data must include customer information parameters"
        phones = user.get("ph") or []
        if not isinstance(phones, list) or not all(
            isinstance(p, str) and _SHA256.match(p) for p in phones
        ):
            return "ph must be SHA-256 hashed (lowercase hex)"
        custom = event.get("custom_data") or {}
        if "value" in custom and not re.fullmatch(r"[A-Z]{3}", str(custom.get("currency"))):
            return "currency is required with value"
        return None

    # -- GA4 -----------------------------------------------------------------------------------
    def _ga4(self, query: dict[str, list[str]], raw: bytes) -> tuple[int, Any]:
        measurement = (query.get("measurement_id") or [""])[0]
        secret = (query.get("api_secret") or [""])[0]
        problems: list[str] = []
        with self._lock:
            expected = self.ga4_streams.get(measurement)
        if expected is None or secret != expected:
            problems.append("api_secret/measurement_id: not a pair of this property")
        try:
            body = json.loads(raw)
        except ValueError:
            body = {}
            problems.append("body: not JSON")
        if not body.get("client_id"):
            problems.append("client_id: required")
        micros = body.get("timestamp_micros")
        if micros is not None and int(micros) < (self.now().timestamp() - 72 * 3600) * 1_000_000:
            problems.append("timestamp_micros: more than 72 hours in the past")
        for event in body.get("events") or []:
            if not _GA4_EVENT.match(str(event.get("name"))):
                problems.append(f"events.name: invalid {event.get('name')!r}")
        if not body.get("events"):
            problems.append("events: required")
        with self._lock:
            self.ga4_validation.extend(problems)
            if not problems:
                self.ga4_events.append({"measurement_id": measurement, **body})
        return 204, None  # the real endpoint answers 2xx even to invalid hits


def _row_error(index: int, collection: str, kind: str, code: str) -> dict[str, Any]:
    return {
        "errorCode": {kind: code},
        "message": f"{code.replace('_', ' ').lower()}",
        "location": {"fieldPathElements": [{"fieldName": collection, "index": index}]},
    }


def _google_failure(
    code: int,
    status: str,
    error_code: dict[str, str] | None,
    message: str = "request failed",
    *,
    errors: list[dict[str, Any]] | None = None,
    top_message: str | None = None,
) -> dict[str, Any]:
    items = errors if errors is not None else [{"errorCode": error_code, "message": message}]
    return {
        "error": {
            "code": 3 if code == 400 else code,
            "message": top_message or message,
            "status": status,
            "details": [
                {
                    "@type": f"{FAILURE_TYPE_PREFIX}.{GOOGLE_VERSION}.errors.GoogleAdsFailure",
                    "errors": items,
                    "requestId": secrets.token_urlsafe(16),
                }
            ],
        }
    }


def _unauthenticated(code: str, message: str) -> dict[str, Any]:
    """A Google Ads API 401: UNAUTHENTICATED with the AuthenticationError in a GoogleAdsFailure."""
    return _google_failure(
        401,
        "UNAUTHENTICATED",
        {"authenticationError": code},
        message,
        top_message="Request is missing required authentication credential. Expected OAuth 2 access "
        "token, login cookie or other valid authentication credential.",
    )


def _meta_error(code: int, message: str) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": "OAuthException",
            "code": code,
            "fbtrace_id": secrets.token_hex(6),
        }
    }
