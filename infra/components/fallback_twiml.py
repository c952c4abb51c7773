"""The Twilio fallback TwiML function, inline (at most 4,096 characters): why in voice.py."""

import base64
import hashlib
import hmac
import json
import os
import time
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape

SORRY = (
    '<Say language="ja-JP">ただいま電話に出ることができません。後ほどおかけ直しください。</Say>'
    '<Say language="en-US">We cannot take your call right now. Please call again later.</Say>'
)
_token: list[str] = []  # the auth token once read


def auth_token() -> str | None:
    """The Twilio auth token, or None when SSM cannot be read (fail open: voice.py)."""
    if not _token:
        try:
            import boto3
            from botocore.config import Config

            quick = Config(connect_timeout=1, read_timeout=1, retries={"max_attempts": 1})
            answer = boto3.client("ssm", config=quick).get_parameter(
                Name=os.environ["TWILIO_AUTH_TOKEN_PARAM"], WithDecryption=True
            )
            _token.append(answer["Parameter"]["Value"])
        except Exception as exc:  # noqa: BLE001 - an outage: a log line and an EMF metric
            print(json.dumps({"message": "fallback: auth token unreadable, answering unchecked",
                              "error": type(exc).__name__, "FallbackUnchecked": 1, "service": "fallback",
                              "_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [{
                                      "Namespace": "calltrack", "Dimensions": [["service"]],
                                      "Metrics": [{"Name": "FallbackUnchecked", "Unit": "Count"}]}]}}))
            return None
    return _token[0]


def signature(token: str, url: str, params: list[tuple[str, str]]) -> str:
    data = url + "".join(name + value for name, value in sorted(set(params)))  # as twilio's validator
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def urls(url: str) -> tuple[str, str]:
    """The URL without and with its (default) port: Twilio may sign either (twilio's validator)."""
    parts = urlsplit(url)
    host = parts.netloc.split(":")[0]
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts._replace(netloc=host).geturl(), parts._replace(netloc=f"{host}:{port}").geturl()


def form(event: dict) -> str:
    body = event.get("body") or ""
    return base64.b64decode(body).decode("utf-8", "replace") if event.get("isBase64Encoded") else body


def signed(event: dict, token: str) -> bool:
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    body = form(event)
    query = event.get("rawQueryString") or ""
    url = os.environ.get("PUBLIC_URL", "").rstrip("/") + (event.get("rawPath") or "")
    url += "?" + query if query else ""
    given = str(headers.get("x-twilio-signature") or "").encode("utf-8", "replace")
    params = parse_qsl(body, keep_blank_values=True)
    return bool(given) and any(
        hmac.compare_digest(signature(token, candidate, params).encode(), given) for candidate in urls(url)
    )


def handler(event: dict, context: object) -> dict:
    token = auth_token()
    if token is not None and not signed(event, token):
        return {"statusCode": 403, "headers": {"Content-Type": "text/plain"}, "body": "forbidden"}
    number = os.environ.get("FALLBACK_FORWARD_TO", "")
    # the <Dial> result goes to the webhook; if that fails too, Twilio asks here: hang up, but an
    # unanswered ring group member rings the business
    action = os.environ.get("PUBLIC_URL", "").rstrip("/") + f"/twilio/dial-status?t={int(time.time())}"
    body = f'<Dial action="{escape(action)}">{escape(number)}</Dial>' if number else SORRY
    f = form(event)
    if "DialCallStatus=" in f and ("ring-next" not in f or "DialCallStatus=completed" in f):
        body = "<Hangup/>"
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "text/xml; charset=utf-8"},
        "body": '<?xml version="1.0" encoding="UTF-8"?><Response>' + body + "</Response>",
    }
