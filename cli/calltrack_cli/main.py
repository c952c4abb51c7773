"""`calltrack` entry point: one Typer app; each command group lives in its own module."""

from __future__ import annotations

import typer

from calltrack_cli import admin_cmds, demo_cmds, local_cmds

app = typer.Typer(
    name="calltrack",
    help="Self-hosted call tracking: run the local stack, apply account config, manage tokens.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(local_cmds.app, name="local")
admin_cmds.register(app)
demo_cmds.register(app)

if __name__ == "__main__":  # pragma: no cover
    app()
