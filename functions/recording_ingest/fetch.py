"""Fetch a recording's MP3 from Twilio's REST API (stdlib urllib only: no extra runtime deps).

Trust nothing at the edge: the URL is built here from a validated RecordingSid and AccountSid
and the configured API base, never taken from the callback; Basic credentials go only to the
base URL's own host (a redirect to another host is followed without them); HTTPS only outside
local mode; bounded by timeouts, a redirect limit and a size cap; the body must look like MP3.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any, cast
from urllib.parse import urlencode, urljoin, urlsplit

from recording_ingest.ids import ACCOUNT_SID, CALL_SID, RECORDING_SID

DEFAULT_TIMEOUT_S = 20.0
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
LIST_MAX_BYTES = 1024 * 1024
LIST_PAGE_SIZE = 50
MAX_REDIRECTS = 3
_CHUNK = 256 * 1024
_MP3_TYPES = (
    "audio/mpeg",
    "audio/mp3",
    "audio/mpeg3",
    "audio/x-mpeg-3",
    "audio/x-mp3",
    "application/octet-stream",
)

NOT_READY = "not-ready"  # Twilio answered 404: not there yet, or gone (ingest counts them in a row)


class FetchError(Exception):
    """The recording could not be fetched (now). ``reason`` is a short machine-readable tag."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


def recording_api_url(base_url: str, account_sid: str, recording_sid: str, ext: str = ".mp3") -> str:
    """The only URL recordings are ever fetched from (validated ids, configured base)."""
    if not ACCOUNT_SID.match(account_sid or ""):
        raise ValueError("AccountSid must match ^AC[0-9a-f]{32}$")
    if not RECORDING_SID.match(recording_sid or ""):
        raise ValueError("RecordingSid must match ^RE[0-9a-f]{32}$")
    return f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Recordings/{recording_sid}{ext}"


def looks_like_mp3(body: bytes) -> bool:
    """ID3v2 tag, or an MPEG audio frame sync (11 set bits) with a valid layer/bitrate/rate."""
    if body[:3] == b"ID3":
        return len(body) > 10
    if len(body) < 4 or body[0] != 0xFF or (body[1] & 0xE0) != 0xE0:
        return False
    version, layer = (body[1] >> 3) & 0x3, (body[1] >> 1) & 0x3
    bitrate, rate = body[2] >> 4, (body[2] >> 2) & 0x3
    return version != 0b01 and layer != 0 and bitrate not in (0, 0xF) and rate != 0x3


def _opener() -> urllib.request.OpenerDirector:
    # No proxies from the environment, no automatic redirects (they would copy Authorization):
    # redirects are followed by hand below.
    from calltrack.outbound import direct_opener

    return cast(urllib.request.OpenerDirector, direct_opener())


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, (parts.hostname or "").lower(), port


def _transport_error(err: Exception) -> FetchError:
    """A connection failure as FetchError ``timeout`` or ``connection`` (retryable either way)."""
    cause: object = err.reason if isinstance(err, urllib.error.URLError) else err
    kind = "timeout" if isinstance(err, TimeoutError) or isinstance(cause, TimeoutError) else "connection"
    return FetchError(kind, str(cause))


def fetch_mp3(
    url: str,
    credentials: Credentials,
    *,
    allow_http: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_bytes: int = DEFAULT_MAX_BYTES,
    opener: urllib.request.OpenerDirector | None = None,
    deadline_at: float | None = None,
    check_redirect: Callable[[str], None] | None = None,
) -> bytes:
    """GET ``url`` with Basic auth and return the MP3 bytes, or raise FetchError. A redirect's
    target goes through ``check_redirect`` first (raises to refuse it: an internal address).
    ``timeout_s``
    bounds each wait on the socket; ``deadline_at`` (``time.monotonic()``) the whole download: no
    hop starts after it, each wait is cut to what is left, and the body is read in pieces checked
    against it, so a host that drips its answer cannot outlast the function (a host that drips
    its header lines can still take one wait per line)."""
    opener = opener or _opener()
    auth_origin = _origin(url)
    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        scheme = urlsplit(current).scheme
        if scheme != "https" and not (allow_http and scheme == "http"):
            raise FetchError("insecure-url", f"refusing to fetch a {scheme or 'relative'} URL")
        headers = {"Accept": "audio/mpeg", "User-Agent": "calltrack-recording-ingest"}
        if _origin(current) == auth_origin:
            headers["Authorization"] = credentials.header()
        request = urllib.request.Request(current, headers=headers, method="GET")
        wait = timeout_s
        if deadline_at is not None:  # each hop's connect and headers count against the deadline too
            left = deadline_at - time.monotonic()
            if left <= 0:
                raise FetchError("timeout", "no whole answer in time (before the body)")
            wait = min(timeout_s, left)
        try:
            response = opener.open(request, timeout=wait)
        except urllib.error.HTTPError as err:
            err.close()
            if err.code in (301, 302, 303, 307, 308):
                location = err.headers.get("Location")
                if not location:
                    raise FetchError("bad-redirect", f"HTTP {err.code} without Location") from None
                current = urljoin(current, location)
                if check_redirect is not None:
                    try:
                        check_redirect(current)
                    except (ValueError, ConnectionError) as refused:  # RefusedDestination is a ValueError
                        raise FetchError("refused-redirect", str(refused)[:200]) from None
                continue
            reason = NOT_READY if err.code == 404 else f"http-{err.code}"
            raise FetchError(reason, f"HTTP {err.code} from media server") from None
        except (urllib.error.URLError, HTTPException, OSError) as err:
            raise _transport_error(err) from None
        with response:
            return _read_body(response, max_bytes=max_bytes, deadline_at=deadline_at)
    raise FetchError("too-many-redirects", f"more than {MAX_REDIRECTS} redirects")


