"""Rollup consumer: a call's contribution, and exactly-once counting per stream batch.

Records carry NewImage and OldImage (the calls stream is NEW_AND_OLD_IMAGES); a record counts
``contribution(new) - contribution(old)``; a batch is counted once through idempotency items keyed
by sequence numbers, under Lambda's redelivery: the same batch again, or the batch again from the
record the handler reported failed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from boto3.dynamodb.types import TypeSerializer
from hypothesis import given, settings
from hypothesis import strategies as st

from calltrack.models.reports import DIMENSIONS
from report.rollup import (
    MAX_TRANSACT_ITEMS,
    contribution,
    group,
    process_records,
    record_delta,
    split_row_key,
)
from tests.support.rollup_store import InMemoryRollupStore

# The counters of one first-time call answered for 60 s and won at 300.
ANSWERED_WON_300 = {
    "calls": 1,
    "answered": 1,
    "first_time": 1,
    "talk_seconds": 60,
    "leads": 1,
    "opportunities": 1,
    "won": 1,
    "won_value": 300,
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


def test_every_rollup_sort_key_fits_dynamodbs_1024_bytes_whatever_a_visitor_sent() -> None:
    # Given a call whose keyword is 256 emoji (the lease accepts 256 characters of any kind) and a
    # Japanese landing page of 256 characters
    emoji, kana = "\U0001F600" * 256, "あ" * 256
    rows = contribution(call(attribution=f'{{"keyword": "{emoji}", "landing_page": "{kana}"}}'), "Asia/Tokyo")
    # Then every row's sort key is within DynamoDB's limit (one too long failed its whole batch)
    for key in rows:
        _, sk = split_row_key(key)
        assert len(sk.encode("utf-8")) <= 1024, key[:40]
    # and values that fitted before keep their key: 256 three-byte characters are not cut
    assert f"landing_page|2026-11-03#{kana}" in rows


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


_ser = TypeSerializer()
SEQ_BASE = 4 * 10**20  # DynamoDB's sequence numbers are 21-digit decimal strings


def _image(image: dict[str, Any] | None) -> dict[str, Any] | None:
    if image is None:
        return None
    return {k: _ser.serialize(v) for k, v in image.items() if v is not None}


def record(
    seq: int,
    new: dict[str, Any] | None,
    old: dict[str, Any] | None = None,
    event: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A stream record as Lambda hands it over (NEW_AND_OLD_IMAGES)."""
    sid = (new or old or {})["call_sid"]
    dynamodb: dict[str, Any] = {"SequenceNumber": str(SEQ_BASE + seq), "Keys": {"call_sid": {"S": sid}}}
    if new is not None:
        dynamodb["NewImage"] = _image(new)
    if old is not None:
        dynamodb["OldImage"] = _image(old)
    name = event or ("REMOVE" if new is None else "MODIFY" if old else "INSERT")
    return {"eventName": name, "dynamodb": dynamodb, **extra}


def stream_of(updates: list[tuple[str, dict[str, Any] | None]]) -> list[dict[str, Any]]:
    """(call_sid, new image or None = deleted) in commit order -> records, each with the call's
    previous image as its OldImage (DynamoDB Streams keeps one item's records in order)."""
    last: dict[str, dict[str, Any] | None] = {}
    out = []
    for i, (sid, new) in enumerate(updates, start=1):
        out.append(record(i, new, last.get(sid)))
        last[sid] = new
    return out


def seq_of(rec: dict[str, Any]) -> str:
    return str(rec["dynamodb"]["SequenceNumber"])


def truth(images: dict[str, dict[str, Any] | None], dimension: str) -> dict[str, dict[str, float]]:
    """What the rollups must hold: the sum of every call's last image's contribution."""
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for image in images.values():
        for key, counters in contribution(image, "Asia/Tokyo").items():
            if key.startswith(dimension + "|"):
                out[split_row_key(key)[1]].update(counters)
    return {k: {c: v for c, v in cs.items() if v} for k, cs in out.items() if any(cs.values())}


