"""Rollup write cost (issue 24): write units per call at stream batch sizes 1, 10 and 100, and a
burst of 100 calls per second to one account for a minute, on the model store.

Driven through ``report.rollup.process_records`` (the consumer's logic: exactly once per stream
batch, each record's NewImage minus OldImage, a batch's changes summed per row, transactions of one
idempotency item + up to 99 rows) over the in-memory twin of the DynamoDB store
(``tests/support/rollup_store.py``), which bills what DynamoDB bills for transactional writes
(2 write units per KB per item). A seeded stream: every call writes three records, as the voice
webhook and its callbacks do (ringing; answered with talk seconds; the recording attached: a new
version, no counter change), with 21-digit sequence numbers as DynamoDB Streams gives them (the
idempotency item lists them, so their length is billed). The burst spreads its records over
``SHARDS`` stream shards by call (as DynamoDB Streams does per item), one consumer thread each,
every transaction taking ``ROUND_TRIP_S`` during which a second transaction touching one of its
items is cancelled (DynamoDB's TransactionConflict); a cancelled transaction is retried with
backoff. At the end every counter must equal the stream's truth (exactly once).
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import FigureResult, Row, verdict

TARGET_WU_AT_100 = 5.0
BATCH_SIZES = (1, 10, 100)
SHARDS = 2  # stream shards follow table partitions: a young table at 100 writes/s has one or two
ROUND_TRIP_S = 0.005
ACCOUNT = "bench-rollup"
T0 = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
SEQ_BASE = 4 * 10**20  # DynamoDB Streams' sequence numbers are 21-digit decimal strings


def _attr(value: str) -> dict[str, Any]:
    return {"S": value}


def stream(calls: int, per_second: float, seed: int = 24) -> list[tuple[str, dict[str, Any]]]:
    """(call_sid, stream record) in commit order: three records per call, each with the call's
    previous image as its OldImage (NEW_AND_OLD_IMAGES)."""
    rng = random.Random(seed)
    events: list[tuple[float, int, str, dict[str, Any], dict[str, Any] | None]] = []
    for i in range(calls):
        sid = f"CA{i:032d}"
        start = i / per_second
        talk = rng.randint(20, 600)
        base = {
            "call_sid": _attr(sid),
            "account": _attr(ACCOUNT),
            "started_at": _attr((T0 + timedelta(seconds=start)).isoformat()),
            "channel": _attr(rng.choice(["google-ads", "yahoo-ads", "facebook", "flyer"])),
            "campaign": _attr(f"campaign-{rng.randrange(6)}"),
            "keyword": _attr(f"keyword-{rng.randrange(40)}"),
            "tracking_number": _attr(f"+8150{rng.randrange(30):08d}"),
            "agent": _attr(rng.choice(["sato", "tanaka", "suzuki"])),
            "first_time": {"BOOL": rng.random() < 0.6},
        }
        images = [
            {**base, "status": _attr("ringing"), "version": {"N": "1"}},
            {**base, "status": _attr("answered"), "talk_seconds": {"N": str(talk)}, "version": {"N": "2"}},
            {
                **base,
                "status": _attr("answered"),
                "talk_seconds": {"N": str(talk)},
                "recording_url": _attr(f"s3://bench/{sid}.mp3"),
                "version": {"N": "3"},
            },
        ]
        for k, (at, image) in enumerate(
            zip((start, start + talk + 5, start + talk + 40), images, strict=True)
        ):
            events.append((at, k, sid, image, images[k - 1] if k else None))
    events.sort(key=lambda e: (e[0], e[1]))
    out = []
    for seq, (_, k, sid, image, old) in enumerate(events):
        dynamodb = {"SequenceNumber": str(SEQ_BASE + seq), "Keys": {"call_sid": _attr(sid)},
                    "NewImage": image}
        if old is not None:
            dynamodb["OldImage"] = old
        out.append((sid, {"eventName": "INSERT" if k == 0 else "MODIFY", "dynamodb": dynamodb}))
    return out


def _tz(_: str) -> str:
    return "Asia/Tokyo"


def write_units_per_call(calls: int, batch: int) -> dict[str, Any]:
    from report.rollup import process_records
    from tests.support.rollup_store import InMemoryRollupStore

    store = InMemoryRollupStore()
    records = [r for _, r in stream(calls, per_second=2.0)]
    for i in range(0, len(records), batch):
        failures = process_records(records[i : i + batch], store, _tz)
        if failures:
            raise RuntimeError(f"batch {i // batch} failed: {failures}")
    counted = store.counters(ACCOUNT, "channel").values()
    if any(sum(v.get(c, 0) for v in counted) != calls for c in ("calls", "answered")):
        raise RuntimeError(f"batch {batch}: the rollups do not hold every call exactly once")
    return {
        "batch": batch,
        "calls": calls,
        "records": len(records),
        "write_units_per_call": round(store.write_units / calls, 2),
        "transactions_per_call": round(store.transactions / calls, 3),
        "items_written_per_call": round(store.items_written / calls, 2),
        "idempotency_write_units_per_call": round(store.marker_write_units / calls, 2),
        "row_write_units_per_call": round(store.row_write_units / calls, 2),
        "rows_written_per_call": round(store.rows_written / calls, 2),
        "idempotency_keys_read_per_call": round(store.marker_reads / calls, 2),
        "calls_counted": sum(v.get("calls", 0) for v in store.counters(ACCOUNT, "channel").values()),
    }


def burst(calls_per_second: int = 100, seconds: int = 60, batch: int = 100) -> dict[str, Any]:
    from report import rollup
    from tests.support.rollup_store import InMemoryRollupStore

    store = InMemoryRollupStore(conflict_window_s=ROUND_TRIP_S)
    calls = calls_per_second * seconds
    shards: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for sid, record in stream(calls, per_second=calls_per_second):
        shards[hash(sid) % SHARDS].append(record)
    retries = 0
    lock = threading.Lock()
    original_commit = store.commit

    def counting_commit(*args: Any, **kwargs: Any) -> bool:
        nonlocal retries
        ok = original_commit(*args, **kwargs)
        if not ok:
            with lock:
                retries += 1
        return ok

    store.commit = counting_commit  # type: ignore[method-assign]
    failed_batches = 0

    def consume(records: list[dict[str, Any]]) -> None:
        nonlocal failed_batches
        i = 0
        while i < len(records):
            chunk = records[i : i + batch]
            failures = rollup.process_records(chunk, store, _tz, sleep=lambda s: time.sleep(min(s, 0.01)))
            if failures:  # Lambda retries from the failed record
                with lock:
                    failed_batches += 1
                first = next(
                    k
                    for k, r in enumerate(chunk)
                    if r["dynamodb"]["SequenceNumber"] == failures[0]["itemIdentifier"]
                )
                i += first
                continue
            i += batch

    started = time.perf_counter()
    threads = [threading.Thread(target=consume, args=(recs,)) for recs in shards.values()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    counted = store.counters(ACCOUNT, "channel")
    total_calls = sum(v.get("calls", 0) for v in counted.values())
    total_answered = sum(v.get("answered", 0) for v in counted.values())
    return {
        "calls": calls,
        "shards": SHARDS,
        "batch": batch,
        "round_trip_s": ROUND_TRIP_S,
        "transactions": store.transactions,
        "conflicts": store.conflicts,
        "cancelled": store.cancelled,
        "call_by_call_retries": retries,
        "failed_batches": failed_batches,
        "write_units_per_call": round(store.write_units / calls, 2),
        "calls_counted": total_calls,
        "answered_counted": total_answered,
        "exactly_once": total_calls == calls and total_answered == calls,
        "seconds": round(elapsed, 1),
    }


def run(*, quick: bool = False) -> FigureResult:
    started = time.perf_counter()
    result = FigureResult("Rollup", "rollup write cost (model store, DynamoDB billing)")
    calls = 200 if quick else 1000
    sizes = {b: write_units_per_call(calls, b) for b in BATCH_SIZES}
    for b, stats in sizes.items():
        wu = stats["write_units_per_call"]
        target = f"<= {TARGET_WU_AT_100:g}" if b == 100 else ""
        result.rows.append(
            Row(
                f"Rollup write units per call, stream batch {b}",
                f"{wu:g} WU = idempotency items {stats['idempotency_write_units_per_call']:g} + rows "
                f"{stats['row_write_units_per_call']:g} ({stats['transactions_per_call']:g} transactions, "
                f"{stats['items_written_per_call']:g} items per call)",
                target,
                wu / TARGET_WU_AT_100 if target else None,
                verdict(wu <= TARGET_WU_AT_100) if target else "INFO",
            )
        )
    seconds = 6 if quick else 60
    b = burst(100, seconds)
    result.rows.append(
        Row(
            f"Rollup burst 100 calls/s x {seconds} s, one account",
            f"{b['conflicts']} conflicts, {b['call_by_call_retries']} retries in {b['transactions']} "
            f"transactions; {b['write_units_per_call']:g} WU/call; "
            f"counted {b['calls_counted']}/{b['calls']} calls",
            "exactly once",
            None,
            verdict(bool(b["exactly_once"])),
        )
    )
    result.details = {"batch_sizes": sizes, "burst": b}
    result.notes.append(
        "Rollup: exactly once per stream batch (idempotency item per transaction); write units as DynamoDB "
        "bills transactional writes (2 per KB per item) on the model store; "
        f"burst over {SHARDS} stream shards, {ROUND_TRIP_S * 1000:g} ms per transaction, conflicts cancel."
    )
    result.seconds = time.perf_counter() - started
    return result
