"""The recording state machine over in-memory ports: store once, retry with a reason, never drop."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from calltrack_cli.local.mp3 import silent_mp3
from recording_ingest.fetch import FetchError
from recording_ingest.ingest import (
    TERMINAL,
    ClaimLost,
    Ports,
    RecordingErased,
    RetryLater,
    erased_message,
    erased_row,
    process,
    s3_key,
)
from tests.support.recordings import InMemoryCalls

OUR = "AC" + "1" * 32
BASE = "https://api.twilio.test"
NOW = datetime(2026, 11, 25, 3, 0, 0, tzinfo=UTC)


class Recordings:
    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    def get(self, sid: str) -> dict[str, Any] | None:
        row = self.rows.get(sid)
        return dict(row) if row else None

    def claim(self, sid: str, *, call_sid: str, account: str, now: datetime, lease_s: int,
              media: Mapping[str, Any] | None = None) -> None:
        row = self.rows.get(sid)
        epoch = int(now.timestamp())
        if row and (row["status"] in TERMINAL or row.get("lease_until", 0) > epoch):
            raise ClaimLost(sid)
        row = self.rows.setdefault(sid, {"recording_sid": sid, "attempts": 0})
        row.update(call_sid=call_sid, account=account, status="fetching", lease_until=epoch + lease_s)
        row.update(media or {})
        row["attempts"] = row.get("attempts", 0) + 1

    def mark(
        self,
        sid: str,
        *,
        call_sid: str,
        status: str,
        reason: str | None,
        now: datetime,
        next_attempt_at: str | None = None,
    ) -> None:
        row = self.rows.setdefault(sid, {"recording_sid": sid})
        if row.get("status") in TERMINAL:
            return
        row.update(call_sid=call_sid, status=status, reason=reason, next_attempt_at=next_attempt_at)
        row.pop("lease_until", None)
        if reason != "not-ready":
            row.pop("not_found", None)

    def count_not_found(self, sid: str) -> int:
        row = self.rows.setdefault(sid, {"recording_sid": sid})
        row["not_found"] = row.get("not_found", 0) + 1
        return int(row["not_found"])

    def mark_stored(self, sid: str, facts: Mapping[str, Any], *, now: datetime) -> None:
        if (self.rows.get(sid) or {}).get("status") == "erased":  # as DynamoRecordings' condition
            raise RecordingErased(sid)
        row = self.rows.setdefault(sid, {"recording_sid": sid})
        row.update(facts)
        row.update(status="stored", reason=None)
        row.pop("lease_until", None)

    def mark_twilio_deleted(self, sid: str) -> None:  # an UpdateItem: makes the row if it is gone
        self.rows.setdefault(sid, {"recording_sid": sid})["twilio_deleted"] = True

    def erase(self, sid: str, call_sid: str, *, now: datetime) -> None:
        self.rows[sid] = erased_row(sid, call_sid, now.timestamp())


class Objects:
    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, dict[str, str]]] = {}
        self.short_by = 0

    def put(self, key: str, body: bytes, *, metadata: Mapping[str, str], content_md5: str) -> None:
        self.objects[key] = (body[: len(body) - self.short_by], dict(metadata))

    def size(self, key: str) -> int | None:
        return len(self.objects[key][0]) if key in self.objects else None

    def delete_every_version(self, key: str) -> None:
        self.objects.pop(key, None)


class Twilio:
    """Scripted media server: a list of outcomes (FetchError or bytes) consumed per fetch."""

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes)
        self.fetched: list[str] = []
        self.deleted: list[str] = []
        self.delete_fails = 0

    def fetch(self, url: str) -> bytes:
        self.fetched.append(url)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return bytes(outcome)

    def delete(self, account_sid: str, sid: str) -> bool:
        if self.delete_fails:
            self.delete_fails -= 1
            raise FetchError("delete-http-500")
        self.deleted.append(sid)
        return True


class World:
    def __init__(self, *outcomes: Any, delete_from_twilio: bool = False) -> None:
        self.recordings, self.calls, self.objects = Recordings(), InMemoryCalls(), Objects()
        self.twilio = Twilio(*outcomes)
        self.failures: list[str] = []
        self.delete_from_twilio = delete_from_twilio
        self.ports = Ports(
            recordings=self.recordings,
            calls=self.calls,
            objects=self.objects,
            fetch=self.twilio.fetch,
            delete_at_twilio=self.twilio.delete,
            delete_from_twilio_for=lambda account: self.delete_from_twilio,
            api_base_url=BASE,
            twilio_account_sid=OUR,
            now=lambda: NOW,
            on_failure=self.failures.append,
        )

    def add_call(self, call_sid: str, account: str = "acme") -> None:
        self.calls.rows[call_sid] = {
            "call_sid": call_sid,
            "account": account,
            "started_at": "2026-10-31T23:59:00Z",
        }


def message(status: str = "completed", **overrides: Any) -> dict[str, Any]:
    base = {
        "recording_sid": "RE" + secrets.token_hex(16),
        "call_sid": "CA" + secrets.token_hex(16),
        "account_sid": OUR,
        "status": status,
        "duration_seconds": 42,
        "channels": 2,
    }
    base.update(overrides)
    return base


MP3 = silent_mp3(1.0)


def test_a_completed_recording_is_fetched_from_the_api_url_stored_and_put_on_the_call() -> None:
    world = World(MP3)
    msg = message()
    world.add_call(msg["call_sid"])

    assert process(msg, world.ports) == "stored"

    sid, call_sid = msg["recording_sid"], msg["call_sid"]
    assert world.twilio.fetched == [f"{BASE}/2010-04-01/Accounts/{OUR}/Recordings/{sid}.mp3"]
    key = f"recordings/acme/2026/10/{call_sid}/{sid}.mp3"  # the call's month
    body, metadata = world.objects.objects[key]
    assert body == MP3
    assert metadata == {"call-sid": call_sid, "recording-sid": sid, "account": "acme"}
    recording = world.calls.rows[call_sid]["recording"]
    assert recording == {
        "status": "stored",
        "recording_sid": sid,
        "s3_key": key,
        "duration_seconds": 42,
        "channels": 2,
        "size_bytes": len(MP3),
        "stored_at": "2026-11-25T03:00:00Z",
    }
    assert world.recordings.rows[sid]["status"] == "stored"


def erased(world: World, msg: Mapping[str, Any]) -> bool:
    """The recording's row is the erased row: the two ids and its expiry, nothing more."""
    sid = msg["recording_sid"]
    return world.recordings.rows.get(sid) == erased_row(sid, msg["call_sid"], NOW.timestamp())


