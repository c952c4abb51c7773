"""The recording reconciliation (recording-reconcile job): which calls it asks Twilio's Recordings
API about, what it queues, its bound per run, and that Twilio's errors never crash it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from recording_ingest.callback import build_message
from recording_ingest.fetch import FetchError
from recording_ingest.reconcile import (
    JOB_NAME,
    MAX_CALLS_PER_ACCOUNT,
    MAX_CONSECUTIVE_ERRORS,
    ReconcilePorts,
    reconcile,
)
from tests.support.recordings import ReconcileWorld

AT = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
OURS = "AC" + "0" * 32


def sid(prefix: str, n: int) -> str:
    return f"{prefix}{n:032x}"


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def ports(world: ReconcileWorld) -> ReconcilePorts:
    return ReconcilePorts(
        accounts=world.accounts.all,
        calls_between=world.between,
        list_recordings=world.list_recordings,
        send=world.send,
        twilio_account_sid=world.twilio_account_sid,
    )


def answered(world: ReconcileWorld, account: str, n: int, ended_ago: timedelta, **fields: object) -> str:
    call_sid = sid("CA", n)
    ended = AT - ended_ago
    world.add_call(
        account, call_sid, status="answered", started_at=stamp(ended - timedelta(minutes=3)),
        ended_at=stamp(ended), caller="+819012345678", **fields,
    )
    return call_sid


def listed(for_call: str, n: int, status: str = "completed", **fields: object) -> dict[str, object]:
    return {
        "sid": sid("RE", n), "call_sid": for_call, "account_sid": OURS, "status": status,
        "duration": "7", "channels": 2, "source": "DialVerb",
        "date_created": "Mon, 30 Nov 2026 02:40:00 +0000", **fields,
    }


def test_only_answered_calls_ended_10_minutes_to_2_days_ago_without_a_recording_are_asked_about() -> None:
    # Given an account with recording on and calls in every situation
    world = ReconcileWorld(OURS)
    world.add_account("rec", enabled=True)
    due = answered(world, "rec", 1, timedelta(minutes=20))
    old_due = answered(world, "rec", 2, timedelta(days=1, hours=20))
    answered(world, "rec", 3, timedelta(minutes=20), recording={"status": "stored"})
    answered(world, "rec", 4, timedelta(minutes=20), recording={"status": "retrying"})
    answered(world, "rec", 5, timedelta(minutes=4))  # its callback may still be on its way
    answered(world, "rec", 6, timedelta(days=2, hours=2))  # too old to look for
    world.add_call("rec", sid("CA", 7), status="missed", started_at=stamp(AT - timedelta(hours=1)),
                   ended_at=stamp(AT - timedelta(hours=1)))
    world.add_call("rec", sid("CA", 8), status="ringing", started_at=stamp(AT - timedelta(hours=1)))

    # When the job runs
    summary = reconcile(AT, ports(world))

    # Then Twilio is asked about the two calls whose recording should exist but is unknown, newest first
    assert world.asked == [due, old_due]
    assert summary["job"] == JOB_NAME and summary["calls_checked"] == 2
    assert summary["recordings_queued"] == 0 and summary["errors"] == 0


def test_each_completed_recording_twilio_lists_is_queued_as_the_callback_would_queue_it() -> None:
    world = ReconcileWorld(OURS)
    world.add_account("rec", enabled=True)
    call_sid = answered(world, "rec", 1, timedelta(minutes=30))
    world.list_at_twilio(
        call_sid,
        listed(call_sid, 1),
        listed(call_sid, 2, status="processing"),
        listed(call_sid, 3, status="absent"),
        listed(call_sid, 4, call_sid=sid("CA", 99)),  # another call's: never queued
        listed(call_sid, 5, account_sid="AC" + "f" * 32),  # another Twilio account's
        listed(call_sid, 6, sid="RE" + "0" * 31 + "\n"),  # malformed id
    )

    summary = reconcile(AT, ports(world))

    # Then exactly the completed one is queued, the message the callback builds for it
    form = {
        "AccountSid": OURS, "CallSid": call_sid, "RecordingSid": sid("RE", 1), "RecordingStatus": "completed",
        "RecordingDuration": "7", "RecordingChannels": "2", "RecordingSource": "DialVerb",
    }
    assert [json.loads(body) for body in world.sent] == [build_message(form, received_at=stamp(AT))]
    assert summary["recordings_queued"] == 1
    assert summary["not_completed"] == 2
    assert summary["refused"] == 3
    assert "+8190" not in json.dumps(summary)  # counts, never caller numbers


def test_answered_calls_of_accounts_without_recording_are_not_asked_about() -> None:
    world = ReconcileWorld(OURS)
    world.add_account("quiet", enabled=False)
    answered(world, "quiet", 1, timedelta(minutes=30))
    world.accounts.configs["broken"] = {"account": "broken", "timezone": "Nowhere/Else"}

    summary = reconcile(AT, ports(world))

    assert world.asked == [] and summary["calls_checked"] == 0
    assert summary["accounts_checked"] == 1  # read for its voicemails; the broken one skipped


def test_a_voicemail_whose_callback_was_refused_is_looked_for_in_any_account() -> None:
    # Given missed calls offered a voicemail, in an account that records calls and in one that
    # does not (a voicemail is recorded either way), and a missed call offered none
    world = ReconcileWorld(OURS)
    world.add_account("rec", enabled=True)
    world.add_account("quiet", enabled=False)
    ended = stamp(AT - timedelta(minutes=30))
    for account, n, fields in (("rec", 1, {"voicemail": True}), ("quiet", 2, {"voicemail": True}),
                               ("quiet", 3, {})):
        world.add_call(account, sid("CA", n), status="missed", started_at=ended, ended_at=ended, **fields)
    earlier = stamp(AT - timedelta(hours=3))  # a caller who hung up at the prompt, hours ago
    world.add_call("rec", sid("CA", 4), status="missed", started_at=earlier, ended_at=earlier, voicemail=True)
    day = stamp(AT - timedelta(hours=24, minutes=5))  # a day ago: asked once more (a long outage)
    world.add_call("quiet", sid("CA", 5), status="missed", started_at=day, ended_at=day, voicemail=True)
    world.list_at_twilio(sid("CA", 2), listed(sid("CA", 2), 2, source="RecordVerb"))

    # When the job runs
    summary = reconcile(AT, ports(world))

    # Then Twilio is asked about both recent voicemails and, once, the day-old one (never about the
    # other call, nor, every 15 minutes for two days, about a prompt nobody spoke to), and the
    # message it lists is queued to be stored (it was lost: the job looked at answered calls only)
    assert sorted(world.asked) == [sid("CA", 1), sid("CA", 2), sid("CA", 5)]
    assert summary["recordings_queued"] == 1 and json.loads(world.sent[0])["call_sid"] == sid("CA", 2)


def test_at_most_500_calls_per_account_are_checked_per_run_the_rest_next_run() -> None:
    world = ReconcileWorld(OURS)
    world.add_account("busy", enabled=True)
    world.add_account("small", enabled=True)
    sids = [answered(world, "busy", n, timedelta(minutes=20 + n)) for n in range(MAX_CALLS_PER_ACCOUNT + 100)]
    small = answered(world, "small", 10_000, timedelta(minutes=20))

    summary = reconcile(AT, ports(world))

    assert world.asked == [*sids[:MAX_CALLS_PER_ACCOUNT], small]  # newest first in each account
    assert summary["calls_checked"] == MAX_CALLS_PER_ACCOUNT + 1
    assert summary["left_for_next_run"] == 100
    assert summary["by_account"]["busy"]["left_for_next_run"] == 100


def test_twilio_answering_401_or_500_is_counted_and_the_run_goes_on() -> None:
    world = ReconcileWorld(OURS)
    world.add_account("rec", enabled=True)
    unauthorized = answered(world, "rec", 1, timedelta(minutes=40))
    failing = answered(world, "rec", 2, timedelta(minutes=30))
    fine = answered(world, "rec", 3, timedelta(minutes=20))
    world.fail_at_twilio(unauthorized, FetchError("http-401"))
    world.fail_at_twilio(failing, FetchError("http-500"))
    world.list_at_twilio(fine, listed(fine, 3))

    summary = reconcile(AT, ports(world))

    assert world.asked == [fine, failing, unauthorized]
    assert summary["errors"] == 2 and summary["recordings_queued"] == 1
    assert summary["error_reasons"] == {"http-401": 1, "http-500": 1}

    # And the next run asks again about the calls it could not check (nothing was written)
    world.list_at_twilio(failing, listed(failing, 2))
    again = reconcile(AT + timedelta(minutes=15), ports(world))
    assert again["errors"] == 0 and again["recordings_queued"] == 2


def test_a_twilio_outage_stops_the_run_after_a_few_errors_in_a_row() -> None:
    world = ReconcileWorld(OURS)
    world.add_account("rec", enabled=True)
    for n in range(20):
        world.fail_at_twilio(answered(world, "rec", n, timedelta(minutes=20 + n)), FetchError("timeout"))
    world.add_account("other", enabled=True)
    answered(world, "other", 99, timedelta(minutes=20))

    summary = reconcile(AT, ports(world))

    assert len(world.asked) == MAX_CONSECUTIVE_ERRORS
    assert summary["stopped"] == "twilio-unavailable"
    assert summary["errors"] == MAX_CONSECUTIVE_ERRORS


def test_a_queue_failure_is_counted_and_retried_next_run() -> None:
    world = ReconcileWorld(OURS)
    world.add_account("rec", enabled=True)
    call_sid = answered(world, "rec", 1, timedelta(minutes=20))
    world.list_at_twilio(call_sid, listed(call_sid, 1))

    def refuse(body: str) -> None:
        raise RuntimeError("queue down")

    p = ports(world)
    p.send = refuse
    summary = reconcile(AT, p)

    assert summary["recordings_queued"] == 0 and summary["errors"] == 1
    assert summary["error_reasons"] == {"queue": 1}
