"""Pure translation between HTTP and the AWS event shapes the handlers receive.

- ``http_api_event``: an HTTP request -> exactly the API Gateway HTTP API payload v2.0 event.
- ``http_response``: a handler's v2 result (full or "simple" form) -> status, headers, body.
- ``sqs_event`` / ``dynamodb_stream_event`` / ``scheduled_job_event``: the other event sources.
- ``LambdaContext``: what the Lambda runtime passes as ``context``.

No sockets, no AWS: the unit tests exercise this module directly.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

# The local gateway's local-only request headers (API Gateway has no such thing; both are stripped
# from the event). Here, not in the gateway, so a client of a running stack (`calltrack demo
# --url`) can name them without the checkout's infra on its path.
# Run this request's handler as if it were that instant (ISO 8601), through calltrack.clock.frozen.
CLOCK_HEADER = "x-calltrack-local-time"
# The client address the handler sees (the event's sourceIp), so one machine can play many
# visitors (the demo, the tests: DNI caps how many numbers one address holds).
SOURCE_IP_HEADER = "x-calltrack-local-source-ip"

API_ID = "local"
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway HTTP API payload quota

# HTTP APIs hand Lambda the body as a UTF-8 string only for these content types; every other
# type -- including a missing Content-Type and application/x-www-form-urlencoded (Twilio's
# webhooks) -- arrives base64-encoded with isBase64Encoded=true.
_TEXT_TYPES = ("application/json", "application/xml", "application/javascript")


def is_text_content_type(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media.startswith("text/") or media in _TEXT_TYPES


def route_pattern(path: str) -> re.Pattern[str]:
    """Compile an API Gateway path ('/v1/calls/{call_sid}', '/x/{proxy+}') to a regex."""
    parts = []
    for segment in path.strip("/").split("/"):
        m = re.fullmatch(r"\{(\w+)(\+?)\}", segment)
        if m and m.group(2):
            parts.append(f"(?P<{m.group(1)}>.+)")
        elif m:
            parts.append(f"(?P<{m.group(1)}>[^/]+)")
        else:
            parts.append(re.escape(segment))
    return re.compile("^/" + "/".join(parts) + "$")


def _request_time(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


def http_api_event(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    route_key: str,
    path_parameters: Mapping[str, str] | None = None,
    source_ip: str = "127.0.0.1",
    domain_name: str = "127.0.0.1",
    now: float | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """Build the payload v2.0 event API Gateway HTTP API sends to a Lambda proxy integration.

    Headers are lower-cased and duplicates comma-joined; Cookie headers move to ``cookies``;
    duplicate query parameters are comma-joined; ``queryStringParameters``, ``pathParameters``,
    ``cookies`` and ``body`` are absent when empty, as in AWS.
    """
    now = time.time() if now is None else now
    request_id = request_id or str(uuid.uuid4())
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    merged.setdefault("x-forwarded-for", source_ip)
    merged.setdefault("x-forwarded-proto", "http")
    merged.setdefault("x-amzn-trace-id", f"Root=1-{int(now):08x}-{uuid.uuid4().hex[:24]}")
    user_agent = merged.get("user-agent", "")
    http_method = method.upper()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = merged
    if raw_query:
        params: dict[str, str] = {}
        for key, value in parse_qsl(raw_query, keep_blank_values=True):
            params[key] = f"{params[key]},{value}" if key in params else value
        event["queryStringParameters"] = params
    event["requestContext"] = {
        "accountId": ACCOUNT_ID,
        "apiId": API_ID,
        "domainName": domain_name,
        "domainPrefix": domain_name.split(".", 1)[0],
        "http": {
            "method": http_method,
            "path": raw_path,
            "protocol": "HTTP/1.1",
            "sourceIp": source_ip,
            "userAgent": user_agent,
        },
        "requestId": request_id,
        "routeKey": route_key,
        "stage": "$default",
        "time": _request_time(now),
        "timeEpoch": int(now * 1000),
    }
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if body:
        if is_text_content_type(merged.get("content-type")):
            event["body"] = body.decode("utf-8", errors="replace")
            event["isBase64Encoded"] = False
        else:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    else:
        event["isBase64Encoded"] = False
    return event


@dataclass
class HttpResult:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def http_response(result: Any) -> HttpResult:
    """Turn a Lambda result into the HTTP response API Gateway (payload v2.0) would send.

    A dict with ``statusCode`` is the full form (headers, multiValueHeaders, cookies, body,
    isBase64Encoded). Anything else is the "simple" form: API Gateway answers 200 with
    content-type application/json and the JSON-serialised value (a str is sent as is).
    """
    if not isinstance(result, dict) or "statusCode" not in result:
        if isinstance(result, str):
            body = result.encode()
        else:
            body = json.dumps(result).encode()
        return HttpResult(200, [("content-type", "application/json")], body)
    headers: list[tuple[str, str]] = []
    for name, value in (result.get("headers") or {}).items():
        headers.append((str(name), str(value)))
    for name, values in (result.get("multiValueHeaders") or {}).items():
        for value in values or []:
            headers.append((str(name), str(value)))
    for cookie in result.get("cookies") or []:
        headers.append(("set-cookie", str(cookie)))
    raw = result.get("body")
    if raw is None:
        body = b""
    elif result.get("isBase64Encoded"):
        body = base64.b64decode(raw)
    else:
        body = str(raw).encode()
    if not any(name.lower() == "content-type" for name, _ in headers) and body:
        headers.append(("content-type", "application/json"))
    return HttpResult(int(result["statusCode"]), headers, body)


@dataclass
class LambdaContext:
    """The attributes of the Lambda runtime's context object that handlers and Powertools use."""

    function_name: str
    memory_limit_in_mb: int = 256
    timeout_s: int = 10
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self.invoked_function_arn = (
            f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:calltrack-{self.function_name}"
        )
        self.log_group_name = self.log_group_name or f"/aws/lambda/calltrack-{self.function_name}"
        self._deadline = time.monotonic() + self.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def sqs_event(queue_arn: str, messages: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """An SQS event source mapping batch from receive_message results."""
    records = []
    for msg in messages:
        attrs = msg.get("Attributes") or {}
        records.append(
            {
                "messageId": msg["MessageId"],
                "receiptHandle": msg["ReceiptHandle"],
                "body": msg["Body"],
                "attributes": {
                    "ApproximateReceiveCount": attrs.get("ApproximateReceiveCount", "1"),
                    "SentTimestamp": attrs.get("SentTimestamp", str(int(time.time() * 1000))),
                    "SenderId": attrs.get("SenderId", ACCOUNT_ID),
                    "ApproximateFirstReceiveTimestamp": attrs.get(
                        "ApproximateFirstReceiveTimestamp", str(int(time.time() * 1000))
                    ),
                },
                "messageAttributes": {
                    name: {
                        "stringValue": value.get("StringValue"),
                        "binaryValue": value.get("BinaryValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": value.get("DataType", "String"),
                    }
                    for name, value in (msg.get("MessageAttributes") or {}).items()
                },
                "md5OfBody": msg.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
        )
    return {"Records": records}


def dynamodb_stream_event(stream_arn: str, records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """A DynamoDB stream event source mapping batch from get_records results."""
    from calltrack.stream_replay import lambda_records

    return {"Records": lambda_records(stream_arn, records, REGION)}


def parse_instant(value: str | datetime) -> datetime:
    """An ISO 8601 instant as an aware datetime; a value without an offset is taken as UTC."""
    if isinstance(value, datetime):
        when = value
    else:
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not an ISO 8601 timestamp: {value!r}") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def scheduled_job_event(job: str, at: str | datetime, force: bool = False) -> dict[str, Any]:
    """The input EventBridge's input transformer gives scheduled jobs: {"job", "time", "force"}."""
    when = parse_instant(at)
    stamp = when.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"job": job, "time": stamp, "force": bool(force)}
