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
_token: list = []  # [auth tokens, when read]


def auth_token(again: bool = False) -> list[str] | None:
    """The auth tokens (two mid-rotation: README), None if never read; read again hourly, and
    after a mismatch (``again``) once a minute at most."""
    if _token and time.time() - _token[1] < (60 if again else 3600):
        return _token[0]
    try:
        import boto3

        quick = boto3.session.Config(connect_timeout=1, read_timeout=1, retries={"max_attempts": 1})
        ssm = boto3.client("ssm", config=quick)
        answer = ssm.get_parameter(Name=os.environ["TWILIO_AUTH_TOKEN_PARAM"], WithDecryption=True)
        _token[:] = [answer["Parameter"]["Value"].replace(",", " ").split(), time.time()]
    except Exception as exc:  # noqa: BLE001 - an outage
        if _token:
            _token[1] = time.time()
        else:
            print(json.dumps({"error": type(exc).__name__, "FallbackUnchecked": 1, "service": "fallback",
                              "_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [{
                                  "Namespace": "calltrack", "Dimensions": [["service"]],
                                  "Metrics": [{"Name": "FallbackUnchecked", "Unit": "Count"}]}]}}))
    return _token[0] if _token else None


def signature(token: str, url: str, params: list[tuple[str, str]]) -> str:
    data = url + "".join(name + value for name, value in sorted(set(params)))  # as twilio's validator
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def urls(url: str) -> tuple[str, str]:
    """Twilio may sign the URL with or without its default port (twilio's validator)."""
    parts = urlsplit(url)
    host = parts.netloc.split(":")[0]
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts._replace(netloc=host).geturl(), parts._replace(netloc=f"{host}:{port}").geturl()


def form(event: dict) -> str:
    body = event.get("body") or ""
    return base64.b64decode(body).decode("utf-8", "replace") if event.get("isBase64Encoded") else body


def signed(event: dict, tokens: list[str]) -> bool:
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    query = event.get("rawQueryString")
    url = os.environ.get("PUBLIC_URL", "").rstrip("/") + (event.get("rawPath") or "")
    url += "?" + query if query else ""
    given = str(headers.get("x-twilio-signature") or "").encode("utf-8", "replace")
    params = parse_qsl(form(event), keep_blank_values=True)
    return bool(given) and any(hmac.compare_digest(signature(token, candidate, params).encode(), given)
                               for token in tokens for candidate in urls(url))


def handler(event: dict, context: object) -> dict:
    tokens = auth_token()
    if tokens is not None and not signed(event, tokens) and not signed(event, auth_token(True) or []):
        return {"statusCode": 403, "body": "forbidden"}
    number = os.environ.get("FALLBACK_FORWARD_TO", "")
    # the <Dial> result goes to the webhook, else here: hang up (a ring group's no-answer: dial)
    action = os.environ.get("PUBLIC_URL", "").rstrip("/") + f"/twilio/dial-status?t={int(time.time())}"
    body = f'<Dial action="{escape(action)}">{escape(number)}</Dial>' if number else SORRY
    f = form(event)
    if "DialCallStatus=" in f and ("ring-next" not in f or "DialCallStatus=completed" in f):
        body = "<Hangup/>"
    return {"statusCode": 200, "headers": {"Content-Type": "text/xml; charset=utf-8"},
            "body": '<?xml version="1.0" encoding="UTF-8"?><Response>' + body + "</Response>"}
