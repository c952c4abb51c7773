"""CRM lead matching: normalisation, closest call before the lead, per-lead errors; PATCH body rules."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from call_records.crm import CallPatch, match_confidence, match_leads, patch_changes, tagging
from calltrack.errors import BadRequest
from tests.support.events import http_event

CALLS: list[dict[str, Any]] = [
    {
        "call_sid": "CA-old",
        "caller": "+819012345678",
        "started_at": "2026-11-01T01:00:00Z",
        "channel": "flyer",
        "campaign": "c1",
        "keyword": None,
    },
    {
        "call_sid": "CA-near",
        "caller": "+819012345678",
        "started_at": "2026-11-05T01:00:00Z",
        "channel": "google-ads",
        "campaign": "c2",
        "keyword": "dentist",
        "confidence": 0.8,
    },
    {
        "call_sid": "CA-after",
        "caller": "+819012345678",
        "started_at": "2026-11-06T01:00:00Z",
        "channel": "radio",
    },
    {
        "call_sid": "CA-other",
        "caller": "+819099998888",
        "started_at": "2026-11-05T01:00:00Z",
        "channel": "tv",
    },
]


def run(leads: list[Any], window_days: int = 7) -> tuple[list[dict[str, Any]], list[Any], list[Any]]:
    updates: list[Any] = []
    saved: list[Any] = []

    def between(lo: datetime, hi: datetime) -> list[dict[str, Any]]:
        return [c for c in CALLS if lo <= datetime.fromisoformat(c["started_at"].replace("Z", "+00:00")) < hi]

    results = match_leads(
        leads,
        tz="Asia/Tokyo",
        region="JP",
        window_days=window_days,
        calls_between=between,
        update_call=lambda sid, ch: updates.append((sid, dict(ch))) or {},  # type: ignore[func-returns-value]
        save_lead=saved.append,
    )
    return results, updates, saved


def test_national_format_number_matches_the_closest_call_before_the_lead() -> None:
    # Given a lead created a day after two calls from 090-1234-5678 (and one call after it)
    results, updates, saved = run(
        [
            {
                "external_id": "L1",
                "phone": "090-1234-5678",
                "created_at": "2026-11-05T12:00:00+09:00",
                "stage": "won",
                "value": 80000,
            }
        ]
    )
    # Then it is tagged with the nearest earlier call's source, and stage/value go to that call
    assert results[0]["call_sid"] == "CA-near"
    assert (results[0]["channel"], results[0]["campaign"], results[0]["keyword"]) == (
        "google-ads",
        "c2",
        "dentist",
    )
    assert 0 < results[0]["confidence"] <= 0.8
    assert updates == [("CA-near", {"stage": "won", "value": 80000})]
    assert saved[0]["phone"] == "+819012345678" and saved[0]["call_sid"] == "CA-near"


def test_calls_outside_the_window_do_not_match() -> None:
    results, updates, _ = run(
        [
            {
                "external_id": "L2",
                "phone": "+819012345678",
                "created_at": "2026-11-20T00:00:00Z",
                "stage": "lead",
            }
        ]
    )
    assert results[0]["call_sid"] is None and results[0]["status"] == "unmatched"
    assert updates == []


def test_a_batch_answers_per_lead_and_applies_the_good_ones() -> None:
    results, updates, saved = run(
        [
            {
                "external_id": "ok",
                "phone": "+819099998888",
                "created_at": "2026-11-05T02:00:00Z",
                "stage": "lead",
            },
            {"external_id": "bad-phone", "phone": "not a number", "created_at": "2026-11-05T02:00:00Z"},
            {"external_id": "bad-date", "phone": "+819099998888", "created_at": "someday"},
            {
                "external_id": "bad-stage",
                "phone": "+819099998888",
                "created_at": "2026-11-05T02:00:00Z",
                "stage": "maybe",
            },
            "not an object",
        ]
    )
    assert [r["status"] for r in results] == ["matched", "error", "error", "error", "error"]
    assert [r.get("field") for r in results] == [None, "phone", "created_at", "stage", "lead"]
    assert updates == [("CA-other", {"stage": "lead"})]
    assert [s["external_id"] for s in saved] == ["ok"]


def test_a_lead_with_only_a_date_matches_that_local_days_calls() -> None:
    # Given a CRM that sends its date field (no time): the lead came on 2026-11-05, Tokyo time
    results, updates, saved = run([{"external_id": "L3", "phone": "+819012345678",
                                    "created_at": "2026-11-05", "stage": "lead"}])
    # Then the call at 10:00 JST that day is before it and matches
    assert results[0]["status"] == "matched" and results[0]["call_sid"] == "CA-near"
    assert saved[0]["created_at"] == "2026-11-05T14:59:59Z"  # the end of that day in Tokyo


@pytest.mark.parametrize("created_at", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1999-12-31"])
def test_a_lead_time_out_of_range_is_an_error_of_that_lead_only(created_at: str) -> None:
    # Given a batch with a lead dated year 1 / 9999 (the window around it overflowed: a 500 after
    # the leads before it were applied) and a good one
    results, updates, _ = run([
        {"external_id": "far", "phone": "+819012345678", "created_at": created_at},
        {"external_id": "ok", "phone": "+819099998888", "created_at": "2026-11-05T02:00:00Z",
         "stage": "lead"},
    ])
    # Then the far one is an error naming created_at, and the good one is applied
    assert [r["status"] for r in results] == ["error", "matched"]
    assert results[0]["field"] == "created_at" and updates == [("CA-other", {"stage": "lead"})]


def test_confidence_falls_with_the_gap() -> None:
    week = timedelta(days=7)
    assert match_confidence(timedelta(0), week, None) == 1.0
    assert match_confidence(week, week, None) == 0.5
    assert match_confidence(timedelta(0), week, 0.6) == 0.6


def test_tagging_rate_counts_leads_in_range() -> None:
    leads: list[dict[str, Any]] = [
        {"created_at": "2026-11-02T00:00:00Z", "call_sid": "CA1", "channel": "flyer"},
        {"created_at": "2026-11-03T00:00:00Z", "call_sid": "CA2", "channel": None},
        {"created_at": "2026-11-03T00:00:00Z", "call_sid": None, "channel": None},
        {"created_at": "2026-12-03T00:00:00Z", "call_sid": "CA3", "channel": "tv"},
    ]
    from datetime import date

    out = tagging(leads, date(2026, 11, 1), date(2026, 11, 30), "Asia/Tokyo")
    assert (out["leads"], out["matched"], out["tagged"], out["tagged_rate"]) == (3, 2, 1, 0.3333)
    assert out["meets_target"] is False


def test_patch_changes_only_named_fields_and_null_clears() -> None:
    assert patch_changes(CallPatch.model_validate({"stage": "won", "value": 1200.0})) == {
        "stage": "won",
        "value": 1200,
    }
    assert patch_changes(CallPatch.model_validate({"stage": None})) == {"stage": None}
    with pytest.raises(BadRequest):
        patch_changes(CallPatch.model_validate({}))


@pytest.mark.parametrize(
    ("body", "field"),
    [({"stage": "maybe"}, "stage"), ({"value": -1}, "value"), ({"colour": "red"}, "colour")],
)
def test_invalid_patch_bodies_are_400_naming_the_field(
    body: dict[str, Any], field: str, operator_token: str
) -> None:
    from report.handler import app

    event = http_event(
        "PATCH",
        "/v1/calls/CA123",
        headers={"authorization": f"Bearer {operator_token}", "content-type": "application/json"},
        body=json.dumps(body),
    )
    resp = app.resolve(event, None)  # type: ignore[arg-type]
    assert resp["statusCode"] == 400
    out = json.loads(resp["body"])
    assert out["field"] == field and out["error"] == "bad_request"


def test_a_lead_whose_call_cannot_be_amended_fails_alone_and_the_rest_of_the_batch_goes_on() -> None:
    from calltrack.errors import NotFound

    # Given a batch whose first lead matches a call that was erased after it was read
    updates: list[Any] = []

    def update_call(sid: str, changes: dict[str, Any]) -> dict[str, Any]:
        if sid == "CA-near":
            raise NotFound(f"call_sid: no such call {sid}", field="call_sid")
        updates.append((sid, changes))
        return {}

    saved: list[Any] = []
    at = "2026-11-05T03:00:00Z"
    leads = [
        {"external_id": "gone", "phone": "+819012345678", "created_at": at, "stage": "won"},
        {"external_id": "ok", "phone": "+819099998888", "created_at": at, "stage": "lead"},
    ]
    # When the batch is matched
    results = match_leads(
        leads,
        tz="Asia/Tokyo",
        region="JP",
        window_days=7,
        calls_between=lambda lo, hi: CALLS,
        update_call=update_call,
        save_lead=saved.append,
    )
    # Then the first lead answers an error naming the call, and the second is applied and saved
    assert [(r["external_id"], r["status"]) for r in results] == [("gone", "error"), ("ok", "matched")]
    assert results[0]["field"] == "call_sid"
    assert updates == [("CA-other", {"stage": "lead"})] and [s["external_id"] for s in saved] == ["ok"]
