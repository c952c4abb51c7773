"""dni.js in a real headless Chromium against the local stack (issue 4, Done when).

The test page is served from its own tiny HTTP server on 127.0.0.1 (another port than the API,
so the lease call is cross-origin and CORS is exercised). Debian's chromium at /usr/bin/chromium
is driven by Playwright's sync API; nothing is downloaded.
"""

from __future__ import annotations

import json
import string
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support import unique_number
from tests.support.browser import chromium, require_chromium
from tests.support.stack import apply_account

PAGES = Path(__file__).parent / "pages"

require_chromium()


class _Pages(ThreadingHTTPServer):
    daemon_threads = True
    pages: dict[str, str]


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        html = self.server.pages.get(self.path.split("?")[0])  # type: ignore[attr-defined]
        if html is None:
            self.send_error(404)
            return
        data = html.encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[_Pages]:
    server = _Pages(("127.0.0.1", 0), _Handler)
    server.pages = {}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def _origin(site: _Pages) -> str:
    return f"http://127.0.0.1:{site.server_address[1]}"


def _publish(site, local_stack, page: str, *, site_numbers, pool_prefix, pool_numbers=None) -> str:
    account = apply_account(
        local_stack,
        "web",
        name="Browser test",
        forward_to=site_numbers[0],
        site={"origins": [_origin(site)], "numbers": site_numbers},
        pools=[
            {
                "id": "google",
                "channel": "google-ads",
                "match": {"utm_source": "google"},
                "numbers": pool_numbers or [unique_number(pool_prefix) for _ in range(3)],
            }
        ],
    )
    template = string.Template((PAGES / page).read_text(encoding="utf-8"))
    site.pages[f"/{account}.html"] = template.safe_substitute(api=local_stack.url, account=account)
    return account


