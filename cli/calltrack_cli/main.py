"""`calltrack` entry point: one Typer app; each command group lives in its own module.

Only typer, rich, requests and pyyaml (cli/requirements.in) and the ``calltrack`` package are
needed for ``--help``, ``--version`` and the admin commands; ``local serve`` and ``demo`` also
need a checkout of the repo (calltrack_cli.source).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import typer

from calltrack_cli import (
    admin_cmds,
    demo_cmds,
    doctor_cmds,
    local_cmds,
    numbers_cmds,
    pools_cmds,
    recordings_cmds,
    rollups_cmds,
    transcripts_cmds,
    users_cmds,
    verify_cmds,
    webhooks_cmds,
)

app = typer.Typer(
    name="calltrack",
    help="Self-hosted call tracking: run the local stack, apply account config, manage tokens.",
    no_args_is_help=True,
    add_completion=False,
)


def _version() -> str:
    try:
        return version("calltrack")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"calltrack {_version()}")
        raise typer.Exit()


@app.callback()
def main(
    _version_flag: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Self-hosted call tracking: run the local stack, apply account config, manage tokens."""


app.add_typer(local_cmds.app, name="local")
admin_cmds.register(app)
demo_cmds.register(app)
recordings_cmds.register(app)
transcripts_cmds.register(app)
numbers_cmds.register(app)
pools_cmds.register(app)
doctor_cmds.register(app)
verify_cmds.register(app)
webhooks_cmds.register(app)
users_cmds.register(app)
rollups_cmds.register(app)

if __name__ == "__main__":  # pragma: no cover
    app()
