"""The Twilio edge: request parsing, signature check and TwiML, shared by everything Twilio calls.

Cheap to import on purpose (the voice webhook's cold start): only the standard library at import
time; ``twilio.request_validator`` (~27 ms) and ``twilio.twiml`` (~23 ms) load on first use and
never ``twilio.rest``.

Signatures are computed over ``settings.public_url`` + the request's raw path (+ ``?`` + raw
query string) — the URL Twilio was configured with — never over the Host header.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
SIGNATURE_HEADER = "x-twilio-signature"
MAX_BODY_BYTES = 64 * 1024


# Twilio's ids: two letters and 32 lowercase hex digits; checked with fullmatch (``$`` would also
# accept a trailing newline, and "CA…\n" is another DynamoDB key than "CA…").
TWILIO_SIDS = {
    "CallSid": re.compile(r"CA[0-9a-f]{32}"),
    "AccountSid": re.compile(r"AC[0-9a-f]{32}"),
    "RecordingSid": re.compile(r"RE[0-9a-f]{32}"),
    "ParentCallSid": re.compile(r"CA[0-9a-f]{32}"),
    "DialCallSid": re.compile(r"CA[0-9a-f]{32}"),
}
# The parameters every request Twilio sends to each webhook carries (Twilio's voice webhook docs:
# every incoming-call request has CallSid, AccountSid, From and To; status callbacks and the
# <Number url> whisper carry the CallSid; recording callbacks the RecordingSid too). A signature
# covers the concatenated names and values without separators, so a request missing one of them
# could be another request's parameters with their boundaries moved: refuse it.
REQUIRED_PARAMS: dict[str, tuple[str, ...]] = {
    "/twilio/voice": ("CallSid", "AccountSid", "From", "To"),
    "/twilio/dial-status": ("CallSid",),
    "/twilio/call-status": ("CallSid",),
    "/twilio/whisper": ("CallSid",),
    "/twilio/menu": ("CallSid", "From", "To"),
    "/twilio/ring-next": ("CallSid", "From", "To"),
    "/twilio/recording": ("CallSid", "RecordingSid"),
}


class BadTwilioRequest(ValueError):
    """The request body cannot be a Twilio webhook (400)."""


def request_problem(path: str, params: Mapping[str, str]) -> str | None:
    """Why these parameters cannot be a Twilio request to ``path`` (a missing parameter, a malformed
    id), or None. Names the parameter."""
    for name in REQUIRED_PARAMS.get(path, ()):
        # Present is what matters (parameter boundaries cannot shift); only ids must be non-empty:
        # an empty From (a caller id the network withheld) is still a call to forward.
        if name not in params or (name in TWILIO_SIDS and not params[name]):
            return f"{name}: required (every Twilio request to {path} has it)"
    for name, pattern in TWILIO_SIDS.items():
        value = params.get(name)
        if value is not None and not pattern.fullmatch(value):
            return f"{name}: not a Twilio id ({pattern.pattern})"
    return None


@dataclass(frozen=True)
class TwilioRequest:
    """A parsed API Gateway v2.0 event carrying a Twilio webhook."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    params: dict[str, str]
    multi: dict[str, list[str]] = field(default_factory=dict)

    @property
    def signature(self) -> str:
        return self.headers.get(SIGNATURE_HEADER, "")

    def url(self, public_url: str) -> str:
        """The URL Twilio requested, as configured: public base + raw path (+ query)."""
        base = public_url.rstrip("/") + self.path
        return f"{base}?{self.query}" if self.query else base

    def query_params(self) -> dict[str, str]:
        return dict(parse_qsl(self.query, keep_blank_values=True))

    def get(self, name: str, default: str = "") -> str:
        return self.params.get(name, default)


def header_map(event: Mapping[str, Any]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}


