"""`calltrack doctor`: what is wrong with this deployment, one line per check, each with its fix.

Checks, in order (a check whose inputs are not configured is skipped, shown with "-", and does not
fail the run):

- ``api``: the API answers ``GET /openapi.json`` with the API version this CLI speaks;
- ``token``: the token is accepted (``GET /v1/accounts``) and which role it has;
- ``webhook signed`` / ``webhook unsigned``: a test callback signed with ``TWILIO_AUTH_TOKEN`` over the
  public URL is accepted and an unsigned one refused (``POST /twilio/whisper``, which stores nothing);
- ``numbers ACCOUNT``: every tracking number is in the Twilio account and points at this stack;
- ``site URL``: the page loads this stack's ``dni.js`` with the right ``data-account``, is served from
  an origin in ``site.origins`` and shows a number of ``site.numbers``;
- ``ops topic``: the ops SNS topic (``--ops-topic-arn`` / ``CALLTRACK_OPS_TOPIC_ARN``, stack output
  ``OpsTopicArn``; needs AWS credentials) has at least one confirmed subscription;
- ``pools ACCOUNT``: no pool is smaller than its recommended size (``GET /v1/reports/pools``);
- ``destinations ACCOUNT``: every secret that the account's ``destinations`` (conversions to Google
  Ads, Meta, GA4) and ``webhooks`` name is set (skipped while none names a secret).

Exit codes: 0 every check passed or was skipped, 1 otherwise. ``--json`` prints
``{"ok", "checks": [{"check", "status": "pass"|"fail"|"skip", "detail", "fix"}]}``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import typer

from calltrack_cli.admin_cmds import TOKEN_OPTION, URL_OPTION, CliFailure
from calltrack_cli.numbers_cmds import FALLBACK_OPTION, PUBLIC_URL_OPTION, Stack, stack, tracking_numbers

API_VERSION = "1"  # the info.version of /openapi.json this CLI speaks
TIMEOUT_S = 15.0
MAX_REDIRECTS = 5
# Account config sections whose entries name account secrets (`secret: NAME`, `token_secret: NAME`):
# the conversions' destinations (google_ads, meta, ga4), outgoing webhooks and the CRM push.
DESTINATION_KEYS = ("destinations", "webhooks", "crm_push")
MARKS = {"pass": "✔", "fail": "✘", "skip": "-"}
# The environment the Twilio checks read: none set skips them, some set but unusable fails them.
TWILIO_SETTINGS = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_API_KEY", "TWILIO_API_SECRET",
                   "TWILIO_API_BASE_URL")


@dataclass(frozen=True)
class Check:
    check: str
    status: str  # pass | fail | skip
    detail: str
    fix: str = ""


def _pass(name: str, detail: str) -> Check:
    return Check(name, "pass", detail)


def _failed(name: str, detail: str, fix: str) -> Check:
    return Check(name, "fail", detail, fix)


def _skip(name: str, detail: str) -> Check:
    return Check(name, "skip", detail)


# --------------------------------------------------------------------------- outbound URLs


class RefusedUrl(ValueError):
    pass


def check_outbound(url: str) -> None:
    """https to a public address, or http to 127.0.0.1 / localhost (local stacks and test pages)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError as exc:  # a port that is no number, an unclosed [IPv6 bracket
        raise RefusedUrl(f"{url}: not a valid URL ({exc})") from None
    if parts.scheme == "http" and host in ("127.0.0.1", "localhost"):
        return
    if parts.scheme != "https" or not host:
        raise RefusedUrl(f"{url}: only https URLs (http only to 127.0.0.1)")
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:  # a name: every address it resolves to must be public
        try:
            infos = socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)
        except OSError as exc:
            raise RefusedUrl(f"{url}: cannot resolve {host} ({exc})") from None
        addresses = [ipaddress.ip_address(str(info[4][0])) for info in infos]
    for address in addresses:
        if not address.is_global:
            raise RefusedUrl(f"{url}: {host} is an internal address ({address})")


