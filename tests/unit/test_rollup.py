"""Rollup consumer: a call's contribution, and exactly-once application of its changes."""

from __future__ import annotations

import copy
from collections import defaultdict
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from report.rollup import (
    Contribution,
    Marker,
    apply_image,
    contribution,
    diff,
    process_records,
    split_row_key,
)


class FakeStore:
    """In-memory RollupStore with the same optimistic-lock semantics as the DynamoDB one."""

    def __init__(self) -> None:
        self.markers: dict[str, Marker] = {}
        self.rows: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.commits = 0
        self.fail_next = 0

    def get_marker(self, call_sid: str) -> Marker | None:
        return self.markers.get(call_sid)

    def commit(
        self, call_sid: str, account: str, previous: Marker | None, new: Marker, deltas: Contribution
    ) -> bool:
        if self.fail_next:
            self.fail_next -= 1
            return False
        if self.markers.get(call_sid) != previous:
            return False
        self.markers[call_sid] = new
        for key, delta in deltas.items():
            dimension, sk = split_row_key(key)
            for counter, amount in delta.items():
                self.rows[(f"{account}#{dimension}", sk)][counter] += amount
        self.commits += 1
        return True

    def counters(self, account: str, dimension: str) -> dict[str, dict[str, float]]:
        return {
            sk: {k: v for k, v in row.items() if v}
            for (pk, sk), row in self.rows.items()
            if pk == f"{account}#{dimension}" and any(row.values())
        }


def tokyo_timezone(_: str) -> str:
    """The account time-zone lookup the consumer takes: every account here is in Tokyo."""
    return "Asia/Tokyo"


def call(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "call_sid": "CA1",
        "account": "acme",
        "started_at": "2026-11-02T15:30:00+00:00",
        "status": "ringing",
        "channel": "flyer",
        "campaign": "winter",
        "tracking_number": "+815012340000",
        "attribution": '{"landing_page": "/lp", "keyword": null}',
        "first_time": True,
    }
    base.update(over)
    return base


def test_contribution_uses_account_local_day_and_hour_of_week() -> None:
    # Given a call at 15:30 UTC on Monday 2 Nov = 00:30 JST on Tuesday 3 Nov
    rows = contribution(call(), "Asia/Tokyo")
    # Then every dimension is keyed on the Tokyo day, and the hour of week is Tuesday 00h
    assert "channel|2026-11-03#flyer" in rows
    assert "hour_of_week|2026-11-03#1-00" in rows
    assert "landing_page|2026-11-03#/lp" in rows
    assert "keyword|2026-11-03#(none)" in rows
    assert rows["channel|2026-11-03#flyer"] == {"calls": 1, "first_time": 1}
    # And in New York it is still Monday 10:30
    assert "hour_of_week|2026-11-02#0-10" in contribution(call(), "America/New_York")


def test_counters_follow_status_and_stage() -> None:
    answered_won = contribution(call(status="answered", talk_seconds=95, stage="won", value=120000), "UTC")
    row = answered_won["channel|2026-11-02#flyer"]
    assert row == {
        "calls": 1,
        "answered": 1,
        "first_time": 1,
        "talk_seconds": 95,
        "leads": 1,
        "opportunities": 1,
        "won": 1,
        "won_value": 120000,
    }
    for status in ("missed", "busy", "failed", "canceled"):
        assert contribution(call(status=status), "UTC")["channel|2026-11-02#flyer"]["missed"] == 1
    lost = contribution(call(stage="lost", value=5000), "UTC")["channel|2026-11-02#flyer"]
    assert lost.get("leads") == 1 and "opportunities" not in lost and "won_value" not in lost


def test_a_call_moving_through_the_funnel_is_counted_once_per_fact() -> None:
    store = FakeStore()
    images = [
        call(),
        call(status="answered", talk_seconds=60),
        call(status="answered", talk_seconds=60, stage="lead"),
        call(status="answered", talk_seconds=60, stage="won", value=300),
    ]
    # When every image arrives (moto even sends the first twice) and then the whole batch is replayed
    for image in [images[0], *images, *images]:
        apply_image("CA1", image, store, tokyo_timezone)
    # Then the rollups show exactly the final state of the call
    assert store.counters("acme", "channel") == {
        "2026-11-03#flyer": {
            "calls": 1,
            "answered": 1,
            "first_time": 1,
            "talk_seconds": 60,
            "leads": 1,
            "opportunities": 1,
            "won": 1,
            "won_value": 300,
        }
    }


