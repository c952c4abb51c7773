"""Runs the whole demo: local stack (or --url), account, a simulated period, jobs, results."""

from __future__ import annotations

import json
import os
from contextlib import ExitStack, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from calltrack.settings import LOCAL_TWILIO_ACCOUNT_SID, LOCAL_TWILIO_AUTH_TOKEN
from calltrack_cli.demo.player import DemoError, Player
from calltrack_cli.demo.results import Results, collect
from calltrack_cli.demo.scenario import Scenario, build
from calltrack_cli.local.client import StackClient

# Quiet handlers: the demo prints results; handler logs and EMF metrics go to stack.log.
QUIET_ENV = {"POWERTOOLS_LOG_LEVEL": "WARNING"}
# drain() answers "still busy" after about 30 s of work: a big backlog on a slow laptop needs many
# such rounds, and goes on while they process records; a consumer that makes no progress does not.
SETTLE_STALLED_ROUNDS = 3  # rounds in a row without one record processed
SETTLE_MAX_ROUNDS = 120  # about an hour: a consumer whose failures keep being redelivered


@dataclass(frozen=True)
class DemoOptions:
    calls: int = 300
    seed: int = 7
    days: int = 61
    end: date = date(2026, 11, 30)
    config: Path = Path("examples/acme-dental.yaml")
    out: Path = Path("out/demo")
    url: str | None = None
    token: str | None = None


