"""Minify functions/dni_lease/static/dni.src.js into the dni.min.js the dni_lease Lambda serves.

    make dni-js          # = .venv/bin/python -m calltrack_cli.dni_js

A build step, not product code: it runs in a checkout after ``make setup``, with terser (the
console's pinned dev dependency, ``console/node_modules``) and ``node``. terser parses the script,
renames its local names and keeps every string and regex literal's value; the output is pure ASCII
(``\\uXXXX`` escapes), so a page in Shift_JIS or EUC-JP reads the script as written. The Lambda
asset ships only the committed dni.min.js (``dni_lease.script`` reads it). A unit test fails when
the committed file is stale or not under ``MAX_BYTES``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from calltrack_cli.console_build import INSTALL_HINT, TERSER_BIN
from calltrack_cli.source import checkout

MAX_BYTES = 7 * 1024 + 512  # 6 KB until issues 16 and 24, 7 KB until the revoked-lease fix: docs/decisions.md
STATIC = Path("functions") / "dni_lease" / "static"
# compress and mangle (the script is one function: its top level is the page's, left alone); single
# quotes as in the source; ASCII only.
TERSER_ARGS = ("--compress", "--mangle", "--format", "ascii_only=true,quote_style=1")


class MinifyError(Exception):
    """dni.js cannot be minified here (the message says why and what to run)."""


def paths(root: Path | None = None) -> tuple[Path, Path]:
    """(dni.src.js, dni.min.js) in the checkout ``root`` (found as the local runtime finds it)."""
    static = (root or checkout()) / STATIC
    return static / "dni.src.js", static / "dni.min.js"


def minify(source: str, root: Path | None = None) -> str:
    terser = (root or checkout()) / "console" / "node_modules" / TERSER_BIN
    node = shutil.which("node")
    if node is None or not terser.is_file():
        raise MinifyError(f"dni.js is minified by terser under node: run `make setup` (or `{INSTALL_HINT}`)")
    done = subprocess.run(
        [node, str(terser), *TERSER_ARGS], input=source, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise MinifyError(f"terser refused dni.src.js: {done.stderr.strip()}")
    return done.stdout.rstrip("\n") + "\n"


def build(root: Path | None = None) -> str:
    source, minified = paths(root)
    out = minify(source.read_text(encoding="utf-8"), root)
    minified.write_text(out, encoding="utf-8")
    return out


def main() -> None:
    try:
        size = len(build().encode("utf-8"))
    except MinifyError as err:
        raise SystemExit(f"make dni-js: {err}") from None
    print(f"dni.min.js: {size} bytes (limit {MAX_BYTES})")


if __name__ == "__main__":  # pragma: no cover
    main()
