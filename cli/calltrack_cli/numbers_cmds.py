"""`calltrack numbers sync|search|buy|release`: the tracking numbers at Twilio, from the CLI.

The stack is reached as by `calltrack apply` (API URL + token: the account configs say which
numbers are tracking numbers); Twilio through its REST API (``calltrack_cli.twilio_numbers``, with
``TWILIO_ACCOUNT_SID`` / ``TWILIO_AUTH_TOKEN``). The webhook URLs come from the stack's public URL
(``--public-url``, env ``CALLTRACK_PUBLIC_URL``, default the URL the stack itself checks Twilio's
signatures against, from ``GET /v1/stack``; the API URL for a stack too old to say). Numbers are
never pointed at a public URL the stack says it does not sign: every call to them would be refused.

Exit codes: 0 done, 2 refused or incomplete (a configured number missing at Twilio, bad input, any
4xx from the stack or Twilio), 1 the stack or Twilio could not be reached or failed.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

import typer

from calltrack_cli.admin_cmds import (
    TOKEN_OPTION,
    URL_OPTION,
    CliFailure,
    _exit_with,
    _fail,
    _request,
    _resolve,
)

app = typer.Typer(
    help="Tracking numbers at Twilio: sync webhooks, search, buy, release.", no_args_is_help=True
)

PUBLIC_URL_OPTION = typer.Option(
    None,
    "--public-url",
    help="The stack's public URL, which Twilio calls (env CALLTRACK_PUBLIC_URL; default the URL the "
    "stack says it signs, GET /v1/stack; stack output PublicUrl)",
    show_default=False,
)
FALLBACK_OPTION = typer.Option(
    None,
    "--fallback-url",
    help="The numbers' fallback URL (default PUBLIC_URL/twilio/fallback, the stack's FallbackTwimlUrl)",
    show_default=False,
)
ACCOUNT_OPTION = typer.Option(
    None, "--account", help="Account id (default: every account the token sees)", show_default=False
)


@dataclass(frozen=True)
class Stack:
    base: str
    token: str
    public_url: str
    signed_url: str | None = None  # what the stack says Twilio must call (None: it did not say)

    def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        return _request("GET", f"{self.base}{path}", self.token, None, params=params)


def stack(url: str | None, token: str | None, public_url: str | None, *, diagnose: bool = False) -> Stack:
    """The stack as the CLI reaches it. The public URL is ``--public-url``, else
    ``CALLTRACK_PUBLIC_URL``, else the one the stack says it signs, else the API URL (a custom
    domain's stack answers its domain: pointing numbers at the execute-api URL would have every
    call refused for a signature made over another URL).

    The stack is asked first. Only a stack deployed before ``GET /v1/stack`` (404) falls back to
    the API URL, with a warning; any other failure to ask is the command's failure, unless the
    URL was given or ``diagnose`` (``doctor``, whose own checks report an unreachable stack)."""
    base, tok = _resolve(url, token)
    given = (public_url or os.environ.get("CALLTRACK_PUBLIC_URL") or "").rstrip("/")
    try:
        signed = signed_public_url(base, tok)
    except CliFailure:
        if not (given or diagnose):
            raise
        signed = None
    if signed is None and not given and not diagnose:
        typer.echo(
            f"warning: the stack does not say which URL it signs (deployed before GET /v1/stack): using "
            f"{base}; pass --public-url (stack output PublicUrl) if Twilio must call another URL",
            err=True,
        )
    return Stack(base, tok, given or signed or base, signed)


def signed_public_url(base: str, token: str) -> str | None:
    """``public_url`` of ``GET /v1/stack``: the URL the stack checks Twilio's signatures against.
    None when the stack has no such route (404: deployed before it) or answers no URL; any other
    failure raises ``CliFailure``."""
    try:
        answer = _request("GET", f"{base}/v1/stack", token, None)
    except CliFailure as err:
        if err.status == 404:
            return None
        raise
    value = answer.get("public_url") if isinstance(answer, dict) else None
    if isinstance(value, str) and value.startswith(("https://", "http://")):
        return value.rstrip("/")
    return None


def configs(st: Stack, account: str | None) -> dict[str, dict[str, Any]]:
    """account -> stored config: ``account``'s, else every account the token may read."""
    names = [account] if account else [a["account"] for a in st.get("/v1/accounts").get("accounts") or []]
    return {name: st.get(f"/v1/accounts/{name}")["config"] for name in names}