def load_config(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DemoError(f"{path}: {exc}") from None
    if not isinstance(data, dict) or "account" not in data:
        raise DemoError(f"{path}: not an account file (no 'account' key)")
    return data


def job_instants(end: date, tz: str) -> tuple[str, str, str]:
    """(weekly alert instant, monthly review instant, reviewed month) after the simulated period."""
    zone = ZoneInfo(tz)
    monday = end + timedelta(days=(7 - end.weekday()) % 7)
    first = (end.replace(day=1) + timedelta(days=32)).replace(day=1)
    weekly = datetime(monday.year, monday.month, monday.day, 9, tzinfo=zone).isoformat()
    monthly = datetime(first.year, first.month, first.day, 9, tzinfo=zone).isoformat()
    return weekly, monthly, end.strftime("%Y-%m")


def _client(opts: DemoOptions, stack: ExitStack) -> StackClient:
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    if opts.url:
        return StackClient(
            opts.url,
            admin_token=opts.token or os.environ.get("CALLTRACK_ADMIN_TOKEN", ""),
            twilio_auth_token=os.environ.get("TWILIO_AUTH_TOKEN", LOCAL_TWILIO_AUTH_TOKEN),
        )
    from calltrack_cli.local.fake_ads import FakeAdPlatforms
    from calltrack_cli.local.fake_twilio import FakeTwilioMedia
    from calltrack_cli.local.stack import LocalStack

    sid = os.environ.get("TWILIO_ACCOUNT_SID", LOCAL_TWILIO_ACCOUNT_SID)
    token = os.environ.get("TWILIO_AUTH_TOKEN", LOCAL_TWILIO_AUTH_TOKEN)
    fake = FakeTwilioMedia(serve_any=True, credentials=[(sid, token)]).start()
    stack.callback(fake.stop)
    ads = FakeAdPlatforms().start()  # conversions go to the local fakes of Google Ads, Meta and GA4
    stack.callback(ads.stop)
    local = LocalStack(env={"TWILIO_API_BASE_URL": fake.base_url, **ads.env()}).start()
    stack.callback(local.stop)
    client = StackClient.for_stack(local)
    client.stack = local
    client.ads = ads  # type: ignore[attr-defined]
    return client


def connect_destinations(client: StackClient, config: dict[str, Any]) -> None:
    """Local demo: register the config's ad destinations at the fakes and set the account secrets
    (as `calltrack secret set` does). Against --url nothing is set: destinations stay CSV-only."""
    from calltrack_cli.demo.player import _check

    ads = getattr(client, "ads", None)
    dest = config.get("destinations") or {}
    if ads is None or not dest:
        return
    secrets: dict[str, str] = {}
    google = dest.get("google_ads") or {}
    if google.get("secret"):
        customer = str(google["customer_id"]).replace("-", "")
        action = str(google["conversion_action_id"])
        secrets[google["secret"]] = json.dumps(ads.google_client(customer, action))
    if (dest.get("meta") or {}).get("secret"):
        secrets[dest["meta"]["secret"]] = ads.meta_pixel(str(dest["meta"]["pixel_id"]))
    if (dest.get("ga4") or {}).get("secret"):
        secrets[dest["ga4"]["secret"]] = ads.ga4_stream(str(dest["ga4"]["measurement_id"]))
    for name, value in secrets.items():
        path = f"/v1/accounts/{config['account']}/secrets/{name}"
        _check(client.request("PUT", path, token=client.admin_token, json={"value": value}), f"PUT {path}")


def settle(client: StackClient) -> None:
    """Drain streams and queues until idle, however long the backlog, as long as it goes down
    (each drain round is bounded; rounds that process nothing three times in a row end it)."""
    from calltrack_cli.local.client import StackError

    stalled = 0
    for _ in range(SETTLE_MAX_ROUNDS):
        try:
            client.drain()
            return
        except StackError as err:
            if "still busy" not in str(err):
                raise
            last = err
        stalled = 0 if last.answer.get("records") else stalled + 1
        if stalled == SETTLE_STALLED_ROUNDS:
            raise DemoError(f"queues and streams still busy, no record processed in {stalled} drain "
                            f"rounds in a row: {last}")
    raise DemoError(f"queues and streams still busy after {SETTLE_MAX_ROUNDS} drain rounds: {last}")


# The demo's console sign-ins (a local demo stack only; real users: `calltrack users create`).
DEMO_PASSWORD = "Demo-pass-2026"


def create_console_users(client: StackClient, account: str) -> list[tuple[str, str]]:
    """A manager and a marketer who sign in to the console -> [(email, role)]; on a served stack
    that already has them (a second demo run), they are kept."""
    from calltrack_cli.demo.player import _check

    users = []
    for role in ("manager", "marketer"):
        email = f"{role}@{account}.example"
        resp = client.request(
            "POST",
            f"/v1/accounts/{account}/users",
            token=client.admin_token,
            json={"email": email, "role": role, "password": DEMO_PASSWORD},
        )
        if resp.status_code != 409:
            _check(resp, f"POST /v1/accounts/{account}/users")
        users.append((email, role))
    return users


def run_demo(opts: DemoOptions, console: Console) -> tuple[Scenario, Results, Path]:
    """Play the scenario; handler output (JSON logs, EMF metrics) goes to ``{out}/stack.log``."""
    config = load_config(opts.config)
    opts.out.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        log = stack.enter_context((opts.out / "stack.log").open("w", encoding="utf-8"))
        stack.enter_context(redirect_stdout(log))
        stack.enter_context(redirect_stderr(log))
        with console.status("starting the local stack…"):
            client = _client(opts, stack)
            client.apply(config)
            connect_destinations(client, config)
            manager = client.create_token(config["account"], "manager")
            marketer = client.create_token(config["account"], "marketer")
            console_users = create_console_users(client, config["account"])
        scenario = build(config, calls=opts.calls, seed=opts.seed, days=opts.days, end=opts.end)
        player = Player(client, scenario, manager=manager, marketer=marketer)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task(
                "calls (DNI lease → Twilio webhooks → recording)", total=len(scenario.calls)
            )
            player.play_calls(lambda n: progress.advance(task, n))
            progress.update(task, description="rollups and recordings (draining queues and streams)")
            settle(client)
            progress.update(task, description="CRM leads, stages and ad spend")
            player.post_outcomes()
            player.put_spend()
            settle(client)
            progress.update(task, description="weekly alert and monthly review jobs")
            weekly, monthly, month = job_instants(scenario.end, scenario.timezone)
            client.run_job("weekly-unanswered-alert", weekly)
            client.run_job("monthly-channel-review", monthly)
            settle(client)
            outbox = client.outbox()
            results = collect(
                client, scenario, manager=manager, marketer=marketer, outbox=outbox, review_month=month
            )
            results.console_users = console_users
    from calltrack_cli.demo.present import write_html

    return scenario, results, write_html(results, opts.out / "report.html")
