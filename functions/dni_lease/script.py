"""The dni.js payload (static/dni.min.js), read once per process."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

MINIFIED = Path(__file__).resolve().parent / "static" / "dni.min.js"


@functools.lru_cache(maxsize=1)
def script_text() -> str:
    return MINIFIED.read_text(encoding="utf-8")


@functools.lru_cache(maxsize=1)
def script_etag() -> str:
    return '"' + hashlib.sha256(script_text().encode("utf-8")).hexdigest()[:16] + '"'
