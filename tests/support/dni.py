"""DNI leases over the local stack's real HTTP, as dni.js sends them (``POST /dni/lease``).

The local gateway, like API Gateway, takes the event's ``sourceIp`` from the TCP connection (an
``X-Forwarded-For`` header changes nothing); its local-only ``x-calltrack-local-source-ip`` header
names another, so each lease comes from its own address: the per-address rate limit and the pool's
per-address cap see one client per lease unless a test names the address.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import requests

from calltrack_cli.local.events import SOURCE_IP_HEADER

ORIGIN = "https://acme.example.jp"
SITE_NUMBER = "+81312345678"


def lease(
    stack: Any,
    account: str,
    *,
    session: str | None = None,
    visitor: str | None = None,
    origin: str | None = ORIGIN,
    ip: str | None = None,
    **extra: Any,
) -> Any:
    """One lease request (or a heartbeat / a release, by ``extra``) -> the requests.Response,
    sent from the address ``ip`` (default: a random one of 10.0.0.0/8, one client per lease)."""
    body = {
        "account": account,
        "visitor_id": visitor or "v-" + secrets.token_hex(8),
        "session_id": session or "s-" + secrets.token_hex(8),
        "page_url": "https://acme.example.jp/implant?utm_source=google&gclid=G-1",
        "referrer": "https://www.google.co.jp/",
        "utm": {"source": "google", "medium": "cpc", "campaign": "implant", "term": "インプラント 渋谷"},
        "gclid": "G-" + secrets.token_hex(4),
    }
    body.update(extra)
    headers = {"Origin": origin} if origin else {}
    # one client per lease: the per-IP bucket and the address cap would see the whole test session
    headers[SOURCE_IP_HEADER] = ip or ".".join(["10", *(str(1 + secrets.randbelow(254)) for _ in range(3))])
    for attempt in range(5):
        try:
            return stack.request(
                "POST", "/dni/lease", data=json.dumps(body), headers={**headers, "Content-Type": "text/plain"}
            )
        except requests.ConnectionError:
            # The local gateway's listen backlog is small: 64 simultaneous connects can be reset
            # before the request is sent. A lease is idempotent per session, so retrying is safe.
            if attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")

