"""DNI on the local stack: leases over real HTTP, no double lease under concurrency, stickiness,
renewal, exhaustion with lower confidence, late calls through the voice webhook, pool report."""

from __future__ import annotations

import json
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support import unique_number
from tests.support.dni import ORIGIN, SITE_NUMBER, lease
from tests.support.stack import apply_account
from tests.support.twilio import voice_form


def make_account(stack, *, size=4, lease_minutes=30, overflow=False, origins=(ORIGIN,), dni=None):
    numbers = [unique_number() for _ in range(size)]
    pool = {
        "id": "google",
        "channel": "google-ads",
        "campaign": "implant",
        "lease_minutes": lease_minutes,
        "match": {"utm_source": "google", "click_ids": ["gclid", "gbraid", "wbraid"]},
        "numbers": numbers,
    }
    if overflow:
        pool["overflow_number"] = unique_number()
    account = apply_account(
        stack,
        "dni",
        name="DNI test clinic",
        site={"origins": list(origins), "numbers": [SITE_NUMBER]},
        pools=[pool],
        **({"dni": dni} if dni else {}),
    )
    return account, pool




def leases_rows(stack, numbers):
    from calltrack.settings import get_settings

    client = stack.stack.client("dynamodb")
    table = get_settings().table_name("leases")
    out = {}
    for n in numbers:
        item = client.get_item(TableName=table, Key={"number": {"S": n}}, ConsistentRead=True).get("Item")
        if item:
            out[n] = item
    return out


def test_a_google_visitor_gets_a_pool_number_with_cors_for_the_site(local_stack):
    account, pool = make_account(local_stack)
    resp = lease(local_stack, account)
    assert resp.status_code == 200
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    body = resp.json()
    assert body["number"] in pool["numbers"] and body["pool"] == "google" and body["lease_id"]
    assert body["display"].startswith("050-") and body["expires_at"].endswith("Z")
    assert body["replace"] == [SITE_NUMBER] and body["shared"] is False


def test_same_session_is_sticky_and_renews(local_stack):
    account, _ = make_account(local_stack)
    first = lease(local_stack, account, session="s-sticky-" + secrets.token_hex(4), visitor="v-sticky-0001")
    session = json.loads(first.request.body)["session_id"]
    time.sleep(1.1)
    second = lease(local_stack, account, session=session, visitor="v-sticky-0001").json()
    assert second["number"] == first.json()["number"] and second["lease_id"] == first.json()["lease_id"]
    assert second["expires_at"] > first.json()["expires_at"]
    # another session gets another number
    assert lease(local_stack, account).json()["number"] != second["number"]


def test_visitor_that_no_pool_matches_gets_no_number(local_stack):
    account, _ = make_account(local_stack)
    body = lease(local_stack, account, utm={}, gclid=None, referrer=None).json()
    assert body["number"] is None and body["lease_id"] is None and body["replace"] == [SITE_NUMBER]


@pytest.mark.parametrize("size", [16, 64])
def test_64_concurrent_sessions_never_double_lease(local_stack, size):
    account, pool = make_account(local_stack, size=size)
    with ThreadPoolExecutor(max_workers=64) as ex:
        responses = list(ex.map(lambda i: lease(local_stack, account), range(64)))
    assert all(r.status_code == 200 for r in responses), {r.status_code for r in responses}
    bodies = [r.json() for r in responses]
    leased = [b for b in bodies if b["lease_id"]]
    # Then every number is leased to at most one session, and as many sessions as numbers got one
    assert len(leased) == min(64, size)
    assert len({b["number"] for b in leased}) == len(leased)
    assert all(b["shared"] and b["confidence"] < 1 for b in bodies if not b["lease_id"])
    # And the table agrees: each row holds the lease the response announced
    rows = leases_rows(local_stack, pool["numbers"])
    announced = {b["number"]: b["lease_id"] for b in leased}
    assert {n: r["lease_id"]["S"] for n, r in rows.items()} == announced


def test_exhausted_pool_still_answers_and_counts_it(local_stack):
    account, pool = make_account(local_stack, size=1, overflow=True)
    assert lease(local_stack, account).json()["lease_id"]
    extra = lease(local_stack, account).json()
    assert extra["number"] == pool["overflow_number"] and extra["shared"] and extra["confidence"] == 0.5


