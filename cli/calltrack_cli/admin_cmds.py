"""`calltrack apply FILE.yaml`, `calltrack token create`, `calltrack secret set|list` (config as
code, API tokens, account secrets).

Exit codes: 0 done, 2 the input or the request was refused (bad YAML, invalid config, any 4xx),
1 the server could not be reached or failed (connection refused, 5xx). Errors are ONE line on
stderr; `token create` prints only the token on stdout so `TOKEN=$(calltrack token create ...)` works.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import typer

DEFAULT_URL = "http://127.0.0.1:8787"
TIMEOUT_S = 60.0

URL_OPTION = typer.Option(
    None, "--url", help="API base URL (env CALLTRACK_URL; default http://127.0.0.1:8787)", show_default=False
)
TOKEN_OPTION = typer.Option(
    None, "--token", help="Bearer token: the operator token or an account admin token (env CALLTRACK_TOKEN)",
    show_default=False,
)
ACCOUNT_OPTION = typer.Option(None, "--account", help="Account id (required with the operator token)",
                              show_default=False)


class CliFailure(Exception):
    def __init__(self, message: str, code: int, status: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status  # the HTTP status that caused it (0: none)


def _fail(message: str, code: int, status: int = 0) -> NoReturn:
    raise CliFailure(message, code, status)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _exit_with(err: CliFailure) -> NoReturn:
    typer.echo(_one_line(err.message), err=True)
    raise typer.Exit(err.code)


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _resolve(url: str | None, token: str | None) -> tuple[str, str]:
    from urllib.parse import urlsplit

    base = (url or os.environ.get("CALLTRACK_URL") or DEFAULT_URL).rstrip("/")
    tok = token if token is not None else os.environ.get("CALLTRACK_TOKEN", "")
    if not tok:
        _fail("error: no token: pass --token or set CALLTRACK_TOKEN", 2)
    try:
        parts = urlsplit(base)
        host = parts.hostname
    except ValueError:
        host, parts = None, None
    if parts is None or parts.scheme not in ("http", "https") or not host:
        _fail(f"error: --url: not an http(s) URL: {base[:100]!r} (e.g. https://abc123.execute-api."
              "ap-northeast-1.amazonaws.com)", 2)
    if parts.scheme == "http" and host not in LOOPBACK:
        # the token (and secret values, passwords) would cross the network in clear text
        _fail(f"error: --url: must be https (http only to 127.0.0.1, the local stack): {base[:100]}", 2)
    return base, tok


# --------------------------------------------------------------------------- YAML


def _loader() -> type:
    """A SafeLoader that keeps dates as text and rejects duplicate keys (with their line)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    # Dates stay strings: campaign: 2026-11-01 is a label, not a date.
    Loader.yaml_implicit_resolvers = {
        key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(loader: Any, node: Any, deep: bool = False) -> dict[Any, Any]:
        # A merge key (<<: *anchor) brings in keys that the mapping's own keys override, as YAML
        # says; only the mapping's own keys may not repeat. flatten_mapping puts the merged pairs
        # first and drops the << keys.
        own = sum(1 for key_node, _ in node.value if key_node.tag != "tag:yaml.org,2002:merge")
        loader.flatten_mapping(node)
        merged = len(node.value) - own
        out: dict[Any, Any] = {}
        own_keys: set[Any] = set()
        for i, (key_node, value_node) in enumerate(node.value):
            key = loader.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "a key that is a list or mapping (a stray bracket?)", key_node.start_mark
                ) from None
            if i >= merged:
                if key in own_keys:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark
                    )
                own_keys.add(key)
            out[key] = loader.construct_object(value_node, deep=deep)
        return out

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return Loader


MAX_NODES = 200_000  # an account config with 5,000 numbers is ~50,000 values; aliases can multiply


