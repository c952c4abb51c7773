"""`calltrack rollups recount`: raise an account's rollups to what its stored calls add up to.

Talks HTTP to the stack (POST /v1/reports/recount) like `calltrack recordings retry`:
CALLTRACK_URL / CALLTRACK_TOKEN or --url / --token. Exit codes: 0 done (busy days are listed to run
again), 2 refused (a bad date, a token that may not do this, any 4xx), 1 the stack could not be
reached or failed.
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
    day_option,
)

RECOUNT_HELP = """Raise an account's report counts to what its stored calls add up to.

Reports read rollups: counters the calls stream keeps per day. Rows written by an older calltrack
can count less than their calls do today: before 2026-12-01 a call tagged "qualified" counted no
lead, and untagging such a call later leaves its day one lead low. This recounts each day from
FROM to TO (the account's time zone) from the calls still stored and adds what a row is missing.

It never lowers a count: calls erased for a caller's privacy request, or past
retention.calls_days, keep their counts. It raises only a row holding as many calls as the
stored calls say (others are "unverified": their calls may be counted under another day or
value). Calls from before 2026-12-01 carry no time zone: they were counted on the days of the
zone the account had then, so their days are raised only with --zone-unchanged (the account's
time zone is the same today). A day with a call changed in the last 10 minutes is left alone and
listed as busy (that change may not be counted yet): run the command again later. Run it while
the Rollup alarms are quiet: a skipped calls-stream range not yet replayed would be counted twice.
--dry-run shows what it would add.

Needs the operator token and --account (--token or CALLTRACK_TOKEN; the stack at --url or
CALLTRACK_URL). Exit 0 done, 2 refused (a bad date, a token that may not do this), 1 the stack
could not be reached.
"""

rollups_app = typer.Typer(help="Rollups: the per-day counters every report reads.", no_args_is_help=True)

def _raised(counters: dict[str, Any]) -> str:
    return ", ".join(f"{name} +{amount}" for name, amount in counters.items()) or "other dimensions only"


@rollups_app.command("recount", help=RECOUNT_HELP)
def recount(
    from_: str = typer.Option(..., "--from", help="First day to recount (YYYY-MM-DD, account time zone)",
                              show_default=False),
    to: str | None = typer.Option(None, "--to", help="Last day (default: today)", show_default=False),
    account: str | None = ACCOUNT_OPTION,
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be raised; write nothing"),
    zone_unchanged: bool = typer.Option(
        False, "--zone-unchanged",
        help="The account's time zone has not changed since 2026-12-01: days with calls from before "
             "then (they carry no zone stamp) may be raised too"),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    try:
        body: dict[str, Any] = {"from": day_option(from_, "--from"), "dry_run": dry_run}
        if zone_unchanged:
            body["zone_unchanged"] = True
        if day_option(to, "--to"):
            body["to"] = to
        if account:
            body["account"] = account
        base, tok = _resolve(url, token)
        rows = calls = unverified = 0
        busy: list[str] = []
        unstamped: list[str] = []
        while True:  # a long range takes several answers, each within the API's time limit
            result = _request("POST", f"{base}/v1/reports/recount", tok, body)
            rows += int(result.get("rows_raised", 0))
            calls += int(result.get("calls", 0))
            unverified += int(result.get("rows_unverified", 0))
            busy += list(result.get("busy_days") or [])
            unstamped += list(result.get("unstamped_days") or [])
            verb = "would raise" if dry_run else "raised"
            for day in result.get("days") or []:
                if day.get("rows_raised"):
                    raised = _raised(day.get("raised") or {})
                    typer.echo(f"{day['day']}: {verb} {day['rows_raised']} rows ({raised})")
            if not result.get("next_cursor"):
                break
            if result["next_cursor"] == body.get("cursor", body["from"]):
                raise CliFailure(f"the stack made no progress from {result['next_cursor']} within its "
                                 "time limit; try again later, or a shorter --to", code=1)
            body = {**body, "cursor": result["next_cursor"]}
            typer.echo(f"... recounted up to {result['next_cursor']}; reading on", err=True)
    except CliFailure as err:
        _exit_with(err)
    typer.echo(f"{result.get('account')}: {verb} {rows} row{'' if rows == 1 else 's'} "
               f"from {calls} stored call{'' if calls == 1 else 's'}, {body['from']} to {result.get('to')}")
    if unverified:
        typer.echo(f"left {unverified} short row(s) as they are: they hold another number of calls "
                   "than the stored calls (counted under another day or value, e.g. before the "
                   "account changed its time zone)")
    if unstamped:
        typer.echo(f"left short rows of {', '.join(unstamped)} as they are: those days have calls from "
                   "before 2026-12-01, counted in the zone the account had then. If its time zone has "
                   "not changed since, run again with --zone-unchanged.")
    if busy:
        typer.echo(f"busy, left as they are (a call changed in the last 10 minutes, or a count changed "
                   f"while it ran): {', '.join(busy)}. Run the command again later for these days.")


def register(app: typer.Typer) -> None:
    app.add_typer(rollups_app, name="rollups")