def test_duplicates_change_nothing() -> None:
    store = FakeStore()
    assert apply_image("CA1", call(), store, tokyo_timezone) == "applied"
    assert apply_image("CA1", call(), store, tokyo_timezone) == "unchanged"
    assert store.commits == 1


def test_older_version_is_skipped_when_calls_carry_a_version() -> None:
    store = FakeStore()
    apply_image("CA1", call(status="answered", version=3), store, tokyo_timezone)
    assert apply_image("CA1", call(status="ringing", version=2), store, tokyo_timezone) == "stale"
    assert store.counters("acme", "channel")["2026-11-03#flyer"]["answered"] == 1


def test_stage_corrected_backwards_moves_counters_back() -> None:
    store = FakeStore()
    apply_image("CA1", call(stage="won", value=10), store, tokyo_timezone)
    apply_image("CA1", call(stage="lead"), store, tokyo_timezone)
    assert store.counters("acme", "channel")["2026-11-03#flyer"] == {"calls": 1, "first_time": 1, "leads": 1}


def test_deleted_call_is_subtracted() -> None:
    store = FakeStore()
    apply_image("CA1", call(), store, tokyo_timezone)
    apply_image("CA1", None, store, tokyo_timezone, account="acme")
    assert store.counters("acme", "channel") == {}


def test_lost_race_is_retried_against_the_new_marker() -> None:
    store = FakeStore()
    store.fail_next = 2
    assert apply_image("CA1", call(), store, tokyo_timezone, sleep=lambda _: None) == "applied"
    assert store.counters("acme", "channel")["2026-11-03#flyer"]["calls"] == 1


def test_stream_batch_reports_first_failure_and_stops() -> None:
    class Boom(FakeStore):
        def commit(self, *args: Any, **kwargs: Any) -> bool:
            raise RuntimeError("dynamodb down")

    record: dict[str, Any] = {
        "eventName": "INSERT",
        "dynamodb": {
            "SequenceNumber": "100",
            "Keys": {"call_sid": {"S": "CA1"}},
            "NewImage": {
                "call_sid": {"S": "CA1"},
                "account": {"S": "acme"},
                "started_at": {"S": "2026-11-02T15:30:00+00:00"},
                "status": {"S": "ringing"},
            },
        },
    }
    second: dict[str, Any] = copy.deepcopy(record)
    second["dynamodb"]["SequenceNumber"] = "101"
    assert process_records([record, second], Boom(), tokyo_timezone) == [{"itemIdentifier": "100"}]
    store = FakeStore()
    assert process_records([record, second], store, tokyo_timezone) == []
    assert store.counters("acme", "channel") == {"2026-11-03#(none)": {"calls": 1}}


_image = st.fixed_dictionaries(
    {
        "status": st.sampled_from(["ringing", "answered", "missed", "busy"]),
        "stage": st.sampled_from([None, "lead", "opportunity", "won", "lost"]),
        "value": st.integers(0, 10**6),
        "talk_seconds": st.integers(0, 3600),
        "channel": st.sampled_from(["flyer", "google-ads"]),
        "agent": st.sampled_from([None, "sato", "tanaka"]),
    }
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_image, min_size=1, max_size=8), st.lists(st.integers(0, 7), max_size=10))
def test_any_sequence_with_replays_ends_at_the_last_image(
    updates: list[dict[str, Any]], replays: list[int]
) -> None:
    store = FakeStore()
    images = [call(**u) for u in updates]
    for image in images:
        apply_image("CA1", image, store, tokyo_timezone)
    # replays of earlier records, followed by the tail of the batch again (Lambda retry semantics)
    for i in replays:
        if i < len(images):
            for image in images[i:]:
                apply_image("CA1", image, store, tokyo_timezone)
    expected = {
        split_row_key(k)[1]: v
        for k, v in contribution(images[-1], "Asia/Tokyo").items()
        if k.startswith("agent|")
    }
    assert store.counters("acme", "agent") == expected
    assert diff(store.markers["CA1"].contribution, contribution(images[-1], "Asia/Tokyo")) == {}


