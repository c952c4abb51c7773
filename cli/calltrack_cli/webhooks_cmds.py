"""`calltrack webhooks failed | retry | test`: the deliveries API from the command line.

Talks HTTP to the stack like `calltrack apply` (CALLTRACK_URL / CALLTRACK_TOKEN or --url / --token;
an admin token of the account, or the operator token with --account). Exit codes: 0 done, 2
refused (unknown delivery or webhook, a token that may not do this, any 4xx), 1 the stack could
not be reached or failed (`test`: or the receiver did not take the ping).
"""

from __future__ import annotations

from typing import Any

import typer

from calltrack_cli.admin_cmds import (
    ACCOUNT_OPTION,
    TOKEN_OPTION,
    URL_OPTION,
    CliFailure,
    _exit_with,
    _request,
    _resolve,
)

webhooks_app = typer.Typer(help="Webhooks and CRM push: failed deliveries, retry, test ping.",
                           no_args_is_help=True)


def _call(method: str, path: str, account: str | None, url: str | None, token: str | None,
          **params: str) -> Any:
    """One request to the deliveries API (exit 2 on a refusal, 1 when the stack fails)."""
    try:
        base, tok = _resolve(url, token)
        return _request(method, f"{base}{path}", tok, None,
                        params={**({"account": account} if account else {}), **params})
    except CliFailure as err:
        _exit_with(err)


def _line(d: dict[str, Any]) -> str:
    return (f"{d.get('delivery_id')}  {d.get('destination')}  {d.get('event_type')}  {d.get('status')}  "
            f"attempts={d.get('attempts')}  {d.get('reason') or ''}").rstrip()


@webhooks_app.command("failed", help="List failed deliveries (or --status retrying, pending, delivered).")
def failed(
    account: str | None = ACCOUNT_OPTION,
    status: str = typer.Option("failed", "--status", help="failed, retrying, pending or delivered"),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    found = _call("GET", "/v1/webhooks/deliveries", account, url, token, status=status)
    for delivery in found.get("items", []):
        typer.echo(_line(delivery))


@webhooks_app.command("retry", help="Send one delivery again now (same body, same delivery id).")
def retry(
    delivery: str = typer.Argument(..., help="The delivery id (dlv_...)"),
    account: str | None = ACCOUNT_OPTION,
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    typer.echo(_line(_call("POST", f"/v1/webhooks/deliveries/{delivery}/retry", account, url, token)))


# What a test ping's delivery can end as, and the exit code each gets (pending: not sent yet).
ANSWERED = {"delivered": 0, "retrying": 1, "failed": 1}
POLL_S = 1.0


@webhooks_app.command(
    "test",
    help="Send a signed ping to one webhook of the account config and wait for the receiver's answer: "
         "exit 0 delivered, 1 refused or unreachable (the line says why) or not sent within --wait.",
)
def test(
    webhook: str = typer.Argument(..., help="The webhook's id in the account config"),
    account: str | None = ACCOUNT_OPTION,
    wait: int = typer.Option(30, "--wait", min=0, max=600,
                             help="Seconds to wait for the answer (0: queue the ping and return)"),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    import time

    delivery = _call("POST", f"/v1/webhooks/{webhook}/test", account, url, token)
    deadline = time.monotonic() + wait
    if wait:
        typer.echo(f"ping queued as {delivery.get('delivery_id')}; waiting up to {wait} s for the answer ...",
                   err=True)
    while wait and delivery.get("status") not in ANSWERED and time.monotonic() < deadline:
        time.sleep(POLL_S)
        delivery = _call("GET", f"/v1/webhooks/deliveries/{delivery.get('delivery_id')}", account, url, token)
    typer.echo(_line(delivery))
    status = delivery.get("status")
    if not wait:
        return
    if status == "retrying":
        typer.echo("the receiver did not take it; it is tried again with backoff "
                   "(calltrack webhooks failed --status retrying)", err=True)
    elif status not in ANSWERED:
        typer.echo(f"not sent within {wait} s: is the webhooks queue's consumer running? "
                   "(calltrack webhooks failed --status pending)", err=True)
    raise typer.Exit(ANSWERED.get(str(status), 1))


def register(app: typer.Typer) -> None:
    app.add_typer(webhooks_app, name="webhooks")