def test_a_call_tagged_qualified_is_a_lead_as_in_the_monthly_review() -> None:
    from ops_jobs.common import call_fact_from_item

    # Given an answered call a call rule tagged "qualified", at no CRM stage
    tagged = call(status="answered", talk_seconds=40, tags=["new-patient", "qualified"])
    # Then the reports count it as a lead, as the monthly review does
    assert contribution(tagged, "UTC")["channel|2026-11-02#flyer"]["leads"] == 1
    assert call_fact_from_item(tagged).is_lead()
    # And untagging it takes the lead back out (the record's new image minus its old one)
    records = stream_of([("CA1", tagged), ("CA1", {**tagged, "tags": ["new-patient"]})])
    store = InMemoryRollupStore()
    assert process_records(records[:1], store, tokyo_timezone) == []
    assert store.counters("acme", "channel")["2026-11-03#flyer"]["leads"] == 1
    assert process_records(records[1:], store, tokyo_timezone) == []
    assert store.counters("acme", "channel")["2026-11-03#flyer"].get("leads", 0) == 0


def test_a_call_moving_through_the_funnel_is_counted_once_per_fact() -> None:
    # Given a call that rings, is answered, becomes a lead and is won, in one stream
    images = [
        call(),
        call(status="answered", talk_seconds=60),
        call(status="answered", talk_seconds=60, stage="lead"),
        call(status="answered", talk_seconds=60, stage="won", value=300),
    ]
    records = stream_of([("CA1", image) for image in images])
    store = InMemoryRollupStore()
    # When the records arrive one per batch, and the last batch is delivered again
    for rec in records:
        assert process_records([rec], store, tokyo_timezone) == []
    assert process_records(records[-1:], store, tokyo_timezone) == []
    # Then the rollups show exactly the final state of the call
    assert store.counters("acme", "channel") == {"2026-11-03#flyer": ANSWERED_WON_300}


def test_a_record_counts_its_new_image_minus_its_old_image() -> None:
    # Given a stage corrected backwards from won to lead
    rec = record(1, call(stage="lead"), call(stage="won", value=10))
    # Then its change takes the won call back and adds nothing but what moved
    assert record_delta(rec, tokyo_timezone)[("acme", "channel|2026-11-03#flyer")] == {
        "opportunities": -1,
        "won": -1,
        "won_value": -10,
    }
    # And a recording attached (no counter moves) changes nothing and writes nothing
    attached = record(2, call(recording_key="r.mp3"), call())
    assert record_delta(attached, tokyo_timezone) == {}
    store = InMemoryRollupStore()
    assert process_records([attached], store, tokyo_timezone) == []
    assert store.transactions == 0


def all_rows(store: InMemoryRollupStore, account: str) -> dict[str, dict[str, dict[str, float]]]:
    """dimension -> the account's rollup rows of that dimension (sort key -> counters)."""
    return {dimension: store.counters(account, dimension) for dimension in DIMENSIONS}


def test_an_update_after_the_account_changed_its_zone_lands_on_the_rows_the_call_was_added_to() -> None:
    # Given a call stamped with the account's zone when it was created (Asia/Tokyo): 15:30 UTC on
    # Monday 2 Nov is Tuesday 3 Nov 00:30 in Tokyo, and it was counted while the account was there
    ringing = call(timezone="Asia/Tokyo")
    store = InMemoryRollupStore()
    assert process_records([record(1, ringing)], store, tokyo_timezone) == []
    # When the account moves to America/New_York (where that instant is still Monday 2 Nov), and
    # then the call is answered and won
    won = call(timezone="Asia/Tokyo", status="answered", talk_seconds=60, stage="won", value=300)
    assert process_records([record(2, won, ringing)], store, lambda _: "America/New_York") == []
    # Then the rows of the day the call was counted on gain the win, in every dimension
    rows = all_rows(store, "acme")
    assert rows["channel"] == {"2026-11-03#flyer": ANSWERED_WON_300}
    assert list(rows["hour_of_week"]) == ["2026-11-03#1-00"]
    # And no row of the new zone's day exists, no counter is negative, and each dimension's rows
    # still add up to one call
    for dimension, by_key in rows.items():
        assert all(key.startswith("2026-11-03#") for key in by_key), dimension
        assert all(v >= 0 for counters in by_key.values() for v in counters.values()), dimension
        assert sum(counters.get("calls", 0) for counters in by_key.values()) == 1, dimension
        assert sum(counters.get("won", 0) for counters in by_key.values()) == 1, dimension


