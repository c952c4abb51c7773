"""The calltrack source checkout, for the parts of the CLI that run the product locally.

`pip install .` installs only the packages ``calltrack`` and ``calltrack_cli``. The function
folders (``functions/<folder>``, each a top-level package in its Lambda asset: handler strings
such as ``voice_webhook.handler.handler``), ``infra`` (the wiring) and ``bench`` stay in the
checkout. The local runtime, the demo and the benchmarks call :func:`use_checkout` once at
start: it puts the checkout root and ``<checkout>/functions`` on ``sys.path``, exactly as Lambda
puts an asset directory on the path, so a new function folder needs no packaging change.

Where the checkout is, first match wins: the directory holding ``cli/calltrack_cli`` (an
editable install, or running from the source tree), then ``$CALLTRACK_SOURCE``, then the current
directory or one of its parents.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV = "CALLTRACK_SOURCE"
MISSING = (
    "the local runtime needs a checkout of the calltrack repo: run from inside it, "
    f"or set {ENV}=/path/to/calltrack"
)


def is_checkout(path: Path) -> bool:
    return (path / "infra" / "wiring.py").is_file() and (path / "functions").is_dir()


def find_checkout(cwd: Path | None = None) -> Path | None:
    """The checkout root, or None when there is none (see the module docstring for the order)."""
    here = Path(__file__).resolve().parent.parent.parent  # <root>/cli/calltrack_cli/source.py
    candidates = [here]
    if os.environ.get(ENV):
        candidates.append(Path(os.environ[ENV]).expanduser().resolve())
    start = (cwd or Path.cwd()).resolve()
    candidates += [start, *start.parents]
    return next((c for c in candidates if is_checkout(c)), None)


def checkout(cwd: Path | None = None) -> Path:
    """The checkout root; exits 2 with a one-line message when there is none."""
    root = find_checkout(cwd)
    if root is None:
        print(f"error: {MISSING}", file=sys.stderr)
        raise SystemExit(2)
    return root


def use_checkout(cwd: Path | None = None) -> Path:
    """Put the checkout root and its ``functions`` dir on ``sys.path`` (idempotent); return the root.

    Exits 2 with a one-line message when there is no checkout.
    """
    root = checkout(cwd)
    for entry in (root / "functions", root):
        if str(entry) not in sys.path:
            sys.path.insert(0, str(entry))
    return root