def _publish_jp(site, local_stack) -> str:
    """dni_jp.html of an account whose site shows 03-1234-5678 and 0120-123-456, 050 pool numbers."""
    return _publish(
        site, local_stack, "dni_jp.html", site_numbers=["+81312345678", "+81120123456"], pool_prefix="+8150"
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as b:
        yield b


def _leased(page, account) -> str:
    page.wait_for_function(f"() => (JSON.parse(localStorage.getItem('ct_dni_{account}') || '{{}}').n)")
    return str(page.evaluate(f"() => JSON.parse(localStorage.getItem('ct_dni_{account}')).n"))


def _text(page, sel):
    return page.inner_text(sel).strip()


def test_jp_numbers_swap_in_the_pages_own_formats_and_stick_across_page_views(site, local_stack, browser):
    account = _publish_jp(site, local_stack)
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{_origin(site)}/{account}.html?utm_source=google&utm_term=implant&gclid=TEST-GCLID")
    number = _leased(page, account)  # e.g. +815012345678
    nsn = number[3:]  # 5012345678
    a, b, c = "0" + nsn[:2], nsn[2:6], nsn[6:]  # 050 1234 5678
    page.wait_for_function("() => document.getElementById('dash').textContent !== '03-1234-5678'")
    assert _text(page, "#dash") == f"{a}-{b}-{c}"
    assert _text(page, "#paren") == f"({a}) {b}-{c}"
    assert _text(page, "#plain") == f"{a}{b}{c}"
    assert _text(page, "#intl") == f"+81 {a[1:]}-{b}-{c}"
    assert _text(page, "#trunk") == f"+81 (0){a[1:]}-{b}-{c}"  # the trunk 0 kept where the page keeps it
    assert _text(page, "#exchange") == f"{a}({b}){c}"  # the brackets where the page puts them
    assert _text(page, "#free") == f"{a}-{b}-{c}"
    assert _text(page, "#other") == "03-9999-0000"  # not the business's number: untouched
    assert page.get_attribute("#tel-intl", "href") == f"tel:{number}"
    assert page.get_attribute("#tel-nat", "href") == f"tel:{a}-{b}-{c}"
    assert page.get_attribute("#tel-trunk", "href") == f"tel:+81(0){a[1:]}-{b}-{c}"
    assert page.get_attribute("#tel-zero", "href") == f"tel:+81{a}{b}{c}"
    assert _text(page, "#tel-nat") == f"{a}-{b}-{c}"
    # never inside inputs, textareas or scripts
    assert page.input_value("#input") == "03-1234-5678"
    assert page.input_value("#textarea") == "03-1234-5678"
    assert "03-1234-5678" in page.inner_html("#inline")
    # numbers inserted later (popups, SPAs) are swapped too
    page.evaluate("addLater()")
    page.wait_for_function("() => !document.getElementById('popup').textContent.includes('03-1234-5678')")
    assert _text(page, "#popup") == f"ポップアップ: {a}-{b}-{c}"

    # The lease row carries the session's attribution for the voice webhook
    from calltrack.settings import get_settings

    item = local_stack.stack.client("dynamodb").get_item(
        TableName=get_settings().table_name("leases"), Key={"number": {"S": number}}, ConsistentRead=True
    )["Item"]
    attribution = json.loads(item["attribution"]["S"])
    assert attribution["gclid"] == "TEST-GCLID" and attribution["keyword"] == "implant"
    # (the landing page without the ad's parameters: one row per page in the landing-page report)
    assert attribution["utm"]["source"] == "google"
    assert attribution["landing_page"].endswith(f"/{account}.html")

    # Second page view in the same session, without the ad parameters: same number
    page.goto(f"{_origin(site)}/{account}.html")
    page.wait_for_function("() => document.getElementById('dash').textContent !== '03-1234-5678'")
    assert _text(page, "#dash") == f"{a}-{b}-{c}"
    assert _leased(page, account) == number
    context.close()


def test_a_number_of_another_area_code_length_is_written_in_its_own_grouping_whatever_the_dashes(
    site, local_stack, browser
):
    import secrets

    # Given a Tokyo page (03-1234-5678, 2-4-4) written with ASCII, full-width and minus dashes and
    # the long-vowel mark, and a pool of Yokohama numbers (045-123-4567, 3-3-4: the same 10 digits)
    yokohama = [f"+8145{secrets.randbelow(9_000_000) + 1_000_000}" for _ in range(3)]
    account = _publish(site, local_stack, "dni_jp_groups.html", site_numbers=["+81312345678"],
                       pool_prefix="+8145", pool_numbers=yokohama)
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{_origin(site)}/{account}.html?utm_source=google")
    number = _leased(page, account)  # +8145XXXXXXX
    a, b, c = "0" + number[3:5], number[5:8], number[8:]  # 045 XXX XXXX
    page.wait_for_function("() => document.getElementById('dash').textContent !== '03-1234-5678'")
    # Then each is written 045-XXX-XXXX with the page's own separator (not 04-5XXX-XXXX)
    assert _text(page, "#dash") == f"{a}-{b}-{c}"
    assert _text(page, "#fw") == f"{a}－{b}－{c}"
    assert _text(page, "#bar") == f"{a}ー{b}ー{c}"
    assert _text(page, "#minus") == f"{a}−{b}−{c}"
    assert _text(page, "#paren") == f"({a}) {b}-{c}"
    assert _text(page, "#intl") == f"+81 {a[1:]}-{b}-{c}"
    assert _text(page, "#trunk") == f"+81 (0){a[1:]}-{b}-{c}"
    assert _text(page, "#exchange") == f"{a}({b}){c}"
    assert _text(page, "#zero") == f"+81{a}{b}{c}"
    assert _text(page, "#spaced") == f"+81 ( 0 ) {a[1:]}-{b}-{c}"
    context.close()


def test_numbers_written_in_full_width_characters_swap_and_stay_full_width(site, local_stack, browser):
    # Given a Japanese page writing the business's numbers in full-width digits, dashes, long-vowel
    # marks, parentheses and plus, next to another number and a longer run of digits
    account = _publish(site, local_stack, "dni_jp_fullwidth.html",
                       site_numbers=["+81312345678", "+81120123456"], pool_prefix="+8150")
    context = browser.new_context()
    page = context.new_page()
    # When a visitor from an ad opens it
    page.goto(f"{_origin(site)}/{account}.html?utm_source=google")
    number = _leased(page, account)  # +8150XXXXXXXX
    a, b, c = "0" + number[3:5], number[5:9], number[9:]  # 050 XXXX XXXX
    page.wait_for_function("() => !document.getElementById('wide').textContent.startsWith('０３')")
    # Then the leased number is written in full-width characters, in its own grouping, with the
    # page's own separators
    wide = str.maketrans("0123456789", "０１２３４５６７８９")
    assert _text(page, "#wide") == f"{a}－{b}－{c}".translate(wide)
    assert _text(page, "#free") == f"{a}ー{b}ー{c}".translate(wide)
    assert _text(page, "#paren") == f"（{a}）{b}－{c}".translate(wide)
    assert _text(page, "#intl") == f"＋81 {a[1:]}－{b}－{c}".translate(wide)
    assert _text(page, "#tel") == f"{a}－{b}－{c}".translate(wide)
    assert page.get_attribute("#tel", "href") == f"tel:{a}-{b}-{c}"  # a tel: link stays ASCII
    # and what is not the business's number is left as it was
    assert _text(page, "#other") == "０３－９９９９－００００"
    assert _text(page, "#long") == "１０３１２３４５６７８"
    assert "（受付 9:00〜18:00）" in page.inner_text("body")
    context.close()


def test_us_formats_keep_their_style(site, local_stack, browser):
    account = _publish(site, local_stack, "dni_us.html", site_numbers=["+15551234567"], pool_prefix="+121")
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{_origin(site)}/{account}.html?utm_source=google&gclid=US-1")
    number = _leased(page, account)
    d = number[2:]  # ten digits
    page.wait_for_function("() => document.getElementById('dots').textContent !== '555.123.4567'")
    assert _text(page, "#paren") == f"({d[:3]}) {d[3:6]}-{d[6:]}"
    assert _text(page, "#dots") == f"{d[:3]}.{d[3:6]}.{d[6:]}"
    assert _text(page, "#intl") == f"+1 {d[:3]} {d[3:6]} {d[6:]}"
    assert _text(page, "#suite") == f"Suite 10 {d[:3]}-{d[3:6]}-{d[6:]}"  # "10 " is not "+1 (0)"
    assert page.get_attribute("#tel", "href") == f"tel:{number}"
    context.close()


def test_chinese_numbers_swap_with_country_code_86_from_the_lease_response(site, local_stack, browser):
    account = _publish(site, local_stack, "dni_cn.html", site_numbers=["+861012345678"], pool_prefix="+86138")
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{_origin(site)}/{account}.html?utm_source=google&gclid=CN-1")
    number = _leased(page, account)  # +86138XXXXXXXX: a mobile number, no trunk 0
    m = number[3:]  # 138XXXXXXXX
    page.wait_for_function("() => document.getElementById('dash').textContent !== '010-1234-5678'")
    assert _text(page, "#dash") == f"{m[:3]}-{m[3:7]}-{m[7:]}"
    assert _text(page, "#intl") == f"+86 {m[:3]} {m[3:7]} {m[7:]}"
    assert page.get_attribute("#tel", "href") == f"tel:{number}"
    context.close()


@pytest.mark.parametrize("blocked", ["**/dni/lease", "**/dni.js"])
def test_with_the_api_unreachable_the_page_keeps_its_numbers(site, local_stack, browser, blocked):
    account = _publish_jp(site, local_stack)
    context = browser.new_context()
    page = context.new_page()
    page.route(blocked, lambda route: route.abort("connectionrefused"))
    with page.expect_event("requestfailed", predicate=lambda r: "/dni" in r.url):
        page.goto(f"{_origin(site)}/{account}.html?utm_source=google&gclid=DOWN")
    page.wait_for_load_state("load")
    page.evaluate("addLater()")
    assert _text(page, "#dash") == "03-1234-5678"
    assert _text(page, "#intl") == "+81 3-1234-5678"
    assert page.get_attribute("#tel-intl", "href") == "tel:+81312345678"
    assert _text(page, "#popup") == "ポップアップ: 03-1234-5678"
    context.close()


def test_consent_option_waits_for_the_signal_before_storing_or_calling(site, local_stack, browser):
    account = _publish(
        site, local_stack, "dni_consent.html", site_numbers=["+81312345678"], pool_prefix="+8150"
    )
    context = browser.new_context()
    page = context.new_page()
    leases: list[str] = []
    page.on("request", lambda r: leases.append(r.url) if r.url.endswith("/dni/lease") else None)
    with page.expect_response(lambda r: r.url.endswith("/dni.js")):
        page.goto(f"{_origin(site)}/{account}.html?utm_source=google&gclid=CONSENT")
    page.wait_for_load_state("load")
    # Before consent: nothing stored, no lease call, numbers untouched
    assert page.evaluate(f"() => localStorage.getItem('ct_dni_{account}')") is None
    assert leases == [] and _text(page, "#dash") == "03-1234-5678"
    # When the site's consent banner fires the configured event, the swap happens
    page.evaluate("() => window.dispatchEvent(new Event('cookie-consent'))")
    _leased(page, account)
    page.wait_for_function("() => document.getElementById('dash').textContent !== '03-1234-5678'")
    assert len(leases) == 1
    # And the visitor's next page swaps at once: consent was given on the first (banners fire
    # their event on the click, not on every page; this page was left with the real number)
    with page.expect_response(lambda r: r.url.endswith("/dni/lease")):
        page.goto(f"{_origin(site)}/{account}.html")
    page.wait_for_function("() => document.getElementById('dash').textContent !== '03-1234-5678'")
    context.close()


def _lease_row(local_stack, number):
    from calltrack.settings import get_settings

    return local_stack.stack.client("dynamodb").get_item(
        TableName=get_settings().table_name("leases"), Key={"number": {"S": number}}, ConsistentRead=True
    )["Item"]


def _wait_for_row(local_stack, number, predicate, tries=100, pause=None):
    import time

    for _ in range(tries):
        row = _lease_row(local_stack, number)
        if predicate(row):
            return row
        (pause or time.sleep)(0.1)
    raise AssertionError(f"lease row of {number} never reached the expected state: {row}")


_SET_VISIBILITY = """(state) => {
  Object.defineProperty(document, 'visibilityState', {value: state, configurable: true});
  document.dispatchEvent(new Event('visibilitychange'));
}"""


def test_hiding_the_page_releases_the_number_and_showing_it_takes_the_same_number_back(
    site, local_stack, browser
):
    import time

    account = _publish_jp(site, local_stack)
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{_origin(site)}/{account}.html?utm_source=google&gclid=HIDE-1")
    number = _leased(page, account)
    lease_id = _lease_row(local_stack, number)["lease_id"]["S"]
    session_id = _lease_row(local_stack, number)["session_id"]["S"]
    # When the page is hidden (the visitor switches tab, or the dialer opens)
    page.evaluate(_SET_VISIBILITY, "hidden")
    # Then the beacon ends the lease now, keeping the session on the row for late calls
    row = _wait_for_row(local_stack, number, lambda r: float(r["expires_at"]["N"]) <= time.time())
    assert row["attribution"]["S"] and "HIDE-1" in row["attribution"]["S"]
    # And shown again, the page takes the same number back (a new lease of the same session: the
    # pool read counts it against the address cap)
    page.evaluate(_SET_VISIBILITY, "visible")
    row = _wait_for_row(local_stack, number, lambda r: float(r["expires_at"]["N"]) > time.time() + 60)
    assert row["lease_id"]["S"] != lease_id and row["session_id"]["S"] == session_id
    assert _leased(page, account) == number
    context.close()


def test_a_page_hidden_while_its_renewal_is_on_the_way_still_gives_the_number_back(
    site, local_stack, browser
):
    import time

    account = _publish_jp(site, local_stack)
    context = browser.new_context()
    page = context.new_page()
    held: list = []

    def hold_renewals(route, request) -> None:
        if request.method == "POST" and "release" not in (request.post_data or "") and holding:
            held.append(route)  # answered later, by the test
        else:
            route.continue_()

    holding = False
    page.route("**/dni/lease", hold_renewals)
    page.goto(f"{_origin(site)}/{account}.html?utm_source=google&gclid=RACE-1")
    number = _leased(page, account)
    # Given a renewal on its way (the page shown again after a few seconds asks at once) ...
    holding = True
    page.wait_for_timeout(5500)
    page.evaluate(_SET_VISIBILITY, "visible")
    for _ in range(50):
        if held:
            break
        page.wait_for_timeout(100)
    assert held, "the page did not renew"
    # ... when the page is hidden (its release beacon goes first) and the renewal lands after it
    page.evaluate(_SET_VISIBILITY, "hidden")
    with page.expect_response(lambda r: r.url.endswith("/dni/lease") and r.request.method == "POST"
                              and "release" not in (r.request.post_data or "")):
        held[0].continue_()
    # Then the number is given back all the same, not kept for a whole lease by a hidden page
    # (waiting through the page, so the routed release beacon goes on its way meanwhile)
    _wait_for_row(local_stack, number, lambda r: float(r["expires_at"]["N"]) <= time.time(),
                  pause=lambda seconds: page.wait_for_timeout(seconds * 1000))
    context.close()


def test_dni_js_puts_the_ga_client_id_and_fbp_into_the_lease_and_the_call_carries_them(
    site, local_stack, browser
):
    # Given a site whose visitor already has Google Analytics' and Meta's first-party cookies
    account = _publish(
        site,
        local_stack,
        "dni_jp.html",
        site_numbers=["+81312345678", "+81120123456"],
        pool_prefix="+8150",
    )
    context = browser.new_context()
    origin = _origin(site)
    context.add_cookies(
        [
            {"name": "_ga", "value": "GA1.1.1234567890.1764460800", "url": origin},
            {
                "name": "_ga_ABC123",
                "value": "GS2.1.s1764460800$o1$g1$t1764460900$j0$l0$h0",
                "url": origin,
            },
            {"name": "_fbp", "value": "fb.1.1764460800123.987654321", "url": origin},
        ]
    )
    page = context.new_page()
    # When they land from a Google ad and dni.js leases a number
    page.goto(f"{origin}/{account}.html?utm_source=google&gclid=GA-COOKIES&fbclid=IwAR-test")
    number = _leased(page, account)
    context.close()

    # Then the lease carries the GA4 client id and session id, _fbp and an fbc built from the fbclid
    from calltrack.settings import get_settings

    item = local_stack.stack.client("dynamodb").get_item(
        TableName=get_settings().table_name("leases"), Key={"number": {"S": number}}, ConsistentRead=True
    )["Item"]
    attribution = json.loads(item["attribution"]["S"])
    assert attribution["ga_client_id"] == "1234567890.1764460800"
    assert attribution["ga_session_id"] == "1764460800"
    assert attribution["fbp"] == "fb.1.1764460800123.987654321"
    assert attribution["fbc"].startswith("fb.1.") and attribution["fbc"].endswith(".IwAR-test")

    # And a call to that number carries them on the call (from the lease, no extra read)
    from datetime import UTC, datetime

    from calltrack.call_items import call_items
    from tests.support.twilio import play_call

    call_sid = play_call(local_stack, number, datetime.now(UTC).replace(microsecond=0))
    call = call_items().get(call_sid, consistent=True)
    assert call is not None
    on_call = (
        call["attribution"] if isinstance(call["attribution"], dict) else json.loads(call["attribution"])
    )
    assert on_call["gclid"] == "GA-COOKIES"
    assert (
        on_call["ga_client_id"] == "1234567890.1764460800"
        and on_call["fbp"] == "fb.1.1764460800123.987654321"
    )


def _two_pages_of_one_visit(site, local_stack, browser, gclid):
    """An account, and a visitor's browser context with two pages of the site: the first landed from
    an ad and leased a number, the second (same stored lease) renewed it. -> (account, context,
    first, second, number)."""
    account = _publish_jp(site, local_stack)
    context = browser.new_context()
    first = context.new_page()
    first.goto(f"{_origin(site)}/{account}.html?utm_source=google&gclid={gclid}")
    number = _leased(first, account)
    second = context.new_page()
    # (its number is in the tab-shared storage at once: wait for its renewal to be answered)
    asked = lambda r: r.url.endswith("/dni/lease") and r.request.method == "POST"  # noqa: E731
    with second.expect_response(asked) as renewal:
        second.goto(f"{_origin(site)}/{account}.html")
    assert renewal.value.ok and _leased(second, account) == number
    return account, context, first, second, number


def test_a_hidden_tab_does_not_end_the_lease_another_tab_of_the_visitor_still_shows(
    site, local_stack, browser
):
    import time

    # Given a visitor with the site open in one tab, then in a second one (the same stored lease,
    # renewed by the second tab, often within the same second: pages are told apart by page_id)
    account, context, first, second, number = _two_pages_of_one_visit(site, local_stack, browser, "TABS-1")
    row = _lease_row(local_stack, number)
    renewed, lease_id = float(row["expires_at"]["N"]), row["lease_id"]["S"]
    # When the first tab is hidden (the visitor switches to the second)
    first.evaluate(_SET_VISIBILITY, "hidden")
    time.sleep(1.0)  # the beacon has arrived
    # Then the lease is still live and the same (a release would end it, and the second tab, told of
    # the release, take the number back as a new lease): nobody else may get the number
    row = _lease_row(local_stack, number)
    expires = float(row["expires_at"]["N"])
    assert row["lease_id"]["S"] == lease_id and expires >= renewed and expires > time.time() + 60
    # And when the second tab is hidden too, the lease ends
    second.evaluate(_SET_VISIBILITY, "hidden")
    _wait_for_row(local_stack, number, lambda r: float(r["expires_at"]["N"]) <= time.time())
    context.close()


def test_closing_the_window_that_renewed_last_does_not_leave_the_other_visible_window_showing_a_free_number(
    site, local_stack, browser
):
    import time

    # Given a visitor with the site open in two windows side by side (both visible, one session), the
    # second renewing the shared lease after the first took it
    account, context, first, second, number = _two_pages_of_one_visit(site, local_stack, browser, "WINDOWS-1")
    session = _lease_row(local_stack, number)["session_id"]["S"]
    assert first.evaluate("document.visibilityState") == "visible"
    # When the second window is closed (its release beacon ends the lease it renewed last)
    second.close(run_before_unload=True)
    # Then within seconds (not at the first window's next heartbeat, minutes away) the number the
    # first window shows is held for the visitor's session again, so nobody else is given it
    time.sleep(1.0)  # the beacon has arrived
    row = _wait_for_row(local_stack, number, lambda r: float(r["expires_at"]["N"]) > time.time() + 60)
    assert row["session_id"]["S"] == session
    assert _leased(first, account) == number
    context.close()


def test_a_first_lease_answered_503_is_asked_again_within_seconds(site, local_stack, browser):
    account = _publish_jp(site, local_stack)
    # Given the lease API answering 503 once (a throttled or restarting function)
    context = browser.new_context()
    page = context.new_page()
    refused: list[str] = []

    def once_503(route, request) -> None:
        if request.method == "POST" and not refused:
            refused.append(request.url)
            route.fulfill(status=503, body='{"message": "try again"}', content_type="application/json")
        else:
            route.continue_()

    page.route("**/dni/lease", once_503)
    # When a visitor lands from a Google ad
    page.goto(f"{_origin(site)}/{account}.html?utm_source=google&gclid=RETRY-1")
    # Then the page asks again within seconds (not at the next heartbeat, ten minutes away) and shows
    # a pool number
    page.wait_for_function(
        f"() => (JSON.parse(localStorage.getItem('ct_dni_{account}') || '{{}}').n)", timeout=15_000
    )
    assert refused and _leased(page, account).startswith("+8150")
    context.close()


_HIDDEN_AT_LOAD = """
Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true});
"""


def _lease_requests(page) -> list[str]:
    """The bodies of the lease requests (renewals and releases) the page sends from now on."""
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.post_data or "") if r.url.endswith("/dni/lease")
            and r.method == "POST" else None)
    return sent


