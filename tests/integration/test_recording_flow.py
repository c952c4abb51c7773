"""Recordings end to end over the local stack: signed callback -> queue -> fetch -> S3 -> call -> URL.

The fake Twilio media server is started for this module (``tests.support.recording_stack.media``)
and the stack's handlers (which run in this process and read settings at first use) are pointed at
it through TWILIO_API_BASE_URL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
import requests

from calltrack_cli.local.fake_twilio import FakeTwilioMedia
from calltrack_cli.local.mp3 import silent_mp3
from tests.support import unique_recording_sid
from tests.support.recording_stack import (
    CALLER,
    OUR,
    Scenario,
    dlq_bodies,
    dlq_sids,
    recording_row,
    s3_object,
    serve_media,
)

media = pytest.fixture(scope="module", name="media")(serve_media)


def test_a_signed_callback_ends_with_the_recording_in_s3_on_the_call_and_playable_by_a_manager(
    local_stack: Any, media: FakeTwilioMedia
) -> None:
    # Given an answered call on a number with recording on, and Twilio holding its MP3
    s = Scenario(local_stack, media)
    sid, data = s.recording(silent_mp3(3.0, id3=True))

    # When Twilio posts the signed recording-status callback and the queue is worked off
    resp = s.callback(sid)
    assert resp.status_code == 200 and "<Response" in resp.text
    local_stack.drain()

    # Then the MP3 was fetched once, from the configured base, with Basic auth, not from RecordingUrl
    [fetch] = media.fetches(sid)
    assert fetch.path == f"/2010-04-01/Accounts/{OUR}/Recordings/{sid}.mp3"
    assert fetch.authorization and fetch.authorization.startswith("Basic ")
    # ... stored byte-identical under the account/month key, encrypted, with the ids as metadata
    recording = s.call()["recording"]
    assert recording["status"] == "stored"
    assert recording["recording_sid"] == sid
    assert recording["size_bytes"] == len(data)
    assert (recording["duration_seconds"], recording["channels"]) == (7, 2)
    key = recording["s3_key"]
    assert key.startswith(f"recordings/{s.account}/") and key.endswith(f"/{s.call_sid}/{sid}.mp3")
    obj = s3_object(local_stack, key)
    assert obj["Body"].read() == data
    assert obj["Metadata"] == {"call-sid": s.call_sid, "recording-sid": sid, "account": s.account}
    assert obj.get("ServerSideEncryption") in ("aws:kms", "AES256")

    # And a manager gets a short-lived URL that returns the same bytes
    resp = local_stack.request("GET", f"/v1/calls/{s.call_sid}/recording", token=s.token("manager"))
    assert resp.status_code == 200, resp.text
    grant = resp.json()
    assert set(grant) == {"url", "expires_at"}
    assert requests.get(grant["url"], timeout=10).content == data

    # ... and ?download=1 names the file for a person
    resp = local_stack.request(
        "GET", f"/v1/calls/{s.call_sid}/recording", token=s.token("admin"), params={"download": "1"}
    )
    download = requests.get(resp.json()["url"], timeout=10)
    assert download.content == data
    disposition = download.headers.get("Content-Disposition", "")
    assert "attachment" in disposition and "_newspaper_5678.mp3" in disposition

    # But a marketer is refused, and another account cannot see the call at all
    marketer = local_stack.request("GET", f"/v1/calls/{s.call_sid}/recording", token=s.token("marketer"))
    assert marketer.status_code == 403
    other = Scenario(local_stack, media)
    foreign = local_stack.request("GET", f"/v1/calls/{s.call_sid}/recording", token=other.token("admin"))
    assert foreign.status_code == 404


def test_a_duplicate_callback_does_not_fetch_twice(local_stack: Any, media: FakeTwilioMedia) -> None:
    s = Scenario(local_stack, media)
    sid, _ = s.recording()
    assert s.callback(sid).status_code == 200
    assert s.callback(sid).status_code == 200  # Twilio retried before we were done
    local_stack.drain()
    assert s.callback(sid).status_code == 200  # ... and once more after
    local_stack.drain()
    assert len(media.fetches(sid)) == 1
    assert s.call()["recording"]["status"] == "stored"


@pytest.mark.parametrize(
    "forged",
    [
        {"signature": "bad"},
        {"RecordingSid": "RE-not-a-sid"},
        {"RecordingSid": "../../../etc/passwd"},
        {"AccountSid": "AC" + "9" * 32},
    ],
    ids=["forged-signature", "bad-recording-sid", "path-in-sid", "foreign-account"],
)
def test_forged_or_malformed_callbacks_are_refused_and_nothing_is_fetched(
    local_stack: Any, media: FakeTwilioMedia, forged: dict[str, str]
) -> None:
    s = Scenario(local_stack, media)
    sid, _ = s.recording()
    resp = s.callback(sid, **forged)
    assert resp.status_code in (400, 401, 403)
    local_stack.drain()
    assert media.fetches(sid) == []
    assert recording_row(local_stack, sid) is None
    assert (s.call().get("recording") or {}).get("status") != "stored"


@pytest.mark.parametrize(
    "faults", [("timeout",), ("500", "503"), ("404", "404"), ("truncate",), ("redirect",)]
)
def test_media_faults_are_retried_until_the_recording_is_stored(
    local_stack: Any, media: FakeTwilioMedia, faults: tuple[str, ...]
) -> None:
    s = Scenario(local_stack, media)
    sid, data = s.recording(None, *faults)
    assert s.callback(sid).status_code == 200
    local_stack.drain()
    recording = s.call()["recording"]
    assert recording["status"] == "stored"
    assert s3_object(local_stack, recording["s3_key"])["Body"].read() == data
    row = recording_row(local_stack, sid)
    assert row and row["status"] == "stored"


def test_a_recording_that_keeps_failing_lands_in_the_dlq_with_its_reason(
    local_stack: Any, media: FakeTwilioMedia
) -> None:
    s = Scenario(local_stack, media)
    sid, _ = s.recording(None, *(["500"] * 20))
    assert s.callback(sid).status_code == 200
    local_stack.drain()

    assert any(body.get("recording_sid") == sid for body in dlq_bodies(local_stack))
    row = recording_row(local_stack, sid)
    assert row and (row["status"], row["reason"]) == ("retrying", "http-500")
    assert (s.call().get("recording") or {}).get("status") != "stored"


def test_failed_and_absent_recordings_are_noted_on_the_call(local_stack: Any, media: FakeTwilioMedia) -> None:
    s = Scenario(local_stack, media)
    sid = unique_recording_sid()
    assert s.callback(sid, RecordingStatus="absent").status_code == 200
    local_stack.drain()
    assert s.call()["recording"] == {"status": "absent", "recording_sid": sid}
    assert media.fetches(sid) == []
    resp = local_stack.request("GET", f"/v1/calls/{s.call_sid}/recording", token=s.token("manager"))
    assert resp.status_code == 404 and "no audio" in resp.json()["message"]


def test_delete_from_twilio_removes_twilios_copy_after_the_s3_copy(
    local_stack: Any, media: FakeTwilioMedia
) -> None:
    s = Scenario(local_stack, media, delete_from_twilio=True)
    sid, data = s.recording()
    s.callback(sid)
    local_stack.drain()
    assert media.is_deleted(sid)
    assert s3_object(local_stack, s.call()["recording"]["s3_key"])["Body"].read() == data


def test_erasing_a_caller_whose_recording_is_still_retried_deletes_twilios_copy(
    local_stack: Any, media: FakeTwilioMedia
) -> None:
    # Given an account that has Twilio's copies deleted, and a call whose recording Twilio's media
    # host keeps failing to serve: it is in the retry ladder, and Twilio holds the only copy
    ended = datetime(2026, 10, 5, 1, 0, tzinfo=UTC)  # long ago: the erasure need not wait
    s = Scenario(local_stack, media, delete_from_twilio=True, answered_at=ended)
    sid, _ = s.recording(None, *(["500"] * 20))
    assert s.callback(sid).status_code == 200
    local_stack.drain()
    row = recording_row(local_stack, sid)
    assert row and row["status"] == "retrying" and not media.is_deleted(sid)
    assert sid in dlq_sids(local_stack)  # its message waits for the hourly redrive

    # When an admin erases the caller
    resp = local_stack.request("DELETE", f"/v1/callers/{quote(CALLER, safe='')}", token=s.token("admin"))
    assert resp.status_code == 200, resp.text
    assert resp.json()["erased"]["recordings"] == resp.json()["erased"]["twilio_recordings"] == 1
    local_stack.drain()

    # Then the recordings function deletes Twilio's copy too, and the row says only that the
    # recording was erased (nothing of the account, gone with the table's TTL)
    assert media.is_deleted(sid)
    row = recording_row(local_stack, sid)
    assert row and row["status"] == "erased"
    assert set(row) == {"recording_sid", "call_sid", "status", "expires_at"}
    # And when the recording's own message comes back from the DLQ, it ends there: nothing is
    # fetched and no row is written back for the erased call
    fetches = len(media.fetches(sid))
    local_stack.run_job("recording-dlq-redrive", "2099-01-01T00:20:00Z")
    local_stack.drain()
    assert sid not in dlq_sids(local_stack) and len(media.fetches(sid)) == fetches
    assert recording_row(local_stack, sid) == row


def test_retention_sweep_deletes_old_recordings_and_the_call_says_expired(
    local_stack: Any, media: FakeTwilioMedia
) -> None:
    s = Scenario(local_stack, media, retention_days=30)
    sid, _ = s.recording()
    s.callback(sid)
    local_stack.drain()
    key = s.call()["recording"]["s3_key"]

    local_stack.run_job("recording-retention-sweep", "2099-01-01T18:00:00Z")

    assert s.call()["recording"]["status"] == "expired"
    with pytest.raises(Exception):  # noqa: B017 - botocore NoSuchKey
        s3_object(local_stack, key)
    # and no version of the audio stays behind in the versioned bucket (nor a delete marker)
    from calltrack.settings import get_settings

    s3 = local_stack.stack.client("s3")
    left = s3.list_object_versions(Bucket=get_settings().recordings_bucket, Prefix=key)
    assert not left.get("Versions") and not left.get("DeleteMarkers")
    resp = local_stack.request("GET", f"/v1/calls/{s.call_sid}/recording", token=s.token("manager"))
    assert resp.status_code == 410 and "expired" in resp.json()["message"]
    # and the expired row leaves the sweep's index, so the next nights do not read it again
    from calltrack.models.recordings import Recording

    row = Recording.get(sid, consistent_read=True)
    assert (row.status, row.stored_at) == ("expired", None)
    assert [r.recording_sid for r in Recording.by_account.query(row.account)] == []


def test_a_recording_expired_before_the_index_was_sparse_leaves_it_at_the_next_sweep(
    local_stack: Any, media: FakeTwilioMedia
) -> None:
    from calltrack.models.recordings import Recording

    # Given a recording expired by an older sweep, which kept its stored_at (so it stayed in the
    # account's by-account index and every night's sweep read it again)
    s = Scenario(local_stack, media, retention_days=30)
    sid, _ = s.recording()
    s.callback(sid)
    local_stack.drain()
    row = Recording.get(sid, consistent_read=True)
    row.update(actions=[Recording.status.set("expired"), Recording.expired_at.set("2098-12-01T18:00:00Z")])
    assert [r.recording_sid for r in Recording.by_account.query(row.account)] == [sid]

    # When the next sweep runs
    local_stack.run_job("recording-retention-sweep", "2099-01-01T18:00:00Z")

    # Then the row is out of the index (kept, with its expiry) and nothing else changed
    assert [r.recording_sid for r in Recording.by_account.query(row.account)] == []
    again = Recording.get(sid, consistent_read=True)
    assert (again.status, again.expired_at) == ("expired", "2098-12-01T18:00:00Z")


def test_a_recorded_call_lands_in_the_months_review_inbox_and_its_score_shows_there(
    local_stack: Any, media: FakeTwilioMedia
) -> None:
    # Given an answered call whose recording is stored
    s = Scenario(local_stack, media, answered_at=datetime.now(UTC) - timedelta(minutes=5))
    sid, _ = s.recording(silent_mp3(2.0))
    assert s.callback(sid).status_code == 200
    local_stack.drain()
    manager = s.token("manager")
    started = datetime.fromisoformat(s.call()["started_at"])
    month = started.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%Y-%m")
    # When a manager opens the month's review inbox
    inbox = local_stack.request("GET", "/v1/reviews/inbox", token=manager, params={"month": month})
    assert inbox.status_code == 200, inbox.text
    body = inbox.json()
    # Then the call is in the sample (the only candidate), not yet scored, with no caller number
    assert [c["call_sid"] for c in body["sample"]] == [s.call_sid]
    assert body["scored"] == 0 and body["sample"][0]["recording_stored"] is True
    assert "caller" not in body["sample"][0]
    # When they score it, Then the inbox shows the score
    assert local_stack.request("PATCH", f"/v1/calls/{s.call_sid}", token=manager, json={"score": 85}).ok
    again = local_stack.request(
        "GET", "/v1/reviews/inbox", token=manager, params={"month": body["month"]}
    ).json()
    assert again["sample"][0]["score"] == 85 and again["scored"] == 1
    bad = local_stack.request("GET", "/v1/reviews/inbox", token=manager, params={"month": "2026-13"})
    assert bad.status_code == 400 and bad.json()["field"] == "month"