def test_an_image_without_account_changes_nothing() -> None:
    # Given a counted call, when the emulator's key-only INSERT is replayed after it
    store = FakeStore()
    apply_image("CA1", call(status="answered", version=3), store, tokyo_timezone)
    assert apply_image("CA1", {"call_sid": "CA1"}, store, tokyo_timezone) == "incomplete"
    # Then the rollups still hold the call exactly once
    assert store.counters("acme", "channel")["2026-11-03#flyer"]["calls"] == 1


def test_a_deleted_call_is_subtracted_from_the_account_in_its_marker() -> None:
    store = FakeStore()
    apply_image("CA1", call(), store, tokyo_timezone)
    apply_image("CA1", None, store, tokyo_timezone)
    assert store.counters("acme", "channel") == {}


# ---- issue 24: a stream batch written as a batch


def _record(seq: int, **image: Any) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeSerializer

    ser = TypeSerializer()
    return {
        "eventName": "MODIFY",
        "dynamodb": {
            "SequenceNumber": str(seq),
            "Keys": {"call_sid": {"S": image["call_sid"]}},
            "NewImage": {k: ser.serialize(v) for k, v in image.items() if v is not None},
        },
    }


def _batch(calls: int = 3) -> list[dict[str, Any]]:
    records, seq = [], 0
    for status, version in (("ringing", 1), ("answered", 2)):
        for i in range(calls):
            seq += 1
            records.append(
                _record(seq, **call(call_sid=f"CA{i}", status=status, version=version, attribution=None))
            )
    return records


def test_a_batch_writes_each_rollup_row_once_with_every_calls_counters() -> None:
    from tests.support.rollup_store import InMemoryRollupStore

    store = InMemoryRollupStore()
    # When three calls ring and are answered within one stream batch
    assert process_records(_batch(3), store, tokyo_timezone) == []
    # Then one transaction wrote three markers and each of the seven rows once
    assert store.transactions == 1 and store.items_written == 3 + 7
    assert store.counters("acme", "channel") == {
        "2026-11-03#flyer": {"calls": 3, "answered": 3, "first_time": 3}
    }
    # And the same batch delivered again changes nothing
    assert process_records(_batch(3), store, tokyo_timezone) == []
    assert store.transactions == 1
    assert store.counters("acme", "channel")["2026-11-03#flyer"]["calls"] == 3


def test_a_cancelled_batch_is_planned_again_against_the_markers_that_won() -> None:
    from tests.support.rollup_store import InMemoryRollupStore

    class RacedOnce(InMemoryRollupStore):
        raced = False

        def commit_batch(self, changes, rows):  # type: ignore[no-untyped-def]
            if not self.raced:
                # another consumer applies call CA1's ringing image first
                self.raced = True
                apply_image(
                    "CA1", call(call_sid="CA1", version=1), self, tokyo_timezone, sleep=lambda _: None
                )
            return super().commit_batch(changes, rows)

    store = RacedOnce()
    assert process_records(_batch(2), store, tokyo_timezone, sleep=lambda _: None) == []
    assert store.cancelled == 1
    assert store.counters("acme", "channel") == {
        "2026-11-03#flyer": {"calls": 2, "answered": 2, "first_time": 2}
    }


def test_a_batch_larger_than_one_transaction_is_split_by_whole_calls() -> None:
    from report.rollup import MAX_TRANSACT_ITEMS
    from tests.support.rollup_store import InMemoryRollupStore

    store = InMemoryRollupStore()
    records = [
        _record(
            i, **call(call_sid=f"CA{i}", keyword=f"kw-{i}", tracking_number=f"+8150{i:08d}", attribution=None)
        )
        for i in range(40)
    ]
    assert process_records(records, store, tokyo_timezone) == []
    assert store.transactions >= 2 and store.items_written <= store.transactions * MAX_TRANSACT_ITEMS
    assert sum(v["calls"] for v in store.counters("acme", "keyword").values()) == 40