def test_a_tab_opened_in_the_background_leases_when_shown_and_never_ends_the_visible_tabs_lease(
    site, local_stack, browser
):
    import time

    account = _publish_jp(site, local_stack)
    # Given a visitor reading the site in one tab
    context = browser.new_context()
    first = context.new_page()
    first.goto(f"{_origin(site)}/{account}.html?utm_source=google&gclid=BG-1")
    number = _leased(first, account)
    lease_id = _lease_row(local_stack, number)["lease_id"]["S"]
    # When they open a link in a background tab (loaded hidden, as a ctrl+click or a prerender)
    background = context.new_page()
    background.add_init_script(_HIDDEN_AT_LOAD)
    sent = _lease_requests(background)
    background.goto(f"{_origin(site)}/{account}.html")
    background.wait_for_timeout(1500)
    # Then the background tab asks nothing, and the number the first tab shows stays leased to it
    assert sent == []
    row = _lease_row(local_stack, number)
    assert row["lease_id"]["S"] == lease_id and float(row["expires_at"]["N"]) > time.time() + 60
    # And shown, it takes the visitor's lease (the same number, the same session)
    background.evaluate(_SET_VISIBILITY, "visible")
    background.wait_for_function("() => document.getElementById('dash').textContent !== '03-1234-5678'")
    assert _text(background, "#dash") == _text(first, "#dash") and len(sent) == 1
    context.close()