def tracking_numbers(config: Mapping[str, Any]) -> set[str]:
    from calltrack.account_config import stored_numbers

    return stored_numbers(config)


def twilio() -> Any:
    from calltrack_cli.twilio_numbers import Credentials, TwilioFailure, TwilioNumbers

    try:
        return TwilioNumbers(Credentials.from_env())
    except TwilioFailure as exc:
        _fail(f"error: {exc.message}", 2)


def check_public_url(st: Stack) -> None:
    """The public URL given must be the one the stack signs against: numbers are recognised as
    this stack's (released, synced) by it."""
    if st.signed_url and st.public_url != st.signed_url:
        _fail(
            f"error: the public URL {st.public_url} (--public-url or CALLTRACK_PUBLIC_URL) is not the URL "
            f"this stack checks Twilio's signatures against ({st.signed_url}): every call to the numbers "
            "would be refused. Leave --public-url and CALLTRACK_PUBLIC_URL out, or pass that URL.",
            2,
        )


def webhooks_for(client: Any, st: Stack, fallback_url: str | None) -> dict[str, str]:
    """The settings numbers get; Twilio must reach them over https (http only with a local fake)."""
    from calltrack_cli.twilio_numbers import stack_webhooks

    check_public_url(st)
    wanted = stack_webhooks(st.public_url, fallback_url)
    local_twilio = client.credentials.base_url.startswith(("http://127.0.0.1", "http://localhost"))
    for value in (wanted["VoiceUrl"], wanted["VoiceFallbackUrl"]):
        if not value.startswith("https://") and not local_twilio:
            _fail(
                f"error: Twilio must call the stack over https, not {value} (pass --public-url, the "
                "stack output PublicUrl)",
                2,
            )
    return wanted


def twilio_fail(exc: Any) -> NoReturn:
    """A TwilioFailure as a CLI failure: unreachable or 5xx -> 1, refused -> 2."""
    _fail(f"error: {exc.message}", 1 if exc.status == 0 or exc.status >= 500 else 2)


# --------------------------------------------------------------------------- sync


@dataclass
class SyncRow:
    number: str
    account: str
    status: str  # ok | fixed | drifted | missing | unused | failed
    changes: dict[str, tuple[str, str]] = field(default_factory=dict)
    error: str = ""  # failed: Twilio's answer
    error_status: int = 0  # failed: its HTTP status (0: unreachable)

    def as_json(self) -> dict[str, Any]:
        out = {
            "number": self.number,
            "account": self.account,
            "status": self.status,
            "changes": {k: {"from": a, "to": b} for k, (a, b) in self.changes.items()},
        }
        if self.error:
            out["error"] = self.error
        return out


def sync_numbers(
    client: Any,
    owned: Mapping[str, str],
    wanted: Mapping[str, str],
    *,
    dry_run: bool,
    unused: bool = False,
) -> list[SyncRow]:
    """Point every number of ``owned`` (number -> account) at the stack; one row per number. With
    ``unused`` (``owned`` is every account's), numbers calling this stack that no config has too."""
    from calltrack_cli.twilio_numbers import OVERRIDES_CLEARED, TwilioFailure, drift

    found = client.by_number()
    rows = []
    for number in sorted(owned):
        resource = found.get(number)
        if resource is None:
            rows.append(SyncRow(number, owned[number], "missing"))
            continue
        changes = drift(resource, wanted)
        if not changes:
            rows.append(SyncRow(number, owned[number], "ok"))
            continue
        if not dry_run:
            settings = dict(wanted)
            # an app's or a trunk's settings would win over the number's URLs; fax takes no calls
            settings.update({k: v for k, v in OVERRIDES_CLEARED.items() if k in changes})
            try:
                client.update(resource["sid"], settings)
            except TwilioFailure as exc:  # this number stays as it was; the others are still done
                rows.append(SyncRow(number, owned[number], "failed", changes, exc.message, exc.status))
                continue
        rows.append(SyncRow(number, owned[number], "drifted" if dry_run else "fixed", changes))
    if unused:
        rows.extend(
            SyncRow(n, "-", "unused")
            for n, resource in sorted(found.items())
            if n not in owned and resource.get("voice_url") == wanted["VoiceUrl"]
        )
    return rows


