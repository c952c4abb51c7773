"""`calltrack local ...`: run the local stack and drive its local-only helpers."""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import Any

import typer

DEFAULT_URL = "http://127.0.0.1:8787"
GENERATED_NOTE = " (generated for this run; set CALLTRACK_ADMIN_TOKEN to choose it)"

app = typer.Typer(
    help=(
        "The local stack: embedded AWS emulator (moto), local API gateway, stream/SQS pollers and "
        "on-demand scheduled jobs, all on 127.0.0.1.\n\n"
        "Start it in one terminal:\n\n"
        "    calltrack local serve --port 8787\n\n"
        "then, from another:\n\n"
        "    calltrack local run-job weekly-unanswered-alert --at 2026-11-30T09:00:00+09:00\n\n"
        "    calltrack local outbox"
    ),
    no_args_is_help=True,
)

UrlOption = typer.Option(
    None,
    "--url",
    envvar="CALLTRACK_URL",
    help=f"Base URL of the running local stack (default $CALLTRACK_URL or {DEFAULT_URL}).",
)


def _client(url: str | None) -> Any:
    from calltrack_cli.local.client import StackClient

    return StackClient(url or DEFAULT_URL)


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.command()
def serve(
    port: int = typer.Option(8787, "--port", "-p", help="Port of the local API gateway."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (keep 127.0.0.1)."),
    as_deployed: bool = typer.Option(
        False, "--as-deployed",
        help="Run each function from its synthesized asset in its own Python 3.12 worker, under its "
        "own IAM role with IAM enforced (synthesizes the app unless --cdk-out or $CALLTRACK_CDK_OUT).",
    ),
    cdk_out: str | None = typer.Option(
        None, "--cdk-out", envvar="CALLTRACK_CDK_OUT", help="A synthesized app to run (with --as-deployed)."
    ),
) -> None:
    """Run the local stack in the foreground until Ctrl-C / SIGTERM.

    Reads TWILIO_AUTH_TOKEN, TWILIO_ACCOUNT_SID, CALLTRACK_PUBLIC_URL (default
    http://HOST:PORT), CALLTRACK_ADMIN_TOKEN (generated and printed when unset; never printed
    when set) and
    TWILIO_API_BASE_URL from the environment.

    Example:

        CALLTRACK_ADMIN_TOKEN=secret calltrack local serve --port 8787
    """
    import logging

    from calltrack_cli.source import use_checkout

    use_checkout()  # infra.wiring and the function packages come from the checkout
    from calltrack_cli.local.stack import LocalStack

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if as_deployed:
        from pathlib import Path

        from calltrack_cli.local.as_deployed import AsDeployedStack

        typer.echo("as deployed: every function from its synthesized asset, under its own role ...")
        stack: LocalStack = AsDeployedStack(port=port, host=host, cdk_out=Path(cdk_out) if cdk_out else None)
    else:
        stack = LocalStack(port=port, host=host)
    try:
        stack.start()
    except OSError as exc:
        _fail(f"cannot start the local stack on {host}:{port}: {exc}")
    stopping = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    typer.echo(f"calltrack local stack: {stack.url}")
    typer.echo(f"  public URL (webhook signatures): {stack.public_url}")
    typer.echo(f"  operator token: {operator_token_line(stack.admin_token, stack.admin_token_generated)}")
    typer.echo(f"  emulator: {stack.moto_url}")
    typer.echo(
        f"  {len(stack.wiring.routes)} routes, {len(stack.wiring.queues)} queue(s), "
        f"{len(stack.wiring.streams)} stream consumer(s), {len(stack.wiring.schedules)} job(s). "
        "Ctrl-C to stop."
    )
    sys.stdout.flush()
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        typer.echo("stopping the local stack ...")
        report = stack.iam_status() if as_deployed else None  # type: ignore[attr-defined]
        stack.stop()
        typer.echo("stopped.")
    if report is not None:
        _print_iam(report)
        if report["denials"]:
            raise typer.Exit(1)  # loud: a denial means the deployed function would fail


def operator_token_line(token: str, generated: bool) -> str:
    """A generated token is shown (the user needs it); one the user set is not: it may be a real
    deployment's, and serve's output ends up in terminals' scrollback and CI logs."""
    return f"{token}{GENERATED_NOTE}" if generated else "the one in CALLTRACK_ADMIN_TOKEN (not shown)"


def _print_iam(report: dict[str, Any]) -> None:
    for line in report["denials"]:
        typer.echo(f"DENIED: {line}", err=True)
    for function, actions in sorted(report["unused"].items()):
        typer.echo(f"unused grant (advice): {function}: {', '.join(actions)}")
    for line in report["warnings"]:
        typer.echo(f"not checked locally: {line}")
    if report["denials"]:
        count = len(report["denials"])
        typer.echo(f"{count} access denial(s): a synthesized policy lacks what the code uses", err=True)


@app.command("iam-report")
def iam_report(url: str | None = UrlOption) -> None:
    """On a stack started with `serve --as-deployed`: access denials so far (exit 1 if any) and the
    granted actions no request has used yet (advice: candidates to remove from the wiring's grants).

    Example:

        calltrack local iam-report
    """
    from calltrack_cli.local.client import StackError

    try:
        report = _client(url)._local("GET", "/_local/iam")
    except StackError as exc:
        _fail(f"{exc} (was the stack started with --as-deployed?)")
    except OSError as exc:
        _fail(f"cannot reach the local stack at {url or DEFAULT_URL}: {exc}")
    _print_iam(report)
    if report["denials"]:
        raise typer.Exit(1)


@app.command("run-job")
def run_job(
    name: str = typer.Argument(
        ..., help="Job name from infra/wiring.py SCHEDULES, e.g. weekly-unanswered-alert."
    ),
    at: str = typer.Option(
        ..., "--at", help="The instant EventBridge fires, ISO 8601 (offset optional, UTC)."
    ),
    force: bool = typer.Option(False, "--force", help="Run even if this job already ran for that period."),
    url: str | None = UrlOption,
) -> None:
    """Run a scheduled job on the running stack as EventBridge would at --at, and print the result.

    Example:

        calltrack local run-job monthly-channel-review --at 2026-12-01T00:00:00Z --force
    """
    from calltrack_cli.local.client import StackError
    from calltrack_cli.local.events import parse_instant

    try:
        parse_instant(at)
    except ValueError as exc:
        _fail(f"--at: {exc}", 2)
    try:
        result = _client(url).run_job(name, at, force=force)
    except StackError as exc:
        _fail(str(exc), 2)
    except OSError as exc:
        _fail(f"cannot reach the local stack at {url or DEFAULT_URL}: {exc}")
    typer.echo(json.dumps(result, ensure_ascii=False, indent=2, default=str))


@app.command()
def outbox(url: str | None = UrlOption) -> None:
    """Print every SNS message published so far, one JSON object per line.

    Example:

        calltrack local outbox | jq .subject
    """
    from calltrack_cli.local.client import StackError

    try:
        messages = _client(url).outbox()
    except StackError as exc:
        _fail(str(exc), 2)
    except OSError as exc:
        _fail(f"cannot reach the local stack at {url or DEFAULT_URL}: {exc}")
    for message in messages:
        typer.echo(json.dumps(message, ensure_ascii=False, default=str))


@app.command()
def drain(url: str | None = UrlOption) -> None:
    """Process every pending stream record and queue message now; return when idle."""
    from calltrack_cli.local.client import StackError

    try:
        typer.echo(json.dumps(_client(url).drain()))
    except StackError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot reach the local stack at {url or DEFAULT_URL}: {exc}")