def fetch(url: str, *, method: str = "GET", **kwargs: Any) -> Any:
    """One request, following at most MAX_REDIRECTS redirects, each checked by check_outbound."""
    import requests

    for _ in range(MAX_REDIRECTS + 1):
        check_outbound(url)
        resp = requests.request(method, url, timeout=TIMEOUT_S, allow_redirects=False, **kwargs)
        if resp.is_redirect and resp.headers.get("Location"):
            url = urljoin(url, resp.headers["Location"])
            method = "GET" if resp.status_code in (301, 302, 303) else method
            continue
        return resp
    raise RefusedUrl(f"{url}: more than {MAX_REDIRECTS} redirects")


# --------------------------------------------------------------------------- stack checks


def check_api(st: Stack) -> Check:
    from calltrack_cli.main import _version as cli_version

    try:
        resp = fetch(f"{st.base}/openapi.json")
        version = str(resp.json().get("info", {}).get("version")) if resp.status_code == 200 else None
    except (OSError, ValueError, AttributeError) as exc:  # unreachable, refused URL, not JSON
        return _failed(
            "api",
            f"{st.base} cannot be reached ({type(exc).__name__})",
            "check --url / CALLTRACK_URL (stack output ApiUrl) and that the stack is deployed or running",
        )
    if version is None:
        return _failed(
            "api",
            f"{st.base}/openapi.json answered {resp.status_code}",
            "check --url / CALLTRACK_URL: it must be the stack's ApiUrl",
        )
    if version != API_VERSION:
        return _failed(
            "api",
            f"API version {version}, this CLI speaks {API_VERSION} (calltrack {cli_version()})",
            "install the calltrack CLI of the deployed release",
        )
    return _pass("api", f"{st.base} answers, API version {version} (CLI calltrack {cli_version()})")


def check_token(st: Stack) -> tuple[Check, Mapping[str, Any] | None]:
    try:
        listing = st.get("/v1/accounts")
    except CliFailure as err:
        return _failed(
            "token",
            err.message.removeprefix("error: "),
            "pass a valid token (--token / CALLTRACK_TOKEN): `calltrack token create --role admin`",
        ), None
    who = listing.get("token") or {}
    role = who.get("role") or "unknown"
    detail = (
        "operator token (every account)"
        if role == "operator"
        else f"{role} token of account {who.get('account')}"
    )
    return _pass("token", detail), listing


def check_public_url(st: Stack) -> Check:
    """The public URL the numbers are checked against is the one the stack signs (GET /v1/stack).
    Without it every check of the numbers' URLs would compare against the wrong URL, and the signed
    callback check needs TWILIO_AUTH_TOKEN, which API-key users may not have."""
    if st.signed_url is None:
        return _skip(
            "public url",
            f"the stack did not say which URL it signs (older than GET /v1/stack?): {st.public_url}",
        )
    if st.public_url != st.signed_url:
        return _failed(
            "public url",
            f"{st.public_url} is not the URL the stack checks Twilio's signatures against ({st.signed_url})",
            "leave --public-url and CALLTRACK_PUBLIC_URL out, or set them to the stack output PublicUrl",
        )
    return _pass("public url", f"the stack signs {st.signed_url}")