def _check_shape(path: Path, data: Any) -> None:
    """At most MAX_DEPTH levels and MAX_NODES values (aliases counted each time they are used, so
    a 'billion laughs' file stops here), walked without recursion."""
    from calltrack.bodies import MAX_DEPTH

    stack: list[tuple[Any, int]] = [(data, 1)]
    nodes = 0
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            _fail(f"{path}: YAML too large (more than {MAX_NODES} values, aliases included)", 2)
        if isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                _fail(f"{path}: YAML nested too deeply (at most {MAX_DEPTH} levels)", 2)
            items = value.values() if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items)


def load_yaml(path: Path) -> dict[str, Any]:
    """Parse FILE; CliFailure(code 2) with 'FILE:LINE:COL: problem' for anything not a mapping."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        _fail(f"{path}: no such file", 2)
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"{path}: cannot read ({exc})", 2)
    try:
        data = yaml.load(text, Loader=_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            problem = f"{problem} ({exc.context})"
        _fail(f"{where}: YAML syntax error: {problem}", 2)
    except yaml.YAMLError as exc:
        _fail(f"{path}: YAML error: {exc}", 2)
    except RecursionError:
        from calltrack.bodies import MAX_DEPTH

        _fail(f"{path}: YAML nested too deeply (at most {MAX_DEPTH} levels)", 2)
    _check_shape(path, data)
    if data is None:
        _fail(f"{path}: the file is empty; expected an account config (account: ..., forward_to: ...)", 2)
    if not isinstance(data, dict):
        _fail(f"{path}: expected a mapping of keys to values at the top level, got {type(data).__name__}", 2)
    return data


# --------------------------------------------------------------------------- HTTP


def _request(method: str, url: str, token: str, body: Any, params: dict[str, str] | None = None) -> Any:
    import requests

    try:
        resp = requests.request(
            method, url, json=body, params=params, timeout=TIMEOUT_S,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )
    except requests.ConnectionError:
        _fail(f"error: cannot connect to {url.split('/v1/')[0]} (is the stack running? see --url)", 1)
    except requests.Timeout:
        _fail(f"error: {url} did not answer within {TIMEOUT_S:.0f} s", 1)
    except requests.RequestException as exc:
        base = url.split("/v1/")[0]
        _fail(f"error: cannot send the request to {base}: {type(exc).__name__} (see --url)", 2)
    try:
        payload = resp.json()
    except ValueError:
        payload = None
    if resp.status_code >= 400:
        message = payload.get("message") if isinstance(payload, dict) else None
        message = message or resp.text or resp.reason
        _fail(f"error: {resp.status_code} {message}", 2 if resp.status_code < 500 else 1, resp.status_code)
    if not isinstance(payload, dict | list) and resp.content:
        _fail(f"error: {url.split('/v1/')[0]} did not answer with JSON: is --url the calltrack API?", 1)
    return payload


# --------------------------------------------------------------------------- commands


APPLY_HELP = """Create or update an account from a YAML file (config as code). Idempotent.

""" + (
    "The file is validated locally first (phone numbers, unknown keys, duplicates), then sent with "
    "PUT /v1/accounts/{account}. Applying the same file twice changes nothing."
) + """

\b
Examples:
  calltrack apply examples/acme-dental.yaml --token "$CALLTRACK_ADMIN_TOKEN"
  CALLTRACK_URL=https://api.example.com calltrack apply acme.yaml --dry-run