def parse_event(event: Mapping[str, Any]) -> TwilioRequest:
    """Parse an API Gateway HTTP API (payload v2.0) event into a TwilioRequest.

    Decodes base64 bodies (API Gateway and the local gateway may deliver form bodies encoded)
    and form-urlencoded parameters. Raises BadTwilioRequest for bodies no Twilio request has,
    including a missing required parameter or a malformed id (``request_problem``): like a body
    that is not a form, that is a 400 before the signature is checked, and nothing is written.
    """
    headers = header_map(event)
    ctx = event.get("requestContext") or {}
    method = str((ctx.get("http") or {}).get("method") or event.get("httpMethod") or "POST").upper()
    path = str(event.get("rawPath") or (ctx.get("http") or {}).get("path") or "/")
    query = str(event.get("rawQueryString") or "")
    body = event.get("body") or ""
    if not isinstance(body, str):
        raise BadTwilioRequest("body must be text")
    raw: bytes
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise BadTwilioRequest("body is not valid base64") from None
    else:
        raw = body.encode("utf-8", "surrogatepass")
    if len(raw) > MAX_BODY_BYTES:
        raise BadTwilioRequest("body too large")
    content_type = headers.get("content-type", FORM_CONTENT_TYPE).split(";")[0].strip().lower()
    if raw and content_type != FORM_CONTENT_TYPE:
        raise BadTwilioRequest(f"expected {FORM_CONTENT_TYPE}, got {content_type or 'nothing'}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadTwilioRequest("body is not UTF-8") from None
    multi: dict[str, list[str]] = {}
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False, max_num_fields=200)
    except ValueError:
        raise BadTwilioRequest("too many form fields") from None
    for key, value in pairs:
        multi.setdefault(key, []).append(value)
    params = {k: v[-1] for k, v in multi.items()}
    problem = request_problem(path, params)
    if problem:
        raise BadTwilioRequest(problem)
    return TwilioRequest(method, path, query, headers, params, multi)


class FormParams(dict[str, str]):
    """The POSTed form as RequestValidator reads it: the last value per key, and every value of a
    repeated key through ``getlist`` (the Django QueryDict protocol the validator looks for; a
    plain dict holding a list makes it raise TypeError instead of answering)."""

    def __init__(self, multi: Mapping[str, list[str]]) -> None:
        super().__init__({k: v[-1] for k, v in multi.items()})
        self.multi = {k: list(v) for k, v in multi.items()}

    def getlist(self, key: str) -> list[str]:
        return list(self.multi[key])


def signature_params(req: TwilioRequest) -> FormParams:
    """The POSTed params as RequestValidator expects them (every value of a repeated key)."""
    return FormParams(req.multi)


def _validator_params(params: Mapping[str, Any]) -> Any:
    return params if isinstance(params, FormParams) else dict(params)


def auth_tokens(setting: str | None) -> list[str]:
    """The tokens an auth-token setting holds: one, or while it is rotated the new one and the old
    one, separated by a space or a comma (README, "Rotating the Twilio auth token"). Signatures by
    either are accepted; REST requests (and ``sign``) use the first, the new one: Twilio takes a
    secondary token for REST before it is promoted, and signs webhooks with it only after."""
    return (setting or "").replace(",", " ").split()


def rest_auth_token(setting: str | None) -> str:
    """The token REST requests authenticate with (``auth_tokens``' first), "" when none is set."""
    return next(iter(auth_tokens(setting)), "")


def check_signature(auth_token: str, url: str, params: Mapping[str, Any], signature: str) -> bool:
    """True when ``signature`` is Twilio's signature of ``url`` + ``params`` with ``auth_token``
    (either token of a setting that holds two, ``auth_tokens``)."""
    tokens = auth_tokens(auth_token)
    if not signature or not tokens:
        return False
    from twilio.request_validator import RequestValidator

    checked = _validator_params(params)
    return any(RequestValidator(token).validate(url, checked, signature) for token in tokens)


def sign(auth_token: str, url: str, params: Mapping[str, Any]) -> str:
    """Compute the X-Twilio-Signature Twilio would send (tests, the local stack, the demo)."""
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(rest_auth_token(auth_token))
    return str(validator.compute_signature(url, _validator_params(params)))


# ---------------------------------------------------------------- TwiML


# Characters XML 1.0 cannot carry: a <Say> holding one makes the TwiML not well-formed and Twilio
# fails the call. Account configs refuse them in spoken text (calltrack.account_config); this drops
# them from whatever reaches a <Say> anyway (a config stored before, a campaign in a whisper).
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def speakable(text: str) -> str:
    return NOT_XML.sub("", text)


