"""The retention sweep: only accounts with retention_days, only recordings older than that."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from calltrack.schedule import parse_instant as parse_time
from recording_ingest.retention import RetentionPorts, sweep
from tests.support.accounts import InMemoryAccounts, account_config
from tests.support.recordings import InMemoryCalls

AT = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)


class World:
    def __init__(self) -> None:
        self.configs: dict[str, dict[str, Any]] = {}
        self.rows: dict[str, dict[str, Any]] = {}
        self.call_repo = InMemoryCalls()
        self.calls = self.call_repo.rows
        self.s3: set[str] = set()

    def add(self, account: str, sid: str, stored_at: str) -> None:
        key = f"recordings/{account}/{sid}.mp3"
        self.s3.add(key)
        call_sid = "CA" + sid
        self.rows[sid] = {
            "recording_sid": sid,
            "account": account,
            "call_sid": call_sid,
            "status": "stored",
            "s3_key": key,
            "stored_at": stored_at,
        }
        self.calls[call_sid] = {"recording": {"status": "stored", "recording_sid": sid, "s3_key": key}}

    # ports
    def stored_before(self, account: str, cutoff: str) -> list[dict[str, Any]]:
        return [
            dict(r)
            for r in self.rows.values()
            if r["account"] == account and r["status"] == "stored" and r["stored_at"] < cutoff
        ]

    def mark_expired(self, sid: str, *, now: datetime) -> bool:
        if self.rows[sid]["status"] != "stored":
            return False
        self.rows[sid]["status"] = "expired"
        return True

    def ports(self) -> RetentionPorts:
        return RetentionPorts(
            accounts=lambda: InMemoryAccounts(
                {a: account_config(a, **c) for a, c in self.configs.items()}
            ).all(),
            recordings=self,
            calls=self.call_repo,
            delete_object=self.s3.discard,
        )


def test_recordings_older_than_the_accounts_retention_are_deleted_and_the_call_says_expired() -> None:
    world = World()
    world.configs = {
        "short": {"recording": {"retention_days": 30}},
        "forever": {"recording": {"retention_days": None}, "retention": {"calls_days": None}},
    }
    world.add("short", "old", "2026-10-01T00:00:00Z")
    world.add("short", "new", "2026-11-20T00:00:00Z")
    world.add("forever", "ancient", "2020-01-01T00:00:00Z")

    summary = sweep(AT, world.ports())

    assert summary["expired"] == 1 and summary["by_account"] == {"short": 1}
    assert world.s3 == {"recordings/short/new.mp3", "recordings/forever/ancient.mp3"}
    assert world.rows["old"]["status"] == "expired"
    assert world.calls["CAold"]["recording"]["status"] == "expired"
    assert world.calls["CAold"]["recording"]["s3_key"] is None
    assert world.calls["CAnew"]["recording"]["status"] == "stored"


def test_a_second_run_changes_nothing() -> None:
    world = World()
    world.configs = {"short": {"recording": {"retention_days": 1}}}
    world.add("short", "old", "2026-01-01T00:00:00Z")
    sweep(AT, world.ports())
    assert sweep(AT, world.ports())["expired"] == 0


def test_one_accounts_failure_does_not_stop_the_sweep_of_the_others() -> None:
    # Given two accounts with expired recordings, and S3 refusing to delete the first one's
    world = World()
    world.configs = {"aaa": {"recording": {"retention_days": 1}}, "bbb": {"recording": {"retention_days": 1}}}
    world.add("aaa", "a1", "2026-01-01T00:00:00Z")
    world.add("bbb", "b1", "2026-01-01T00:00:00Z")
    ports = world.ports()

    def delete(key: str) -> None:
        if key.startswith("recordings/aaa/"):
            raise RuntimeError("AccessDenied")
        world.s3.discard(key)

    ports.delete_object = delete
    # When the nightly sweep runs
    summary = sweep(AT, ports)
    # Then the other account is swept, and the failed one is named (the next run finishes it)
    assert world.rows["b1"]["status"] == "expired" and "recordings/bbb/b1.mp3" not in world.s3
    assert summary["failed_accounts"] == ["aaa"] and summary["by_account"] == {"bbb": 1}
    assert world.rows["a1"]["status"] == "stored"
    ports.delete_object = world.s3.discard
    assert sweep(AT, ports)["by_account"] == {"aaa": 1}


def test_a_run_cut_off_after_deleting_a_recording_leaves_no_call_saying_stored() -> None:
    # Given an expired recording, and the call's write failing once (throttled, or the timeout)
    world = World()
    world.configs = {"short": {"recording": {"retention_days": 1}}}
    world.add("short", "old", "2026-01-01T00:00:00Z")
    ports = world.ports()
    set_recording = world.call_repo.set_recording

    def fails_once(call_sid: str, recording: dict[str, Any]) -> None:
        world.call_repo.set_recording = set_recording  # type: ignore[method-assign]
        raise RuntimeError("ProvisionedThroughputExceededException")

    world.call_repo.set_recording = fails_once  # type: ignore[method-assign]
    # When the sweep runs, and runs again
    assert sweep(AT, ports)["failed_accounts"] == ["short"]
    sweep(AT, ports)
    # Then the recording is gone and both its row and its call say so
    assert "recordings/short/old.mp3" not in world.s3
    assert world.rows["old"]["status"] == "expired"
    assert world.calls["CAold"]["recording"]["status"] == "expired"


def test_the_job_time_is_read_from_the_scheduled_event() -> None:
    assert parse_time("2026-11-25T18:00:00Z") == AT


def test_recordings_follow_the_calls_retention_unless_set_and_retention_recordings_days_wins() -> None:
    world = World()
    world.configs = {
        "calls-only": {"retention": {"calls_days": 365}},
        "new-name": {"retention": {"recordings_days": 30}},
    }
    world.add("calls-only", "year-old", "2025-11-01T00:00:00Z")
    world.add("calls-only", "month-old", "2026-10-01T00:00:00Z")
    world.add("new-name", "month-old2", "2026-10-01T00:00:00Z")
    summary = sweep(AT, world.ports())
    assert summary["by_account"] == {"calls-only": 1, "new-name": 1}
    assert world.rows["month-old"]["status"] == "stored"


def test_transcripts_past_their_retention_are_removed_from_the_call() -> None:
    # Given an account keeping transcripts 30 days, with an old and a new transcribed call
    world = World()
    world.configs = {"tx": {"retention": {"transcripts_days": 30}}}
    for sid, started in (("CAold", "2026-10-01T00:00:00Z"), ("CAnew", "2026-11-20T00:00:00Z"),
                         ("CAancient", "2025-01-01T00:00:00Z")):
        world.calls[sid] = {"call_sid": sid, "account": "tx", "started_at": started,
                            "transcript": [["caller", 1, "x"]]}
    # When the nightly sweep runs
    summary = sweep(AT, world.ports())
    # Then the old call loses its transcript, the new one keeps it; older than the window needs force
    assert summary["transcripts_removed"] == 1
    assert "transcript" not in world.calls["CAold"] and "transcript" in world.calls["CAnew"]
    assert "transcript" in world.calls["CAancient"]
    assert sweep(AT, world.ports(), force=True)["transcripts_removed"] == 1
    assert "transcript" not in world.calls["CAancient"]


def test_a_recording_stored_days_after_its_call_goes_when_the_calls_retention_ends() -> None:
    # Given a 30-day retention, and a call of 2026-10-25 whose recording was stored two days late
    # (fetched after a Twilio outage), and a call of 2026-10-27 stored at once
    world = World()
    world.configs = {"short": {"recording": {"retention_days": 30}, "retention": {"calls_days": 30}}}
    world.add("short", "late", "2026-10-27T09:00:00Z")
    world.calls["CAlate"]["started_at"] = "2026-10-25T09:00:00Z"
    world.add("short", "young", "2026-10-27T09:00:00Z")
    world.calls["CAyoung"]["started_at"] = "2026-10-27T08:59:00Z"
    # When the sweep runs on 2026-11-25 (the cutoff is 2026-10-26 18:00)
    summary = sweep(AT, world.ports())
    # Then the late-stored recording goes with its call's retention; the younger call's stays
    assert summary["by_account"] == {"short": 1}
    assert world.rows["late"]["status"] == "expired" and "recordings/short/late.mp3" not in world.s3
    assert world.rows["young"]["status"] == "stored"


def test_a_recording_stored_late_whose_call_is_gone_goes_too() -> None:
    # Given a recording stored after the cutoff whose call has expired (or was erased)
    world = World()
    world.configs = {"short": {"recording": {"retention_days": 30}, "retention": {"calls_days": 30}}}
    world.add("short", "orphan", "2026-10-27T09:00:00Z")
    del world.calls["CAorphan"]
    # When the sweep runs, Then it is deleted (nothing could find it through its call any more)
    assert sweep(AT, world.ports())["by_account"] == {"short": 1}
    assert "recordings/short/orphan.mp3" not in world.s3


def test_a_forced_transcript_sweep_goes_over_the_calls_as_they_are_read_not_all_at_once() -> None:
    from recording_ingest.retention import sweep_transcripts

    # Given an account with years of calls, each with a transcript past its retention, read page
    # by page (a forced run reads from the first call: all of them in memory before the first
    # change did not fit the function's 256 MB at ~100 calls a day for three years)
    class Calls:
        def __init__(self) -> None:
            self.pulled = 0
            self.amended: list[str] = []

        def between(self, account: str, start: datetime, end: datetime) -> Any:
            for i in range(5_000):
                self.pulled += 1
                assert self.pulled <= 1_000 or self.amended, "every call was read before the first change"
                yield {"call_sid": f"CA{i:032d}", "transcript": {"status": "completed"}}

        def amend(self, account: str, call_sid: str, changes: Any) -> dict[str, Any]:
            self.amended.append(call_sid)
            return {}

    calls = Calls()
    # When the sweep is forced
    removed = sweep_transcripts("acme", 90, datetime(2026, 12, 3, tzinfo=UTC), calls, force=True)
    # Then every transcript went, each as its call was read
    assert removed == 5_000 and len(calls.amended) == 5_000


def _time_for(deletions: int, world: World) -> Any:
    """A run's clock that runs out once ``deletions`` more objects are gone."""
    start = len(world.s3)
    return lambda: start - len(world.s3) >= deletions


