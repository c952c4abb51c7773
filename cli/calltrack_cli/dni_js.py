"""Minify functions/dni_lease/static/dni.src.js into the dni.min.js the dni_lease Lambda serves.

    make dni-js          # = .venv/bin/python -m calltrack_cli.dni_js

A build step, not product code: it runs in a checkout with the dev dependencies (``rjsmin``, a
real JavaScript tokenizer: strings, regex literals and template literals pass through verbatim),
and the Lambda asset ships only the committed dni.min.js (``dni_lease.script`` reads it). A unit
test fails when the committed file is stale or not under 7 KB.
"""

from __future__ import annotations

from pathlib import Path

import rjsmin

from calltrack_cli.source import checkout

MAX_BYTES = 7 * 1024  # 6 KB until issues 16 and 24 (ad cookies, lease lifecycle): docs/decisions.md
STATIC = Path("functions") / "dni_lease" / "static"


def paths(root: Path | None = None) -> tuple[Path, Path]:
    """(dni.src.js, dni.min.js) in the checkout ``root`` (found as the local runtime finds it)."""
    static = (root or checkout()) / STATIC
    return static / "dni.src.js", static / "dni.min.js"


def minify(source: str) -> str:
    return str(rjsmin.jsmin(source)).rstrip("\n") + "\n"


def build(root: Path | None = None) -> str:
    source, minified = paths(root)
    out = minify(source.read_text(encoding="utf-8"))
    minified.write_text(out, encoding="utf-8")
    return out


def main() -> None:
    size = len(build().encode("utf-8"))
    print(f"dni.min.js: {size} bytes (limit {MAX_BYTES})")


if __name__ == "__main__":  # pragma: no cover
    main()
