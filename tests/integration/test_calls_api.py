"""GET /v1/calls and GET /v1/calls/{call_sid}: account-scoped, token-protected, newest first."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.support import unique_account, unique_call_sid, unique_number
from tests.support.accounts import account_config
from tests.support.stack import tokens
from tests.support.twilio import voice_form


def apply_numbers(local_stack, account: str, numbers: dict[str, str]) -> None:
    """Apply ``account`` with these tracking numbers (number -> channel), campaign c1."""
    local_stack.apply(
        account_config(
            account, numbers=[{"number": n, "channel": ch, "campaign": "c1"} for n, ch in numbers.items()]
        )
    )


@pytest.fixture(scope="module")
def world(local_stack):
    acct, other_account = unique_account("calls"), unique_account("calls-other")
    flyer, radio, other_number = unique_number(), unique_number(), unique_number()
    apply_numbers(local_stack, acct, {flyer: "flyer", radio: "radio"})
    apply_numbers(local_stack, other_account, {other_number: "flyer"})
    sids = []
    for number, outcome in [
        (flyer, "completed"),
        (radio, "no-answer"),
        (flyer, "completed"),
        (radio, "completed"),
    ]:
        form = voice_form(number)
        assert local_stack.twilio_post("/twilio/voice", form).status_code == 200
        local_stack.twilio_post(
            "/twilio/dial-status", {**form, "DialCallStatus": outcome, "DialCallDuration": "30"}
        )
        sids.append(form["CallSid"])
    other = voice_form(other_number, caller="+819012340000")
    local_stack.twilio_post("/twilio/voice", other)
    return {
        "account": acct,
        "sids": sids,
        "other_sid": other["CallSid"],
        **tokens(local_stack, acct, "manager", "marketer"),
        "other_manager": local_stack.create_token(other_account, "manager"),
    }


def _today() -> str:
    return datetime.now(ZoneInfo("Asia/Tokyo")).date().isoformat()


def _list(local_stack, token, **params):
    params.setdefault("from", _today())
    params.setdefault("to", _today())
    return local_stack.request("GET", "/v1/calls", token=token, params=params)


def test_list_returns_this_accounts_calls_newest_first(local_stack, world):
    resp = _list(local_stack, world["manager"])
    assert resp.status_code == 200, resp.text
    body = resp.json()
    sids = [c["call_sid"] for c in body["items"]]
    assert set(sids) == set(world["sids"]) and world["other_sid"] not in sids
    started = [c["started_at"] for c in body["items"]]
    assert started == sorted(started, reverse=True)
    assert body["next_cursor"] is None
    assert {c["status"] for c in body["items"]} == {"answered", "missed"}


def test_filters_by_channel_and_status(local_stack, world):
    radio = _list(local_stack, world["manager"], channel="radio").json()["items"]
    assert len(radio) == 2 and {c["channel"] for c in radio} == {"radio"}
    missed = _list(local_stack, world["manager"], status="missed").json()["items"]
    assert [c["call_sid"] for c in missed] == [world["sids"][1]]


def test_cursor_pages_through_every_call_once(local_stack, world):
    seen, cursor = [], None
    for _ in range(10):
        params = {"limit": "3"} | ({"cursor": cursor} if cursor else {})
        body = _list(local_stack, world["manager"], **params).json()
        seen += [c["call_sid"] for c in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(world["sids"])


def test_dates_outside_the_calls_return_nothing(local_stack, world):
    yesterday = (datetime.now(ZoneInfo("Asia/Tokyo")).date() - timedelta(days=1)).isoformat()
    body = _list(local_stack, world["manager"], **{"from": yesterday, "to": yesterday}).json()
    assert body == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-13-01"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"from": "2026-11-30", "to": "2026-11-01"}, "from"),
        ({"limit": "0"}, "limit"),
        ({"status": "lost"}, "status"),
        ({"cursor": "bm9wZQ"}, "cursor"),
        ({"from": "2025-01-01", "to": "2026-02-05"}, "to"),  # 401 days: over the 400-day cap
        ({"from": "20261101"}, "from"),  # only YYYY-MM-DD, like every report
    ],
)
def test_bad_query_is_a_400_naming_the_field(local_stack, world, params, field):
    resp = _list(local_stack, world["manager"], **params)
    assert resp.status_code == 400 and resp.json()["field"] == field


def test_a_400_day_range_is_accepted_like_the_reports(local_stack, world):
    resp = _list(local_stack, world["manager"], **{"from": "2025-01-01", "to": "2026-02-04"})
    assert resp.status_code == 200


def test_single_call_is_account_scoped(local_stack, world):
    sid = world["sids"][0]
    own = local_stack.request("GET", f"/v1/calls/{sid}", token=world["manager"])
    assert own.status_code == 200 and own.json()["call_sid"] == sid
    assert local_stack.request("GET", f"/v1/calls/{sid}", token=world["other_manager"]).status_code == 404
    assert (
        local_stack.request("GET", f"/v1/calls/{unique_call_sid()}", token=world["manager"]).status_code
        == 404
    )


def test_token_is_required(local_stack, world):
    assert local_stack.request("GET", "/v1/calls").status_code == 401
    assert local_stack.request("GET", f"/v1/calls/{world['sids'][0]}").status_code == 401


def test_marketers_see_callers_masked(local_stack, world):
    call = local_stack.request("GET", f"/v1/calls/{world['sids'][0]}", token=world["marketer"]).json()
    assert call["caller"].startswith("+") and "*" in call["caller"]
    full = local_stack.request("GET", f"/v1/calls/{world['sids'][0]}", token=world["manager"]).json()
    assert "*" not in full["caller"] and full["caller"][-4:] == call["caller"][-4:]


def test_the_call_log_filters_by_funnel_stage(local_stack, world):
    # Given one of the account's calls moved to "won"
    won = world["sids"][0]
    moved = local_stack.request("PATCH", f"/v1/calls/{won}", token=world["manager"], json={"stage": "won"})
    assert moved.status_code == 200, moved.text
    # When the log is filtered by stage
    def sids(stage: str) -> set[str]:
        resp = local_stack.request("GET", "/v1/calls", token=world["manager"], params={"stage": stage})
        assert resp.status_code == 200, resp.text
        return {c["call_sid"] for c in resp.json()["items"]}

    # Then "won" finds that call, "none" the calls not yet staged, and an unknown stage is a 400
    assert sids("won") == {won}
    assert won not in sids("none") and set(world["sids"][1:]) <= sids("none")
    bad = local_stack.request("GET", "/v1/calls", token=world["manager"], params={"stage": "closed"})
    assert bad.status_code == 400 and bad.json()["field"] == "stage"


def test_a_change_made_on_a_version_is_refused_once_the_call_moved_on(local_stack, world):
    sid = world["sids"][2]
    path = f"/v1/calls/{sid}"
    # Given the call as a manager read it, and another change made since
    seen = local_stack.request("GET", path, token=world["manager"]).json()["version"]
    other = local_stack.request("PATCH", path, token=world["manager"], json={"stage": "won"})
    assert other.status_code == 200
    # When a change made on the version read is sent
    stale = local_stack.request("PATCH", path, token=world["manager"],
                                json={"stage": "lead", "version": seen})
    # Then it is a 409 naming version, and the other change stands
    assert stale.status_code == 409 and stale.json()["field"] == "version", stale.text
    now = local_stack.request("GET", path, token=world["manager"]).json()
    assert now["stage"] == "won"
    # And made on the current version it is applied; another account's call stays not found
    fresh = local_stack.request("PATCH", path, token=world["manager"],
                                json={"score": 80, "version": now["version"]})
    assert fresh.status_code == 200 and (fresh.json()["stage"], fresh.json()["score"]) == ("won", 80)
    foreign = local_stack.request("PATCH", f"/v1/calls/{world['other_sid']}", token=world["manager"],
                                  json={"score": 1, "version": 0})
    assert foreign.status_code == 404
    # And a version alone changes nothing: a 400 naming the body
    alone = local_stack.request("PATCH", path, token=world["manager"], json={"version": now["version"]})
    assert alone.status_code == 400 and alone.json()["field"] == "body"
