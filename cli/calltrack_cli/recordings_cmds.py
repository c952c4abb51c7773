"""`calltrack recordings retry`: requeue recordings that are failed or still retrying.

Talks HTTP to the stack (POST /v1/recordings/retry) like `calltrack apply`: CALLTRACK_URL /
CALLTRACK_TOKEN or --url / --token. Exit codes: 0 done, 2 refused (bad date, a token that may not
do this, any 4xx), 1 the server could not be reached or failed.
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

RETRY_HELP = """Requeue an account's recordings that are failed or retrying.

A recording is retrying while Twilio's media host or our storage keeps failing (each try backs
off 1 min, 2, 4 ... 12 h; dead letters come back every hour), and failed when Twilio answered
404 (gone from Twilio). This sends each one to the recording queue again now: use it after an
outage, or when a recording reported gone is back at Twilio. Recordings Twilio itself reported
failed are skipped. Prints how many were requeued (on a large table, progress as it reads on).

Needs the operator token (then --account is required) or an admin token of the account
(--token or CALLTRACK_TOKEN; the stack at --url or CALLTRACK_URL). Exit 0 done, 2 refused
(a bad date, a token that may not do this), 1 the stack could not be reached.
"""

recordings_app = typer.Typer(help="Recordings: requeue failed and retrying recordings.", no_args_is_help=True)


@recordings_app.command("retry", help=RETRY_HELP)
def retry(
    account: str | None = ACCOUNT_OPTION,
    since: str | None = typer.Option(
        None, "--since", help="Only recordings that changed on or after this day (YYYY-MM-DD, UTC)",
        show_default=False,
    ),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    try:
        body = _retry_body(account, since)
        base, tok = _resolve(url, token)
        # A large recordings table takes several requests: each answers within the API's time
        # limit with a next_cursor until the whole table is read.
        result, sums = _post_pages(base, tok, "/v1/recordings/retry", body, ("requeued", "skipped"),
                                   lambda s: f"... requeued {s['requeued']} so far; reading on")
        n, skipped = sums["requeued"], sums["skipped"]
    except CliFailure as err:
        _exit_with(err)
    typer.echo(
        f"{result.get('account')}: requeued {n} recording{'' if n == 1 else 's'}"
        + (f", skipped {skipped} that Twilio reported failed" if skipped else "")
    )


def register(app: typer.Typer) -> None:
    app.add_typer(recordings_app, name="recordings")
