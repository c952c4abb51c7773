"""`calltrack apply` and `calltrack token create` (stub: the foundation fills it)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    pass