def test_a_call_without_a_stamp_or_with_an_unknown_one_is_bucketed_in_the_accounts_zone() -> None:
    # Given calls created before calls carried their zone, or whose stamp is not a zone name
    for stamp in (None, "", "Mars/Olympus_Mons", "../../etc/passwd", " Asia/Tokyo", 42, "x" * 300):
        image = call(timezone=stamp)
        # When their contribution is computed for an account in New York
        rows = contribution(image, "America/New_York")
        # Then they fall in New York's day and hour (Monday 2 Nov, 10h), without raising
        assert "hour_of_week|2026-11-02#0-10" in rows, stamp
        assert "channel|2026-11-02#flyer" in rows, stamp
    # And a valid stamp wins over the account's zone
    assert "hour_of_week|2026-11-03#1-00" in contribution(call(timezone="Asia/Tokyo"), "America/New_York")


def test_removes_and_images_without_account_change_nothing() -> None:
    store = InMemoryRollupStore()
    ttl = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    records = [
        record(1, {"call_sid": "CA1"}),  # the emulator's key-only INSERT
        record(2, call(), {"call_sid": "CA1"}, event="INSERT"),  # then the full image
        record(3, None, call(), userIdentity=ttl),  # retention: DynamoDB's TTL removes the call
        record(4, call(call_sid="CA2")),
        record(5, None, call(call_sid="CA2")),  # an erasure or an account deletion
    ]
    # When the key-only INSERT, the full image, a TTL REMOVE and an erasure's REMOVE are consumed
    assert process_records(records, store, tokyo_timezone) == []
    # Then each call counts once and keeps its counts
    assert store.counters("acme", "channel") == {"2026-11-03#flyer": {"calls": 2, "first_time": 2}}


def test_a_batch_writes_each_rollup_row_once_with_every_calls_counters() -> None:
    # Given three calls that ring and are answered within one stream batch
    updates = [(f"CA{i}", call(call_sid=f"CA{i}", attribution=None)) for i in range(3)]
    updates += [(f"CA{i}", call(call_sid=f"CA{i}", status="answered", attribution=None)) for i in range(3)]
    records = stream_of(updates)
    store = InMemoryRollupStore()
    assert process_records(records, store, tokyo_timezone) == []
    # Then one transaction wrote one idempotency item (listing all six records) and each row once
    assert store.transactions == 1 and store.items_written == 1 + 7
    assert store.items == {seq_of(records[0]): [seq_of(r) for r in records]}
    assert store.counters("acme", "channel") == {
        "2026-11-03#flyer": {"calls": 3, "answered": 3, "first_time": 3}
    }
    # And the same batch delivered again writes nothing
    assert process_records(records, store, tokyo_timezone) == []
    assert store.transactions == 1
    assert store.counters("acme", "channel")["2026-11-03#flyer"]["calls"] == 3


def _distinct_calls(n: int, start: int = 0) -> list[dict[str, Any]]:
    """Calls each with its own keyword and number: 7 rows each, 5 of them their own."""
    return stream_of(
        [
            (
                f"CA{i}",
                call(call_sid=f"CA{i}", keyword=f"kw-{i}", tracking_number=f"+8150{i:08d}", attribution=None),
            )
            for i in range(start, start + n)
        ]
    )


def test_a_batch_larger_than_one_transaction_is_cut_into_contiguous_runs() -> None:
    records = _distinct_calls(60)
    store = InMemoryRollupStore()
    assert process_records(records, store, tokyo_timezone) == []
    # Then several transactions, none over DynamoDB's limit, each covering a contiguous run
    assert store.transactions >= 2 and store.items_written <= store.transactions * MAX_TRANSACT_ITEMS
    order = [seq_of(r) for r in records]
    runs = sorted(store.items.values(), key=lambda seqs: order.index(seqs[0]))
    assert [s for run in runs for s in run] == order
    assert sum(v["calls"] for v in store.counters("acme", "keyword").values()) == 60


def test_group_sums_rows_and_cuts_before_the_record_that_would_overflow() -> None:
    row = {"calls": 1}
    deltas = [
        ("1", {("a", "k1"): row, ("a", "k2"): row}),
        ("2", {("a", "k1"): row}),
        ("3", {}),
        ("4", {("a", "k3"): row, ("a", "k4"): row}),
        ("5", {}),
    ]
    groups = group(deltas, limit=3)
    assert [(t.seqs, t.rows) for t in groups] == [
        (["1", "2", "3"], {("a", "k1"): {"calls": 2}, ("a", "k2"): {"calls": 1}}),
        (["4", "5"], {("a", "k3"): row, ("a", "k4"): row}),
    ]
    assert group([("1", {})]) == []  # nothing to write, nothing to count twice