Exit codes: 0 applied (or no changes), 2 invalid file or refused by the server, 1 server unreachable.
"""


def day_option(value: str | None, option: str) -> str | None:
    """``value`` when it is None or a day YYYY-MM-DD; else exit 2 naming ``option``, before anything
    is sent."""
    if value is not None and not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        _fail(f"error: {option} must be a date YYYY-MM-DD, got {value!r}", 2)
    return value


def _retry_body(account: str | None, since: str | None) -> dict[str, Any]:
    """The body of a ``… retry`` request (recordings, transcripts): ``account`` and ``since`` when
    given; a ``since`` that is not a day YYYY-MM-DD exits 2 before anything is sent."""
    day_option(since, "--since")
    return {k: v for k, v in (("account", account), ("since", since)) if v}


def _post_pages(base: str, token: str, path: str, body: dict[str, Any], counted: tuple[str, ...],
                progress: Callable[[dict[str, int]], str]) -> tuple[dict[str, Any], dict[str, int]]:
    """POST ``body`` to ``path`` again with ``cursor`` = the answer's ``next_cursor`` until it is
    null (an API that answers a long read page by page within its time limit); -> the last answer
    and the ``counted`` keys summed over the pages. Prints ``progress(sums)`` between pages."""
    sums = dict.fromkeys(counted, 0)
    while True:
        result = _request("POST", f"{base}{path}", token, body)
        for key in counted:
            sums[key] += int(result.get(key, 0))
        if not result.get("next_cursor"):
            return result, sums
        body = {**body, "cursor": result["next_cursor"]}
        typer.echo(progress(sums), err=True)


def apply_cmd(
    file: Path = typer.Argument(..., help="The account config YAML", metavar="FILE.yaml",
                                dir_okay=False, show_default=False),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would change; write nothing"),
) -> None:
    try:
        data = load_yaml(file)
        config = _validate_locally(file, data)
        base, tok = _resolve(url, token)
        result = _request("PUT", f"{base}/v1/accounts/{data['account']}", tok, data,
                          params={"dry_run": "1"} if dry_run else None)
    except CliFailure as err:
        _exit_with(err)
    _print_apply(result, dry_run=dry_run)
    for warning in config_warnings(config):
        typer.echo(f"warning: {warning}", err=True)


def _validate_locally(file: Path, data: dict[str, Any]) -> Any:
    from calltrack.account_config import ConfigError, parse_config

    try:
        # Lenient on http to 127.0.0.1 (a local stack's receivers): the server applies its own mode.
        return parse_config(data, local_mode=True)
    except ConfigError as exc:
        _fail(f"{file}: {exc.message}", 2)


def config_warnings(config: Any) -> list[str]:
    """What is valid but probably not meant (printed on stderr; the apply goes ahead)."""
    out = []
    if config.pools and not (config.site and config.site.origins):
        out.append("site.origins is not set: a page on any site may lease this account's pool numbers "
                   "(and fill them with its own click ids); list the site's origins, e.g. "
                   "site: {origins: [\"https://www.example.jp\"]}")
    return out


def _print_apply(result: Any, *, dry_run: bool) -> None:
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True)
    if not isinstance(result, dict):
        console.print(json.dumps(result))
        return
    account = result.get("account")
    if not result.get("changed"):
        console.print(f"[bold]{account}[/]: no changes (version {result.get('version')})")
        for number in (result.get("numbers") or {}).get("repaired") or []:
            console.print(f"  [yellow]~ {number}[/] (its number row was missing or wrong: written again)")
        return
    verb = "would apply" if dry_run else "applied"
    console.print(f"[bold]{account}[/]: {verb} version {result.get('version')}")
    numbers = result.get("numbers") or {}
    for key, mark, style in (("added", "+", "green"), ("updated", "~", "yellow"), ("removed", "-", "red")):
        for number in numbers.get(key, []):
            console.print(f"  [{style}]{mark} {number}[/] ({key})")
    if not any(numbers.get(k) for k in ("added", "updated", "removed")):
        console.print("  numbers unchanged; account settings updated")


token_app = typer.Typer(help="API tokens (bound to one account and one role, stored hashed).",
                        no_args_is_help=True)

TOKEN_HELP = """Create an API token for an account and print it (only the token, on stdout).

""" + (
    "The token is shown once; the server keeps only its SHA-256 hash. Roles: admin (config and "
    "tokens), manager (calls, recordings, stages), marketer (reports, spend)."
) + """

\b
Examples:
  TOKEN=$(calltrack token create --account acme-dental --role marketer --label "agency dashboard")
  calltrack token create --account acme-dental --role admin --url https://api.example.com