def _print_sync(rows: list[SyncRow], *, dry_run: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, soft_wrap=True)
    table = Table("number", "account", "status", "change", box=None, pad_edge=False)
    style = {"ok": "green", "fixed": "yellow", "drifted": "yellow", "missing": "red", "unused": "blue",
             "failed": "red"}
    for row in rows:
        change = "; ".join(f"{k}: {a or '(empty)'} -> {b or '(empty)'}" for k, (a, b) in row.changes.items())
        if row.status == "missing":
            change = "not in this Twilio account"
        if row.status == "unused":
            change = f"calls this stack but no config has it: calltrack numbers release {row.number}"
        if row.status == "failed":
            change = f"not changed: {row.error} (run sync again)"
        table.add_row(row.number, row.account, f"[{style[row.status]}]{row.status}[/]", change)
    console.print(table)
    counts = {
        s: sum(1 for r in rows if r.status == s)
        for s in ("ok", "fixed", "drifted", "missing", "unused", "failed")
    }
    verb = "would fix" if dry_run else "fixed"
    console.print(
        f"{len(rows)} number(s): {counts['ok']} ok, "
        f"{counts['drifted'] if dry_run else counts['fixed']} {verb}, {counts['missing']} missing"
        + (f", {counts['unused']} unused" if counts["unused"] else "")
        + (f", {counts['failed']} failed" if counts["failed"] else "")
    )
    if counts["missing"]:
        console.print(
            "missing numbers: buy numbers with `calltrack numbers buy` (into a pool) or remove them "
            "from the config and `calltrack apply`"
        )


SYNC_HELP = (
    """Point every tracking number of the config at this stack in Twilio.

"""
    + (
        "For each tracking number (static numbers, pool numbers, overflow numbers) it finds the number in "
        "the Twilio account (IncomingPhoneNumbers) and sets VoiceUrl = PUBLIC_URL/twilio/voice, "
        "StatusCallback = PUBLIC_URL/twilio/call-status and VoiceFallbackUrl = PUBLIC_URL/twilio/fallback, "
        "all POST; it prints what changed (or, with --dry-run, what drifted). With the operator token "
        "and no --account it also lists numbers calling this stack that no config has (release them)."
    )
    + """

\b
Examples:
  calltrack numbers sync --account acme-dental --dry-run
  calltrack numbers sync --url https://api.example.com --token "$ADMIN_TOKEN"

Exit codes: 0 every configured number is in the Twilio account and now points here (with
--dry-run: is in the account; its drift is only listed), 2 a configured number is not in the Twilio
account (or a request was refused), 1 the stack or Twilio is unreachable (or kept answering 429/5xx
for a number: its row says "failed", the other numbers are still fixed; run sync again).
Twilio's 429 and 503 answers are tried again after 1, 2, 4 and 8 seconds.
"""
)