class FailingStore(InMemoryRollupStore):
    """Fails the ``fail_at``-th commit: before writing ("down"), or after ("lost": the transaction
    committed but its answer never came back, as when the function times out)."""

    def __init__(self, fail_at: int, mode: str = "down") -> None:
        super().__init__()
        self.fail_at, self.mode, self.calls = fail_at, mode, 0

    def commit(self, seqs: list[str], rows: Any) -> bool:
        self.calls += 1
        if self.calls == self.fail_at:
            if self.mode == "lost":
                super().commit(seqs, rows)
            raise RuntimeError("dynamodb unavailable")
        return super().commit(seqs, rows)


def test_a_batch_failing_midway_reports_its_first_uncommitted_record_and_redelivery_counts_once() -> None:
    records = _distinct_calls(60)
    for mode in ("down", "lost"):
        store = FailingStore(fail_at=2, mode=mode)
        # When its second transaction fails, the batch reports the first record of that transaction
        failures = process_records(records, store, tokyo_timezone, sleep=lambda _: None)
        assert len(failures) == 1
        reported = failures[0]["itemIdentifier"]
        start = [seq_of(r) for r in records].index(reported)
        first_run = store.items[seq_of(records[0])]
        assert start == len(first_run)  # right after the run the first transaction covered
        # And Lambda delivers the batch again from that record, then the whole batch again
        assert process_records(records[start:], store, tokyo_timezone) == []
        assert process_records(records, store, tokyo_timezone) == []
        # Then every call is counted exactly once
        assert sum(v["calls"] for v in store.counters("acme", "keyword").values()) == 60, mode
        assert store.counters("acme", "channel")["2026-11-03#flyer"]["calls"] == 60, mode


def test_a_cancelled_transaction_is_retried_then_reported() -> None:
    class Conflicted(InMemoryRollupStore):
        cancels = 0

        def commit(self, seqs: list[str], rows: Any) -> bool:
            if self.cancels:
                self.cancels -= 1
                return False  # a TransactionConflict on a hot row: nothing written
            return super().commit(seqs, rows)

    records = _distinct_calls(3)
    store = Conflicted()
    store.cancels = 2
    # When two attempts are cancelled, the third writes the batch once
    assert process_records(records, store, tokyo_timezone, sleep=lambda _: None) == []
    assert store.counters("acme", "channel")["2026-11-03#flyer"]["calls"] == 3
    # And a transaction that keeps being cancelled is reported, nothing written
    store = Conflicted()
    store.cancels = 100
    assert process_records(records, store, tokyo_timezone, sleep=lambda _: None) == [
        {"itemIdentifier": seq_of(records[0])}
    ]
    assert store.counters("acme", "channel") == {}


def test_an_unreadable_record_is_reported_after_the_records_before_it_are_written() -> None:
    def zone_of(account: str) -> str:
        if account == "other":
            raise RuntimeError("accounts table unavailable")
        return "Asia/Tokyo"

    batch = stream_of(
        [
            ("CA0", call(call_sid="CA0")),
            ("CA1", call(call_sid="CA1", account="acme2")),
            ("CA2", call(call_sid="CA2", account="other")),  # its account's time zone cannot be read
            ("CA3", call(call_sid="CA3")),
        ]
    )
    store = InMemoryRollupStore()
    failures = process_records(batch, store, zone_of)
    # Then the records before it are written and it is the record reported (Lambda retries from it)
    assert failures == [{"itemIdentifier": seq_of(batch[2])}]
    assert store.counters("acme", "channel")["2026-11-03#flyer"]["calls"] == 1
    assert store.counters("acme2", "channel")["2026-11-03#flyer"]["calls"] == 1
    # And once it is readable, the batch from that record counts the rest once
    assert process_records(batch[2:], store, tokyo_timezone) == []
    assert store.counters("acme", "channel")["2026-11-03#flyer"]["calls"] == 2
    assert store.counters("other", "channel")["2026-11-03#flyer"]["calls"] == 1