def test_a_run_out_of_time_stops_between_recordings_and_the_next_night_finishes() -> None:
    # Given two accounts with five due recordings each, and a run with time for three deletions
    world = World()
    world.configs = {"aaa": {"recording": {"retention_days": 1}}, "bbb": {"recording": {"retention_days": 1}}}
    for i in range(5):
        world.add("aaa", f"a{i}", "2026-01-01T00:00:00Z")
        world.add("bbb", f"b{i}", "2026-01-01T00:00:00Z")
    ports = world.ports()
    ports.out_of_time = _time_for(3, world)
    # When the nightly sweep runs
    summary = sweep(AT, ports)
    # Then it stops after three, each of them expired whole, and names both accounts as unfinished
    assert summary["expired"] == 3 and len(world.s3) == 7
    assert sorted(summary["unfinished_accounts"]) == ["aaa", "bbb"] and summary["failed_accounts"] == []
    gone = [sid for sid, row in world.rows.items() if row["status"] == "expired"]
    assert len(gone) == 3
    for sid in gone:
        assert world.rows[sid]["s3_key"] not in world.s3
        assert world.calls["CA" + sid]["recording"]["status"] == "expired"
    for sid in set(world.rows) - set(gone):
        assert world.calls["CA" + sid]["recording"]["status"] == "stored"
    # When the next night's run has the time, then it finishes the rest
    ports.out_of_time = lambda: False
    later = sweep(AT.replace(day=26), ports)
    assert later["expired"] == 7 and later["unfinished_accounts"] == [] and world.s3 == set()


