"""`calltrack verify --number N`: the last test calls to a tracking number, with their attribution
and whether they reached the flow's target (seed 002: テスト通話でデータ収集の正確性を検証する).

Test calls are calls from the account's ``test_callers``; the API lists them with
``GET /v1/calls?test=1`` (they are kept out of every report). Exit codes as the admin commands:
0 done (2 when no test call reached its target, so a script can check a deploy), 2 refused, 1 unreachable.
"""

from __future__ import annotations

import json
from typing import Any

import typer

from calltrack_cli import admin_cmds
from calltrack_cli.admin_cmds import TOKEN_OPTION, URL_OPTION, CliFailure

VERIFY_HELP = """Show the last test calls to a tracking number: source, flow branch, target, agent.

\b
Call the number from one of the account's test_callers first, then:
  calltrack verify --number 050-1234-0001 --token "$MANAGER_TOKEN"
  calltrack verify --number "(212) 555-0100" --account acme-ny --token "$CALLTRACK_ADMIN_TOKEN"

A national number is read in the tracking number's own country.

Exit codes: 0 the last test call reached its target, 2 it did not (or none found / refused), 1 unreachable.
"""


def reached(call: dict[str, Any]) -> bool:
    """A test call reached the flow's target when someone answered it (a forward or a member)."""
    return call.get("status") == "answered"


def _e164(number: str, region: str = "JP") -> str:
    from calltrack.errors import BadRequest
    from calltrack.phone import normalize

    try:
        return normalize(number, region, field="--number")
    except BadRequest as exc:
        admin_cmds._fail(f"error: {exc.message}", 2)


def dialled(number: str, tracking_number: str | None) -> bool:
    """``number`` as written (E.164, or national as dialled in the tracking number's own country:
    050-1234-0001, (212) 555-0100) names ``tracking_number`` (E.164, as calls store it)."""
    import re

    import phonenumbers

    from calltrack_cli.doctor_cmds import number_forms

    if not tracking_number:
        return False
    if number.strip().startswith("+"):
        return _e164(number) == tracking_number
    try:
        return re.sub(r"\D", "", number) in number_forms(tracking_number)
    except phonenumbers.NumberParseException:
        return False


def line(call: dict[str, Any]) -> str:
    source = "/".join(str(call.get(k) or "-") for k in ("channel", "campaign", "keyword"))
    flow = f"{call.get('flow') or '-'}:{call.get('flow_branch') or '-'}→{call.get('target') or '-'}"
    who = call.get("agent") or "-"
    mark = "reached" if reached(call) else f"NOT reached ({call.get('status')})"
    confidence = call.get("confidence")
    return f"{call.get('started_at')}  {source}  confidence {confidence}  flow {flow}  agent {who}  {mark}"


def verify_cmd(
    number: str = typer.Option(..., "--number", help="The tracking number called", show_default=False),
    last: int = typer.Option(5, "--last", min=1, max=50, help="How many test calls to show"),
    account: str | None = typer.Option(
        None, "--account", help="The account (needed with the operator token)", show_default=False
    ),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the calls as JSON"),
) -> None:
    try:
        wanted = _e164(number)  # refuses what is no phone number
        base, tok = admin_cmds._resolve(url, token)
        query = {"test": "1", "limit": "500", **({"account": account} if account else {})}
        result = admin_cmds._request("GET", f"{base}/v1/calls", tok, None, params=query)
    except CliFailure as err:
        admin_cmds._exit_with(err)
    items = (result or {}).get("items", [])
    calls = [c for c in items if dialled(number, c.get("tracking_number"))][:last]
    if as_json:
        typer.echo(json.dumps(calls, ensure_ascii=False))
    elif not calls:
        shown = wanted if number.strip().startswith("+") else number.strip()
        typer.echo(f"{shown}: no test calls in the last 30 days "
                   "(call it from one of the account's test_callers)")
    for call in calls:
        typer.echo(line(call))
    if not calls or not reached(calls[0]):
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    app.command("verify", help=VERIFY_HELP)(verify_cmd)