def check_webhooks(st: Stack, auth_token: str | None) -> list[Check]:
    """A signed test callback accepted, an unsigned one refused (/twilio/whisper stores nothing)."""
    from calltrack.twilio_edge import TWILIO_SIDS, sign

    query = "?say=calltrack+doctor&lang=en-US"
    url = st.public_url + "/twilio/whisper" + query
    # Twilio's callbacks always carry a well-formed AccountSid (the stack refuses one without it
    # before it looks at the signature): the configured one, else a placeholder
    sid = os.environ.get("TWILIO_ACCOUNT_SID", "").strip()
    if not TWILIO_SIDS["AccountSid"].fullmatch(sid):
        sid = "AC" + "0" * 32
    form = {"CallSid": "CA" + "0" * 32, "AccountSid": sid}
    out = []
    if not auth_token:
        out.append(_skip("webhook signed", "not configured: set TWILIO_AUTH_TOKEN to sign a test callback"))
    else:
        try:
            resp = fetch(
                url, method="POST", data=form, headers={"X-Twilio-Signature": sign(auth_token, url, form)}
            )
            if resp.status_code == 200 and "<Say" in resp.text:
                out.append(_pass("webhook signed", f"a signed callback to {st.public_url} was accepted"))
            else:
                out.append(
                    _failed(
                        "webhook signed",
                        f"a signed callback to {url.split('?')[0]} got {resp.status_code}",
                        "TWILIO_AUTH_TOKEN here and the stack's (SSM /calltrack/twilio-auth-token) must be "
                        "the same, and --public-url / CALLTRACK_PUBLIC_URL exactly the URL the stack signs "
                        "(PublicUrl)",
                    )
                )
        except (OSError, RefusedUrl) as exc:
            out.append(
                _failed(
                    "webhook signed",
                    f"{st.public_url} cannot be reached: {exc}",
                    "check --public-url (stack output PublicUrl)",
                )
            )
    try:
        resp = fetch(url, method="POST", data=form)
        if resp.status_code in (401, 403):
            out.append(_pass("webhook unsigned", f"an unsigned callback was refused ({resp.status_code})"))
        else:
            out.append(
                _failed(
                    "webhook unsigned",
                    f"an unsigned callback got {resp.status_code}, not 403",
                    f"{st.public_url} is not this stack's webhook (or it does not check signatures)",
                )
            )
    except (OSError, RefusedUrl) as exc:
        out.append(
            _failed(
                "webhook unsigned",
                f"{st.public_url} cannot be reached: {exc}",
                "check --public-url (stack output PublicUrl)",
            )
        )
    return out


def check_numbers(
    configs: Mapping[str, Mapping[str, Any]], public_url: str, fallback_url: str | None
) -> list[Check]:
    from calltrack_cli.twilio_numbers import Credentials, TwilioFailure, TwilioNumbers, drift, stack_webhooks

    try:
        client = TwilioNumbers(Credentials.from_env())
    except TwilioFailure as exc:
        if not any(os.environ.get(name) for name in TWILIO_SETTINGS):
            return [_skip("numbers", f"not configured: {exc.message}")]
        # set, but not usable (an API key's SID as the account SID, an http base URL, ...)
        fix = "fix the TWILIO_* settings, or unset them all to skip this check"
        return [_failed("numbers", exc.message, fix)]
    try:
        at_twilio = client.by_number()
    except TwilioFailure as exc:
        return [
            _failed(
                "numbers", exc.message, "check TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN / TWILIO_API_BASE_URL"
            )
        ]
    wanted = stack_webhooks(public_url, fallback_url)
    out = []
    for account, config in configs.items():
        numbers = sorted(tracking_numbers(config))
        missing = [n for n in numbers if n not in at_twilio]
        drifted = [n for n in numbers if n in at_twilio and drift(at_twilio[n], wanted)]
        name = f"numbers {account}"
        if not numbers:
            out.append(_skip(name, "no tracking numbers in the config"))
        elif missing or drifted:
            problems = ([f"not in the Twilio account: {_some(missing)}"] if missing else []) + (
                [f"not pointing at this stack: {_some(drifted)}"] if drifted else []
            )
            fix = f"calltrack numbers sync --account {account}"
            if missing:
                fix += (
                    " (missing numbers: buy them with `calltrack numbers buy` or remove them from the config)"
                )
            out.append(_failed(name, "; ".join(problems), fix))
        else:
            out.append(_pass(name, f"{len(numbers)} number(s) point at {public_url}"))
    return out


def _some(numbers: list[str], shown: int = 5) -> str:
    more = f" and {len(numbers) - shown} more" if len(numbers) > shown else ""
    return ", ".join(numbers[:shown]) + more


