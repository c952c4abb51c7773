"""Issue 15, recordings: nothing lost after a media-host outage, and every row says what happens next.

On the running local stack (real handlers, the fake Twilio media server), with the retry backoff
time-compressed by ``CALLTRACK_RETRY_TIME_SCALE`` (tests/conftest.py): a media outage longer than
the old five fast tries loses nothing; a recording that stays unreachable for the whole retry
window is dead-lettered with a row that says when it is tried next, and the hourly redrive job
brings it back; a recording Twilio no longer has ends ``failed`` with its reason on the call and
is not redriven; ``calltrack recordings retry`` requeues a failed one.
"""

from __future__ import annotations

from typing import Any

import pytest

from calltrack_cli.local.fake_twilio import FakeTwilioMedia
from recording_ingest.backoff import GONE_AFTER_404S, MAX_RECEIVES
from tests.support.cli import run_cli
from tests.support.recording_stack import Scenario, dlq_sids, recording_row, s3_object, serve_media
from tests.support.times import utc_now_iso

media = pytest.fixture(scope="module", name="media")(serve_media)

REDRIVE_JOB = "recording-dlq-redrive"


def stored(s: Scenario, sid: str, data: bytes) -> None:
    recording = s.call()["recording"]
    assert recording["status"] == "stored", recording
    assert recording["recording_sid"] == sid
    assert s3_object(s.stack, recording["s3_key"])["Body"].read() == data
    row = recording_row(s.stack, sid)
    assert row and row["status"] == "stored"


def test_a_media_outage_longer_than_five_fast_tries_loses_no_recording(
    local_stack: Any, media: FakeTwilioMedia
) -> None:
    # Given three answered calls whose recordings Twilio's media host refuses 8 times in a row
    # (the old queue gave up after 5 tries one second apart)
    scenarios = [Scenario(local_stack, media) for _ in range(3)]
    recordings = [s.recording(None, *(["503"] * 8)) for s in scenarios]

    # When the callbacks arrive and the queue is worked off with its backoff
    for s, (sid, _) in zip(scenarios, recordings, strict=True):
        assert s.callback(sid).status_code == 200
    local_stack.drain()

    # Then every recording is stored, none is dead-lettered, each was fetched 9 times
    dead = dlq_sids(local_stack)
    for s, (sid, data) in zip(scenarios, recordings, strict=True):
        stored(s, sid, data)
        assert sid not in dead
        assert len(media.fetches(sid)) == 9


def test_a_recording_unreachable_for_the_whole_retry_window_is_redriven_from_the_dlq_and_stored(
    local_stack: Any, media: FakeTwilioMedia
) -> None:
    # Given a recording the media host refuses on every try of one retry window
    s = Scenario(local_stack, media)
    sid, data = s.recording(None, *(["500"] * MAX_RECEIVES))
    assert s.callback(sid).status_code == 200
    local_stack.drain()

    # Then it is dead-lettered, and the row and the call say when it is tried next and why
    assert sid in dlq_sids(local_stack)
    row = recording_row(local_stack, sid)
    assert row and (row["status"], row["reason"]) == ("retrying", "http-500")
    assert row["next_attempt_at"] > row["updated_at"]
    view = s.call()["recording"]
    assert view["status"] == "retrying"
    assert view["next_attempt_at"] == row["next_attempt_at"] and view["reason"] == "http-500"

    # When the hourly redrive job runs (the media host is back)
    result = local_stack.run_job(REDRIVE_JOB, utc_now_iso())["result"]
    assert result["redriven"] >= 1
    local_stack.drain()

    # Then the recording is stored and no longer a dead letter
    stored(s, sid, data)
    assert sid not in dlq_sids(local_stack)
    assert len(media.fetches(sid)) == MAX_RECEIVES + 1