def test_packing_puts_calls_sharing_rows_in_one_transaction() -> None:
    from report.rollup import Change, Marker, pack

    def change(sid: str, keyword: str) -> Change:
        deltas = {"channel|2026-11-03#flyer": {"calls": 1}, f"keyword|2026-11-03#{keyword}": {"calls": 1}}
        return Change(sid, "acme", None, Marker(1, 1, deltas, "acme"), deltas)

    # Given six calls alternating between two keywords, and room for 7 items per transaction
    changes = [change(f"CA{i}", "implant" if i % 2 == 0 else "whitening") for i in range(6)]
    # When they are packed
    groups = pack(changes, limit=7)
    # Then every call is written exactly once, no transaction is over the limit
    assert sorted(c.call_sid for g, _ in groups for c in g) == sorted(c.call_sid for c in changes)
    assert all(len(g) + len(rows) <= 7 for g, rows in groups)
    # And the three calls of one keyword share a transaction, so rows are written 5 times, not 6
    assert {"CA0", "CA2", "CA4"} <= {c.call_sid for c in groups[0][0]}
    assert sum(len(rows) for _, rows in groups) == 5
    # And each row's counters sum to the calls that touch it
    keyword_calls = defaultdict(int)
    for _, rows in groups:
        for key, counters in rows.items():
            keyword_calls[key] += counters["calls"]
    assert keyword_calls["channel|2026-11-03#flyer"] == 6
    assert keyword_calls["keyword|2026-11-03#implant"] == keyword_calls["keyword|2026-11-03#whitening"] == 3


def test_a_batch_failing_midway_and_redelivered_from_the_reported_record_counts_each_call_once() -> None:
    from tests.support.rollup_store import InMemoryRollupStore

    class FailsSecondTransaction(InMemoryRollupStore):
        commits = 0

        def commit_batch(self, changes, rows):  # type: ignore[no-untyped-def]
            self.commits += 1
            if self.commits == 2:
                raise RuntimeError("throttled")
            return super().commit_batch(changes, rows)

    # Given a batch of 40 calls too large for one transaction (each with its own keyword and number)
    records = [
        _record(
            i, **call(call_sid=f"CA{i}", keyword=f"kw-{i}", tracking_number=f"+8150{i:08d}", attribution=None)
        )
        for i in range(1, 41)
    ]
    store = FailsSecondTransaction()
    # When its second transaction fails, the batch reports the earliest record not yet applied
    failures = process_records(records, store, tokyo_timezone, sleep=lambda _: None)
    assert len(failures) == 1
    reported = failures[0]["itemIdentifier"]
    start = next(i for i, r in enumerate(records) if r["dynamodb"]["SequenceNumber"] == reported)
    assert start > 0  # the first transaction's calls were written
    # And Lambda redelivers the batch from that record, then the whole batch and a part of it again
    assert process_records(records[start:], store, tokyo_timezone, sleep=lambda _: None) == []
    assert process_records(records, store, tokyo_timezone, sleep=lambda _: None) == []
    assert process_records(records[7:23], store, tokyo_timezone, sleep=lambda _: None) == []
    # Then every call is counted exactly once
    assert sum(v["calls"] for v in store.counters("acme", "keyword").values()) == 40
    assert sum(v["calls"] for v in store.counters("acme", "channel").values()) == 40


def test_a_call_expired_by_ttl_keeps_its_counts() -> None:
    """retention.calls_days: DynamoDB's TTL removes the call; its rollup counts stay."""
    from report.rollup import _collapse

    ttl = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    ttl_remove = {"eventName": "REMOVE", "userIdentity": ttl,
                  "dynamodb": {"Keys": {"call_sid": {"S": "CA1"}}, "OldImage": {"call_sid": {"S": "CA1"},
                                                                                 "account": {"S": "a"}}}}
    erased = {**ttl_remove, "userIdentity": None}
    assert _collapse([ttl_remove])[0] == {}
    assert _collapse([erased])[0] == {"CA1": (None, "a")}
