"""Request bodies before anything parses them: a size cap, a nesting cap found by scanning the raw
text (no recursion, so a 2 KB body nested 1,000 deep is a 400, not a RecursionError), UTF-8, then
``json.loads``. Every refusal names the field ``body``. Standard library only (cheap to import)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from calltrack.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

API_MAX_BODY_BYTES = 256 * 1024  # report API bodies (500 CRM leads fit in ~150 KB)
MAX_DEPTH = 32  # JSON (and YAML) nesting: our deepest document is an account config, about 6 deep
JSON_TYPES = ("application/json",)


def nesting_depth(text: str, limit: int = MAX_DEPTH) -> int:
    """The deepest nesting of ``[``/``{`` in JSON text, outside strings; stops counting past
    ``limit`` (returns ``limit + 1``). One pass, no recursion, no parsing."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


def body_text(raw: str | bytes | None, *, max_bytes: int) -> str:
    """The body as text: at most ``max_bytes`` (413), valid UTF-8 (400)."""
    if raw is None:
        return ""
    if isinstance(raw, str):
        try:
            size = len(raw.encode("utf-8"))
        except UnicodeEncodeError:  # lone surrogates: what undecodable bytes become in some decoders
            raise BadRequest("body: not valid UTF-8", field="body") from None
        if size > max_bytes:
            raise PayloadTooLarge(f"body: larger than {max_bytes} bytes", field="body")
        return raw
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"body: larger than {max_bytes} bytes", field="body")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("body: not valid UTF-8", field="body") from None


def load_json(raw: str | bytes | None, *, max_bytes: int, max_depth: int = MAX_DEPTH) -> Any:
    """Size, UTF-8, nesting, then ``json.loads``; every failure is a 4xx naming ``body``."""
    text = body_text(raw, max_bytes=max_bytes)
    if not text.strip():
        raise BadRequest("body: a JSON object is required", field="body")
    if nesting_depth(text, max_depth) > max_depth:
        raise BadRequest(f"body: nested deeper than {max_depth} levels", field="body")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise BadRequest("body: not valid JSON", field="body") from None
    if "\\u" in text:  # only an escape can spell a lone surrogate: raw UTF-8 cannot
        bad = _not_unicode(value, ())
        if bad is not None:
            field = (".".join(bad) or "body")[:200]
            raise BadRequest(f"{field}: not valid Unicode text (an unpaired \\ud800-\\udfff escape)",
                             field=field)
    return value


def _not_unicode(value: Any, path: tuple[str, ...]) -> tuple[str, ...] | None:
    """The path of the first key or string holding a lone surrogate (valid JSON, but no UTF-8:
    stored or answered, it would fail far from here), else None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path
        return None
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        inner = (*path, str(key))
        if isinstance(key, str) and _not_unicode(key, ()) is not None:
            return path or ("body",)
        found = _not_unicode(item, inner)
        if found is not None:
            return found
    return None


def load_json_object(
    raw: str | bytes | None, *, max_bytes: int, max_depth: int = MAX_DEPTH
) -> dict[str, Any]:
    value = load_json(raw, max_bytes=max_bytes, max_depth=max_depth)
    if not isinstance(value, dict):
        raise BadRequest("body: must be a JSON object", field="body")
    return value


def require_json_content_type(headers: Mapping[str, str] | None) -> None:
    """415 unless the Content-Type is JSON (or absent: curl and many clients omit it)."""
    content_type = ""
    for key, value in (headers or {}).items():
        if key.lower() == "content-type":
            content_type = value
    media = content_type.split(";", 1)[0].strip().lower()
    if media and media not in JSON_TYPES and not media.endswith("+json"):
        raise UnsupportedMediaType(f"body: send application/json, not {media}", field="body")


def raw_event_body(event: Mapping[str, Any]) -> bytes | str | None:
    """An API Gateway event's body as it arrived: bytes when base64-encoded, else the text."""
    body = event.get("body")
    if body is None or not event.get("isBase64Encoded"):
        return body
    import base64
    import binascii

    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("body: not valid base64", field="body") from None


def request_json_object(event: Mapping[str, Any], *, max_bytes: int, empty: str) -> dict[str, Any]:
    """A management request's JSON object body: 400 ``empty`` when there is none, 415 unless JSON,
    then the size, nesting and object checks of ``load_json_object``."""
    raw = raw_event_body(event)
    if not raw or not raw.strip():
        raise BadRequest(empty, field="body")
    require_json_content_type(event.get("headers"))
    return load_json_object(raw, max_bytes=max_bytes)