@app.command("sync", help=SYNC_HELP)
def sync_cmd(
    account: str | None = ACCOUNT_OPTION,
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the drift; change nothing at Twilio"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON"),
    public_url: str | None = PUBLIC_URL_OPTION,
    fallback_url: str | None = FALLBACK_OPTION,
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    from calltrack_cli.twilio_numbers import TwilioFailure

    try:
        st = stack(url, token, public_url)
        owned = {n: name for name, config in configs(st, account).items() for n in tracking_numbers(config)}
        # Only the operator sees every config, so only it can tell that a number is used by none.
        every = account is None and (st.get("/v1/accounts").get("token") or {}).get("role") == "operator"
        client = twilio()
        try:
            wanted = webhooks_for(client, st, fallback_url)
            rows = sync_numbers(client, owned, wanted, dry_run=dry_run, unused=every)
        except TwilioFailure as exc:
            twilio_fail(exc)
    except CliFailure as err:
        _exit_with(err)
    if as_json:
        typer.echo(json.dumps({"dry_run": dry_run, "numbers": [r.as_json() for r in rows]}))
    else:
        _print_sync(rows, dry_run=dry_run)
    failed = [r for r in rows if r.status == "failed"]
    if any(r.error_status == 0 or r.error_status >= 500 or r.error_status == 429 for r in failed):
        raise typer.Exit(1)
    if failed or any(r.status == "missing" for r in rows):
        raise typer.Exit(2)


# --------------------------------------------------------------------------- search


KIND_HELP = "local | mobile | toll-free"
COUNTRY_OPTION = typer.Option("JP", "--country", help="ISO country code of the numbers")
TYPE_OPTION = typer.Option("local", "--type", help=KIND_HELP)
AREA_OPTION = typer.Option(
    None, "--area-code", help="Area code (Twilio applies it in the US and Canada only)", show_default=False
)
CONTAINS_OPTION = typer.Option(
    None,
    "--contains",
    help="Pattern of 2-16 characters: digits, * for any one digit; a leading + anchors at the country "
    "code (e.g. +8150* for Japanese 050 numbers)",
    show_default=False,
)


def _check_search(kind: str, country: str = "US", area_code: str | None = None) -> None:
    from calltrack_cli.twilio_numbers import NUMBER_TYPES

    if kind not in NUMBER_TYPES:
        _fail(f"error: --type must be one of {', '.join(NUMBER_TYPES)} (got {kind!r})", 2)
    if not re.fullmatch(r"[A-Za-z]{2}", country):
        _fail(f"error: --country must be a two-letter ISO country code such as JP (got {country!r})", 2)
    if area_code and country.upper() not in ("US", "CA"):
        # Twilio ignores AreaCode elsewhere: every region's numbers would come back (and be bought)
        _fail(
            "error: --area-code works in the US and Canada only (Twilio ignores it elsewhere); "
            "use --contains with the country code, e.g. --contains +813* for Tokyo's 03 numbers",
            2,
        )


@app.command("search")
def search_cmd(
    country: str = COUNTRY_OPTION,
    kind: str = TYPE_OPTION,
    area_code: str | None = AREA_OPTION,
    contains: str | None = CONTAINS_OPTION,
    limit: int = typer.Option(20, "--limit", min=1, max=100, help="At most this many numbers"),
    as_json: bool = typer.Option(False, "--json", help="Print Twilio's JSON"),
) -> None:
    """Search the numbers Twilio has available to buy (AvailablePhoneNumbers).

    Example: calltrack numbers search --country JP --type local --contains +813*
    """
    from calltrack_cli.twilio_numbers import TwilioFailure

    try:
        _check_search(kind, country, area_code)
        try:
            found = twilio().search(country, kind, area_code=area_code, contains=contains, limit=limit)
        except TwilioFailure as exc:
            twilio_fail(exc)
    except CliFailure as err:
        _exit_with(err)
    if as_json:
        typer.echo(json.dumps(found, ensure_ascii=False))
        return
    if not found:
        typer.echo("no numbers available for that search", err=True)
    for n in found:
        typer.echo(
            f"{n['phone_number']}\t{n.get('locality') or '-'}\taddress: {n.get('address_requirements')}"
        )


# --------------------------------------------------------------------------- buy


