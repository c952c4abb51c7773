"""The Twilio fallback TwiML function, deployed inline (index.py): the standard library and boto3 only.

Twilio posts here when the voice URL errors or times out. A request with a valid
X-Twilio-Signature is answered with a <Dial> of the business (FALLBACK_FORWARD_TO), or an apology
when none is set; any other request gets 403. The signature is Twilio's (docs: "Webhooks
security"): base64 HMAC-SHA1, keyed by the auth token, of the URL Twilio was configured with
(PUBLIC_URL + the raw path and query) followed by every POST parameter's name and value, sorted.
The auth token is read from SSM (TWILIO_AUTH_TOKEN_PARAM) once per container. If SSM cannot be
read, the caller is still put through: this route exists for outages, and the number it dials
is the business's own (docs/decisions.md 2026-12-01).
"""

import base64
import hashlib
import hmac
import os
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

SORRY = (
    '<Say language="ja-JP">ただいま電話に出ることができません。後ほどおかけ直しください。</Say>'
    '<Say language="en-US">We cannot take your call right now. Please call again later.</Say>'
)
_token: list[str] = []  # the auth token once read (a list: no `global` in the handler)


def auth_token() -> str | None:
    """The Twilio auth token, or None when SSM cannot be read (an outage: fail open, see above)."""
    if not _token:
        try:
            import boto3

            answer = boto3.client("ssm").get_parameter(
                Name=os.environ["TWILIO_AUTH_TOKEN_PARAM"], WithDecryption=True
            )
            _token.append(answer["Parameter"]["Value"])
        except Exception as exc:  # noqa: BLE001 - any failure to read it is an outage here
            print("fallback: auth token unreadable, answering unchecked: " + type(exc).__name__)
            return None
    return _token[0]


def signature(token: str, url: str, params: list[tuple[str, str]]) -> str:
    data = url + "".join(name + value for name, value in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def signed(event: dict, token: str) -> bool:
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8", "replace")
    query = event.get("rawQueryString") or ""
    url = os.environ.get("PUBLIC_URL", "").rstrip("/") + (event.get("rawPath") or "")
    url += "?" + query if query else ""
    given = str(headers.get("x-twilio-signature") or "")
    expected = signature(token, url, parse_qsl(body, keep_blank_values=True))
    return bool(given) and hmac.compare_digest(expected, given)


def handler(event: dict, context: object) -> dict:
    token = auth_token()
    if token is not None and not signed(event, token):
        return {"statusCode": 403, "headers": {"Content-Type": "text/plain"}, "body": "forbidden"}
    number = os.environ.get("FALLBACK_FORWARD_TO", "")
    body = f"<Dial>{escape(number)}</Dial>" if number else SORRY
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "text/xml; charset=utf-8"},
        "body": '<?xml version="1.0" encoding="UTF-8"?><Response>' + body + "</Response>",
    }