def test_no_transaction_starts_when_the_function_is_about_to_time_out() -> None:
    records = _distinct_calls(3)
    store = InMemoryRollupStore()
    assert process_records(records, store, tokyo_timezone, remaining_ms=lambda: 1000) == [
        {"itemIdentifier": seq_of(records[0])}
    ]
    assert store.transactions == 0


_update = st.fixed_dictionaries(
    {
        "call": st.integers(0, 5),
        "status": st.sampled_from(["ringing", "answered", "missed", "busy"]),
        "stage": st.sampled_from([None, "lead", "opportunity", "won", "lost"]),
        "value": st.integers(0, 10**6),
        "talk_seconds": st.integers(0, 3600),
        "channel": st.sampled_from(["flyer", "google-ads"]),
        "agent": st.sampled_from([None, "sato", "tanaka"]),
        "keyword": st.sampled_from([None, "implant", "whitening", "dentist"]),
        "delete": st.booleans(),
    }
)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(_update, min_size=1, max_size=40),
    st.integers(1, 12),
    st.lists(
        st.tuples(st.integers(0, 6), st.sampled_from(["down", "lost", "again", "ok"]), st.integers(1, 12)),
        max_size=30,
    ),
    st.integers(3, 30),
)
def test_per_stream_order_exactly_once_under_lambdas_redelivery(
    updates: list[dict[str, Any]], batch: int, faults: list[tuple[int, str, int]], limit: int
) -> None:
    """Whatever the stream, batch size, transaction size and failures, the rollups end at the sum
    of every call's last image: each record counts once, in stream order."""
    stream: list[tuple[str, dict[str, Any] | None]] = []
    deleted: set[str] = set()
    for u in updates:
        sid = f"CA{u['call']}"
        if sid in deleted or (u["delete"] and not any(s == sid for s, _ in stream)):
            continue  # a call is deleted once, after it exists, and not written again
        if u["delete"]:
            deleted.add(sid)
        image = (
            None
            if u["delete"]
            else call(call_sid=sid, **{k: v for k, v in u.items() if k not in ("call", "delete")})
        )
        stream.append((sid, image))
    if not stream:
        return
    records = stream_of(stream)
    store = InMemoryRollupStore()
    plan = list(faults)

    # Lambda's cursor over one shard: deliver up to ``size`` records from ``pos`` (a batch holds what
    # the shard had, so the same start may come with more records later, never fewer: the shard
    # only grows and the batch size is the mapping's); on a reported failure deliver again from
    # that record; a batch may also be delivered again ("again": the function timed out after
    # writing) after a commit failed before writing ("down") or after ("lost").
    pos = deliveries = 0
    delivered_from: dict[int, int] = {}  # start -> the most records delivered from it so far
    while pos < len(records):
        deliveries += 1
        assert deliveries < 1000
        fail_at, mode, size = plan.pop(0) if plan else (0, "ok", batch)
        size = delivered_from[pos] = max(size, delivered_from.get(pos, 0))
        chunk = records[pos : pos + size]
        target: Any = store
        if mode in ("down", "lost") and fail_at:
            target = _FailOnce(store, fail_at, mode)
        failures = process_records(chunk, target, tokyo_timezone, sleep=lambda _: None, max_rows=limit)
        if mode == "again":
            continue  # the same batch again
        if failures:
            pos += [seq_of(r) for r in chunk].index(failures[0]["itemIdentifier"])
        else:
            pos += len(chunk)
    last: dict[str, dict[str, Any] | None] = {}
    for sid, image in stream:
        last[sid] = image if image is not None else last.get(sid)  # a REMOVE keeps the counts
    for dimension in ("channel", "agent", "keyword"):
        assert store.counters("acme", dimension) == truth(last, dimension), dimension


class _FailOnce:
    """Wraps a store so that its ``fail_at``-th commit in this delivery fails (see FailingStore)."""

    def __init__(self, store: InMemoryRollupStore, fail_at: int, mode: str) -> None:
        self.store, self.fail_at, self.mode, self.calls = store, fail_at, mode, 0

    def covered(self, seqs: list[str]) -> set[str]:
        return self.store.covered(seqs)

    def commit(self, seqs: list[str], rows: Any) -> bool:
        self.calls += 1
        if self.calls == self.fail_at:
            if self.mode == "lost":
                self.store.commit(seqs, rows)
            raise RuntimeError("injected")
        return self.store.commit(seqs, rows)