def test_a_tab_left_from_an_older_ad_click_takes_the_newer_session_instead_of_writing_over_it(
    site, local_stack, browser
):
    import time

    account = _publish_jp(site, local_stack)
    key = f"ct_dni_{account}"
    # Given a tab that landed from an ad (session S1), hidden for more than the session's 30 minutes
    context = browser.new_context()
    old = context.new_page()
    old.goto(f"{_origin(site)}/{account}.html?utm_source=google&gclid=OLD-CLICK")
    _leased(old, account)
    old.evaluate(_SET_VISIBILITY, "hidden")
    old.evaluate(f"() => {{ const s = JSON.parse(localStorage.getItem('{key}')); s.t -= 31 * 60e3;"
                 f" localStorage.setItem('{key}', JSON.stringify(s)); }}")
    # and a new ad click in another tab (a new session S2, its own number)
    new = context.new_page()
    new.goto(f"{_origin(site)}/{account}.html?utm_source=google&gclid=NEW-CLICK")
    newer = new.evaluate(f"() => JSON.parse(localStorage.getItem('{key}')).s")
    number = _leased(new, account)
    # When the old tab is shown again
    with old.expect_response(lambda r: r.url.endswith("/dni/lease") and r.request.method == "POST"
                             and "release" not in (r.request.post_data or "")) as renewal:
        old.evaluate(_SET_VISIBILITY, "visible")
    assert renewal.value.ok
    time.sleep(0.3)
    # Then it joins the newer session (its number, its click) rather than bring back the old one
    stored = old.evaluate(f"() => JSON.parse(localStorage.getItem('{key}'))")
    assert stored["s"] == newer and stored["n"] == number
    assert "NEW-CLICK" in _lease_row(local_stack, number)["attribution"]["S"]
    old.wait_for_function("(n) => document.getElementById('dash').textContent.replace(/\\D/g, '')"
                          " === '0' + n.slice(3)", arg=number)
    context.close()