BUY_HELP = (
    """Buy numbers into a pool: add them to the account config and point them at this stack.

"""
    + (
        "Searches Twilio for COUNT available numbers (--country, --type, --area-code, --contains), shows "
        "them and the config diff, and with --apply buys them (already pointing at this stack), adds them "
        "to the pool with PUT /v1/accounts/{account} and syncs them. Without --apply nothing is bought. "
        "Japan: Twilio sells Japanese numbers only with an approved Regulatory Bundle and an Address of the "
        "business using them: create both in the Twilio Console (Phone Numbers > Regulatory Compliance) "
        "once, then pass --bundle-sid BU... and --address-sid AD...; without them the purchase is refused "
        "(Twilio errors 21649 and 21631). If you keep the config as a YAML file, add the numbers there "
        "too, or the next `calltrack apply` of the old file drops them from the pool."
    )
    + """

\b
Examples:
  calltrack numbers buy --account acme-dental --pool google-ads --count 5 --contains +8150*
  calltrack numbers buy --account acme-dental --pool google-ads --count 5 \\
      --bundle-sid BU0123... --address-sid AD0123... --apply

Exit codes: 0 bought (or shown), 2 refused (no such pool, not enough numbers, Japan without a bundle
or address, Twilio refused), 1 the stack or Twilio is unreachable.
"""
)


def _account_of(st: Stack, account: str | None) -> str:
    if account:
        return account
    names = [a["account"] for a in st.get("/v1/accounts").get("accounts") or []]
    if len(names) != 1:
        _fail("error: pass --account (the token sees more than one account)", 2)
    return str(names[0])


