"""`calltrack local ...` (stub: the foundation fills it)."""

from __future__ import annotations

import typer

app = typer.Typer(help="The local stack: embedded AWS emulator, local API gateway, pollers, jobs.")