def test_heartbeats_go_on_when_the_device_clock_is_set_back(site, local_stack, browser):
    import time

    account = _publish_jp(site, local_stack)
    context = browser.new_context()
    page = context.new_page()
    page.clock.install()
    page.goto(f"{_origin(site)}/{account}.html?utm_source=google&gclid=CLOCK-1")
    _leased(page, account)
    sent = _lease_requests(page)
    # Given the device clock corrected an hour back while the page is open
    page.clock.set_system_time(time.time() - 3600)
    # When a heartbeat's time has passed on the page (the 10-minute lease beats every 200 s)
    with page.expect_request(lambda r: r.url.endswith("/dni/lease") and r.method == "POST"):
        page.clock.fast_forward(240_000)
    # Then the page renewed its lease (it would have waited an hour, the number free for others)
    assert len(sent) == 1 and "release" not in sent[0]
    # And when the device sleeps (the wall clock goes on, the page's own clock may not), the page
    # renews at its next look (every 30 s), not a whole heartbeat after waking
    page.clock.set_system_time(time.time() + 3600)
    with page.expect_request(lambda r: r.url.endswith("/dni/lease") and r.method == "POST"):
        page.clock.run_for(31_000)
    assert len(sent) == 2
    context.close()


def test_call_links_with_an_extension_or_set_after_load_dial_the_leased_number(site, local_stack, browser):
    account = _publish(site, local_stack, "dni_jp_links.html", site_numbers=["+81312345678"],
                       pool_prefix="+8150")
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{_origin(site)}/{account}.html?utm_source=google&gclid=LINKS-1")
    number = _leased(page, account)
    national = "0" + number[3:]

    def href(sel: str) -> str:
        return str(page.get_attribute(sel, "href"))

    page.wait_for_function("() => document.getElementById('button').getAttribute('href') !== '#'"
                           " && !document.getElementById('button').getAttribute('href').endsWith('12345678')")
    # Then a link with an extension or pauses dials the leased number and keeps them (a link the
    # page cannot decode does not stop the others)
    assert href("#ext").startswith("tel:+" + number[1:3]) and href("#ext").endswith(";ext=123")
    assert href("#ext").replace("-", "")[:-len(";ext=123")].endswith(number[3:])
    assert href("#pause").replace("-", "") == f"tel:{national},,123"
    assert href("#plain").replace("-", "") == f"tel:{national}"
    assert href("#bad") == "tel:100%"
    # And the button whose href the page's script set after the lease dials it too
    assert href("#button").replace("-", "") in (f"tel:+{number[1:]}", f"tel:{number}")
    context.close()