def check_pools(st: Stack, configs: Mapping[str, Mapping[str, Any]]) -> list[Check]:
    from calltrack_cli.pools_cmds import accuracy_text, needed_size, pools_report

    out = []
    for account, config in configs.items():
        name = f"pools {account}"
        if not config.get("pools"):
            out.append(_skip(name, "no pools in the config"))
            continue
        try:
            report = pools_report(st.base, st.token, account, None, None)
        except CliFailure as err:
            out.append(
                _failed(
                    name, err.message.removeprefix("error: "), "a marketer, admin or operator token reads it"
                )
            )
            continue
        small = [p for p in report.get("pools") or [] if needed_size(p) > int(p.get("size") or 0)]
        if small:
            detail = "; ".join(
                f"{p['pool']} has {p['size']}, recommended {needed_size(p)} "
                f"(peak {p['peak_concurrent_sessions']} sessions, estimated accuracy "
                f"{accuracy_text(p)})"
                for p in small
            )
            fix = "; ".join(
                f"calltrack numbers buy --account {account} --pool {p['pool']} "
                f"--count {needed_size(p) - int(p['size'])} --apply"
                for p in small
            )
            out.append(_failed(name, detail, fix + " (costs: calltrack pools advise)"))
        else:
            out.append(
                _pass(
                    name,
                    f"{len(report.get('pools') or [])} pool(s) large enough for their peak and for "
                    f"99% accuracy ({report.get('from')} .. {report.get('to')})",
                )
            )
    return out


def _secret_names(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if (key == "secret" or str(key).endswith("_secret")) and isinstance(value, str):
                yield value
            else:
                yield from _secret_names(value)
    elif isinstance(node, list):
        for item in node:
            yield from _secret_names(item)


def check_destinations(st: Stack, configs: Mapping[str, Mapping[str, Any]]) -> list[Check]:
    out = []
    for account, config in configs.items():
        name = f"destinations {account}"
        sections = {k: config[k] for k in DESTINATION_KEYS if config.get(k)}
        wanted = sorted(set(_secret_names(sections)))
        if not wanted:
            out.append(_skip(name, f"not configured (no {' / '.join(DESTINATION_KEYS)} naming a secret)"))
            continue
        try:
            listing = st.get(f"/v1/accounts/{account}/secrets")
        except CliFailure as err:
            if err.message.startswith("error: 403"):  # the token's role may not list them: not a fault
                out.append(_skip(name, "skipped: listing the account's secrets needs an admin token"))
            else:
                out.append(_failed(name, err.message.removeprefix("error: "), "check the API and the token"))
            continue
        have = {s.get("name") for s in listing.get("secrets") or []}
        missing = [s for s in wanted if s not in have]
        if missing:
            out.append(
                _failed(
                    name,
                    f"secrets not set: {', '.join(missing)}",
                    "; ".join(f"calltrack secret set --account {account} {s}" for s in missing),
                )
            )
        else:
            out.append(_pass(name, f"{', '.join(sections)}: every secret named is set ({len(wanted)})"))
    return out


def check_ops_topic(topic_arn: str | None) -> Check:
    if not topic_arn:
        return _skip("ops topic", "not configured: pass --ops-topic-arn (stack output OpsTopicArn)")
    try:
        import boto3

        sns = boto3.client("sns", region_name=topic_arn.split(":")[3] or None)
        subs: list[dict[str, Any]] = []
        for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn):
            subs.extend(page.get("Subscriptions") or [])
    except Exception as exc:  # noqa: BLE001 - any AWS failure is this check's red
        return _failed(
            "ops topic",
            f"cannot list its subscriptions ({type(exc).__name__})",
            "run with AWS credentials allowed sns:ListSubscriptionsByTopic on the topic",
        )
    confirmed = [s for s in subs if str(s.get("SubscriptionArn", "")).startswith("arn:")]
    if not confirmed:
        pending = len(subs)
        return _failed(
            "ops topic",
            f"no confirmed subscription ({pending} pending)"
            if pending
            else "nobody is subscribed: alerts and reviews reach no one",
            f"aws sns subscribe --topic-arn {topic_arn} --protocol email --notification-endpoint "
            "ops@example.com, then confirm the e-mail",
        )
    return _pass("ops topic", f"{len(confirmed)} confirmed subscription(s)")


