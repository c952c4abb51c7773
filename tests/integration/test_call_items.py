"""The one writer of call items, against the emulator: every write bumps ``version``; amendments and
recording views never create a call or touch another account's."""

from __future__ import annotations

from typing import Any

import pytest

from calltrack.call_items import TTL_ATTRIBUTE, CallItems
from calltrack.errors import NotFound
from tests.support import unique_account, unique_call_sid, unique_number


@pytest.fixture()
def calls(local_stack: Any) -> CallItems:
    from calltrack.settings import get_settings

    return CallItems(local_stack.stack.client("dynamodb"), get_settings().table_name("calls"))


def write_origin(calls: CallItems, sid: str, account: str) -> None:
    origin = {"account": account, "started_at": "2026-11-30T01:00:00Z"}
    calls.client.update_item(**calls.origin_update(sid, origin, "2026-11-30T01:00:00Z"))


def test_every_writer_bumps_the_version_once(calls: CallItems) -> None:
    # Given a call written by the voice webhook
    sid, account = unique_call_sid(), unique_account("items")
    origin = {"account": account, "started_at": "2026-11-30T01:02:03Z", "channel": "flyer",
              "tracking_number": unique_number(), "attribution": {"gclid": "G1"}}
    calls.client.update_item(**calls.origin_update(sid, origin, "2026-11-30T01:02:03Z"))
    assert calls.get(sid, consistent=True)["version"] == 1
    # When a callback, a PATCH and a recording each change it
    outcome, row = calls.apply_outcome(sid, {"talk_seconds": 42, "dial_status": "completed"},
                                       {"status": "answered"}, rank=2, marker="dial_status", now_iso="x")
    assert outcome == "applied" and row["version"] == 2
    assert calls.amend(account, sid, {"stage": "won", "value": 50000})["version"] == 3
    assert calls.set_recording(sid, {"status": "stored", "recording_sid": "RE" + "0" * 32}) is True
    # Then each write counted once, and the JSON fields read back typed
    stored = calls.get(sid, consistent=True)
    assert stored["version"] == 4
    assert stored["recording"]["status"] == "stored" and stored["attribution"] == {"gclid": "G1"}
    assert (stored["status"], stored["talk_seconds"], stored["stage"], stored["value"]) == (
        "answered", 42, "won", 50000)


def test_a_duplicate_callback_changes_nothing(calls: CallItems) -> None:
    sid, account = unique_call_sid(), unique_account("items")
    write_origin(calls, sid, account)
    # The callback's own fields carry its marker attribute (dial_status), as the webhook's do
    callback = {"talk_seconds": 5, "dial_status": "completed"}
    answered = {"status": "answered"}
    first = calls.apply_outcome(sid, callback, answered, rank=2, marker="dial_status", now_iso="x")
    again = calls.apply_outcome(sid, callback, answered, rank=2, marker="dial_status", now_iso="y")
    assert first[0] == "applied" and again == ("duplicate", None)
    assert calls.get(sid, consistent=True)["version"] == 2


def test_amending_another_accounts_call_or_a_missing_one_is_not_found(calls: CallItems) -> None:
    sid, account = unique_call_sid(), unique_account("items")
    write_origin(calls, sid, account)
    with pytest.raises(NotFound):
        calls.amend(unique_account("other"), sid, {"stage": "lead"})
    missing = unique_call_sid()
    with pytest.raises(NotFound):
        calls.amend(account, missing, {"stage": "lead"})
    assert calls.get(missing, consistent=True) is None
    assert "stage" not in calls.get(sid, consistent=True)


def test_a_recording_view_never_creates_a_half_empty_call(calls: CallItems) -> None:
    missing = unique_call_sid()
    # a call that is not there (erased, expired) is told apart: False, and nothing written
    assert calls.set_recording(missing, {"status": "stored"}) is False
    assert calls.get(missing, consistent=True) is None


def test_a_callback_before_the_origin_gives_a_ttl_that_the_origin_replaces(calls: CallItems) -> None:
    callback = {"call_status": "completed"}
    missed = {"status": "missed"}
    # Given callbacks that arrive before their call's origin
    kept, forever, orphan = unique_call_sid(), unique_call_sid(), unique_call_sid()
    for sid in (kept, forever, orphan):
        calls.apply_outcome(
            sid, callback, missed, rank=1, marker="call_status", now_iso="x", orphan_expire_at=111
        )

    # When the origin arrives for two of them: one kept 30 days, one kept forever
    origin = {"account": unique_account("items"), "started_at": "2026-11-30T01:00:00Z"}
    calls.client.update_item(**calls.origin_update(kept, {**origin, TTL_ATTRIBUTE: 222}, "x"))
    calls.client.update_item(**calls.origin_update(forever, {**origin, TTL_ATTRIBUTE: None}, "x"))

    # Then each gets the origin's TTL, the one without an origin keeps the provisional one
    assert calls.get(kept, consistent=True)[TTL_ATTRIBUTE] == 222
    assert TTL_ATTRIBUTE not in calls.get(forever, consistent=True)
    assert calls.get(orphan, consistent=True)[TTL_ATTRIBUTE] == 111


def test_a_callback_after_the_origin_never_touches_its_ttl(calls: CallItems) -> None:
    # Given a call whose origin is kept forever (no TTL) and one kept with a TTL
    forever, kept = unique_call_sid(), unique_call_sid()
    origin = {"account": unique_account("items"), "started_at": "2026-11-30T01:00:00Z"}
    calls.client.update_item(**calls.origin_update(forever, {**origin, TTL_ATTRIBUTE: None}, "x"))
    calls.client.update_item(**calls.origin_update(kept, {**origin, TTL_ATTRIBUTE: 222}, "x"))

    # When a callback arrives for each
    for sid in (forever, kept):
        calls.apply_outcome(sid, {"dial_status": "completed"}, {"status": "answered"}, rank=2,
                            marker="dial_status", now_iso="x", orphan_expire_at=111)

    # Then the callback did not set or change a TTL
    assert TTL_ATTRIBUTE not in calls.get(forever, consistent=True)
    assert calls.get(kept, consistent=True)[TTL_ATTRIBUTE] == 222
