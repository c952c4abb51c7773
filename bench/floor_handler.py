"""The floor handler (P1 and P3): the least an incoming-call webhook can do.

Imports only boto3, the Powertools Logger, ``twilio.twiml.voice_response`` and
``twilio.request_validator`` (P1 times importing this module). Per request (P3, behind the same
local gateway as the real webhook): parse the form, one ``BatchGetItem`` of the keys the webhook
reads (numbers + leases rows of ``To``, callers row of ``From``), one ``UpdateItem`` of the call
keyed by CallSid, and fixed TwiML. No signature check, no attribution, no fail-open: the real
webhook's work above this is what the ratio shows.
"""

from __future__ import annotations

import base64
import os
import time
from typing import Any
from urllib.parse import parse_qs

import boto3
import twilio.request_validator  # noqa: F401  (the floor pays for the modules a webhook needs)
import twilio.twiml.voice_response  # noqa: F401
from aws_lambda_powertools import Logger
from botocore.config import Config

logger = Logger(service="bench_floor")
_client: Any = None
TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response>'
    '<Dial callerId="+819000000000" timeout="20">+81312345678</Dial></Response>'
)


def client() -> Any:
    global _client
    if _client is None:
        _client = boto3.session.Session().client(
            "dynamodb",
            config=Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 2, "mode": "standard"}),
        )
    return _client


def _table(logical: str) -> str:
    prefix = os.environ.get("CALLTRACK_TABLE_PREFIX", "calltrack-")
    return os.environ.get(f"CALLTRACK_TABLE_{logical.upper()}", f"{prefix}{logical}")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    form = {k: v[0] for k, v in parse_qs(body).items()}
    number = form.get("To", "")
    ddb = client()
    keys: dict[str, Any] = {
        _table("numbers"): {"Keys": [{"number": {"S": number}}]},
        _table("leases"): {"Keys": [{"number": {"S": number}}]},
    }
    if form.get("From"):
        keys[_table("callers")] = {"Keys": [{"caller": {"S": form["From"]}}]}
    ddb.batch_get_item(RequestItems=keys)
    ddb.update_item(
        TableName=_table("calls"),
        Key={"call_sid": {"S": "FLOOR" + form.get("CallSid", "")}},
        UpdateExpression="SET tracking_number = :n, caller = :c, started_at = :t, #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={
            ":n": {"S": number},
            ":c": {"S": form.get("From", "")},
            ":t": {"S": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
            ":s": {"S": "ringing"},
        },
    )
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "text/xml; charset=utf-8"},
        "body": TWIML,
        "isBase64Encoded": False,
    }