def twiml_response() -> Any:
    from twilio.twiml.voice_response import VoiceResponse

    return VoiceResponse()


def empty_twiml() -> str:
    return '<?xml version="1.0" encoding="UTF-8"?><Response />'


@dataclass(frozen=True)
class DialPlan:
    """Everything the incoming-call TwiML needs; built by the voice webhook from the number row."""

    forward_to: str
    caller_id: str | None
    ring_timeout: int = 20
    language: str = "ja-JP"
    announcement: str | None = None  # spoken before connecting when recording is on
    record: bool = False
    whisper_url: str | None = None
    action_url: str | None = None
    recording_callback_url: str | None = None
    # A ring group: (number, <Number url>) rung at once, instead of forward_to + whisper_url.
    members: tuple[tuple[str, str | None], ...] = ()


def dial_twiml(plan: DialPlan) -> str:
    """<Say> announcement (when recording) + <Dial callerId record action timeout><Number url>."""
    resp = twiml_response()
    if plan.record and plan.announcement:
        resp.say(speakable(plan.announcement), language=plan.language)
    dial_kwargs: dict[str, Any] = {"timeout": max(5, min(int(plan.ring_timeout or 20), 600))}
    if plan.caller_id:
        dial_kwargs["caller_id"] = plan.caller_id
    if plan.action_url:
        dial_kwargs["action"] = plan.action_url
        dial_kwargs["method"] = "POST"
    if plan.record:
        dial_kwargs["record"] = "record-from-answer-dual"
        if plan.recording_callback_url:
            dial_kwargs["recording_status_callback"] = plan.recording_callback_url
            dial_kwargs["recording_status_callback_event"] = "completed absent"
            dial_kwargs["recording_status_callback_method"] = "POST"
    dial = resp.dial(**dial_kwargs)
    for number, url in plan.members or ((plan.forward_to, plan.whisper_url),):
        number_kwargs: dict[str, Any] = {"url": url, "method": "POST"} if url else {}
        dial.number(number, **number_kwargs)
    return str(resp.to_xml())


def gather_twiml(
    prompt: str, *, language: str, action_url: str, timeout: int, announcement: str | None = None
) -> str:
    """A one-key menu: <Gather> speaking the prompt; no key within ``timeout`` seconds redirects to
    the same action without ``Digits`` (the menu's timeout branch)."""
    resp = twiml_response()
    if announcement:
        resp.say(speakable(announcement), language=language)
    # finishOnKey "" : "#" is a menu key like any other (Twilio's default would end the input on it)
    gather = resp.gather(num_digits=1, timeout=timeout, action=action_url, method="POST", finish_on_key="")
    gather.say(speakable(prompt), language=language)
    resp.redirect(action_url, method="POST")
    return str(resp.to_xml())


def say_twiml(
    text: str, *, language: str = "ja-JP", hangup: bool = True, extra: list[tuple[str, str]] | None = None
) -> str:
    """A spoken message (and more messages in other languages), then <Hangup/>."""
    resp = twiml_response()
    resp.say(speakable(text), language=language)
    for other_text, other_lang in extra or []:
        resp.say(speakable(other_text), language=other_lang)
    if hangup:
        resp.hangup()
    return str(resp.to_xml())


def hangup_twiml() -> str:
    resp = twiml_response()
    resp.hangup()
    return str(resp.to_xml())


def voicemail_twiml(
    prompt: str, *, language: str, recording_callback_url: str, done_url: str, max_length: int = 120
) -> str:
    """The prompt, then <Record>. Its ``action`` (``done_url``: answered with <Hangup/>) is required:
    without one Twilio requests the current document again when the recording ends, and the caller
    hears the voicemail prompt once more instead of being hung up on."""
    resp = twiml_response()
    resp.say(speakable(prompt), language=language)
    resp.record(
        action=done_url,
        method="POST",
        max_length=max_length,
        play_beep=True,
        recording_status_callback=recording_callback_url,
        recording_status_callback_event="completed absent",
        recording_status_callback_method="POST",
    )
    resp.hangup()
    return str(resp.to_xml())


def url_with_query(base: str, params: Mapping[str, str]) -> str:
    clean = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{base}?{urlencode(clean)}" if clean else base