def test_a_landing_page_with_a_very_long_ad_url_still_gets_a_number(site, local_stack, browser):
    account = _publish_jp(site, local_stack)
    context = browser.new_context()
    page = context.new_page()
    long_content = "x" * 4300
    page.goto(f"{_origin(site)}/{account}.html?utm_source=google&gclid=LONG-1&utm_content={long_content}"
              f"&utm_term={'歯医者' * 400}")
    # Then the lease is granted (the values are cut to fit the request) and the page shows a number
    number = _leased(page, account)
    attribution = json.loads(_lease_row(local_stack, number)["attribution"]["S"])
    assert attribution["gclid"] == "LONG-1"
    page.wait_for_function("() => document.getElementById('dash').textContent !== '03-1234-5678'")
    context.close()


def test_an_ad_name_cut_inside_an_emoji_still_gets_a_number(site, local_stack, browser):
    from urllib.parse import quote

    # Given an auto-filled ad name whose 256th character is the first half of an emoji
    account = _publish_jp(site, local_stack)
    context = browser.new_context()
    page = context.new_page()
    content = quote("a" * 255 + "😀" + "b" * 10)
    page.goto(f"{_origin(site)}/{account}.html?utm_source=google&gclid=EMOJI-1&utm_content={content}")
    # Then the lease is granted with the value cut before the emoji (half of it was a 400 for the visit)
    number = _leased(page, account)
    attribution = json.loads(_lease_row(local_stack, number)["attribution"]["S"])
    assert attribution["utm"]["content"] == "a" * 255 and attribution["gclid"] == "EMOJI-1"
    context.close()