def test_a_recording_whose_call_is_erased_while_it_is_fetched_is_not_left_behind() -> None:
    # Given a recording being fetched for a call (the media host answers slowly)
    msg = message()
    world = World()
    world.add_call(msg["call_sid"])

    def erased_meanwhile(url: str) -> bytes:
        # When the caller is erased on request while the MP3 is on its way
        del world.calls.rows[msg["call_sid"]]
        world.recordings.rows.pop(msg["recording_sid"], None)
        return MP3

    world.ports.fetch = erased_meanwhile
    # Then the fetched MP3 is not kept where nothing could find it again: no object, and the row
    # says only that the recording was erased (its ids, nothing of the account)
    assert process(msg, world.ports) == "call-erased"
    assert world.objects.objects == {}
    assert erased(world, msg)
    # and a late copy of the message ends there: nothing fetched, nothing written back
    fetched = len(world.twilio.fetched)
    assert process(msg, world.ports, 3) == "duplicate"
    assert len(world.twilio.fetched) == fetched and erased(world, msg)


def test_a_recording_whose_row_the_erasure_replaced_while_it_was_fetched_is_not_stored_over_it() -> None:
    # Given an account that has Twilio's copies deleted, and a recording being fetched when the
    # caller's erasure replaces its row by the erased row (the call itself not deleted yet)
    msg = message()
    world = World(delete_from_twilio=True)
    world.add_call(msg["call_sid"])

    def erased_meanwhile(url: str) -> bytes:
        world.recordings.erase(msg["recording_sid"], msg["call_sid"], now=NOW)
        return MP3

    world.ports.fetch = erased_meanwhile
    # When the MP3 arrives, Then it is not stored: no object, the erased row stays as it is, the
    # call gets no recording, and Twilio's copy is deleted too
    assert process(msg, world.ports) == "call-erased"
    assert world.objects.objects == {} and erased(world, msg)
    assert "recording" not in world.calls.rows[msg["call_sid"]]
    assert world.twilio.deleted == [msg["recording_sid"]]


