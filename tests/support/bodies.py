"""Request bodies no API route should answer with a 5xx: each is (content type, raw bytes), sent as is."""

from __future__ import annotations

BAD_BODIES: dict[str, tuple[str | None, bytes]] = {
    # ~2 KB of JSON nested 1,000 deep (json.loads recurses: RecursionError without a depth limit)
    "nested-json": ("application/json", b"[" * 1000 + b"]" * 1000),
    "nested-objects": ("application/json", b'{"a":' * 1000 + b"1" + b"}" * 1000),
    "multipart-no-boundary": (
        "multipart/form-data",
        b"--x\r\nContent-Disposition: form-data\r\n\r\n1\r\n--x--",
    ),
    "form": ("application/x-www-form-urlencoded", b"month=2026-10&channel=flyer&amount=1"),
    "text": ("text/plain", b'{"month": "2026-10"}'),
    # no Content-Type: the gateway hands the body over base64-encoded, as API Gateway does
    "bad-utf8": (None, b'{"note": "\xff\xfe"}'),
    "not-an-object": ("application/json", b"[1, 2, 3]"),
    "not-json": ("application/json", b"{nope"),
    "huge": ("application/json", b'{"note": "' + b"x" * (1024 * 1024) + b'"}'),
}


def headers_for(content_type: str | None, token: str | None = None) -> dict[str, str]:
    headers = {"Content-Type": content_type} if content_type else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers
