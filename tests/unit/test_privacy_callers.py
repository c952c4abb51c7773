"""Exporting and erasing one caller of one account (privacy.callers) over an in-memory store."""

from __future__ import annotations

import pytest

from calltrack.errors import BadRequest
from privacy.callers import caller_number, erase, export, object_prefixes
from tests.support.privacy import FakeCallerStore

CALLER = "+819012345678"


def seeded() -> FakeCallerStore:
    store = FakeCallerStore()
    for account, sid in (("a", "CA1"), ("b", "CA2")):
        key = f"recordings/{account}/2026/10/{sid}/RE{sid}.mp3"
        store.call_rows[sid] = {"call_sid": sid, "account": account, "caller": CALLER,
                                "started_at": "2026-10-05T01:00:00Z", "transcript": [["caller", 1, "hi"]],
                                "recording": {"status": "stored", "recording_sid": f"RE{sid}", "s3_key": key}}
        store.recording_rows[f"RE{sid}"] = {"recording_sid": f"RE{sid}", "call_sid": sid, "account": account,
                                            "status": "stored", "s3_key": key}
        store.versions += [(key, "v1"), (key, "v2"),
                           (f"transcripts/{account}/2026/10/{sid}/RE{sid}.json", "v1")]
        store.lead_rows.append({"account": account, "external_id": f"L-{sid}", "phone": CALLER})
        store.conversion_rows.append({"call_sid": sid, "key": "q#google_ads", "account": account})
        store.delivery_rows.append({"account": account, "delivery_id": f"dlv_{sid}", "call_sid": sid})
        store.first_calls.setdefault(CALLER, set()).add(account)
        store.markers.add(sid)
        store.export_rows[account] = [sid, "CA-other"]
    store.call_rows["CA3"] = {"call_sid": "CA3", "account": "a", "caller": "+819000000000",
                              "started_at": "2026-10-06T01:00:00Z"}
    return store


def test_erase_removes_the_caller_of_one_account_and_answers_counts() -> None:
    # Given the same caller's data in accounts a and b
    store = seeded()
    # When a erases the caller
    result = erase("a", CALLER, store)
    # Then a holds nothing of the caller, b everything, and a's other caller stays
    assert result["erased"] == {"calls": 1, "transcripts": 1, "recordings": 1, "twilio_recordings": 0,
                                "object_versions": 3,
                                "crm_leads": 1, "conversions": 1, "webhook_deliveries": 1,
                                "export_rows": 1, "caller_first_call": 1, "staged_exports": 0}
    assert set(store.call_rows) == {"CA2", "CA3"}
    assert [v for v in store.versions if "/a/" in v[0]] == []
    assert len([v for v in store.versions if "/b/" in v[0]]) == 3
    assert store.first_calls[CALLER] == {"b"} and store.markers == {"CA2"}
    assert store.export_rows == {"a": ["CA-other"], "b": ["CA2", "CA-other"]}
    # and the calls went last (a failed run finds the rest again through them), after their markers,
    # but for one more sweep of conversion and webhook delivery rows an in-flight event may have
    # made meanwhile, of the recording objects a fetch ending meanwhile may have written, and of the
    # export files a nightly export running meanwhile may have written
    assert store.log[-6:] == ["markers", "calls", "conversions", "deliveries", "objects", "exports"]


def test_a_conversion_row_made_while_the_erasure_ran_is_erased_too() -> None:
    # Given a conversion event that found the call still there and made its row again just
    # before the call was deleted
    store = seeded()
    delete_calls = store.delete_calls

    def late_row_then_delete(call_sids: list[str]) -> None:
        store.conversion_rows.append({"call_sid": "CA1", "key": "q#meta", "account": "a"})
        delete_calls(call_sids)

    store.delete_calls = late_row_then_delete  # type: ignore[method-assign]
    # When a erases the caller
    erase("a", CALLER, store)
    # Then that row is gone as well (no event can make one again: the call is gone)
    assert [r for r in store.conversion_rows if r["account"] == "a"] == []