def test_a_page_answered_without_a_number_shows_the_sites_number_again(site, local_stack, browser):
    import json

    account = _publish_jp(site, local_stack)
    context = browser.new_context()
    page = context.new_page()
    answers: list[dict] = []

    def no_number_after_the_first(route, request) -> None:
        if request.method != "POST" or "release" in (request.post_data or ""):
            route.continue_()
        elif not answers:
            response = route.fetch()
            answers.append(response.json())
            route.fulfill(response=response)
        else:  # what the API answers a page whose address holds its share of the pool
            body = {**answers[0], "number": None, "display": None, "expires_at": None, "lease_id": None,
                    "shared": False, "confidence": None, "heartbeat_seconds": 300}
            route.fulfill(status=200, body=json.dumps(body), content_type="application/json")

    page.route("**/dni/lease", no_number_after_the_first)
    # Given a page showing a leased number
    page.goto(f"{_origin(site)}/{account}.html?utm_source=google&gclid=REVOKED-1")
    _leased(page, account)
    page.wait_for_function("() => document.getElementById('dash').textContent !== '03-1234-5678'")
    # When its lease is revoked and its next request is answered without a number
    page.evaluate(_SET_VISIBILITY, "hidden")
    page.evaluate(_SET_VISIBILITY, "visible")
    # Then the page shows the site's own number again and forgets the lease (no heartbeat or
    # release names a number another visitor may now hold)
    page.wait_for_function("() => document.getElementById('dash').textContent === '03-1234-5678'")
    assert page.get_attribute("#tel-nat", "href") == "tel:03-1234-5678"
    stored = page.evaluate(f"() => JSON.parse(localStorage.getItem('ct_dni_{account}'))")
    assert not stored.get("n") and not stored.get("l")
    context.close()