def test_a_recording_gone_from_twilio_ends_failed_with_its_reason_and_is_not_redriven(
    local_stack: Any, media: FakeTwilioMedia
) -> None:
    # Given a recording Twilio answers 404 for (deleted at Twilio, or never there)
    s = Scenario(local_stack, media)
    sid = s.recording(None, *(["404"] * 20))[0]
    assert s.callback(sid).status_code == 200
    local_stack.drain()

    # Then after a few tries (a fresh recording can 404 for a moment) it is failed, with the reason
    row = recording_row(local_stack, sid)
    assert row and (row["status"], row["reason"]) == ("failed", "gone from Twilio")
    assert "next_attempt_at" not in row
    assert s.call()["recording"] == {"status": "failed", "recording_sid": sid, "reason": "gone from Twilio"}
    assert len(media.fetches(sid)) == GONE_AFTER_404S
    assert sid not in dlq_sids(local_stack)

    # And the redrive job never brings it back
    local_stack.run_job(REDRIVE_JOB, utc_now_iso())
    local_stack.drain()
    assert len(media.fetches(sid)) == GONE_AFTER_404S
    listen = local_stack.request("GET", f"/v1/calls/{s.call_sid}/recording", token=s.token("manager"))
    assert listen.status_code == 404 and "gone from Twilio" in listen.json()["message"]


def test_calltrack_recordings_retry_requeues_a_failed_recording(
    local_stack: Any, media: FakeTwilioMedia, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a recording that ended failed (Twilio answered 404 while it was being restored)
    s = Scenario(local_stack, media)
    sid, data = s.recording(None, *(["404"] * GONE_AFTER_404S))
    assert s.callback(sid).status_code == 200
    local_stack.drain()
    assert s.call()["recording"]["status"] == "failed"
    monkeypatch.setenv("CALLTRACK_URL", local_stack.url)

    # When a marketer tries to retry it, they are refused (exit 2, one line)
    refused = run_cli("recordings", "retry", "--account", s.account, "--token", s.token("marketer"))
    assert refused.exit_code == 2, refused.output
    assert "403" in refused.output or "role" in refused.output

    # When the account's admin retries the account's failed recordings since today
    args = ("--account", s.account, "--since", utc_now_iso()[:10], "--token", s.token("admin"))
    result = run_cli("recordings", "retry", *args)
    assert result.exit_code == 0, result.output
    assert "requeued 1 recording" in result.stdout
    local_stack.drain()

    # Then it is stored; a second retry finds nothing to do
    stored(s, sid, data)
    again = run_cli("recordings", "retry", "--account", s.account, "--token", s.token("admin"))
    assert again.exit_code == 0 and "requeued 0 recordings" in again.stdout


def test_a_retry_over_a_table_larger_than_one_answer_goes_on_from_its_cursor(
    local_stack: Any, media: FakeTwilioMedia, monkeypatch: pytest.MonkeyPatch
) -> None:
    import recording_ingest.requeue as requeue

    # Given three failed recordings of one account, in a table read two rows a page, and an API
    # whose time for one answer runs out after every page
    s = Scenario(local_stack, media)
    failed = []
    for _ in range(3):
        sid, data = s.recording(None, *(["404"] * GONE_AFTER_404S))
        assert s.callback(sid).status_code == 200
        failed.append((sid, data))
    local_stack.drain()
    assert all(recording_row(local_stack, sid)["status"] == "failed" for sid, _ in failed)
    monkeypatch.setattr(requeue, "PAGE_ROWS", 2)
    monkeypatch.setattr(requeue, "BUDGET_S", 0.0)
    monkeypatch.setenv("CALLTRACK_URL", local_stack.url)

    # When the admin retries the account's recordings
    result = run_cli("recordings", "retry", "--account", s.account, "--token", s.token("admin"))

    # Then the CLI followed the cursor to the end (progress on stderr) and requeued each once
    assert result.exit_code == 0, result.output
    assert "requeued 3 recordings" in result.stdout
    assert "reading on" in result.stderr
    local_stack.drain()
    assert all(recording_row(local_stack, sid)["status"] == "stored" for sid, _ in failed)


def test_a_retry_with_a_cursor_it_did_not_give_is_a_400_naming_the_cursor(local_stack: Any) -> None:
    from tests.support.stack import apply_account, tokens

    account = apply_account(local_stack, "cursor", name="Cursor clinic")
    admin = tokens(local_stack, account, "admin")["admin"]
    for cursor in ("not-base64!", "eyJhIjoxfQ"):  # the second decodes to {"a":1}
        resp = local_stack.request("POST", "/v1/recordings/retry", token=admin,
                                   json={"account": account, "cursor": cursor})
        assert resp.status_code == 400, resp.text
        assert resp.json()["field"] == "cursor"


def test_recordings_retry_help_explains_the_command() -> None:
    result = run_cli("recordings", "retry", "--help")
    assert result.exit_code == 0
    for word in ("--account", "--since", "failed", "retrying", "CALLTRACK_TOKEN"):
        assert word in result.stdout