def test_a_webhook_delivery_planned_while_the_erasure_ran_is_erased_too() -> None:
    # Given a call event that found the call still there and was planned into a delivery (the
    # call as sent, with its caller) just before the call was deleted
    store = seeded()
    delete_calls = store.delete_calls

    def late_delivery_then_delete(call_sids: list[str]) -> None:
        store.delivery_rows.append({"account": "a", "delivery_id": "dlv_late", "call_sid": "CA1"})
        delete_calls(call_sids)

    store.delete_calls = late_delivery_then_delete  # type: ignore[method-assign]
    # When a erases the caller
    result = erase("a", CALLER, store)
    # Then that row is gone as well, and counted (no event can plan one again: the call is gone)
    assert [r for r in store.delivery_rows if r["account"] == "a"] == []
    assert result["erased"]["webhook_deliveries"] == 2


def test_an_export_file_written_while_the_erasure_ran_loses_the_callers_rows_too() -> None:
    # Given the nightly export read the caller's call before the erasure deleted it and wrote its
    # day file after the erasure's first pass over the files (the call back in a's file)
    store = seeded()
    delete_calls = store.delete_calls

    def export_writes_then_delete(call_sids: list[str]) -> None:
        store.export_rows["a"] = ["CA1", "CA-other"]
        delete_calls(call_sids)

    store.delete_calls = export_writes_then_delete  # type: ignore[method-assign]
    # When a erases the caller
    result = erase("a", CALLER, store)
    # Then the file holds none of the caller's calls, and both passes' rows are counted
    assert store.export_rows["a"] == ["CA-other"]
    assert result["erased"]["export_rows"] == 2


def test_an_account_that_has_twilios_copies_deleted_asks_for_those_twilio_may_still_hold() -> None:
    # Given a caller with three recordings in account a, which has Twilio's copies deleted: one
    # stored and deleted at Twilio, one still in the retry ladder (Twilio answered 500), one Twilio
    # itself reported failed (nothing was recorded)
    store = seeded()
    store.recording_rows["RECA1"]["twilio_deleted"] = True
    for sid, rec in (("CA4", {"status": "retrying", "reason": "http-500"}), ("CA5", {"status": "failed"})):
        store.call_rows[sid] = {"call_sid": sid, "account": "a", "caller": CALLER,
                                "started_at": "2026-10-07T01:00:00Z",
                                "recording": {"recording_sid": f"RE{sid}", **rec}}
        store.recording_rows[f"RE{sid}"] = {"recording_sid": f"RE{sid}", "call_sid": sid, "account": "a",
                                            **rec}
    asked: list[list[str]] = []

    def twilio_deletions(rows: list[dict]) -> None:
        store.log.append("twilio")
        asked.append([r["recording_sid"] for r in rows])

    # When a erases the caller
    result = erase("a", CALLER, store, twilio_deletions=twilio_deletions)
    # Then the recordings function is asked once to delete Twilio's copy of the one in the ladder,
    # before the recordings rows go (a run that fails before then asks again), and it is counted
    assert asked == [["RECA4"]]
    assert store.log.index("twilio") < store.log.index("recordings")
    assert result["erased"]["recordings"] == 3 and result["erased"]["twilio_recordings"] == 1
    # and an account that keeps Twilio's copies asks nothing
    store = seeded()
    assert erase("b", CALLER, store)["erased"]["twilio_recordings"] == 0


def test_a_recording_stored_while_the_erasure_ran_is_deleted_too() -> None:
    # Given a recording fetch that writes its MP3 after the erasure listed the call's objects
    store = seeded()
    late = ("recordings/a/2026/10/CA1/RECA1.mp3", "v3")
    delete_calls = store.delete_calls

    def stored_then_delete(call_sids: list[str]) -> None:
        store.versions.append(late)
        delete_calls(call_sids)

    store.delete_calls = stored_then_delete  # type: ignore[method-assign]
    # When a erases the caller, Then that version goes too, and is counted
    result = erase("a", CALLER, store)
    assert late not in store.versions and [v for v in store.versions if "/a/" in v[0]] == []
    assert result["erased"]["object_versions"] == 4


def test_erase_is_idempotent() -> None:
    store = seeded()
    erase("a", CALLER, store)
    # When it runs again, Then nothing more is erased
    assert set(erase("a", CALLER, store)["erased"].values()) == {0}


def test_export_lists_the_callers_data_with_presigned_recordings() -> None:
    body = export("a", CALLER, seeded())
    assert [c["call_sid"] for c in body["calls"]] == ["CA1"]
    assert body["recordings"][0]["url"].startswith("https://signed.example/recordings/a/")
    assert body["transcripts"] == [{"call_sid": "CA1", "transcript": [["caller", 1, "hi"]]}]
    assert len(body["crm_leads"]) == len(body["conversions"]) == len(body["webhook_deliveries"]) == 1


