"""`calltrack transcripts retry`: start an account's failed transcripts again.

Talks HTTP to the stack (POST /v1/transcripts/retry) like `calltrack recordings retry`:
CALLTRACK_URL / CALLTRACK_TOKEN or --url / --token. Exit codes: 0 done, 2 refused (bad date, a
token that may not do this, any 4xx), 1 the server could not be reached or failed.
"""

from __future__ import annotations

import typer

from calltrack_cli.admin_cmds import (
    ACCOUNT_OPTION,
    TOKEN_OPTION,
    URL_OPTION,
    CliFailure,
    _exit_with,
    _post_pages,
    _resolve,
    _retry_body,
)

RETRY_HELP = """Start an account's failed transcripts again.

A transcript ends failed when its job could not run through every try, about ten hours (Amazon
Transcribe at its limit of jobs or unreachable, a permission refused, S3 or DynamoDB down): the
call shows the reason. After the cause is fixed (a raised quota, the permission), this starts the
transcript of each such call again; a job Transcribe did finish meanwhile is applied, not run
twice (one it failed is run again). Reads the calls that started on or after --since (default:
the last 30 days) and prints how many transcripts were started again (on many calls, progress as
it reads on).

Needs the operator token (then --account is required) or an admin token of the account
(--token or CALLTRACK_TOKEN; the stack at --url or CALLTRACK_URL). Exit 0 done, 2 refused
(a bad date, a token that may not do this), 1 the stack could not be reached.
"""

transcripts_app = typer.Typer(help="Transcripts: start failed transcripts again.", no_args_is_help=True)


@transcripts_app.command("retry", help=RETRY_HELP)
def retry(
    account: str | None = ACCOUNT_OPTION,
    since: str | None = typer.Option(
        None, "--since", show_default=False,
        help="Only calls that started on or after this day (YYYY-MM-DD, UTC; default: 30 days ago)",
    ),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    try:
        body = _retry_body(account, since)
        base, tok = _resolve(url, token)
        result, sums = _post_pages(base, tok, "/v1/transcripts/retry", body, ("requeued",),
                                   lambda s: f"... {s['requeued']} started again so far; reading on")
        n = sums["requeued"]
    except CliFailure as err:
        _exit_with(err)
    typer.echo(f"{result.get('account')}: started {n} failed transcript{'' if n == 1 else 's'} again")


def register(app: typer.Typer) -> None:
    app.add_typer(transcripts_app, name="transcripts")
