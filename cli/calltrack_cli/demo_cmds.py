"""`calltrack demo`: the whole product on a laptop, through its own HTTP paths."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import typer
from rich.console import Console


def register(app: typer.Typer) -> None:
    @app.command(
        "demo",
        epilog="Examples:\n\n  calltrack demo\n\n  calltrack demo --calls 2000 --seed 42 --days 61\n\n"
        "  calltrack demo --url http://127.0.0.1:8787 --token $CALLTRACK_ADMIN_TOKEN",
    )
    def demo(
        calls: int = typer.Option(300, min=10, max=100_000, help="How many calls to simulate."),
        seed: int = typer.Option(
            7, help="Random seed: the same seed gives the same calls and the same figures."
        ),
        days: int = typer.Option(
            61,
            min=7,
            max=400,
            help="Days simulated, ending 2026-11-30 (61 = Oct + Nov, "
            "so the monthly review can compare November with October).",
        ),
        config: Path = typer.Option(Path("examples/acme-dental.yaml"), help="The account YAML to apply."),
        out: Path = typer.Option(Path("out/demo"), help="Where report.html is written."),
        url: str | None = typer.Option(
            None,
            help="Use a running local stack instead of starting one "
            "(its TWILIO_API_BASE_URL must serve recordings).",
        ),
        token: str | None = typer.Option(
            None, envvar="CALLTRACK_ADMIN_TOKEN", help="Operator token for --url."
        ),
    ) -> None:
        """Simulate a month of a Tokyo dental clinic's calls end to end and print what calltrack reports.

        It starts the local stack (moto + local API gateway) and a fake Twilio media server, applies the
        account YAML, and plays website visits (POST /dni/lease), Twilio-signed webhooks with duplicates and
        out-of-order callbacks, recordings, CRM leads, stages and ad spend; then runs the weekly alert and the
        monthly review, and prints the channel report, keywords, the missed-call heatmap, the CRM tagging
        rate, the alerts, the review's verdicts and the attribution accuracy — all read back from the API.
        """
        from calltrack_cli.demo.present import print_results
        from calltrack_cli.demo.runner import DemoOptions, run_demo
        from calltrack_cli.source import use_checkout

        if url is None:  # it starts the local stack: infra.wiring and the functions from the checkout
            root = use_checkout()
            if not config.is_absolute() and not config.exists():  # run outside the checkout
                config = root / config
        else:
            url = _local_stack_url(url)

        console = Console(file=sys.stdout)  # bound now: the run redirects sys.stdout to stack.log
        if not console.is_terminal:  # piped (make, CI, tests): wide enough for the tables
            console.width = 140
        opts = DemoOptions(calls=calls, seed=seed, days=days, config=config, out=out, url=url, token=token)
        try:
            _, results, html = run_demo(opts, console)
        except KeyboardInterrupt:
            console.print("[red]demo interrupted; everything it started was stopped[/]")
            raise typer.Exit(130) from None
        except Exception as exc:  # one line, non-zero: the user sees why it failed
            request: Any = getattr(exc, "request", None)  # requests' errors name what was asked
            url = getattr(request, "url", None)
            asked = f" ({request.method} {urlsplit(url).path})" if url else ""
            console.print(
                f"[red]demo failed:[/] {type(exc).__name__}{asked}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}"
            )
            console.print(f"  details: {out / 'stack.log'}")
            raise typer.Exit(1) from None
        print_results(console, results)
        console.print(f"\nHTML report: {html.resolve()}  (open it in a browser)")
        console.print(
            f"OpenAPI: {results.api_url}/openapi.json (paste it into any Swagger UI) — "
            "start `calltrack local serve` to keep the API up after the demo."
        )
        if results.console_users:
            from calltrack_cli.demo.runner import DEMO_PASSWORD

            who = " or ".join(f"{email} ({role})" for email, role in results.console_users)
            console.print(
                f"Console: {results.api_url}/console/ — sign in as {who}, password {DEMO_PASSWORD} "
                "(it runs while the stack does: `calltrack local serve`, then `calltrack demo --url "
                "http://127.0.0.1:8787`, keeps it up).",
                soft_wrap=True,  # one line: the URL and the sign-in stay copyable
            )
        if results.recording_url:
            console.print(
                "A recording as a manager hears it (presigned, 5 minutes; served by the demo's emulator, "
                "so it plays only while that stack runs — use `calltrack local serve` and "
                f"`calltrack demo --url` to keep it up): {results.recording_url}"
            )


def _local_stack_url(url: str) -> str:
    """``--url`` of a local stack only: the demo applies an example account with console users whose
    password is in this repository, and sends the operator token (over http) to do it."""
    from calltrack_cli.admin_cmds import LOOPBACK

    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    if parts is None or parts.scheme not in ("http", "https") or host not in LOOPBACK:
        typer.echo(f"error: --url: the demo runs on a local stack only (http://127.0.0.1:PORT from "
                   f"`calltrack local serve`), not {url[:100]!r}", err=True)
        raise typer.Exit(2)
    return url.strip().rstrip("/")