def test_prefixes_cover_the_call_month_folder_even_after_the_recording_expired() -> None:
    calls = [{"call_sid": "CA9", "started_at": "2026-09-30T23:00:00Z", "recording": {"status": "expired"}}]
    assert object_prefixes("a", calls, []) == ["recordings/a/2026/09/CA9/", "transcripts/a/2026/09/CA9/"]


def test_a_caller_number_is_normalised_and_bad_input_names_the_field() -> None:
    assert caller_number("090-1234-5678") == CALLER
    with pytest.raises(BadRequest) as err:
        caller_number("call me")
    assert err.value.field == "number"
    with pytest.raises(BadRequest):
        caller_number("+12")  # too short to be stored as a caller


def test_a_caller_stored_under_a_number_no_numbering_plan_knows_can_be_found_and_erased() -> None:
    # Given a call whose From Twilio sent as "+2125221234567" (the webhook stores any "+" and
    # 7 to 15 digits; phonenumbers calls it not a possible number)
    store = FakeCallerStore()
    store.call_rows["CAX"] = {"call_sid": "CAX", "account": "a", "caller": "+2125221234567",
                              "started_at": "2026-10-05T01:00:00Z", "ended_at": "2026-10-05T01:05:00Z"}
    # When the admin asks to erase it as written
    number = caller_number("+2125221234567")
    # Then it is found and erased (it was a 400: never exportable, never erasable)
    assert erase("a", number, store)["erased"]["calls"] == 1 and store.call_rows == {}


def test_erase_reads_only_the_export_files_of_the_days_around_the_callers_calls() -> None:
    from datetime import date

    # Given the caller's call in a on 2026-10-05 (UTC), among a's other calls on other days
    store = seeded()
    # When a erases the caller
    erase("a", CALLER, store)
    # Then only the export files of that day and the days either side (the account's local day may
    # differ from the UTC one) are read, not every day the account has exported
    assert store.export_days == {date(2026, 10, 4), date(2026, 10, 5), date(2026, 10, 6)}


def test_erase_reads_every_export_file_when_a_call_has_no_start_time() -> None:
    store = seeded()
    del store.call_rows["CA1"]["started_at"]
    erase("a", CALLER, store)
    assert store.export_days is None and store.export_rows["a"] == ["CA-other"]


def test_a_retry_after_a_failure_that_came_once_the_calls_were_gone_still_sweeps_late_rows() -> None:
    # Given an erasure whose run failed after it deleted the calls (its second look at the
    # conversions throttled), while a conversion event and a nightly export that had read the call
    # just before it went made a conversion row, a delivery and an export row again
    store = seeded()
    delete_calls, conversions = store.delete_calls, store.conversions

    def late_rows_then_delete(call_sids: list[str]) -> None:
        store.conversion_rows.append({"call_sid": "CA1", "key": "q#meta", "account": "a"})
        store.delivery_rows.append({"account": "a", "delivery_id": "dlv_late", "call_sid": "CA1"})
        store.export_rows["a"] = ["CA1", "CA-other"]
        delete_calls(call_sids)

    def throttled(account: str, call_sids: list[str]) -> list[dict]:
        if "CA1" not in store.call_rows:
            raise RuntimeError("ProvisionedThroughputExceededException")
        return conversions(account, call_sids)

    store.delete_calls = late_rows_then_delete  # type: ignore[method-assign]
    store.conversions = throttled  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        erase("a", CALLER, store)
    store.delete_calls, store.conversions = delete_calls, conversions  # type: ignore[method-assign]
    # When the erasure is asked again (the calls are gone: nothing finds CA1 by the number)
    result = erase("a", CALLER, store)
    # Then the rows made meanwhile go too, found by the CallSid the first run left in the mark
    assert [r for r in store.conversion_rows if r["account"] == "a"] == []
    assert [r for r in store.delivery_rows if r["account"] == "a"] == []
    assert store.export_rows["a"] == ["CA-other"]
    assert result["erased"]["calls"] == 0 and result["erased"]["conversions"] == 1
    assert store.export_days is not None and min(store.export_days).isoformat() == "2026-10-04"
    # and, the erasure finished, its mark keeps no CallSid of the account
    assert store.erased_calls("a", CALLER) == ([], set())
