"""One small JSON-over-HTTPS client for the platform adapters (stdlib only: no new dependency).

Base URLs come from settings (https outside local mode; settings refuse anything else). A network
error or timeout is ``Unreachable`` (retried like a 5xx); every answer, 2xx or not, is returned with
its parsed JSON body so the adapter decides what it means.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TIMEOUT_S = 10.0
# The platforms answer a few KB; a larger answer is not read whole (it is read as no JSON body).
MAX_ANSWER_BYTES = 1_000_000


class Unreachable(Exception):
    """No HTTP answer (connection refused, reset, timeout)."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # parsed JSON, {} when empty or not JSON
    retry_after: str | None = None


def post(
    url: str,
    *,
    json_body: Any = None,
    form: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout_s: float = TIMEOUT_S,
) -> Answer:
    if form is not None:
        data = urllib.parse.urlencode(dict(form)).encode()
        content_type = "application/x-www-form-urlencoded"
    else:
        data = json.dumps(json_body, ensure_ascii=False, separators=(",", ":")).encode()
        content_type = "application/json"
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": content_type, **dict(headers or {})}
    )
    from calltrack.outbound import direct_opener

    try:
        # no redirect followed (it would carry the platform's token along) and no proxy variable:
        # a 3xx is an answer like any other non-2xx
        with direct_opener().open(request, timeout=timeout_s) as resp:
            body = resp.read(MAX_ANSWER_BYTES + 1)
            return Answer(resp.status, _json(body), resp.headers.get("Retry-After"))
    except urllib.error.HTTPError as err:
        return Answer(err.code, _json(err.read(MAX_ANSWER_BYTES + 1)),
                      err.headers.get("Retry-After") if err.headers else None)
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as err:
        raise Unreachable(f"{type(err).__name__}: {str(err)[:200]}") from None
    except (ValueError, http.client.HTTPException) as err:
        # a header value the request cannot carry, a malformed answer: named by its type only (a
        # header's message quotes the header's value, a platform's token)
        raise Unreachable(type(err).__name__) from None


def _json(raw: bytes) -> Any:
    if not raw or len(raw) > MAX_ANSWER_BYTES:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        return {}