def test_a_redelivered_message_of_a_recording_whose_call_was_erased_finishes_the_clean_up() -> None:
    # Given a stored recording whose call was erased after it was stored (the clean-up of the try
    # that found the call gone had failed: the row still says stored, the MP3 is there)
    world = World(MP3)
    msg = message()
    world.add_call(msg["call_sid"])
    assert process(msg, world.ports) == "stored"
    del world.calls.rows[msg["call_sid"]]
    # When the message comes back
    outcome = process(msg, world.ports)
    # Then the recording goes with its row: nothing left that no erasure could find
    assert outcome == "call-erased"
    assert world.objects.objects == {} and erased(world, msg)


def test_twilios_copy_of_a_recording_whose_call_is_erased_while_it_is_fetched_is_deleted_too() -> None:
    # Given an account that has Twilio's copies deleted, and a recording being fetched whose call
    # is erased on request while the MP3 is on its way; Twilio's delete fails once
    msg = message()
    world = World(delete_from_twilio=True)
    world.twilio.delete_fails = 1
    world.add_call(msg["call_sid"])

    def erased_meanwhile(url: str) -> bytes:
        del world.calls.rows[msg["call_sid"]]
        return MP3

    world.ports.fetch = erased_meanwhile
    # When the message is handled, and handled again after the failed delete
    with pytest.raises(RetryLater):
        process(msg, world.ports)
    assert process(msg, world.ports) == "call-erased"
    # Then Twilio's copy is deleted as well as ours, and nothing is left to find
    assert world.twilio.deleted == [msg["recording_sid"]]
    assert world.objects.objects == {} and erased(world, msg)


def test_a_recording_requeued_from_its_row_keeps_its_duration_and_channels() -> None:
    from recording_ingest.requeue import requeue_message

    # Given a two-channel recording whose first fetch failed (Twilio's media host answered 500)
    world = World(FetchError("http-500"), MP3)
    msg = message(duration_seconds=42, channels=2)
    world.add_call(msg["call_sid"])
    with pytest.raises(RetryLater):
        process(msg, world.ports)
    # When the operator requeues it (`calltrack recordings retry`: a message made from the row)
    again = requeue_message(world.recordings.rows[msg["recording_sid"]], OUR, NOW)
    assert process(again, world.ports) == "stored"
    # Then the call still says two channels and 42 s (transcription separates caller and agent)
    recording = world.calls.rows[msg["call_sid"]]["recording"]
    assert (recording["channels"], recording["duration_seconds"]) == (2, 42)


def test_a_duplicate_message_after_success_fetches_nothing_and_changes_nothing() -> None:
    world = World(MP3)
    msg = message()
    world.add_call(msg["call_sid"])
    process(msg, world.ports)
    before = (dict(world.calls.rows), dict(world.objects.objects))

    assert process(msg, world.ports) == "duplicate"
    assert len(world.twilio.fetched) == 1
    assert (dict(world.calls.rows), dict(world.objects.objects)) == before


