"""The manager console's static files on the local gateway: ``build/console`` at ``/console/``.

Locally the gateway stands in for CloudFront in front of the console bucket: ``GET /console``
redirects to ``/console/``, ``/console/`` is ``index.html``, every other path is a file of the
build (no directory listing, no way out of the directory), with its content type and the security
headers of :mod:`infra.console_headers` (the same dict CloudFront's ResponseHeadersPolicy sends).
Anything else under ``/console/`` is 404. ``python -m calltrack_cli.console_build`` (make setup)
writes the build.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from calltrack_cli.local.events import HttpResult
from infra.console_headers import console_headers

PREFIX = "/console"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".webmanifest": "application/manifest+json",
    ".txt": "text/plain; charset=utf-8",
}
NOT_BUILT = "console not built: run make setup (or python -m calltrack_cli.console_build)"


def default_root() -> Path | None:
    from calltrack_cli.source import find_checkout

    checkout = find_checkout()
    return checkout / "build" / "console" if checkout else None


def _media_sources() -> list[str]:
    """The S3 emulator's origin: presigned recording URLs point there locally."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    parts = urlsplit(endpoint)
    return [f"{parts.scheme}://{parts.netloc}"] if parts.scheme and parts.netloc else []


def _headers(content_type: str, cache: str) -> list[tuple[str, str]]:
    return [
        ("content-type", content_type),
        ("cache-control", cache),
        *console_headers(_media_sources()).items(),
    ]


def _text(status: int, message: str) -> HttpResult:
    return HttpResult(status, _headers("text/plain; charset=utf-8", "no-store"), message.encode())


def resolve(root: Path, path: str) -> Path | None:
    """The file under ``root`` that ``path`` (after ``/console/``) names, or None: no dot files,
    no ``..``, no backslashes or NULs, nothing outside ``root`` (symlinks included)."""
    rel = unquote(path)
    if rel in ("", "/"):
        rel = "index.html"
    if "\\" in rel or "\x00" in rel:
        return None
    parts = [p for p in rel.split("/") if p]
    if not parts or any(p in (".", "..") or p.startswith(".") for p in parts):
        return None
    base = root.resolve()
    candidate = base.joinpath(*parts).resolve()
    if candidate == base or base not in candidate.parents or not candidate.is_file():
        return None
    return candidate


def serve(root: Path | None, method: str, path: str) -> HttpResult | None:
    """The response for ``path`` when it is the console's (``/console`` or under it), else None."""
    if path != PREFIX and not path.startswith(PREFIX + "/"):
        return None
    if method not in ("GET", "HEAD"):
        result = _text(405, "Method Not Allowed")
        result.headers.append(("allow", "GET, HEAD"))
        return result
    if path == PREFIX:
        return HttpResult(301, [("location", PREFIX + "/"), *_headers("text/plain; charset=utf-8",
                                                                       "no-store")], b"")
    if root is None or not (root / "index.html").is_file():
        return _text(404, NOT_BUILT)
    target = resolve(root, path[len(PREFIX) + 1:])
    if target is None:
        return _text(404, "Not Found")
    ctype = CONTENT_TYPES.get(target.suffix.lower(), "application/octet-stream")
    # index.html is always revalidated; the rest may be cached briefly (deployed, CloudFront's
    # policy decides).
    cache = "no-cache" if target.suffix == ".html" else "max-age=300"
    return HttpResult(200, _headers(ctype, cache), target.read_bytes())