def test_bad_input_never_5xx(local_stack):
    account, _ = make_account(local_stack)
    unknown = lease(local_stack, "no-such-" + secrets.token_hex(4))
    assert unknown.status_code == 404 and unknown.json()["field"] == "account"
    bad = local_stack.request("POST", "/dni/lease", data='{"account": 5}', headers={"Origin": ORIGIN})
    assert bad.status_code == 400 and bad.json()["field"] == "account"
    big = local_stack.request("POST", "/dni/lease", data="x" * 20000, headers={"Origin": ORIGIN})
    assert big.status_code == 413
    evil = lease(local_stack, account, origin="https://evil.example")
    assert evil.status_code == 403 and "Access-Control-Allow-Origin" not in evil.headers
    pre = local_stack.request(
        "OPTIONS", "/dni/lease", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert pre.status_code == 204 and pre.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_one_visitor_hammering_gets_429(local_stack):
    # Given one visitor asking for a lease again and again (30 a minute are allowed)
    account, _ = make_account(local_stack, size=2)
    responses = [
        lease(local_stack, account, visitor="v-hammer-" + account[-10:], session="s-hammer-0001")
        for _ in range(60)
    ]
    codes = [r.status_code for r in responses]
    # Then the first 30 are served and a 429 follows (refills are slow: 0.5 a second), never a 5xx
    assert 429 in codes and codes[:30] == [200] * 30, codes
    assert all(code in (200, 429) for code in codes)
    refused = responses[codes.index(429)]
    assert refused.json()["error"] == "too_many_requests" and refused.headers["Retry-After"]


def test_one_address_cannot_take_the_whole_pool_over_http(local_stack):
    # Given a pool of 6 numbers whose account lets one address hold 2, and a script at one address
    # (the handler sees it as the event's sourceIp, as API Gateway hands it the connection's)
    account, pool = make_account(local_stack, size=6, dni={"max_numbers_per_address": 2})
    script = "10.77.0." + str(1 + secrets.randbelow(254))
    sessions = [f"s-script-{i}-" + secrets.token_hex(4) for i in range(6)]
    # When it asks 6 times, a new visitor id each time
    bodies = [lease(local_stack, account, ip=script, session=sid).json() for sid in sessions]
    # Then it holds 2 numbers; the other 4 answers have no number (the page keeps the site's)
    assert [bool(b["lease_id"]) for b in bodies] == [True, True, False, False, False, False]
    held = {b["number"] for b in bodies[:2]}
    assert len(held) == 2
    for b in bodies[2:]:
        assert b["number"] is None and b["lease_id"] is None and b["shared"] is False
    # And a visitor from another address still gets a free number of the pool
    other = lease(local_stack, account, ip="10.78.0." + str(1 + secrets.randbelow(254))).json()
    assert other["lease_id"] and other["shared"] is False
    assert other["number"] in pool["numbers"] and other["number"] not in held
    # And the script's pages' heartbeats still renew what they hold
    first = bodies[0]
    beat = lease(local_stack, account, ip=script, session=sessions[0], number=first["number"],
                 lease_id=first["lease_id"]).json()
    assert beat["lease_id"] == first["lease_id"] and beat["shared"] is False
    # And the lease rows carry one key for the address, never the address
    rows = leases_rows(local_stack, pool["numbers"])
    assert len({rows[n]["client_key"]["S"] for n in held}) == 1
    assert rows[other["number"]]["client_key"] != rows[first["number"]]["client_key"]
    assert script not in json.dumps(rows)
    # And the pools report counts the capped answers apart from exhaustions
    token = local_stack.create_token(account, "manager")
    [report] = local_stack.request("GET", "/v1/reports/pools", token=token).json()["pools"]
    assert (report["address_capped"], report["exhaustions"]) == (4, 0)


def test_script_is_served_as_cacheable_javascript(local_stack):
    resp = local_stack.request("GET", "/dni.js")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/javascript")
    from calltrack_cli.dni_js import MAX_BYTES

    assert "max-age" in resp.headers["Cache-Control"] and len(resp.content) < MAX_BYTES


def _call(stack, number):
    form = voice_form(number, caller="+819012345678", ApiVersion="2010-04-01")
    resp = stack.twilio_post("/twilio/voice", form)
    assert resp.status_code == 200, resp.text
    return form["CallSid"]


def _get_call(stack, account, sid):
    token = stack.create_token(account, "manager")
    stack.drain()
    resp = stack.request("GET", f"/v1/calls/{sid}", token=token)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_call_to_a_leased_number_carries_the_sessions_keyword_gclid_landing_page_and_utm(local_stack):
    account, _ = make_account(local_stack)
    leased = lease(local_stack, account, gclid="G-CALL-1", keyword="インプラント 費用")
    number = leased.json()["number"]
    call = _get_call(local_stack, account, _call(local_stack, number))
    assert call["keyword"] == "インプラント 費用" and call["gclid"] == "G-CALL-1"
    assert call["landing_page"] == "https://acme.example.jp/implant"  # the page, not the ad's parameters
    assert call["utm"]["source"] == "google" and call["utm"]["campaign"] == "implant"
    assert call["channel"] == "google-ads" and call["confidence"] == 1.0


def _age_lease(stack, number, minutes_ago):
    from calltrack.settings import get_settings

    ended = time.time() - minutes_ago * 60
    stack.stack.client("dynamodb").update_item(
        TableName=get_settings().table_name("leases"),
        Key={"number": {"S": number}},
        UpdateExpression="SET expires_at = :e, released_at = :e",
        ExpressionAttributeValues={":e": {"N": f"{ended:.3f}"}},
    )


def test_late_call_goes_to_the_last_session_with_confidence_falling_with_the_gap(local_stack):
    account, _ = make_account(local_stack, size=3)
    numbers = []
    for gap in (10, 100, 500):  # minutes since the lease ended (window: 120)
        number = lease(local_stack, account, gclid=f"G-LATE-{gap}").json()["number"]
        _age_lease(local_stack, number, gap)
        numbers.append(number)
    calls = [_get_call(local_stack, account, _call(local_stack, n)) for n in numbers]
    assert calls[0]["gclid"] == "G-LATE-10" and calls[1]["gclid"] == "G-LATE-100"
    assert 1.0 > calls[0]["confidence"] > calls[1]["confidence"] > 0
    assert calls[2]["gclid"] is None and calls[2]["channel"] == "google-ads"  # beyond the window
    assert calls[2]["confidence"] < calls[1]["confidence"]


def test_call_to_a_shared_number_of_an_exhausted_pool_has_lower_confidence(local_stack):
    account, _ = make_account(local_stack, size=1)
    lease(local_stack, account)
    shared = lease(local_stack, account).json()
    assert shared["shared"]
    call = _get_call(local_stack, account, _call(local_stack, shared["number"]))
    assert call["confidence"] < 1.0


def test_pool_report_shows_peak_utilisation_exhaustion_and_recommended_size(local_stack):
    account, _ = make_account(local_stack, size=2)
    for _ in range(3):  # two leases, one exhaustion
        lease(local_stack, account)
    token = local_stack.create_token(account, "marketer")
    resp = local_stack.request("GET", "/v1/reports/pools", token=token)
    assert resp.status_code == 200, resp.text
    [pool] = resp.json()["pools"]
    assert pool["pool"] == "google" and pool["size"] == 2
    assert pool["peak_concurrent_leases"] == 2 and pool["utilisation"] == 1.0
    assert pool["exhaustions"] == 1 and pool["peak_concurrent_sessions"] == 3
    assert pool["recommended_size"] == 4
    # the shared session's calls cannot be told apart; three numbers would have kept all three apart
    assert pool["estimated_accuracy"] == pytest.approx(2 / 3, abs=1e-3)
    assert pool["recommended_size_for_accuracy"] == 3 and pool["busiest_day_leases"] == 3
    assert resp.json()["accuracy_target"] == 0.99 and resp.json()["late_calls"]["share"] == 0.25
    other, _ = make_account(local_stack, size=1)
    assert (
        local_stack.request("GET", "/v1/reports/pools", token=token, params={"account": other}).status_code
        == 403
    )
    assert local_stack.request("GET", "/v1/reports/pools").status_code == 401


def test_pool_report_still_counts_the_sessions_of_numbers_an_apply_took_out_of_the_pool(local_stack):
    from tests.support.accounts import account_config

    # Given a pool of 4 numbers, 3 of them leased to visitors at once
    account, pool = make_account(local_stack, size=4)
    held = {lease(local_stack, account).json()["number"] for _ in range(3)}
    assert len(held) == 3
    token = local_stack.create_token(account, "manager")
    before = local_stack.request("GET", "/v1/reports/pools", token=token).json()["pools"][0]
    assert before["peak_concurrent_sessions"] == 3
    # When the owner shrinks the pool to one number, a number none of them holds
    keep = next(n for n in pool["numbers"] if n not in held)
    result = local_stack.apply(account_config(
        account, name="DNI test clinic", site={"origins": [ORIGIN], "numbers": [SITE_NUMBER]},
        pools=[{**pool, "numbers": [keep]}]))
    assert sorted(result["numbers"]["removed"]) == sorted(set(pool["numbers"]) - {keep})
    from calltrack.accounts import account_reader

    account_reader().forget()  # warm functions see a config within 30 s: skip the wait
    # Then the report still counts the three sessions of the numbers taken out (the demand the pool
    # had), and the one number left is advised to become enough for them
    after = local_stack.request("GET", "/v1/reports/pools", token=token).json()["pools"][0]
    assert after["size"] == 1
    assert after["peak_concurrent_sessions"] == 3 and after["leases"] == 3
    assert after["advised_size"] >= 3 and after["recommended_size_for_accuracy"] >= 3
    # And the current number's utilisation is its own: it held no lease
    assert (after["peak_concurrent_leases"], after["utilisation"]) == (0, 0.0)


def test_pool_report_counts_the_late_calls_its_pool_learns_from(local_stack):
    # Given a one-number pool whose visitor left the page (release beacon) and then called
    account, _ = make_account(local_stack, size=1)
    session = "s-late-" + secrets.token_hex(6)
    got = lease(local_stack, account, session=session).json()
    gone = lease(local_stack, account, session=session, number=got["number"], lease_id=got["lease_id"],
                 release=True)
    assert gone.json() == {"released": True}
    call = _get_call(local_stack, account, _call(local_stack, got["number"]))
    assert call["attribution_basis"] == "late"
    # When its manager reads the pools report
    token = local_stack.create_token(account, "manager")
    resp = local_stack.request("GET", "/v1/reports/pools", token=token)
    assert resp.status_code == 200, resp.text
    [pool] = resp.json()["pools"]
    # Then the pool still sizes by the model's late calls, and says how many of its own it has seen
    late = pool["late_calls"]
    assert late["source"] == "model" and late["share"] == 0.25
    assert (late["late_calls_seen"], late["learns_from"]) == (1, 200)


def test_lease_rows_read_back_through_the_pynamodb_models(local_stack):
    from calltrack.models import bind_models
    from calltrack.models.dni import Lease, LeaseHistory
    from calltrack.settings import get_settings

    bind_models(get_settings(), [Lease, LeaseHistory])
    account, _ = make_account(local_stack)
    body = lease(local_stack, account, gclid="G-MODEL").json()
    row = Lease.get(body["number"], consistent_read=True)
    assert (
        row.account == account and row.lease_id == body["lease_id"] and row.attribution["gclid"] == "G-MODEL"
    )
    [history] = list(LeaseHistory.query(body["number"]))
    assert (
        history.kind == "lease"
        and history.session_id == row.session_id
        and history.ended_at == row.expires_at
    )


def test_a_released_number_goes_to_the_next_session_and_a_call_then_is_ambiguous(local_stack):
    # Given a one-number pool leased by a session whose page is then hidden (sendBeacon release)
    account, _ = make_account(local_stack, size=1)
    first_session, second_session = "s-hide-" + secrets.token_hex(6), "s-next-" + secrets.token_hex(6)
    first = lease(local_stack, account, session=first_session, gclid="G-FIRST").json()
    released = lease(
        local_stack,
        account,
        session=first_session,
        number=first["number"],
        lease_id=first["lease_id"],
        release=True,
    )
    assert released.status_code == 200 and released.json() == {"released": True}
    # When another session arrives, it gets the released number at once (no 30-minute wait)
    second = lease(local_stack, account, session=second_session, gclid="G-SECOND").json()
    assert second["number"] == first["number"] and second["shared"] is False
    # And its heartbeat naming the lease keeps it
    beat = lease(
        local_stack, account, session=second_session, number=second["number"], lease_id=second["lease_id"]
    ).json()
    assert beat["number"] == second["number"] and beat["lease_id"] == second["lease_id"]
    # Then a call now goes to the second session, below full confidence (the first just left)
    call = _get_call(local_stack, account, _call(local_stack, second["number"]))
    assert call["gclid"] == "G-SECOND" and 0.5 < call["confidence"] < 1.0


def test_a_call_replayed_after_its_number_was_leased_again_keeps_the_visitor_who_saw_it(local_stack):
    from datetime import UTC, datetime, timedelta

    from tests.support.outage import webhook_without_dynamodb
    from tests.support.twilio import signed_post

    # Given a one-number pool: visitor A saw the number, left (release), and the number went to
    # visitor B two and a half seconds later
    account, _ = make_account(local_stack, size=1)
    a_session = "s-a-" + secrets.token_hex(6)
    a = lease(local_stack, account, session=a_session, gclid="G-SAW-IT").json()
    lease(local_stack, account, session=a_session, number=a["number"], lease_id=a["lease_id"], release=True)
    call_at = datetime.now(UTC) + timedelta(seconds=0.5)  # after A left
    time.sleep(2.5)
    b = lease(local_stack, account, gclid="G-CAME-LATER").json()
    assert b["number"] == a["number"]
    # When a call to it half a second after A left met a DynamoDB outage (its write went to the outbox)
    with webhook_without_dynamodb():
        form = voice_form(a["number"], caller="+819012345678")
        assert signed_post(local_stack, "/twilio/voice", form, call_at).status_code == 200
    # Then the replay attributes it to A, whose lease the number was on at the call (the lease row
    # now says B: the replay gave B's click this call)
    call = _get_call(local_stack, account, form["CallSid"])
    assert call["gclid"] == "G-SAW-IT" and call["attribution_basis"] == "late"


def test_a_number_whose_holder_called_goes_out_first_and_the_callers_redial_stays_theirs(local_stack):
    # Given a two-number pool: session B released its number, then session A released the other
    account, _ = make_account(local_stack, size=2)
    a_session, b_session = "s-a-" + secrets.token_hex(6), "s-b-" + secrets.token_hex(6)
    a = lease(local_stack, account, session=a_session, gclid="G-CALLED").json()
    b = lease(local_stack, account, session=b_session, gclid="G-QUIET").json()
    lease(local_stack, account, session=b_session, number=b["number"], lease_id=b["lease_id"], release=True)
    lease(local_stack, account, session=a_session, number=a["number"], lease_id=a["lease_id"], release=True)
    # and A's visitor called A's number; the call ended
    caller = "+819055501234"
    form = voice_form(a["number"], caller=caller)
    assert local_stack.twilio_post("/twilio/voice", form).status_code == 200
    ended = {**form, "CallStatus": "completed", "CallDuration": "95"}
    assert local_stack.twilio_post("/twilio/call-status", ended).status_code == 200
    assert leases_rows(local_stack, [a["number"]])[a["number"]]["called_session"]["S"] == a_session
    # When a new session arrives
    c = lease(local_stack, account, gclid="G-NEXT").json()
    # Then it gets A's number, though B's rested longer: A already called
    assert c["number"] == a["number"]
    # And when A's caller dials that number again, the call is still A's
    redial = voice_form(a["number"], caller=caller)
    assert local_stack.twilio_post("/twilio/voice", redial).status_code == 200
    again = _get_call(local_stack, account, redial["CallSid"])
    assert again["gclid"] == "G-CALLED" and again["attribution_basis"] == "repeat_caller"
    # while anyone else calling it reaches the new session
    other = _get_call(local_stack, account, _call(local_stack, a["number"]))
    assert other["gclid"] == "G-NEXT" and other["attribution_basis"] == "lease"