# --------------------------------------------------------------------------- sites


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts: list[dict[str, str | None]] = []
        self.text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script":
            self.scripts.append(values)
        if tag in ("script", "style"):
            self._skip += 1
        if tag == "a" and (values.get("href") or "").startswith("tel:"):
            self.text.append(str(values["href"])[4:])

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text.append(data)


# The separators dni.js reads between digits (dni.src.js SEP): spaces, ( ) . - and the dashes
# Japanese text uses (U+2010-2015, U+2212, the long-vowel mark U+30FC); full-width forms are read
# as ASCII first (NFKC), as dni.js reads them.
_NUMBER_RUN = re.compile(r"\+?\d[\d\s\-().\u2010-\u2015\u2212\u30fc]{5,}\d", re.ASCII)


def number_forms(e164: str) -> set[str]:
    """The digit strings a page may show for a number: international and national."""
    import phonenumbers

    parsed = phonenumbers.parse(e164, None)
    national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    return {re.sub(r"\D", "", e164), re.sub(r"\D", "", national)}


def shown_numbers(texts: list[str], numbers: list[str]) -> list[str]:
    import unicodedata

    runs = {
        re.sub(r"\D", "", m.group(0), flags=re.ASCII)
        for text in texts
        for m in _NUMBER_RUN.finditer(unicodedata.normalize("NFKC", text))
    }
    return [n for n in numbers if number_forms(n) & runs]


def check_site(page_url: str, st: Stack, configs: Mapping[str, Mapping[str, Any]]) -> Check:
    name = f"site {page_url}"
    try:
        resp = fetch(page_url)
    except RefusedUrl as exc:
        return _failed(name, str(exc), "pass the page's public https URL")
    except OSError as exc:
        return _failed(name, f"cannot load it ({type(exc).__name__})", "check the URL")
    if resp.status_code != 200:
        return _failed(name, f"answered {resp.status_code}", "check the URL")
    page = _Page()
    page.feed(resp.text)
    ours = {f"{st.base}/dni.js", f"{st.public_url}/dni.js"}
    tags = [
        s
        for s in page.scripts
        if s.get("src")
        and urljoin(resp.url or page_url, str(s["src"])).split("?")[0].rstrip("/").endswith("/dni.js")
    ]
    if not tags:
        return _failed(
            name,
            "does not load dni.js",
            f'add <script src="{st.public_url}/dni.js" data-account="ACCOUNT" async></script>',
        )
    tag = tags[0]
    src = urljoin(resp.url or page_url, str(tag["src"])).split("?")[0]
    account = tag.get("data-account") or ""
    problems, fixes = [], []
    if src not in ours:
        problems.append(f"loads {src}, not this stack's dni.js")
        fixes.append(f"src={st.public_url}/dni.js")
    config = configs.get(account)
    if config is None:
        known = ", ".join(configs) or "none"
        problems.append(f"data-account={account!r} is not an account checked here ({known})")
        fixes.append("set data-account to the account id")
        return _failed(name, "; ".join(problems), "; ".join(fixes))
    site = config.get("site") or {}
    origins = list(site.get("origins") or [])
    page_origin = "{0.scheme}://{0.netloc}".format(urlsplit(resp.url or page_url))
    if origins and page_origin not in origins:
        problems.append(f"origin {page_origin} is not in site.origins ({', '.join(origins)})")
        fixes.append(f"add {page_origin} to site.origins and `calltrack apply`")
    if (config.get("dni") or {}).get("wait_for_consent") and not (tag.get("data-consent") or "").strip():
        # dni.js leases (and stores its visitor id) at once unless its tag names the consent event
        problems.append("dni.wait_for_consent is set but the dni.js tag has no data-consent, so it "
                        "leases a number before the visitor consents")
        fixes.append('add data-consent="EVENT" (your consent banner\'s window event) to the dni.js tag')
    listed = list(site.get("numbers") or []) or [config.get("forward_to")]
    if not shown_numbers(page.text, [n for n in listed if n]):
        problems.append(
            f"shows none of site.numbers ({', '.join(n for n in listed if n)}), so dni.js swaps nothing"
        )
        fixes.append("list the number the page shows under site.numbers and `calltrack apply`")
    if problems:
        return _failed(name, "; ".join(problems), "; ".join(fixes))
    return _pass(name, f"loads dni.js for {account} from an allowed origin and shows a listed number")


