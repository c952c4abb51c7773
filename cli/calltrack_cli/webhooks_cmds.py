"""`calltrack webhooks failed | retry | test`: the deliveries API from the command line.

Talks HTTP to the stack like `calltrack apply` (CALLTRACK_URL / CALLTRACK_TOKEN or --url / --token;
an admin token of the account, or the operator token with --account). Exit codes: 0 done, 2
refused (unknown delivery or webhook, a token that may not do this, any 4xx), 1 the stack could
not be reached or failed.
"""

from __future__ import annotations

from typing import Any

import typer

from calltrack_cli.admin_cmds import TOKEN_OPTION, URL_OPTION, CliFailure, _exit_with, _request, _resolve

webhooks_app = typer.Typer(help="Webhooks and CRM push: failed deliveries, retry, test ping.",
                           no_args_is_help=True)
ACCOUNT_OPTION = typer.Option(None, "--account", help="Account id (required with the operator token)",
                              show_default=False)


def _params(account: str | None) -> dict[str, str]:
    return {"account": account} if account else {}


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
    try:
        base, tok = _resolve(url, token)
        result = _request("GET", f"{base}/v1/webhooks/deliveries", tok, None,
                          params={**_params(account), "status": status})
    except CliFailure as err:
        _exit_with(err)
    for delivery in result.get("items", []):
        typer.echo(_line(delivery))


@webhooks_app.command("retry", help="Send one delivery again now (same body, same delivery id).")
def retry(
    delivery: str = typer.Argument(..., help="The delivery id (dlv_...)"),
    account: str | None = ACCOUNT_OPTION,
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    try:
        base, tok = _resolve(url, token)
        result = _request("POST", f"{base}/v1/webhooks/deliveries/{delivery}/retry", tok, None,
                          params=_params(account))
    except CliFailure as err:
        _exit_with(err)
    typer.echo(_line(result))


@webhooks_app.command("test", help="Send a signed ping to one webhook of the account config.")
def test(
    webhook: str = typer.Argument(..., help="The webhook's id in the account config"),
    account: str | None = ACCOUNT_OPTION,
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    try:
        base, tok = _resolve(url, token)
        result = _request("POST", f"{base}/v1/webhooks/{webhook}/test", tok, None, params=_params(account))
    except CliFailure as err:
        _exit_with(err)
    typer.echo(_line(result))


def register(app: typer.Typer) -> None:
    app.add_typer(webhooks_app, name="webhooks")
