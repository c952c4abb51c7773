"""What Lambda hands a handler in unit tests: API Gateway HTTP API (payload v2) events and a
Lambda context object."""

from __future__ import annotations

import base64
from types import SimpleNamespace
from typing import Any


def http_event(
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: str | None = None,
    query: str = "",
    b64: bool = False,
    source_ip: str = "198.51.100.7",
) -> dict[str, Any]:
    """An HTTP API v2 event for ``method path`` (``body`` base64-encoded when ``b64``)."""
    route_key = f"{method} {path}"
    return {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": dict(headers or {}),
        "body": base64.b64encode(body.encode()).decode() if b64 and body is not None else body,
        "isBase64Encoded": b64,
        "requestContext": {
            "http": {
                "method": method,
                "path": path,
                "sourceIp": source_ip,
                "protocol": "HTTP/1.1",
                "userAgent": "t",
            },
            "requestId": "r1",
            "routeKey": route_key,
            "stage": "$default",
        },
    }


def lambda_context(function_name: str) -> SimpleNamespace:
    """The attributes of a Lambda context object that handlers and Powertools read."""
    return SimpleNamespace(
        function_name=function_name,
        memory_limit_in_mb=512,
        invoked_function_arn=f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}",
        aws_request_id="req-1",
    )