def test_each_night_starts_with_another_account_so_one_backlog_holds_no_other_back() -> None:
    # Given three accounts whose backlogs each outlast a night's run (two deletions a night)
    world = World()
    world.configs = {a: {"recording": {"retention_days": 1}} for a in ("aaa", "bbb", "ccc")}
    for a in ("aaa", "bbb", "ccc"):
        for i in range(4):
            world.add(a, f"{a}{i}", "2026-01-01T00:00:00Z")
    ports = world.ports()
    # When three nights run
    firsts = []
    for day in (25, 26, 27):
        ports.out_of_time = _time_for(2, world)
        summary = sweep(AT.replace(day=day), ports)
        firsts.append(next(iter(summary["by_account"])))
    # Then every account was swept first on one of them
    assert sorted(firsts) == ["aaa", "bbb", "ccc"]


def test_a_forced_transcript_sweep_out_of_time_stops_and_counts_what_it_removed() -> None:
    from recording_ingest.retention import OutOfTime, sweep_transcripts

    # Given an account with four old calls holding transcripts
    world = World()
    for i in range(4):
        world.calls[f"CAt{i}"] = {"call_sid": f"CAt{i}", "account": "aaa",
                                  "started_at": f"2026-01-0{i + 1}T00:00:00Z", "transcript": {"text": "x"}}
    removed: list[int] = []

    def out_of_time() -> bool:
        removed.append(0)
        return len(removed) > 2

    # When a forced sweep runs with time for two
    try:
        sweep_transcripts("aaa", 30, AT, world.call_repo, force=True, out_of_time=out_of_time)
    except OutOfTime as stop:
        count = stop.transcripts
    else:
        raise AssertionError("the sweep did not stop")
    # Then two transcripts went and two stay for the next run
    left = [c for c in world.calls.values() if c.get("transcript") is not None]
    assert count == 2 and len(left) == 2
