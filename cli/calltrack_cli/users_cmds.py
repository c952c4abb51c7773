"""`calltrack users create|list|disable`: the people who sign in to the manager's console.

Console users are Cognito users in the group ``<account>:<role>``, managed through the API
(``/v1/accounts/{account}/users``) with an account admin token or the operator token, like
``calltrack token``. Exit codes as every admin command: 0 done, 2 refused, 1 server unreachable.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import typer

from calltrack_cli.admin_cmds import (
    TOKEN_OPTION,
    URL_OPTION,
    CliFailure,
    _exit_with,
    _fail,
    _request,
    _resolve,
    read_piped,
)

app = typer.Typer(
    help="Console users: who signs in to the manager's console, for which account and role.",
    no_args_is_help=True,
)

CREATE_HELP = """Create a console user of an account with a role.

\b
Roles:
  admin      everything, including users, tokens and the account config
  manager    listens to recordings, scores calls, sets stages and values; reports
  marketer   the call log with masked caller numbers and the reports; no recordings

Without --password-stdin, Cognito e-mails the user a temporary password, and the console asks them
to choose their own at first sign-in. With it, the password is read from stdin (at least 8
characters with upper and lower case, a digit and a symbol) and the user signs in with it at once.
A user belongs to one account; the same address cannot be a user of two accounts.

\b
Examples:
  calltrack users create --account acme-dental --role manager --email hanako@acme.example
  printf %s "$PASSWORD" | calltrack users create --account acme-dental --role marketer \\
      --email ads@agency.example --password-stdin
"""


@app.command("create", help=CREATE_HELP)
def users_create(
    account: str = typer.Option(..., "--account", help="Account id (slug)", show_default=False),
    role: str = typer.Option(..., "--role", help="admin | manager | marketer", show_default=False),
    email: str = typer.Option(
        ..., "--email", help="The user's e-mail address (their sign-in)", show_default=False
    ),
    password_stdin: bool = typer.Option(
        False, "--password-stdin",
        help="Read the user's password from stdin (piped), or ask for it without echo at a terminal"
    ),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    from calltrack.auth import ROLES

    try:
        if role not in ROLES:
            _fail(f"error: --role must be one of {', '.join(ROLES)} (got {role!r})", 2)
        base, tok = _resolve(url, token)
        body: dict[str, Any] = {"email": email, "role": role}
        if password_stdin:
            import sys

            if sys.stdin is not None and sys.stdin.isatty():  # typed: not echoed, typed twice
                password = str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))
            else:
                password = read_piped(sys.stdin)
            if not password:
                _fail("error: --password-stdin: stdin was empty", 2)
            body["password"] = password
        result = _request("POST", f"{base}/v1/accounts/{account}/users", tok, body)
    except CliFailure as err:
        _exit_with(err)
    how = (
        "signs in with the given password"
        if result.get("status") == "CONFIRMED"
        else ("was e-mailed a temporary password")
    )
    typer.echo(f"{account}: {result['email']} is a console {result['role']} ({how})")


@app.command("list", help="List an account's console users: e-mail, role, enabled, status.")
def users_list(
    account: str = typer.Option(..., "--account", help="Account id (slug)", show_default=False),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the API's JSON"),
) -> None:
    try:
        base, tok = _resolve(url, token)
        result = _request("GET", f"{base}/v1/accounts/{account}/users", tok, None)
    except CliFailure as err:
        _exit_with(err)
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
        return
    users = result.get("users") or []
    if not users:
        typer.echo(f"{account}: no console users (calltrack users create --account {account} ...)")
    for user in users:
        state = "enabled" if user.get("enabled") else "disabled"
        typer.echo(f"{user['email']}\t{user['role']}\t{state}\t{user.get('status') or '-'}")


@app.command("disable", help="Disable a console user: they can no longer sign in; their sessions end.")
def users_disable(
    account: str = typer.Option(..., "--account", help="Account id (slug)", show_default=False),
    email: str = typer.Option(..., "--email", help="The user's e-mail address", show_default=False),
    role: str | None = typer.Option(None, "--role", help="Ignored: a user has one role in one account"),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    try:
        base, tok = _resolve(url, token)
        result = _request(
            "POST", f"{base}/v1/accounts/{account}/users/{quote(email, safe='@')}/disable", tok, None
        )
    except CliFailure as err:
        _exit_with(err)
    typer.echo(f"{account}: {result['email']} ({result['role']}) disabled")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="users")