@pytest.mark.parametrize("reason", ["timeout", "http-500", "not-ready", "truncated", "not-mp3"])
def test_a_fetch_fault_is_recorded_and_retried_then_stored(reason: str) -> None:
    world = World(FetchError(reason), MP3)
    msg = message()
    world.add_call(msg["call_sid"])

    with pytest.raises(RetryLater) as err:
        process(msg, world.ports)
    assert err.value.reason == reason
    row = world.recordings.rows[msg["recording_sid"]]
    assert (row["status"], row["reason"]) == ("retrying", reason)
    assert world.failures == [reason]
    # The row and the call say what failed and when it is tried next (1 minute: the first step)
    assert err.value.delay_s == 60 and row["next_attempt_at"] == "2026-11-25T03:01:00Z"
    assert world.calls.rows[msg["call_sid"]]["recording"] == {
        "status": "retrying",
        "recording_sid": msg["recording_sid"],
        "reason": reason,
        "next_attempt_at": "2026-11-25T03:01:00Z",
    }

    assert process(msg, world.ports) == "stored"  # the queue's retry
    assert world.recordings.rows[msg["recording_sid"]]["reason"] is None


def test_a_call_row_without_an_account_counts_as_unknown_and_waits() -> None:
    # Given a status callback for an unknown number left a call row with no account
    world = World(MP3)
    msg = message()
    world.calls.rows[msg["call_sid"]] = {"call_sid": msg["call_sid"], "status": "answered"}
    # When the recording message is processed, Then it is retried later without a fetch
    with pytest.raises(RetryLater, match="call-unknown"):
        process(msg, world.ports)
    assert world.twilio.fetched == []


def test_a_recording_for_a_call_we_do_not_know_yet_waits_without_fetching() -> None:
    world = World(MP3)
    msg = message()
    with pytest.raises(RetryLater, match="call-unknown"):
        process(msg, world.ports)
    assert world.twilio.fetched == []
    assert world.recordings.rows[msg["recording_sid"]]["status"] == "retrying"

    world.add_call(msg["call_sid"])  # the call record shows up
    assert process(msg, world.ports) == "stored"


def test_a_recording_whose_call_never_gets_a_row_fails_after_the_ladder_and_is_not_redriven() -> None:
    import json

    from recording_ingest.backoff import MAX_RECEIVES
    from recording_ingest.redrive import RedrivePorts, redrive

    # Given a recording of a call that never gets a row (erased, its account deleted, or its
    # webhook never reached us)
    world = World(MP3)
    msg = message()
    # When every receive of the ladder finds no call row
    for attempt in range(1, MAX_RECEIVES):
        with pytest.raises(RetryLater, match="call-unknown"):
            process(msg, world.ports, receive_count=attempt)
    outcome = process(msg, world.ports, receive_count=MAX_RECEIVES)
    # Then the last one ends it (no raise: the message is not dead-lettered), failed with its reason
    row = world.recordings.rows[msg["recording_sid"]]
    assert outcome == "call-unknown" and world.twilio.fetched == []
    assert (row["status"], row["reason"], row["next_attempt_at"]) == (
        "failed", "no call row after a day of tries", None)
    # And a copy already in the DLQ is deleted by the hourly redrive, not sent back
    dlq = {"r0": json.dumps(msg)}
    sent: list[str] = []
    batches = [list(dlq.items()), []]
    counts = redrive(RedrivePorts(receive=lambda: batches.pop(0), delete=lambda r: dlq.pop(r),
                                  send=sent.append, rows=world.recordings, now=lambda: NOW,
                                  account_sid=OUR))
    assert counts["finished"] == 1 and sent == [] and dlq == {}


