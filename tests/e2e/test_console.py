"""The manager's console in a real headless Chromium against the local stack (issue 23, Done when).

The local gateway serves the console's build (``build/console``, made by ``make setup``) at
``/console/`` on the API's origin, with the Content-Security-Policy of ``infra.console_headers``;
users sign in through the stack's Cognito (``tests.support.cognito``). A manager signs in, filters
the call log, plays a recording (the <audio> element loads the MP3 from a fresh presigned URL),
scores a sampled call from the review inbox and sets its stage, and the channel report shows it;
a marketer sees masked numbers and no player; a user of another account sees none of it; a wrong
password and an expired token are refused. Debian's chromium at /usr/bin/chromium is driven by
Playwright's sync API; nothing is downloaded, and the browser only talks to 127.0.0.1.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from calltrack.settings import LOCAL_TWILIO_ACCOUNT_SID
from calltrack_cli.local.mp3 import silent_mp3
from tests.support import unique_call_sid, unique_number, unique_recording_sid
from tests.support.browser import chromium, require_chromium
from tests.support.cognito import create_console_user, expired_id_token, forged_id_token
from tests.support.dni import ORIGIN, SITE_NUMBER, lease
from tests.support.recording_stack import serve_media
from tests.support.stack import apply_account
from tests.support.twilio import play_call

BUILD = Path(__file__).resolve().parents[2] / "build" / "console"
OUR = LOCAL_TWILIO_ACCOUNT_SID
CALLER = "+819012345678"
OTHER_CALLER = "+819087654321"
MASKED = "+********5678"  # calltrack.phone.mask: the last four digits only

require_chromium()
if not (BUILD / "index.html").is_file():
    raise RuntimeError(f"{BUILD} is not built: run make setup (python -m calltrack_cli.console_build)")

media = pytest.fixture(scope="module", name="media")(serve_media)


def _recorded_call(stack: Any, media: Any, number: str, at: datetime, caller: str) -> str:
    """An answered call whose MP3 the pipeline fetched from (fake) Twilio and stored in S3."""
    call_sid = play_call(stack, number, at, call_sid=unique_call_sid(), caller=caller)
    sid = unique_recording_sid()
    media.add_recording(OUR, sid, silent_mp3(3.0, id3=True))
    form = {
        "AccountSid": OUR,
        "CallSid": call_sid,
        "RecordingSid": sid,
        "RecordingStatus": "completed",
        "RecordingDuration": "3",
        "RecordingChannels": "1",
        "RecordingSource": "DialVerb",
        "RecordingUrl": f"https://api.twilio.com/{sid}",
    }
    resp = stack.twilio_post("/twilio/recording", form)
    assert resp.status_code == 200, resp.text
    return call_sid


@pytest.fixture(scope="module")
def world(local_stack: Any, media: Any) -> dict[str, Any]:
    """A Japanese clinic with a newspaper and a radio number: a recorded newspaper call, an answered
    radio call and a missed newspaper call today; another (English) account with a call of its own;
    console users of both."""
    newspaper, radio, elsewhere = unique_number(), unique_number(), unique_number()
    account = apply_account(
        local_stack,
        "console",
        name="コンソール歯科",
        language="ja-JP",
        recording={"enabled": True},
        numbers=[
            {"number": newspaper, "channel": "newspaper", "campaign": "dec-insert"},
            {"number": radio, "channel": "radio", "campaign": "morning"},
        ],
    )
    other = apply_account(
        local_stack, "console-other", name="Other clinic", language="en-US",
        numbers=[{"number": elsewhere, "channel": "flyer"}],
    )
    now = datetime.now(UTC).replace(microsecond=0)
    tokyo = now.astimezone(ZoneInfo("Asia/Tokyo"))
    if tokyo.hour == 0 and tokyo.minute < 35:  # calls 30 to 15 minutes ago would straddle midnight
        now = tokyo.replace(hour=0, minute=0, second=0).astimezone(UTC) - timedelta(minutes=5)
    recorded = _recorded_call(local_stack, media, newspaper, now - timedelta(minutes=30), CALLER)
    answered = play_call(local_stack, radio, now - timedelta(minutes=25), caller=OTHER_CALLER)
    missed = play_call(
        local_stack, newspaper, now - timedelta(minutes=20), outcome="no-answer", caller=CALLER
    )
    foreign = play_call(local_stack, elsewhere, now - timedelta(minutes=15), caller="+819099990000")
    local_stack.drain()
    admin = local_stack.create_token(account, "admin")
    call = local_stack.request("GET", f"/v1/calls/{recorded}", token=admin).json()
    assert call["recording"]["status"] == "stored", call
    users = {role: create_console_user(local_stack, account, role) for role in ("manager", "marketer")}
    users["other"] = create_console_user(local_stack, other, "manager")
    return {
        "account": account,
        "other": other,
        "recorded": recorded,
        "answered": answered,
        "missed": missed,
        "foreign": foreign,
        "users": users,
        "admin": admin,
        "today": now.astimezone(ZoneInfo("Asia/Tokyo")).date().isoformat(),
    }


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium("--autoplay-policy=no-user-gesture-required", "--mute-audio") as b:
        yield b


class Console:
    """One browser context on the console; records CSP violations and script errors."""

    def __init__(self, browser: Any, stack: Any, *, mobile: bool = False,
                 timezone_id: str = "Asia/Tokyo") -> None:
        viewport = {"width": 390, "height": 844} if mobile else {"width": 1280, "height": 900}
        self.stack = stack
        # the accounts are in Tokyo, as their staff's browsers usually are
        self.context = browser.new_context(viewport=viewport, locale="en-US", timezone_id=timezone_id)
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.outside: list[str] = []
        self.page.on("pageerror", lambda exc: self.problems.append(f"pageerror: {exc}"))
        self.page.on(
            "console",
            lambda msg: self.problems.append(f"console: {msg.text}")
            if "Content Security Policy" in msg.text or "Refused to" in msg.text
            else None,
        )
        self.page.on(
            "request",
            lambda req: None if req.url.startswith(("http://127.0.0.1:", "data:", "blob:"))
            else self.outside.append(req.url),
        )

    def url(self, hash_: str = "") -> str:
        return f"{self.stack.url}/console/{hash_}"

    def open(self, hash_: str = "") -> Any:
        self.page.goto(self.url(hash_))
        return self.page

    def sign_in(self, email: str, password: str) -> Any:
        page = self.open()
        page.wait_for_selector("#signin-form")
        page.fill("#email", email)
        page.fill("#password", password)
        page.click("#signin-submit")
        page.wait_for_selector("#top:not([hidden])")
        return page

    def close(self) -> None:
        assert self.problems == [], self.problems
        assert self.outside == [], f"requests beyond 127.0.0.1: {self.outside}"
        self.context.close()


@pytest.fixture
def console(browser: Any, local_stack: Any) -> Iterator[Any]:
    opened: list[Console] = []

    def open_console(**kw: Any) -> Console:
        c = Console(browser, local_stack, **kw)
        opened.append(c)
        return c

    yield open_console
    for c in opened:
        c.close()


def _row_sids(page: Any, selector: str = "tr.call-row") -> list[str]:
    return [str(el.get_attribute("data-call-sid")) for el in page.query_selector_all(selector)]


def _wait_rows(page: Any, count: int, selector: str = "tr.call-row") -> list[str]:
    page.wait_for_function(f"() => document.querySelectorAll('{selector}').length === {count}")
    return _row_sids(page, selector)


def _cell(page: Any, row: str, label: str) -> str:
    return str(page.inner_text(f'{row} td[data-label="{label}"]')).strip()


def test_the_console_is_served_with_its_security_headers(local_stack: Any) -> None:
    bare = requests.get(f"{local_stack.url}/console", allow_redirects=False, timeout=10)
    assert (bare.status_code, bare.headers["Location"]) == (301, "/console/")
    index = requests.get(f"{local_stack.url}/console/", timeout=10)
    assert index.status_code == 200 and index.headers["Content-Type"] == "text/html; charset=utf-8"
    csp = index.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert index.headers["X-Frame-Options"] == "DENY"
    assert index.headers["X-Content-Type-Options"] == "nosniff"
    chart = requests.get(f"{local_stack.url}/console/vendor/chart.umd.min.js", timeout=10)
    assert chart.status_code == 200 and "Chart.js v4" in chart.text[:200]
    assert requests.get(f"{local_stack.url}/console/../pyproject.toml", timeout=10).status_code == 404


def test_a_manager_signs_in_filters_listens_scores_and_the_report_reflects_it(
    console: Any, local_stack: Any, world: dict[str, Any]
) -> None:
    c = console()
    email, password = world["users"]["manager"]
    # Given a manager of a Japanese account signs in
    page = c.sign_in(email, password)
    assert page.evaluate("document.documentElement.lang") == "ja"
    assert page.inner_text("#nav a[data-route='calls']") == "通話履歴"
    assert email in page.inner_text("#who")
    # ... with a cookie no script can read, and nothing in web storage
    [cookie] = [k for k in c.context.cookies() if k["name"] == "ct_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert "ct_session" not in page.evaluate("document.cookie")
    assert page.evaluate("localStorage.length + sessionStorage.length") == 0

    # When they look at the call log: today's three calls, caller numbers in full
    assert set(_wait_rows(page, 3)) == {world["recorded"], world["answered"], world["missed"]}
    row = f'tr[data-call-sid="{world["recorded"]}"]'
    assert _cell(page, row, "発信者") == CALLER
    # ... a page at a time, following next_cursor
    page.goto(c.url("#/calls?limit=2"))
    first = _wait_rows(page, 2)
    page.click("#more-calls")
    assert _wait_rows(page, 3)[:2] == first
    assert page.query_selector("#more-calls") is None
    page.goto(c.url("#/calls"))
    _wait_rows(page, 3)
    # ... and filter it: today, answered, newspaper
    page.fill("#f-from", world["today"])
    page.fill("#f-to", world["today"])
    page.select_option("#f-status", "answered")
    page.click("#apply-filters")
    assert set(_wait_rows(page, 2)) == {world["recorded"], world["answered"]}
    page.fill("#f-channel", "newspaper")
    page.click("#apply-filters")
    assert _wait_rows(page, 1) == [world["recorded"]]
    assert "channel=newspaper" in page.url and "status=answered" in page.url
    # ... and a call opened from the filtered list goes back to it, filters kept
    page.click(f'tr[data-call-sid="{world["recorded"]}"] a.call-link')
    page.wait_for_selector("#summary")
    page.click("a.back")
    assert _wait_rows(page, 1) == [world["recorded"]]
    assert "channel=newspaper" in page.url and "status=answered" in page.url
    # ... and by stage: nothing is won yet
    page.select_option("#f-stage", "won")
    page.click("#apply-filters")
    page.wait_for_selector("tr.empty")
    assert _row_sids(page) == []

    # When they open the review inbox, the recorded call is in this month's sample
    page.click("#nav a[data-route='inbox']")
    page.wait_for_selector("#inbox-sample")
    assert _row_sids(page, "#inbox-sample tr.inbox-row") == [world["recorded"]]
    page.click(f'#inbox-sample tr[data-call-sid="{world["recorded"]}"] a.review-link')

    # Then the call page shows its attribution with the confidence as a percentage
    page.wait_for_selector("#play-recording")
    assert page.inner_text("#v-channel") == "newspaper"
    assert page.inner_text("#v-campaign") == "dec-insert"
    assert page.inner_text("#v-confidence") == "100%"
    # When they press play, the <audio> element gets a fresh presigned URL and loads the MP3
    assert page.get_attribute("#recording-audio", "src") is None
    with page.expect_response(re.compile(r"/v1/calls/CA\w+/recording$")) as fresh:
        page.click("#play-recording")
    assert fresh.value.status == 200
    page.wait_for_function(
        "() => { const a = document.querySelector('#recording-audio');"
        " return a.readyState >= 2 && !a.error }",
        timeout=15000,
    )
    audio = page.evaluate(
        "() => { const a = document.querySelector('#recording-audio');"
        " return {src: a.currentSrc, ready: a.readyState, network: a.networkState, duration: a.duration} }"
    )
    assert audio["src"].startswith(local_stack.moto_url) and world["recorded"] in audio["src"], audio
    assert audio["network"] != 3 and 2.5 < audio["duration"] < 3.5, audio  # 3 = NETWORK_NO_SOURCE

    # When they score the call and set its stage and value
    patches: list[Any] = []
    page.on("request", lambda req: patches.append(req.post_data_json) if req.method == "PATCH" else None)
    page.fill("#f-score", "85")
    page.select_option("#f-stage", "won")
    page.fill("#f-value", "120000")
    page.fill("#f-tags", "implant, 新患")
    page.click("#save-outcome")
    page.wait_for_selector("#outcome-status .ok")
    # Then the API has it
    call = local_stack.request("GET", f"/v1/calls/{world['recorded']}", token=world["admin"]).json()
    outcome = (call["stage"], call["value"], call["score"], call["tags"])
    assert outcome == ("won", 120000, 85, ["implant", "新患"])
    assert page.inner_text("#v-stage") == "成約"
    # (each made on the version the page shows: a call changed meanwhile answers 409)
    assert all(isinstance(p.pop("version"), int) for p in patches)
    assert patches == [{"stage": "won", "value": 120000, "score": 85, "tags": ["implant", "新患"]}]
    # ... and saving again without a change sends nothing; a change sends only itself
    page.click("#save-outcome")
    page.wait_for_function(
        "() => document.querySelector('#outcome-status').textContent === '変更はありません。'"
    )
    page.fill("#f-score", "86")
    page.click("#save-outcome")
    page.wait_for_function("() => document.querySelector('#v-score').textContent === '86'")
    page.fill("#f-score", "85")
    page.click("#save-outcome")
    page.wait_for_function("() => document.querySelector('#v-score').textContent === '85'")
    sent = [{k: v for k, v in p.items() if k != "version"} for p in patches[1:]]
    assert sent == [{"score": 86}, {"score": 85}]
    assert patches[1]["version"] < patches[2]["version"]  # the form follows the call it saved
    # ... the inbox shows the score against the pass line
    page.click("#nav a[data-route='inbox']")
    page.wait_for_selector("#inbox-sample")
    assert page.inner_text(f'#inbox-sample tr[data-call-sid="{world["recorded"]}"] .badge.pass') == "85"
    assert page.inner_text("#inbox-scored") == "サンプル 1 件中 1 件採点済み"

    # And the channel report reflects it once the rollups have caught up
    local_stack.drain()
    page.click("#nav a[data-route='reports']")
    page.wait_for_selector("#report-channels tr[data-key='newspaper']")
    news = "#report-channels tr[data-key='newspaper']"
    assert _cell(page, news, "着信") == "2"
    assert _cell(page, news, "成約") == "1"
    assert _cell(page, news, "成約金額") == "120,000"
    assert _cell(page, "#report-channels tr[data-key='radio']", "成約") == "0"
    # ... with its charts drawn by Chart.js under the strict CSP, and the 7 x 24 heatmap
    page.wait_for_function(
        "() => window.Chart && Chart.getChart('chart-channels') && Chart.getChart('chart-trend')"
    )
    assert len(page.query_selector_all("#report-heatmap .heat-cell")) == 7 * 24
    assert sum(int(str(el.get_attribute("data-value"))) for el in page.query_selector_all(".heat-cell")) == 3
    for section in ("report-agents", "report-pools", "report-trend"):
        assert page.is_visible(f"#{section}")
    # ... and the won call is found by the stage filter
    page.goto(c.url("#/calls?stage=won"))
    assert _wait_rows(page, 1) == [world["recorded"]]

    # When they sign out, the cookie is gone and the console asks to sign in again
    page.click("#logout")
    page.wait_for_selector("#signin-form")
    assert [k for k in c.context.cookies() if k["name"] == "ct_session" and k["value"]] == []
    page.goto(c.url("#/calls"))
    page.wait_for_selector("#signin-form")


def test_the_pools_report_sizes_a_pool_for_its_late_callers(console: Any, local_stack: Any) -> None:
    # Given a one-number pool whose number went from session to session, each page hidden (its
    # release beacon sent) before the next visitor came: never two at once
    number = unique_number()
    account = apply_account(
        local_stack, "console-pool", name="Pool clinic", language="en-US",
        site={"origins": [ORIGIN], "numbers": [SITE_NUMBER]},
        pools=[{"id": "google", "channel": "google-ads", "match": {"utm_source": "google"},
                "numbers": [number]},
               # and a pool no visitor has reached yet (its ad not live)
               {"id": "yahoo", "channel": "yahoo-ads", "match": {"utm_source": "yahoo"},
                "numbers": [unique_number(), unique_number()]},
               # and a one-number pool two visitors reached at once (the second shown it shared)
               {"id": "line", "channel": "line-ads", "match": {"utm_source": "line"},
                "numbers": [unique_number()]}],
    )
    for _ in range(2):
        assert lease(local_stack, account, utm={"source": "line"}).json()["number"]
    for _ in range(3):
        session = "s-pool-" + secrets.token_hex(6)
        got = lease(local_stack, account, session=session).json()
        assert got["number"] == number and got["shared"] is False
        gone = lease(local_stack, account, session=session, number=number, lease_id=got["lease_id"],
                     release=True)
        assert gone.json() == {"released": True}
    c = console()
    page = c.sign_in(*create_console_user(local_stack, account, "manager"))
    # When their manager opens the reports
    page.click("#nav a[data-route='reports']")
    page.wait_for_selector("#report-pools tbody tr")
    row = "#report-pools tbody tr[data-key='google']"
    # Then the pool's estimated accuracy counts the late calls the next sessions would have taken
    # (each took the number the moment it was released: a quarter of calls come after the visit)
    assert _cell(page, row, "Est. accuracy") == "83.3%"
    # And the recommended size is what late callers need (3 numbers), not the peak's (2)
    assert _cell(page, row, "Peak in use") == "1"
    assert _cell(page, row, "Peak visitors") == "1"
    assert _cell(page, row, "Recommended size") == "3"
    # And the pool no session reached keeps its size (no demand seen), as `pools advise` says: not 0
    assert _cell(page, "#report-pools tbody tr[data-key='yahoo']", "Recommended size") == "2"
    # And an exhausted pool shows its demand beside its full use: 2 visitors at once on 1 number
    line = "#report-pools tbody tr[data-key='line']"
    assert (_cell(page, line, "Peak in use"), _cell(page, line, "Peak visitors")) == ("1", "2")


def test_the_pools_report_shows_visitors_an_address_cap_left_without_a_number(
    console: Any, local_stack: Any
) -> None:
    # Given a pool of 3 numbers whose account lets one address hold 1, and a page from an address
    # that already holds one asking again with a new visitor id
    numbers = [unique_number() for _ in range(3)]
    account = apply_account(
        local_stack, "console-cap", name="Cap clinic", language="en-US",
        site={"origins": [ORIGIN], "numbers": [SITE_NUMBER]}, dni={"max_numbers_per_address": 1},
        pools=[{"id": "google", "channel": "google-ads", "match": {"utm_source": "google"},
                "numbers": numbers}],
    )
    office = "10.99.0." + str(1 + secrets.randbelow(254))
    first = lease(local_stack, account, ip=office).json()
    second = lease(local_stack, account, ip=office).json()
    assert first["number"] in numbers and second["number"] is None
    c = console()
    page = c.sign_in(*create_console_user(local_stack, account, "manager"))
    # When their manager opens the reports
    page.click("#nav a[data-route='reports']")
    page.wait_for_selector("#report-pools tbody tr")
    # Then the pool's row shows the one visitor the cap left without a number, apart from exhaustions
    row = "#report-pools tbody tr"
    assert (_cell(page, row, "Address cap"), _cell(page, row, "Exhaustions")) == ("1", "0")


def test_on_a_phone_the_call_log_is_one_card_per_call(console: Any, world: dict[str, Any]) -> None:
    c = console(mobile=True)
    page = c.sign_in(*world["users"]["manager"])
    _wait_rows(page, 3)
    assert not page.is_visible("table.calls thead")
    _no_sideways_scroll(page, "calls")
    page.click(f'tr[data-call-sid="{world["recorded"]}"] a.call-link')
    page.wait_for_selector("#play-recording")
    _no_sideways_scroll(page, "call")
    page.click("#nav a[data-route='inbox']")
    page.wait_for_selector("#inbox-sample")
    _no_sideways_scroll(page, "inbox")
    page.click("#nav a[data-route='reports']")
    page.wait_for_selector("#report-pools")
    _no_sideways_scroll(page, "reports")


def test_times_are_shown_in_the_accounts_zone_wherever_the_browser_is(
    console: Any, local_stack: Any, world: dict[str, Any]
) -> None:
    # Given a manager of a Tokyo account on a laptop set to New York
    c = console(timezone_id="America/New_York")
    page = c.sign_in(*world["users"]["manager"])
    # When they open a call
    page.goto(c.url(f"#/calls/{world['recorded']}"))
    page.wait_for_selector("#summary")
    call = local_stack.request("GET", f"/v1/calls/{world['recorded']}", token=world["admin"]).json()
    started = call["started_at"]
    shown = page.inner_text("#summary")
    # Then its start is shown in Tokyo time (as the date filters count days), not New York's
    def as_in(zone: str) -> str:
        return str(page.evaluate(
            "([iso, zone]) => new Date(iso).toLocaleString('ja-JP', "
            "{dateStyle: 'medium', timeStyle: 'short', timeZone: zone})", [started, zone]))
    assert as_in("Asia/Tokyo") != as_in("America/New_York")
    assert as_in("Asia/Tokyo") in shown and as_in("America/New_York") not in shown


def test_a_server_that_fails_at_start_up_is_not_taken_for_a_sign_out(
    console: Any, world: dict[str, Any]
) -> None:
    # Given a signed-in manager whose next page load meets a failing server (503 on the session)
    c = console()
    page = c.sign_in(*world["users"]["manager"])
    failing = {"on": True}

    def session(route: Any) -> None:
        if failing["on"] and route.request.method == "GET":
            route.fulfill(status=503, content_type="application/json",
                          body='{"error": "unavailable", "message": "storage is unavailable; retry shortly"}')
        else:
            route.continue_()

    page.route("**/v1/session", session)
    page.reload()
    # Then the page says what failed and offers to try again, instead of the sign-in form
    page.wait_for_selector("#retry-start")
    assert "storage is unavailable" in page.inner_text("main")
    assert not page.is_visible("#signin-form")
    # And trying again once the server is back opens the console, still signed in
    failing["on"] = False
    page.click("#retry-start")
    page.wait_for_selector("#top:not([hidden])")
    assert not page.is_visible("#signin-form")


def test_a_recording_that_cannot_be_loaded_says_so(
    console: Any, local_stack: Any, world: dict[str, Any]
) -> None:
    # Given storage refusing the recording's link (it expired while the page sat paused)
    c = console()
    page = c.sign_in(*world["users"]["manager"])
    page.route(f"{local_stack.moto_url}/**", lambda route: route.fulfill(status=403, body="AccessDenied"))
    page.goto(c.url(f"#/calls/{world['recorded']}"))
    # When the manager presses play
    page.click("#play-recording")
    # Then the page says the recording could not be loaded, instead of a silent player
    page.wait_for_selector("#player-status .notice.error")
    assert "録音を読み込めませんでした" in page.inner_text("#player-status")


def _no_sideways_scroll(page: Any, where: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"{where}: the page scrolls sideways on a phone ({width}px)"


def test_a_marketer_sees_masked_numbers_and_no_player(console: Any, world: dict[str, Any]) -> None:
    c = console()
    page = c.sign_in(*world["users"]["marketer"])
    _wait_rows(page, 3)
    caller = _cell(page, f'tr[data-call-sid="{world["recorded"]}"]', "発信者")
    assert caller == MASKED
    assert CALLER not in page.inner_text("main")
    page.click(f'tr[data-call-sid="{world["recorded"]}"] a.call-link')
    page.wait_for_selector("#outcome")
    assert page.inner_text("#v-caller") == MASKED
    assert page.query_selector("audio") is None and page.query_selector("#play-recording") is None
    assert page.query_selector("#outcome-form") is None


def test_a_user_of_another_account_sees_none_of_it(console: Any, world: dict[str, Any]) -> None:
    c = console()
    page = c.sign_in(*world["users"]["other"])
    assert page.evaluate("document.documentElement.lang") == "en"
    assert _wait_rows(page, 1) == [world["foreign"]]
    page.goto(c.url(f"#/calls/{world['recorded']}"))
    page.wait_for_selector("main .notice.error")
    assert page.query_selector("#play-recording") is None and page.query_selector("#outcome") is None
    assert CALLER not in page.inner_text("main")
    page.click("#nav a[data-route='inbox']")
    page.wait_for_selector("#inbox-sample")
    assert _row_sids(page, "#inbox-sample tr.inbox-row") == []
    page.click("#nav a[data-route='reports']")
    page.wait_for_selector("#report-channels")
    assert page.query_selector("#report-channels tr[data-key='newspaper']") is None


def test_a_wrong_password_is_refused(console: Any, world: dict[str, Any]) -> None:
    c = console()
    email, _ = world["users"]["manager"]
    page = c.open()
    page.wait_for_selector("#signin-form")
    page.fill("#email", email)
    page.fill("#password", "not-the-password-1")
    page.click("#signin-submit")
    page.wait_for_selector("#signin-status .error")
    assert "wrong email or password" in page.inner_text("#signin-status").lower()
    assert page.is_hidden("#top")
    assert [k for k in c.context.cookies() if k["name"] == "ct_session"] == []


def test_an_expired_token_is_refused(console: Any, local_stack: Any, world: dict[str, Any]) -> None:
    c = console()
    email, password = world["users"]["manager"]
    expired = expired_id_token(local_stack, email, world["account"], "manager")
    # A cookie holding an expired token does not open the console
    c.context.add_cookies([{"name": "ct_session", "value": expired, "url": local_stack.url}])
    page = c.open("#/calls")
    page.wait_for_selector("#signin-form")
    assert page.is_hidden("#top")
    # A session that expires while the console is open goes back to sign-in, saying why
    page = c.sign_in(email, password)
    _wait_rows(page, 3)
    c.context.add_cookies([{"name": "ct_session", "value": expired, "url": local_stack.url}])
    page.click("#nav a[data-route='reports']")
    page.wait_for_selector("#signin-status .error")
    assert page.is_hidden("#top")
    assert "#/signin" in page.url


def test_a_user_created_without_a_password_chooses_one_at_first_sign_in(
    console: Any, local_stack: Any, world: dict[str, Any]
) -> None:
    # Given a user created without a password (Cognito would e-mail a temporary one: set it here)
    email = f"first-{secrets.token_hex(4)}@{world['account']}.example.com"
    created = local_stack.request(
        "POST", f"/v1/accounts/{world['account']}/users", token=local_stack.admin_token,
        json={"email": email, "role": "manager"},
    )
    assert created.status_code == 201, created.text
    local_stack.stack.client("cognito-idp").admin_set_user_password(
        UserPoolId=local_stack.stack.user_pool_id, Username=email, Password="Temp-pass-1!", Permanent=False
    )
    c = console()
    page = c.open()
    page.wait_for_selector("#signin-form")
    assert page.is_hidden("#new-password")
    # When they sign in with the temporary password, the console asks for their own
    page.fill("#email", email)
    page.fill("#password", "Temp-pass-1!")
    page.click("#signin-submit")
    page.wait_for_selector("#new-password", state="visible")
    assert page.is_hidden("#top")
    page.fill("#new-password", "Own-pass-word-2!")
    page.click("#signin-submit")
    # Then they are signed in, and the new password is theirs from now on
    page.wait_for_selector("#top:not([hidden])")
    _wait_rows(page, 3)
    page.click("#logout")
    page.wait_for_selector("#signin-form")
    c.sign_in(email, "Own-pass-word-2!")


def test_a_session_that_expires_while_the_console_sits_idle_returns_to_sign_in(
    console: Any, local_stack: Any, world: dict[str, Any]
) -> None:
    # Given a manager whose session (a correctly signed token) has 15 seconds left (time for a
    # loaded machine to open the console and list the calls before it expires)
    email, _ = world["users"]["manager"]
    now = int(time.time())
    token = forged_id_token(
        local_stack,
        {"email": email, "cognito:groups": [f"{world['account']}:manager"], "iat": now, "exp": now + 15},
    )
    c = console()
    c.context.add_cookies([{"name": "ct_session", "value": token, "url": local_stack.url}])
    page = c.open("#/calls")
    page.wait_for_selector("#top:not([hidden])")
    _wait_rows(page, 3)
    # When they do nothing until it expires, the console asks the server and returns to sign-in
    page.wait_for_selector("#signin-status .error", timeout=30_000)
    assert page.is_hidden("#top")
    assert page.query_selector("tr.call-row") is None


def test_saving_a_call_keeps_tags_that_hold_a_comma_and_a_cut_link_says_not_found(
        console: Any, local_stack: Any, world: dict[str, Any]) -> None:
    # Given a call whose tags hold a comma and a "、" (set through the API, as a call rule may)
    admin = local_stack.create_token(world["other"], "admin")
    tags = ["予約、初診", "follow-up, urgent"]
    resp = local_stack.request("PATCH", f"/v1/calls/{world['foreign']}", token=admin, json={"tags": tags})
    assert resp.status_code == 200, resp.text
    c = console()
    page = c.sign_in(*world["users"]["other"])
    patches: list[Any] = []
    page.on("request", lambda req: patches.append(req.post_data_json) if req.method == "PATCH" else None)
    page.goto(c.url(f"#/calls/{world['foreign']}"))
    page.wait_for_selector("#outcome-form")
    # When a manager sets only the stage and saves
    page.select_option("#f-stage", "lead")
    page.click("#save-outcome")
    page.wait_for_selector("#outcome-status .ok")
    # Then only the stage is sent, and the tags stay as they were
    assert [{k: v for k, v in p.items() if k != "version"} for p in patches] == [{"stage": "lead"}]
    call = local_stack.request("GET", f"/v1/calls/{world['foreign']}", token=admin).json()
    assert call["tags"] == tags

    # When someone else moves the call to "won" while the page still shows "lead" ...
    other = local_stack.request("PATCH", f"/v1/calls/{world['foreign']}", token=admin, json={"stage": "won"})
    assert other.status_code == 200, other.text
    # ... and the manager scores it and saves
    page.fill("#f-score", "70")
    page.click("#save-outcome")
    # Then the save is refused, the page says why and shows the call as it is now
    page.wait_for_selector("#outcome-status .error")
    assert "changed since you opened it" in page.inner_text("#outcome-status")  # an English account
    assert page.input_value("#f-stage") == "won" and page.inner_text("#v-stage") == "won"
    call = local_stack.request("GET", f"/v1/calls/{world['foreign']}", token=admin).json()
    assert (call["stage"], call.get("score")) == ("won", None)  # "lead" was not written back
    # And scoring it again on what it says now is saved, keeping the other user's stage
    page.fill("#f-score", "70")
    page.click("#save-outcome")
    page.wait_for_selector("#outcome-status .ok")
    call = local_stack.request("GET", f"/v1/calls/{world['foreign']}", token=admin).json()
    assert (call["stage"], call["score"]) == ("won", 70)

    # When a link cut short in the middle of an escape is opened
    page.goto(c.url("#/calls/%E0%A4%A"))
    # Then the page says so, instead of stopping at "Loading…"
    page.wait_for_selector("main .notice.error")
    # When the call list is opened with a date the API refuses
    page.goto(c.url("#/calls?from=2026-02-30"))
    # Then the error is shown without "Loading…" beside it
    page.wait_for_selector("main .notice.error")
    assert "from" in page.inner_text("main .notice.error")
    assert page.query_selector("#call-results .loading") is None
