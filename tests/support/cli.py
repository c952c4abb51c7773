"""The ``calltrack`` command run in process (Typer's CliRunner), for CLI tests of every tier."""

from __future__ import annotations

from typing import Any

from typer.testing import CliRunner


def run_cli(*args: str, input: str | None = None) -> Any:
    """``calltrack ARGS...`` (``input`` as its stdin); returns the click Result (exit_code, stdout,
    stderr, output)."""
    from calltrack_cli.main import app

    return CliRunner().invoke(app, list(args), input=input)