def test_ad_cookies_of_a_shape_the_api_refuses_are_left_out_and_the_visitor_gets_a_number(
    site, local_stack, browser
):
    # Given a visitor whose Meta and GA cookies are longer than the lease API accepts (a 25-digit
    # random part, a 21-digit client id, an fbclid of 600 characters)
    account = _publish_jp(site, local_stack)
    context = browser.new_context()
    origin = _origin(site)
    context.add_cookies([
        {"name": "_fbp", "value": "fb.1.1764460800123." + "9" * 25, "url": origin},
        {"name": "_ga", "value": "GA1.1." + "1" * 21 + ".1764460800", "url": origin},
    ])
    page = context.new_page()
    sent = _lease_requests(page)
    # When they land from an ad
    page.goto(f"{origin}/{account}.html?utm_source=google&gclid=ODD-COOKIES&fbclid={'A' * 600}")
    # Then the page gets a pool number (the API would refuse those values with a 400, for good)
    assert _leased(page, account).startswith("+8150")
    first = next(body for body in sent if body)
    assert '"fbp"' not in first and '"fbc"' not in first and '"ga_client_id"' not in first
    context.close()


def test_a_page_loaded_after_its_lease_was_revoked_forgets_the_lease(site, local_stack, browser):
    import json

    account = _publish_jp(site, local_stack)
    context = browser.new_context()
    page = context.new_page()
    # Given a session holding a lease (the visitor's storage names its number and lease)
    page.goto(f"{_origin(site)}/{account}.html?utm_source=google&gclid=REVOKED-2")
    _leased(page, account)
    # When the lease is revoked and the next page of the visit is answered without a number
    page.route("**/dni/lease", lambda route, request: route.fulfill(
        status=200, content_type="application/json",
        body=json.dumps({"number": None, "replace": ["+81312345678"], "formats": {}, "lease_id": None,
                         "heartbeat_seconds": 300}))
        if request.method == "POST" else route.continue_())
    page.goto(f"{_origin(site)}/{account}.html")
    # Then the stored number and lease are forgotten (no later request names the revoked lease),
    # and the page keeps the site's own number
    page.wait_for_function(
        f"() => !JSON.parse(localStorage.getItem('ct_dni_{account}') || '{{}}').l", timeout=10_000
    )
    assert not page.evaluate(f"() => JSON.parse(localStorage.getItem('ct_dni_{account}')).n")
    assert _text(page, "#dash") == "03-1234-5678"
    context.close()