"""


@token_app.command("create", help=TOKEN_HELP)
def token_create(
    account: str = typer.Option(..., "--account", help="Account id (slug)", show_default=False),
    role: str = typer.Option(..., "--role", help="admin | manager | marketer", show_default=False),
    label: str | None = typer.Option(None, "--label", help="A note to recognise the token by"),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    from calltrack.auth import ROLES

    try:
        if role not in ROLES:
            _fail(f"error: --role must be one of {', '.join(ROLES)} (got {role!r})", 2)
        base, tok = _resolve(url, token)
        body: dict[str, Any] = {"role": role}
        if label:
            body["label"] = label
        result = _request("POST", f"{base}/v1/accounts/{account}/tokens", tok, body)
    except CliFailure as err:
        _exit_with(err)
    typer.echo(result["token"])


secret_app = typer.Typer(
    help="Account secrets (credentials of conversions, webhooks and CRM destinations), kept in SSM.",
    no_args_is_help=True,
)

SECRET_SET_HELP = """Set an account secret (write-only): the value is read from stdin or a hidden prompt.

""" + (
    "The value is stored as the SSM SecureString /calltrack/{account}/{name} through "
    "PUT /v1/accounts/{account}/secrets/{name} (admin). It is never shown again: `secret list` gives "
    "names and update times only. The account config refers to it by name (secret: NAME); setting it "
    "again replaces it, and running functions pick the new value up within a minute."
) + """

\b
Examples:
  calltrack secret set --account acme-dental meta            # prompts without echo
  printf %s "$GA4_API_SECRET" | calltrack secret set --account acme-dental ga4
  calltrack secret set --account acme-dental google-ads < google-ads.json

Exit codes: 0 stored, 2 refused (bad name, empty value, not an admin), 1 server unreachable.
"""


def _secret_value() -> str:
    import sys

    if sys.stdin is not None and not sys.stdin.isatty():
        return read_piped(sys.stdin)
    return str(typer.prompt("Secret value", hide_input=True))


def read_piped(stream: Any) -> str:
    """What was piped on stdin, without the trailing line end of `echo` or a file (\n, or \r\n
    from Windows): it is not part of a secret or password."""
    return str(stream.read()).removesuffix("\n").removesuffix("\r")


@secret_app.command("set", help=SECRET_SET_HELP)
def secret_set(
    name: str = typer.Argument(..., help="The secret's name, as the config refers to it", show_default=False),
    account: str = typer.Option(..., "--account", help="Account id (slug)", show_default=False),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    from calltrack.account_secrets import SECRET_NAME

    try:
        if not SECRET_NAME.match(name):
            _fail(f"error: NAME must be 1-63 lowercase letters, digits, '-' or '_' (got {name!r})", 2)
        base, tok = _resolve(url, token)
        value = _secret_value()
        if not value.strip():
            _fail("error: the secret value is empty (pipe it on stdin or type it at the prompt)", 2)
        result = _request("PUT", f"{base}/v1/accounts/{account}/secrets/{name}", tok, {"value": value})
    except CliFailure as err:
        _exit_with(err)
    typer.echo(
        f"{account}: secret {result['name']} set (version {result['version']}, {result['updated_at']})",
        err=True,
    )


@secret_app.command("list", help="List an account's secrets: names and update times, never values.")
def secret_list(
    account: str = typer.Option(..., "--account", help="Account id (slug)", show_default=False),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the API's JSON"),
) -> None:
    try:
        base, tok = _resolve(url, token)
        result = _request("GET", f"{base}/v1/accounts/{account}/secrets", tok, None)
    except CliFailure as err:
        _exit_with(err)
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
        return
    secrets = result.get("secrets") or []
    if not secrets:
        typer.echo(f"{account}: no secrets set")
    for secret in secrets:
        typer.echo(f"{secret['name']}\t{secret.get('updated_at') or '-'}")


def register(app: typer.Typer) -> None:
    app.command("apply", help=APPLY_HELP)(apply_cmd)
    app.add_typer(token_app, name="token")
    app.add_typer(secret_app, name="secret")