def pool_diff(account: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    import yaml

    def dump(config: Mapping[str, Any]) -> list[str]:
        return yaml.safe_dump(
            {"pools": config.get("pools")}, allow_unicode=True, sort_keys=False
        ).splitlines()

    return "\n".join(
        difflib.unified_diff(
            dump(before), dump(after), f"{account} (stored)", f"{account} (new)", lineterm=""
        )
    )


def with_pool_numbers(config: Mapping[str, Any], pool_id: str, numbers: Iterable[str]) -> dict[str, Any]:
    out = json.loads(json.dumps(config))
    for pool in out.get("pools") or []:
        if pool.get("id") == pool_id:
            pool["numbers"] = list(pool.get("numbers") or []) + list(numbers)
            return dict(out)
    pools = ", ".join(str(p.get("id")) for p in out.get("pools") or []) or "none"
    _fail(
        f"error: account {out.get('account')} has no pool {pool_id!r} (pools: {pools}); add it with "
        "`calltrack apply` first",
        2,
    )


@app.command("buy", help=BUY_HELP)
def buy_cmd(
    pool: str = typer.Option(
        ..., "--pool", help="Pool id in the account config, e.g. google-ads", show_default=False
    ),
    count: int = typer.Option(1, "--count", min=1, max=100, help="How many numbers"),
    account: str | None = typer.Option(
        None, "--account", help="Account id (default: the token's)", show_default=False
    ),
    country: str = COUNTRY_OPTION,
    kind: str = TYPE_OPTION,
    area_code: str | None = AREA_OPTION,
    contains: str | None = CONTAINS_OPTION,
    bundle_sid: str | None = typer.Option(
        None,
        "--bundle-sid",
        help="Twilio Regulatory Bundle (BU...): required for Japanese numbers",
        show_default=False,
    ),
    address_sid: str | None = typer.Option(
        None,
        "--address-sid",
        help="Twilio Address (AD...) of the business: required for Japanese numbers",
        show_default=False,
    ),
    apply: bool = typer.Option(False, "--apply", help="Buy, update the config and sync (default: only show)"),
    public_url: str | None = PUBLIC_URL_OPTION,
    fallback_url: str | None = FALLBACK_OPTION,
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    from calltrack_cli.twilio_numbers import TwilioFailure

    try:
        _check_search(kind, country, area_code)
        if apply and country.upper() == "JP" and not (bundle_sid and address_sid):
            _fail(
                "error: Japanese numbers need --bundle-sid BU... and --address-sid AD... (a Regulatory "
                "Bundle and the business's Address, created once in the Twilio Console; see --help)",
                2,
            )
        st = stack(url, token, public_url)
        name = _account_of(st, account)
        read = st.get(f"/v1/accounts/{name}")
        before, version = read["config"], int(read.get("version") or 0)
        client = twilio()
        try:
            found = client.search(country, kind, area_code=area_code, contains=contains, limit=max(count, 20))
        except TwilioFailure as exc:
            twilio_fail(exc)
        taken = tracking_numbers(before)
        picks = [n["phone_number"] for n in found if n["phone_number"] not in taken][:count]
        if len(picks) < count:
            _fail(f"error: Twilio has {len(picks)} number(s) available for that search, {count} wanted", 2)
        after = with_pool_numbers(before, pool, picks)
        typer.echo(pool_diff(name, before, after))
        if not apply:
            typer.echo(
                f"would buy {count} number(s) into pool {pool}; nothing bought: run again with --apply"
                + (
                    " --bundle-sid BU... --address-sid AD... (required in Japan)"
                    if country.upper() == "JP" and not (bundle_sid and address_sid)
                    else ""
                )
            )
            return
        wanted = webhooks_for(client, st, fallback_url)
        # The config must take the numbers before any is paid for (e.g. the 1,000-number limit).
        _request("PUT", f"{st.base}/v1/accounts/{name}", st.token, after, params={"dry_run": "1"})
        bought: list[str] = []
        try:
            for number in picks:
                client.buy(number, wanted, bundle_sid=bundle_sid, address_sid=address_sid)
                bought.append(number)
        except TwilioFailure as exc:
            unsure = ""
            if exc.status == 0 or exc.status >= 500:
                # No answer, or Twilio's own error: it may have bought the number all the same. Ask,
                # so a paid number is never left out of the config (and a re-run does not buy another).
                pending = picks[len(bought)]
                try:
                    if pending in client.by_number():
                        bought.append(pending)
                    else:  # it may still complete after this look
                        unsure = (f"; Twilio may still complete the purchase of {pending}: look for it in "
                                  "the Twilio account's numbers before buying again")
                except TwilioFailure:
                    unsure = (f"; Twilio may have bought {pending} all the same: look for it in the "
                              "Twilio account's numbers before buying again")
            if not bought:
                twilio_fail(TwilioFailure(exc.message + unsure, exc.status, exc.code))
            after = with_pool_numbers(before, pool, bought)
            if len(bought) < len(picks):
                typer.echo(
                    f"bought only {', '.join(bought)}: the next purchase failed ({exc.message}){unsure}",
                    err=True,
                )
        except BaseException:
            # Ctrl-C, a crash, an answer that is not Twilio's: what was paid for goes into the config
            # (or is named), never left for a re-run to buy again
            if bought:
                typer.echo(f"stopped after buying {', '.join(bought)}: adding them to pool {pool}", err=True)
                try:
                    put_bought_numbers(st, name, pool, bought, with_pool_numbers(before, pool, bought),
                                       version)
                except Exception as saving:  # noqa: BLE001 - the original failure is the one raised
                    typer.echo(f"error: bought {', '.join(bought)} at Twilio but the config was not "
                               f"updated ({saving}): add them to pool {pool} and apply; do not buy again",
                               err=True)
            raise
        try:
            put_bought_numbers(st, name, pool, bought, after, version)
        except CliFailure as err:
            _fail(
                f"{err.message} (bought {', '.join(bought)} at Twilio but the config was not updated: "
                f"add them to pool {pool} and apply; do not run buy again, it would buy more)",
                err.code,
            )
        typer.echo(f"bought {len(bought)} number(s) into pool {pool}; config updated")
        try:
            rows = sync_numbers(client, dict.fromkeys(bought, name), wanted, dry_run=False)
        except TwilioFailure as exc:
            twilio_fail(exc)
    except CliFailure as err:
        _exit_with(err)
    _print_sync(rows, dry_run=False)
    if len(bought) < count or any(r.status in ("missing", "failed") for r in rows):
        raise typer.Exit(2)


PUT_TRIES = 3


def put_bought_numbers(st: Stack, name: str, pool: str, bought: list[str], after: dict[str, Any],
                       version: int) -> None:
    """Apply the config with the bought numbers, as of the version read before buying. When someone
    applied in between (409), read the account again and add the numbers to what is there now,
    instead of overwriting their change; when the stack did not answer (or failed), read it again
    too, after a pause: the save may have landed. Paid numbers are never left for a re-run of
    ``buy`` to buy again."""
    for attempt in range(PUT_TRIES):
        try:
            _request("PUT", f"{st.base}/v1/accounts/{name}", st.token, after,
                     params={"expected_version": str(version)})
            return
        except CliFailure as err:
            conflict = err.status == 409 and "expected_version" in err.message
            # no answer or the stack's own error: the PUT may have landed; read and look
            unsure = err.status == 0 or err.status >= 500
            if not (conflict or unsure) or attempt == PUT_TRIES - 1:
                raise
            if unsure:
                time.sleep(2 ** attempt)
        read = st.get(f"/v1/accounts/{name}")
        version = int(read.get("version") or 0)
        present = tracking_numbers(read["config"])  # the other apply may have added some itself
        missing = [n for n in bought if n not in present]
        if not missing:
            return  # the earlier PUT landed (its answer was lost), or another apply added them
        after = with_pool_numbers(read["config"], pool, missing)
        typer.echo(f"the account changed meanwhile or the save went unanswered (now version {version}): "
                   "adding the numbers to it", err=True)


# --------------------------------------------------------------------------- release


RELEASE_HELP = (
    """Release numbers that no account's config uses any more (gives them back to Twilio).

"""
    + (
        "Each NUMBER must be in the Twilio account, in no account config (remove it from the config "
        "and `calltrack apply` first) and call this stack (its VoiceUrl is PUBLIC_URL/twilio/voice; "
        "--force for another's). Needs the operator token: only it can see that no account uses the "
        "number. Without --apply it only shows what it would release. A released number may go to "
        "someone else: calls from old flyers or ads would then reach them."
    )
    + """

\b
Example:
  calltrack numbers release +815012345678 --apply --token "$CALLTRACK_ADMIN_TOKEN"
"""
)


@app.command("release", help=RELEASE_HELP)
def release_cmd(
    numbers: list[str] = typer.Argument(..., help="E.164 numbers", metavar="NUMBER...", show_default=False),
    apply: bool = typer.Option(False, "--apply", help="Release them (default: only show)"),
    force: bool = typer.Option(
        False, "--force", help="Release a number even though it does not call this stack (another app's)"
    ),
    public_url: str | None = PUBLIC_URL_OPTION,
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    from calltrack_cli.twilio_numbers import TwilioFailure, stack_webhooks

    try:
        st = stack(url, token, public_url)
        listing = st.get("/v1/accounts")
        if (listing.get("token") or {}).get("role") != "operator":
            _fail(
                "error: releasing needs the operator token (only it can see that no account uses a number)", 2
            )
        used = {n: name for name, config in configs(st, None).items() for n in tracking_numbers(config)}
        # "calls this stack" is judged by this URL: another stack's would release its live numbers
        check_public_url(st)
        client = twilio()
        try:
            at_twilio = client.by_number()
        except TwilioFailure as exc:
            twilio_fail(exc)
        ours = stack_webhooks(st.public_url)["VoiceUrl"]
        for number in numbers:
            if number in used:
                _fail(f"error: {number} is in account {used[number]}'s config: remove it and apply first", 2)
            if number not in at_twilio:
                _fail(f"error: {number} is not in this Twilio account", 2)
            voice = at_twilio[number].get("voice_url") or ""
            if voice != ours and not force:
                # e.g. the business's main line in the same Twilio account: releasing cannot be undone
                _fail(
                    f"error: {number} does not call this stack (its VoiceUrl is {voice or 'empty'}, not "
                    f"{ours}): pass --force to release it anyway",
                    2,
                )
        for number in numbers:
            if apply:
                try:
                    client.release(at_twilio[number]["sid"])
                except TwilioFailure as exc:
                    twilio_fail(exc)
            typer.echo(f"{'released' if apply else 'would release'} {number}")
    except CliFailure as err:
        _exit_with(err)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="numbers")
