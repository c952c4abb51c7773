"""A tiny, safe minifier for dni.src.js (no npm at build or run time).

It removes comments written as ``/* ... */`` (opened by "/* ") and whole-line ``//`` comments,
indentation and blank lines, and keeps line breaks (so automatic semicolon insertion behaves
exactly as in the source). ``python -m dni_lease.minify`` rewrites static/dni.min.js; a unit
test fails when the committed file is stale or larger than 6 KB.
"""

from __future__ import annotations

import re
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"
SOURCE = STATIC / "dni.src.js"
MINIFIED = STATIC / "dni.min.js"
MAX_BYTES = 6 * 1024

_BLOCK = re.compile(r"/\*[\s*].*?\*/", re.S)
# Token-level squeezes that cannot occur inside dni.src.js's strings or regex literals
# (the unit test runs the minified script in a real browser, so a bad squeeze is caught).
_SAFE = (
    ("function (", "function("),
    (") {", "){"),
    (" = ", "="),
    (" === ", "==="),
    (" !== ", "!=="),
    (" || ", "||"),
    (" && ", "&&"),
    (" + ", "+"),
    ("; ", ";"),
    (", ", ","),
    ("} else", "}else"),
    ("else {", "else{"),
    (": ", ":"),
    (" ? ", "?"),
    (" { ", "{"),
    (" }", "}"),
)


def minify(source: str) -> str:
    text = _BLOCK.sub("", source)
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("//"):
            continue
        for old, new in _SAFE:
            line = line.replace(old, new)
        lines.append(line)
    return "\n".join(lines) + "\n"


def build() -> str:
    out = minify(SOURCE.read_text(encoding="utf-8"))
    MINIFIED.write_text(out, encoding="utf-8")
    return out


if __name__ == "__main__":  # pragma: no cover
    size = len(build().encode("utf-8"))
    print(f"{MINIFIED.name}: {size} bytes (limit {MAX_BYTES})")