class _Cancelled(Exception):
    def __init__(self, *codes: str) -> None:
        super().__init__("TransactionCanceledException")
        self.response = {"CancellationReasons": [{"Code": c} for c in codes]}


class _StubDynamo:
    """The low-level client calls DynamoRollupStore makes, answered from memory."""

    class exceptions:  # noqa: N801 - boto3's spelling
        TransactionCanceledException = _Cancelled

    def __init__(self) -> None:
        self.transactions: list[list[dict[str, Any]]] = []
        self.raise_next: _Cancelled | None = None
        self.items: dict[str, dict[str, Any]] = {}
        self.unprocessed_once = True

    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> None:  # noqa: N803
        self.transactions.append(TransactItems)
        if self.raise_next:
            exc, self.raise_next = self.raise_next, None
            raise exc

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        ((table, request),) = RequestItems.items()
        keys = [k["call_sid"]["S"] for k in request["Keys"]]
        if self.unprocessed_once:  # DynamoDB may leave keys unprocessed: asked again
            self.unprocessed_once = False
            return {"Responses": {table: []}, "UnprocessedKeys": RequestItems}
        return {"Responses": {table: [self.items[k] for k in keys if k in self.items]}}


def test_the_dynamodb_store_writes_the_item_with_its_rows_and_reads_what_items_cover() -> None:
    from report.rollup_consumer import DynamoRollupStore

    client = _StubDynamo()
    store = DynamoRollupStore(client, "rollups", "markers", now=lambda: 1_000_000)
    rows = {("acme", "channel|2026-11-03#flyer"): {"calls": 2}}
    assert store.commit(["11", "12"], rows)
    put, update = client.transactions[0]
    assert put["Put"]["Item"] == {
        "call_sid": {"S": "seq#11"},
        "seqs": {"SS": ["11", "12"]},
        "expire_at": {"N": str(1_000_000 + 3 * 86400)},
    }
    assert put["Put"]["ConditionExpression"] == "attribute_not_exists(call_sid)"
    assert update["Update"]["Key"] == {"pk": {"S": "acme#channel"}, "sk": {"S": "2026-11-03#flyer"}}
    # A cancellation because the item exists: this transaction committed before
    client.raise_next = _Cancelled("ConditionalCheckFailed", "None")
    assert store.commit(["11", "12"], rows) is True
    # A conflict on a hot row: nothing written, to be retried
    client.raise_next = _Cancelled("None", "TransactionConflict")
    assert store.commit(["11", "12"], rows) is False
    # And a batch's records covered by an item keyed by one of them are found
    client.items["seq#11"] = put["Put"]["Item"]
    assert store.covered(["10", "11", "12", "13"]) == {"11", "12"}


def test_an_account_whose_stored_config_no_longer_validates_is_counted_in_its_own_zone() -> None:
    from calltrack.accounts import AccountReader
    from report.rollup_consumer import account_timezone
    from tests.support.accounts import AccountsTable, account_config

    # Given an account whose stored config no longer validates (its zone is a column of its own)
    # between two calls of a healthy account
    table = AccountsTable()
    table.put(account_config("acme"))
    table.put(account_config("broken", timezone="America/New_York", alerts={"answer_rate_below": 7}))
    reader = AccountReader(table, "calltrack-accounts")
    batch = stream_of(
        [
            ("CA0", call(call_sid="CA0")),
            ("CA1", call(call_sid="CA1", account="broken")),
            ("CA2", call(call_sid="CA2")),
        ]
    )
    store = InMemoryRollupStore()
    # When the consumer counts the batch, reading zones through the account reader
    failures = process_records(batch, store, lambda account: account_timezone(account, reader))
    # Then nothing is reported failed (no retry, nothing after it dropped), every call is counted,
    # the broken account's on its own zone's day (15:30 UTC is 10:30 in New York, 00:30 in Tokyo)
    assert failures == []
    assert store.counters("acme", "channel")["2026-11-03#flyer"]["calls"] == 2
    assert store.counters("broken", "channel")["2026-11-02#flyer"]["calls"] == 1
    # And an account that no longer exists is counted in the default zone
    assert account_timezone("gone", reader) == "Asia/Tokyo"