@pytest.mark.parametrize("status", ["failed", "absent"])
def test_a_note_before_its_call_row_backs_off_like_a_fetch(status: str) -> None:
    from recording_ingest.backoff import delay_s

    # Given Twilio's failed/absent callback arrives before the call's row
    world = World()
    msg = message(status)
    # When it is received the fifth time, Then it waits the ladder's fifth step, not a minute
    with pytest.raises(RetryLater) as retry:
        process(msg, world.ports, receive_count=5)
    assert retry.value.delay_s == delay_s(5) > 60
    # And once the call's row exists, it is noted
    world.add_call(msg["call_sid"])
    assert process(msg, world.ports, receive_count=6) == "noted"


def test_a_second_copy_while_the_first_is_fetching_waits_instead_of_fetching_again() -> None:
    world = World(MP3)
    msg = message()
    world.add_call(msg["call_sid"])
    world.recordings.claim(
        msg["recording_sid"], call_sid=msg["call_sid"], account="acme", now=NOW, lease_s=150
    )
    with pytest.raises(RetryLater, match="in-progress"):
        process(msg, world.ports)
    assert world.twilio.fetched == []


def test_an_abandoned_claim_expires_and_the_retry_fetches() -> None:
    world = World(MP3)
    msg = message()
    world.add_call(msg["call_sid"])
    world.recordings.claim(
        msg["recording_sid"],
        call_sid=msg["call_sid"],
        account="acme",
        now=NOW - timedelta(minutes=10),
        lease_s=150,
    )
    assert process(msg, world.ports) == "stored"


def test_a_short_write_to_s3_is_not_accepted_as_stored() -> None:
    world = World(MP3, MP3)
    world.objects.short_by = 10
    msg = message()
    world.add_call(msg["call_sid"])
    with pytest.raises(RetryLater, match="verify-failed"):
        process(msg, world.ports)
    assert world.recordings.rows[msg["recording_sid"]]["status"] == "retrying"
    world.objects.short_by = 0
    assert process(msg, world.ports) == "stored"


def test_delete_from_twilio_happens_only_after_the_verified_copy_and_is_retried_alone() -> None:
    world = World(MP3, delete_from_twilio=True)
    world.twilio.delete_fails = 1
    msg = message()
    world.add_call(msg["call_sid"])

    with pytest.raises(RetryLater):
        process(msg, world.ports)  # stored, but Twilio's delete failed
    assert world.recordings.rows[msg["recording_sid"]]["status"] == "stored"
    assert world.twilio.deleted == []

    assert process(msg, world.ports) == "duplicate"  # the retry only deletes
    assert world.twilio.deleted == [msg["recording_sid"]]
    assert len(world.twilio.fetched) == 1
    assert world.recordings.rows[msg["recording_sid"]]["twilio_deleted"] is True


def test_no_delete_at_twilio_unless_the_account_asks() -> None:
    world = World(MP3)
    msg = message()
    world.add_call(msg["call_sid"])
    process(msg, world.ports)
    assert world.twilio.deleted == []


@pytest.mark.parametrize("status", ["failed", "absent"])
def test_failed_and_absent_are_noted_on_the_call_without_fetching(status: str) -> None:
    world = World()
    msg = message(status)
    world.add_call(msg["call_sid"])
    assert process(msg, world.ports) == "noted"
    assert world.calls.rows[msg["call_sid"]]["recording"] == {
        "status": status,
        "recording_sid": msg["recording_sid"],
    }
    assert world.twilio.fetched == []


def test_a_late_absent_does_not_overwrite_a_stored_recording() -> None:
    world = World(MP3)
    msg = message()
    world.add_call(msg["call_sid"])
    process(msg, world.ports)
    process({**msg, "status": "absent"}, world.ports)
    assert world.calls.rows[msg["call_sid"]]["recording"]["status"] == "stored"


@pytest.mark.parametrize(
    "bad", [{"recording_sid": "RE../../x"}, {"account_sid": "AC" + "2" * 32}, {"call_sid": "nope"}]
)
def test_a_message_with_bad_ids_is_never_fetched(bad: dict[str, str]) -> None:
    world = World(MP3)
    msg = message(**bad)
    with pytest.raises(RetryLater):
        process(msg, world.ports)
    assert world.twilio.fetched == []