# --------------------------------------------------------------------------- command


def run_checks(
    st: Stack, *, account: str | None, sites: list[str], ops_topic_arn: str | None, fallback_url: str | None
) -> list[Check]:
    api = check_api(st)
    checks = [api]
    if api.status == "fail":
        return checks + [_skip("token", "skipped: the API cannot be reached")]
    token, listing = check_token(st)
    checks.append(token)
    checks.append(check_public_url(st))
    checks.extend(check_webhooks(st, os.environ.get("TWILIO_AUTH_TOKEN")))
    configs: dict[str, dict[str, Any]] = {}
    if listing is not None:
        names = [account] if account else [a["account"] for a in listing.get("accounts") or []]
        for name in names:
            try:
                configs[name] = st.get(f"/v1/accounts/{name}")["config"]
            except CliFailure as err:
                checks.append(
                    _failed(
                        f"account {name}",
                        err.message.removeprefix("error: "),
                        "check --account and that the token may read it",
                    )
                )
        checks.extend(check_numbers(configs, st.public_url, fallback_url))
    checks.extend(check_site(site, st, configs) for site in sites)
    checks.append(check_ops_topic(ops_topic_arn))
    if listing is not None:
        checks.extend(check_pools(st, configs))
        checks.extend(check_destinations(st, configs))
    return checks


DOCTOR_HELP = (
    """Check this deployment end to end: one line per check, ✔ or ✘ with the fix.

"""
    + (
        "Checks the API and its version, the token and its role, a signed test webhook (accepted) and an "
        "unsigned one (refused), that every tracking number points at this stack in Twilio, each --site page "
        "(dni.js with the right data-account, an allowed origin, a number of site.numbers shown), that the "
        "ops topic has a confirmed subscription, that no pool is smaller than recommended, and that the "
        "credentials of conversion and webhook destinations are set. Checks without their inputs "
        "(TWILIO_* for Twilio, --ops-topic-arn, destinations in the config) are skipped."
    )
    + """

\b
Examples:
  calltrack doctor --account acme-dental --site https://www.acme-dental.jp/
  calltrack doctor --json --ops-topic-arn arn:aws:sns:ap-northeast-1:123456789012:Calltrack-Ops

Exit codes: 0 all good (or skipped), 1 at least one check failed.
"""
)


def doctor_cmd(
    account: str | None = typer.Option(
        None, "--account", help="Account id (default: every account the token sees)", show_default=False
    ),
    sites: list[str] = typer.Option(
        [],
        "--site",
        help="A page of the website to check (repeatable)",  # noqa: B008
        show_default=False,
    ),
    ops_topic_arn: str | None = typer.Option(
        None,
        "--ops-topic-arn",
        envvar="CALLTRACK_OPS_TOPIC_ARN",
        help="The ops SNS topic (stack output OpsTopicArn)",
        show_default=False,
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON"),
    public_url: str | None = PUBLIC_URL_OPTION,
    fallback_url: str | None = FALLBACK_OPTION,
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    try:
        st = stack(url, token, public_url, diagnose=True)
    except CliFailure as err:
        typer.echo(err.message, err=True)
        raise typer.Exit(1) from None
    checks = run_checks(
        st, account=account, sites=sites, ops_topic_arn=ops_topic_arn, fallback_url=fallback_url
    )
    ok = not any(c.status == "fail" for c in checks)
    if as_json:
        typer.echo(json.dumps({"ok": ok, "checks": [asdict(c) for c in checks]}, ensure_ascii=False))
    else:
        for c in checks:
            line = f"{MARKS[c.status]} {c.check}: {c.detail}"
            typer.echo(line + (f"\n    fix: {c.fix}" if c.fix else ""))
    raise typer.Exit(0 if ok else 1)


def register(root: typer.Typer) -> None:
    root.command("doctor", help=DOCTOR_HELP)(doctor_cmd)