def _read_body(response: object, *, max_bytes: int, deadline_at: float | None = None) -> bytes:
    headers = response.headers  # type: ignore[attr-defined]
    content_type = (headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
    if content_type not in _MP3_TYPES:
        raise FetchError("not-mp3", f"content type {content_type or 'missing'!r}")
    declared = headers.get("Content-Length")
    if declared is not None:
        try:
            declared_len = int(declared)
        except ValueError:
            raise FetchError("bad-length", f"Content-Length {declared!r}") from None
        if declared_len > max_bytes:
            raise FetchError("too-large", f"{declared_len} bytes > cap {max_bytes}")
    else:
        declared_len = -1
    chunks: list[bytes] = []
    total = 0
    try:
        while True:
            # read1: at most one wait on the socket, so the deadline is looked at between drips
            chunk = response.read1(_CHUNK)  # type: ignore[attr-defined]
            if not chunk:
                break
            if deadline_at is not None and time.monotonic() > deadline_at:
                raise FetchError("timeout", f"no whole body in time ({total + len(chunk)} bytes read)")
            total += len(chunk)
            if total > max_bytes:
                raise FetchError("too-large", f"more than {max_bytes} bytes")
            chunks.append(chunk)
    except TimeoutError as err:
        raise FetchError("timeout", f"reading body: {err}") from None
    except (HTTPException, OSError) as err:
        raise FetchError("truncated", f"reading body: {err!r}") from None
    body = b"".join(chunks)
    if declared_len >= 0 and total != declared_len:
        raise FetchError("truncated", f"got {total} of {declared_len} bytes")
    if not body:
        raise FetchError("empty", "empty body")
    if not looks_like_mp3(body):
        raise FetchError("not-mp3", "no ID3 header or MPEG frame sync")
    return body


def recordings_list_url(base_url: str, account_sid: str, call_sid: str) -> str:
    """Twilio's Recordings list filtered by CallSid (validated ids, configured base): one page of
    ``LIST_PAGE_SIZE``; a call has one recording per <Dial record>, so one page is all of them."""
    if not ACCOUNT_SID.match(account_sid or ""):
        raise ValueError("AccountSid must match ^AC[0-9a-f]{32}$")
    if not CALL_SID.match(call_sid or ""):
        raise ValueError("CallSid must match ^CA[0-9a-f]{32}$")
    query = urlencode({"CallSid": call_sid, "PageSize": LIST_PAGE_SIZE})
    return f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Recordings.json?{query}"


@dataclass(frozen=True)
class TwilioApi:
    """Twilio's REST API for recordings: the configured base URL (https outside local mode) and
    credentials; every URL is built from validated ids, redirects are never followed."""

    base_url: str
    credentials: Credentials
    allow_http: bool = False
    timeout_s: float = 10.0
    opener: urllib.request.OpenerDirector | None = None

    def _request(self, url: str, method: str, what: str) -> urllib.request.Request:
        if urlsplit(url).scheme != "https" and not self.allow_http:
            raise FetchError("insecure-url", f"refusing to {what} over http")
        headers = {"Authorization": self.credentials.header(), "Accept": "application/json",
                   "User-Agent": "calltrack-recordings"}
        return urllib.request.Request(url, headers=headers, method=method)

    def delete_recording(self, account_sid: str, recording_sid: str) -> bool:
        """DELETE the recording at Twilio. True when deleted or already gone; raises FetchError."""
        url = recording_api_url(self.base_url, account_sid, recording_sid, ext=".json")
        request = self._request(url, "DELETE", "DELETE")
        try:
            with (self.opener or _opener()).open(request, timeout=self.timeout_s) as response:
                return 200 <= response.status < 300
        except urllib.error.HTTPError as err:
            err.close()
            if err.code == 404:
                return True
            raise FetchError(f"delete-http-{err.code}", "Twilio refused the delete") from None
        except (urllib.error.URLError, HTTPException, OSError) as err:
            raise FetchError("delete-connection", str(err)) from None

    def list_recordings(self, account_sid: str, call_sid: str) -> list[dict[str, Any]]:
        """GET the recordings Twilio has for ``call_sid`` (its ``recordings`` array, each a dict),
        or raise FetchError (``http-401``, ``http-500``, ``timeout``, ``connection``, ``redirect``,
        ``bad-json`` ...)."""
        request = self._request(recordings_list_url(self.base_url, account_sid, call_sid), "GET",
                                "list recordings")
        try:
            with (self.opener or _opener()).open(request, timeout=self.timeout_s) as response:
                raw = response.read(LIST_MAX_BYTES + 1)
        except urllib.error.HTTPError as err:
            err.close()
            reason = "redirect" if 300 <= err.code < 400 else f"http-{err.code}"
            raise FetchError(reason, f"HTTP {err.code} from the Recordings API") from None
        except (urllib.error.URLError, HTTPException, OSError) as err:
            raise _transport_error(err) from None
        if len(raw) > LIST_MAX_BYTES:
            raise FetchError("too-large", f"more than {LIST_MAX_BYTES} bytes")
        try:
            page = json.loads(raw)
        except ValueError:
            raise FetchError("bad-json", "the Recordings API answered no JSON") from None
        recordings = page.get("recordings") if isinstance(page, dict) else None
        if not isinstance(recordings, list):
            raise FetchError("bad-json", "no recordings array")
        return [r for r in recordings if isinstance(r, dict)]