def test_the_s3_key_groups_by_account_and_month_and_refuses_unsafe_accounts() -> None:
    assert s3_key("acme", "2026-01-05T00:00:00Z", "CA1", "RE1", NOW) == "recordings/acme/2026/01/CA1/RE1.mp3"
    assert s3_key("acme", None, "CA1", "RE1", NOW) == "recordings/acme/2026/11/CA1/RE1.mp3"
    with pytest.raises(ValueError):
        s3_key("../other", None, "CA1", "RE1", NOW)


def test_retries_back_off_from_a_minute_to_twelve_hours_and_the_last_waits_for_the_redrive() -> None:
    from recording_ingest.backoff import MAX_RECEIVES, MAX_STEP_S, delay_s

    assert [delay_s(n) for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert delay_s(11) == MAX_STEP_S < 12 * 3600 and delay_s(40) == MAX_STEP_S
    world = World(FetchError("http-503"))
    msg = message()
    world.add_call(msg["call_sid"])
    with pytest.raises(RetryLater):
        process(msg, world.ports, receive_count=MAX_RECEIVES)
    # The message goes to the DLQ now; the hourly redrive (:20) is its next try
    assert world.recordings.rows[msg["recording_sid"]]["next_attempt_at"] == "2026-11-25T03:20:00Z"


def test_a_recording_twilio_keeps_answering_404_for_is_failed_as_gone() -> None:
    from recording_ingest.backoff import GONE_AFTER_404S

    world = World(*([FetchError("not-ready")] * GONE_AFTER_404S))
    msg = message()
    world.add_call(msg["call_sid"])
    for attempt in range(1, GONE_AFTER_404S):
        with pytest.raises(RetryLater):
            process(msg, world.ports, receive_count=attempt)
    assert process(msg, world.ports, receive_count=GONE_AFTER_404S) == "gone"
    row = world.recordings.rows[msg["recording_sid"]]
    assert (row["status"], row["reason"], row["next_attempt_at"]) == ("failed", "gone from Twilio", None)
    assert world.calls.rows[msg["call_sid"]]["recording"] == {
        "status": "failed", "recording_sid": msg["recording_sid"], "reason": "gone from Twilio"
    }


def test_only_404s_in_a_row_make_a_recording_gone() -> None:
    from recording_ingest.backoff import GONE_AFTER_404S

    # Given Twilio's media host timing out and answering 404 (not there yet) by turns, then the file
    world = World(FetchError("timeout"), FetchError("timeout"), FetchError("not-ready"),
                  FetchError("timeout"), FetchError("not-ready"), MP3)
    msg = message()
    world.add_call(msg["call_sid"])
    # When the message is tried again and again (its receive count passes GONE_AFTER_404S)
    assert GONE_AFTER_404S < 6
    for attempt in range(1, 6):
        with pytest.raises(RetryLater):
            process(msg, world.ports, receive_count=attempt)
    # Then the recording is fetched at the sixth try, not given up as gone at its first 404
    assert process(msg, world.ports, receive_count=6) == "stored"


def test_the_redrive_sends_dead_letters_back_but_not_finished_or_malformed_ones() -> None:
    import json

    from recording_ingest.redrive import RedrivePorts, redrive

    world = World()
    live, done, gone, late = message(), message(), message(), message()
    # (and one of a former Twilio account: twilioAccountSid changed while it waited)
    foreign = message(account_sid="AC" + "2" * 32)
    world.recordings.rows[done["recording_sid"]] = {"status": "stored"}
    world.recordings.rows[gone["recording_sid"]] = {"status": "failed", "reason": "gone from Twilio"}
    # (a recording whose call was erased: its own late message is finished, the erasure's delete
    # at Twilio that kept failing is tried again, the erased row left as it is)
    world.recordings.erase(late["recording_sid"], late["call_sid"], now=NOW)
    erasure = erased_message(late, "acme", OUR, NOW)
    # (and an erasure's delete that has failed for longer than the erased row is kept: given up)
    stale = erased_message(message(), "acme", OUR, NOW - timedelta(days=31))
    dlq = {f"r{i}": json.dumps(m) for i, m in enumerate([live, done, gone, late, erasure, stale])}
    dlq["bad"] = "{not json"
    dlq["foreign"] = json.dumps(foreign)
    sent: list[str] = []
    batches = [list(dlq.items()), []]
    counts = redrive(
        RedrivePorts(
            receive=lambda: batches.pop(0),
            delete=lambda receipt: dlq.pop(receipt),
            send=sent.append,
            rows=world.recordings,
            now=lambda: NOW,
            account_sid=OUR,
        )
    )
    # the malformed and the foreign one stay for an operator (the consumer would refuse them again)
    assert counts == {"redriven": 2, "finished": 4, "kept": 2}
    assert [(json.loads(b)["recording_sid"], json.loads(b)["status"]) for b in sent] == [
        (live["recording_sid"], "completed"), (late["recording_sid"], "erased")]
    assert sorted(dlq) == ["bad", "foreign"]
    assert world.recordings.rows[live["recording_sid"]]["status"] == "retrying"
    assert erased(world, late)


def test_a_recording_in_the_retry_ladder_when_its_call_is_erased_is_deleted_at_twilio() -> None:
    # Given an account that has Twilio's copies deleted, and a recording Twilio's media host
    # failed to serve: it waits in the retry ladder
    world = World(FetchError("http-500"), delete_from_twilio=True)
    msg = message()
    world.add_call(msg["call_sid"])
    with pytest.raises(RetryLater):
        process(msg, world.ports)
    row = world.recordings.get(msg["recording_sid"])
    assert row is not None and row["status"] == "retrying"
    # When the caller is erased (the call goes, the row becomes the erased row) and the erasure's
    # message arrives, the first time Twilio's delete fails
    del world.calls.rows[msg["call_sid"]]
    world.recordings.erase(msg["recording_sid"], msg["call_sid"], now=NOW)
    erasure = erased_message(row, "acme", OUR, NOW)
    world.twilio.delete_fails = 1
    with pytest.raises(RetryLater):
        process(erasure, world.ports)
    outcome = process(erasure, world.ports)
    # Then Twilio's copy is deleted (retried like any try)
    assert outcome == "erased"
    assert world.twilio.deleted == [msg["recording_sid"]]
    # and the recording's own message, coming back from its ladder, ends as a duplicate: it does
    # not write a row back for the erased call
    assert process(msg, world.ports, 4) == "duplicate"
    assert erased(world, msg)


def test_an_erasures_message_deletes_nothing_at_twilio_for_an_account_that_keeps_its_copies() -> None:
    world = World(delete_from_twilio=False)
    row = {"recording_sid": "RE" + "a" * 32, "call_sid": "CA" + "b" * 32}
    world.recordings.rows[row["recording_sid"]] = {**row, "status": "retrying"}
    assert process(erased_message(row, "acme", OUR, NOW), world.ports) == "erased"
    assert world.twilio.deleted == []


def test_a_message_saying_erased_without_an_account_is_not_an_erasures_and_changes_nothing() -> None:
    # Given a recording stored for its call, and a message saying "erased" that names no account
    # (no erasure sent it: a Twilio callback never names one)
    world = World(MP3, delete_from_twilio=True)
    msg = message()
    world.add_call(msg["call_sid"])
    assert process(msg, world.ports) == "stored"
    # When it is handled, Then nothing is deleted
    assert process({**msg, "status": "erased"}, world.ports) == "ignored"
    assert world.recordings.rows[msg["recording_sid"]]["status"] == "stored"
    assert world.twilio.deleted == [msg["recording_sid"]]  # only the delete after storing
