"""The manager console's security headers: one dict, used by the local gateway for ``/console/``
and by CloudFront's ResponseHeadersPolicy for the deployed console (issue 23).

The Content-Security-Policy is strict: every script, style, font and image is a file the console
ships from its own origin ('self'); no 'unsafe-inline' (the pages have no inline script, style
attribute or event handler), no 'unsafe-eval' (Chart.js 4 needs neither: it draws on a canvas and
sets sizes through the CSSOM, which CSP does not govern). API calls go to the same origin.
Recordings are played from short-lived presigned S3 URLs, so ``media-src`` also allows S3
(``https://*.amazonaws.com``); locally the gateway adds the emulator's origin through
:func:`console_headers`.
"""

from __future__ import annotations

from collections.abc import Iterable

# Where presigned recording URLs point when deployed (virtual-hosted or path-style S3 endpoints).
S3_MEDIA_SOURCES: tuple[str, ...] = ("https://*.amazonaws.com",)


def content_security_policy(media_sources: Iterable[str] = S3_MEDIA_SOURCES) -> str:
    media = " ".join(["'self'", *media_sources])
    directives = [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        f"media-src {media}",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
    return "; ".join(directives)


HSTS = "max-age=63072000; includeSubDomains"

CONSOLE_HEADERS: dict[str, str] = {
    "Content-Security-Policy": content_security_policy(),
    "Strict-Transport-Security": HSTS,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


def console_headers(extra_media_sources: Iterable[str] = ()) -> dict[str, str]:
    """:data:`CONSOLE_HEADERS`, with more ``media-src`` origins (the local S3 emulator's)."""
    extra = [s for s in extra_media_sources if s]
    if not extra:
        return dict(CONSOLE_HEADERS)
    return {
        **CONSOLE_HEADERS,
        "Content-Security-Policy": content_security_policy([*S3_MEDIA_SOURCES, *extra]),
    }
