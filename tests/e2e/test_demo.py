"""The demo end to end, as a user runs it: `calltrack local serve` + `calltrack demo --url`.

Both run as real subprocesses; the demo's recordings come from a fake Twilio media server this
test starts. After the demo, the test asks the still-running stack's API itself and checks that
what the demo printed is what the API says, and that attribution matches the simulation.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from calltrack.settings import LOCAL_TWILIO_ACCOUNT_SID, LOCAL_TWILIO_AUTH_TOKEN
from calltrack_cli.local.fake_twilio import FakeTwilioMedia
from calltrack_cli.local.stack import free_port

ROOT = Path(__file__).resolve().parents[2]
CALLTRACK = str(Path(sys.executable).with_name("calltrack"))
ADMIN = "ct_operator_demo_e2e_token"


@pytest.fixture(scope="module")
def served_stack() -> Iterator[str]:
    fake = FakeTwilioMedia(
        serve_any=True, credentials=[(LOCAL_TWILIO_ACCOUNT_SID, LOCAL_TWILIO_AUTH_TOKEN)]
    ).start()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "CALLTRACK_ADMIN_TOKEN": ADMIN,
        "TWILIO_API_BASE_URL": fake.base_url,
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    for key in ("AWS_ENDPOINT_URL", "CALLTRACK_PUBLIC_URL"):  # the served stack sets its own
        env.pop(key, None)
    log = (ROOT / "out").joinpath("e2e-demo-serve.log")
    log.parent.mkdir(exist_ok=True)
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [CALLTRACK, "local", "serve", "--port", str(port)], cwd=ROOT, env=env, stdout=sink, stderr=sink
        )
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                try:
                    if requests.get(url + "/health", timeout=2).status_code == 200:
                        break
                except (requests.ConnectionError, requests.Timeout):  # still starting, or a busy machine
                    pass
                assert proc.poll() is None, f"calltrack local serve exited; see {log}"
                time.sleep(0.5)
            else:
                pytest.fail(f"local stack did not become healthy; see {log}")
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            fake.stop()


def _row(text: str, key: str) -> list[str]:
    for line in text.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line) if c.strip()]
        if cells and cells[0] == key:
            return cells
    raise AssertionError(f"no row {key!r} in the demo output")


@pytest.fixture(scope="module")
def demo_output(served_stack, tmp_path_factory) -> str:
    """The demo played once through the served stack (60 calls): its printed output."""
    out_dir = tmp_path_factory.mktemp("demo")
    env = {**os.environ, "COLUMNS": "220", "CALLTRACK_ADMIN_TOKEN": ADMIN}
    done = subprocess.run(
        [CALLTRACK, "demo", "--url", served_stack, "--calls", "60", "--seed", "11", "--out", str(out_dir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (out_dir / "report.html").read_text(encoding="utf-8").count("<svg") >= 2
    return done.stdout


def test_the_demo_prints_what_the_api_says_and_attributes_every_call(served_stack, demo_output):
    out = demo_output
    # Then the accuracy line says every call was attributed to its true source
    accuracy = re.search(r"Attribution accuracy .*?: ([\d.]+)% \((\d+)/(\d+)", out)
    assert accuracy, out
    assert float(accuracy.group(1)) >= 99.0 and accuracy.group(3) == "60"
    # And the channel table it printed equals the channel report the API serves now
    token = requests.post(
        f"{served_stack}/v1/accounts/acme-dental/tokens",
        json={"role": "marketer"},
        headers={"Authorization": f"Bearer {ADMIN}"},
        timeout=30,
    ).json()["token"]
    report = requests.get(
        f"{served_stack}/v1/reports/channels",
        params={"from": "2026-11-01", "to": "2026-11-30", "by": "channel"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ).json()
    assert report["totals"]["calls"] > 0
    assert _row(out, "TOTAL")[1:4] == [
        str(report["totals"]["calls"]),
        f"{100 * report['totals']['answer_rate']:.0f}%",
        str(report["totals"]["leads"]),
    ]
    for row in report["rows"]:
        assert _row(out, row["key"])[1] == str(row["calls"])


def test_the_demo_prints_the_console_and_a_sign_in_that_works(served_stack, demo_output):
    # Then the output names the console's URL and a demo user with a password
    line = re.search(r"Console: (\S+) — sign in as (\S+) \(manager\).*password (\S+) ", demo_output)
    assert line, demo_output
    url, email, password = line.groups()
    assert url == f"{served_stack}/console/"
    # And that sign-in works against the stack the demo ran on
    sign_in = {"email": email, "password": password}
    session = requests.post(f"{served_stack}/v1/session", json=sign_in, timeout=30)
    assert session.status_code == 200, session.text
    assert (session.json()["account"], session.json()["role"]) == ("acme-dental", "manager")


def _get(url: str, path: str, token: str, **params: object) -> dict:
    resp = requests.get(url + path, params=params, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.mark.parametrize("by, field", [("keyword", "keyword"), ("landing_page", "landing_page")])
def test_keyword_and_landing_page_reports_equal_a_direct_count_of_the_demo_calls(
    served_stack, demo_output, by, field
):
    # Given the demo's month (DNI calls carry keywords and landing pages)
    token = requests.post(
        f"{served_stack}/v1/accounts/acme-dental/tokens",
        json={"role": "manager"},
        headers={"Authorization": f"Bearer {ADMIN}"},
        timeout=30,
    ).json()["token"]
    month = {"from": "2026-11-01", "to": "2026-11-30"}
    # When the stream's last records have reached the rollups (they follow the calls; under load
    # the pollers can still hold some), and the report and the calls themselves are read
    drained = requests.post(f"{served_stack}/_local/drain", timeout=300)
    assert drained.status_code == 200, drained.text
    report = _get(served_stack, "/v1/reports/channels", token, by=by, **month)
    calls, cursor = [], None
    while True:
        page = _get(
            served_stack, "/v1/calls", token, limit=200, **month, **({"cursor": cursor} if cursor else {})
        )
        calls += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    # Then every row equals a direct count over the calls, and some calls do carry a value
    expected: dict[str, dict[str, int]] = {}
    for call in calls:
        key = call.get(field) or "(none)"
        row = expected.setdefault(key, {"calls": 0, "answered": 0})
        row["calls"] += 1
        row["answered"] += call["status"] == "answered"
    got = {r["key"]: {"calls": r["calls"], "answered": r["answered"]} for r in report["rows"]}
    assert got == expected
    assert any(key != "(none)" for key in got)


def test_the_demo_prints_rule_hits_trial_verdicts_and_what_callers_asked_as_the_api_says(
    served_stack, demo_output
):
    out = demo_output
    token = requests.post(
        f"{served_stack}/v1/accounts/acme-dental/tokens",
        json={"role": "manager"},
        headers={"Authorization": f"Bearer {ADMIN}"},
        timeout=30,
    ).json()["token"]
    # Then each printed trial verdict is the trials API's (the demo's last 30 days)
    trials = _get(served_stack, "/v1/reviews/trials", token, **{"from": "2026-11-01", "to": "2026-11-30"})
    assert trials["trials"], "the demo's campaigns are on trial"
    for t in trials["trials"]:
        row = _row(out, f"{t['channel']} / {t['campaign']}")
        assert row[1] == f"{t['sample_calls']}/{t['target']}" and row[-1].startswith(t["verdict"])
    # ... the booking rule hit exactly the calls whose rule_hits say so (transcribed scripts)
    calls, cursor = [], None
    while True:
        page = _get(served_stack, "/v1/calls", token, limit=200, **{"from": "2026-09-01", "to": "2026-12-01"},
                    **({"cursor": cursor} if cursor else {}))
        calls += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    booked = sum("booking" in (c.get("rule_hits") or {}) for c in calls)
    assert booked > 0 and _row(out, "booking")[1] == str(booked)
    # ... and the top caller phrases are the monthly review's
    review = _get(served_stack, "/v1/reviews/2026-11", token)
    assert review["caller_phrases"]
    top = review["caller_phrases"][0]
    assert _row(out, str(top["phrase"]))[1] == str(top["calls"])
