"""CRM leads on the local stack: matched by caller and time, tagged, applied to calls and rollups."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support import unique_call_sid, unique_number
from tests.support.stack import apply_account, tokens
from tests.support.twilio import play_call


def national(e164: str) -> str:
    """+819012345678 -> 090-1234-5678 (how a Japanese CRM writes it)."""
    digits = "0" + e164[3:]
    return f"{digits[:3]}-{digits[3:7]}-{digits[7:]}"


@pytest.fixture(scope="module")
def crm(local_stack: Any) -> dict[str, Any]:
    flyer, radio = unique_number(), unique_number()
    account = apply_account(
        local_stack,
        "crm",
        name="CRM clinic",
        numbers=[
            {"number": flyer, "channel": "flyer", "campaign": "posting", "medium": "offline"},
            {"number": radio, "channel": "radio", "campaign": "fm", "medium": "offline"},
        ],
    )
    callers = [unique_number("+8190") for _ in range(3)]
    sids = [unique_call_sid() for _ in range(3)]
    for sid, caller, number, at, outcome, talk in [
        (sids[0], callers[0], flyer, datetime(2026, 10, 5, 1, 0, tzinfo=UTC), "answered", 120),
        (sids[1], callers[1], radio, datetime(2026, 10, 6, 1, 0, tzinfo=UTC), "answered", 60),
        (sids[2], callers[0], radio, datetime(2026, 10, 20, 1, 0, tzinfo=UTC), "no-answer", 0),
    ]:
        play_call(local_stack, number, at, outcome, talk, call_sid=sid, caller=caller)
    local_stack.drain()
    return {
        "account": account,
        "callers": callers,
        "sids": sids,
        **tokens(local_stack, account, "manager", "marketer"),
    }


def post(local_stack: Any, token: str, body: Any) -> Any:
    return local_stack.request("POST", "/v1/crm/leads", token=token, json=body)


def test_a_batch_is_matched_per_lead_and_good_leads_are_applied(
    local_stack: Any, crm: dict[str, Any]
) -> None:
    leads = [
        # national format, a day after the flyer call
        {
            "external_id": "L-1",
            "phone": national(crm["callers"][0]),
            "created_at": "2026-10-06T10:00:00+09:00",
            "stage": "won",
            "value": 90000,
        },
        # E.164, an hour after the radio call
        {
            "external_id": "L-2",
            "phone": crm["callers"][1],
            "created_at": "2026-10-06T11:00:00+09:00",
            "stage": "lead",
        },
        # a number that never called
        {"external_id": "L-3", "phone": "090-0000-1111", "created_at": "2026-10-06T11:00:00+09:00"},
        # malformed
        {"external_id": "L-4", "phone": "call me", "created_at": "2026-10-06T11:00:00+09:00"},
        {"external_id": "L-5", "phone": crm["callers"][1], "created_at": "not a date"},
    ]
    resp = post(local_stack, crm["manager"], {"leads": leads})
    assert resp.status_code == 200, resp.text
    results = {r["external_id"]: r for r in resp.json()["results"]}
    assert results["L-1"]["call_sid"] == crm["sids"][0] and results["L-1"]["channel"] == "flyer"
    assert results["L-1"]["campaign"] == "posting" and 0 < results["L-1"]["confidence"] <= 1
    assert results["L-2"]["call_sid"] == crm["sids"][1] and results["L-2"]["channel"] == "radio"
    assert results["L-3"]["call_sid"] is None
    assert (results["L-4"]["status"], results["L-4"]["field"]) == ("error", "phone")
    assert (results["L-5"]["status"], results["L-5"]["field"]) == ("error", "created_at")
    local_stack.drain()
    report = local_stack.request(
        "GET",
        "/v1/reports/channels",
        token=crm["marketer"],
        params={"from": "2026-10-01", "to": "2026-10-31"},
    ).json()
    rows = {r["key"]: r for r in report["rows"]}
    assert (rows["flyer"]["won"], rows["flyer"]["won_value"]) == (1, 90000)
    assert rows["radio"]["leads"] == 1


def test_reposting_a_lead_updates_it_and_never_duplicates(local_stack: Any, crm: dict[str, Any]) -> None:
    lead = {
        "external_id": "L-9",
        "phone": national(crm["callers"][1]),
        "created_at": "2026-10-07T09:00:00+09:00",
        "stage": "opportunity",
    }
    assert post(local_stack, crm["manager"], lead).json()["results"][0]["call_sid"] == crm["sids"][1]
    before = local_stack.request(
        "GET", "/v1/crm/tagging", token=crm["marketer"], params={"from": "2026-10-01", "to": "2026-10-31"}
    ).json()
    assert post(local_stack, crm["manager"], {**lead, "stage": "won", "value": 5000}).status_code == 200
    after = local_stack.request(
        "GET", "/v1/crm/tagging", token=crm["marketer"], params={"from": "2026-10-01", "to": "2026-10-31"}
    ).json()
    assert after["leads"] == before["leads"]
    local_stack.drain()
    report = local_stack.request(
        "GET",
        "/v1/reports/channels",
        token=crm["marketer"],
        params={"from": "2026-10-01", "to": "2026-10-31"},
    ).json()
    radio = {r["key"]: r for r in report["rows"]}["radio"]
    assert (radio["won"], radio["won_value"]) == (1, 5000)


def test_tagging_reports_the_share_of_leads_tagged_with_a_source(
    local_stack: Any, crm: dict[str, Any]
) -> None:
    body = local_stack.request(
        "GET", "/v1/crm/tagging", token=crm["marketer"], params={"from": "2026-10-01", "to": "2026-10-31"}
    ).json()
    # L-1, L-2, L-9 tagged; L-3 unmatched (malformed leads are never stored)
    assert (body["leads"], body["tagged"]) == (4, 3)
    assert body["tagged_rate"] == 0.75 and body["meets_target"] is True


def test_marketers_cannot_post_leads_and_other_accounts_see_nothing(
    local_stack: Any, crm: dict[str, Any]
) -> None:
    lead = {"external_id": "X", "phone": crm["callers"][0], "created_at": "2026-10-06T10:00:00+09:00"}
    assert post(local_stack, crm["marketer"], lead).status_code == 403
    other = apply_account(local_stack, "crm-other", name="Other", numbers=[])
    stranger = local_stack.create_token(other, "manager")
    result = post(local_stack, stranger, lead).json()["results"][0]
    assert result["call_sid"] is None  # another account's calls are never matched
