"""P4: DNI leases at 25%, 75% and 100% pool utilisation with 64 concurrent sessions.

Driven through the lease logic itself (``dni_lease.leasing.lease_number`` over the function's
``DynamoLeaseStore`` on the local emulator, pool config from ``bench.dni_support``), NOT
over HTTP: the local gateway's per-IP limit (600/min from 127.0.0.1) would throttle the burst.
Per level: the pool is filled to the utilisation with live sessions, then ``leases`` new sessions
arrive ``concurrency`` at a time; each leaving as soon as it is served (utilisation stays put).
Every lease of a level happens at one instant ``now`` (the sessions arrive together; a number a
session leaves is free again at once): the emulator, serialised, answers in seconds rather than
DynamoDB's milliseconds, and a real clock would make a session's ``now`` seconds older than the
releases it competes for.
The emulator's DynamoDB requests are serialised while P4 runs (``atomic_emulator``): moto's
threaded server evaluates a ConditionExpression and writes without a lock, so two concurrent
conditional writes can both pass (seen: 4 "double leases" in 384 leases unserialised), while real
DynamoDB applies each conditional write atomically per item (``--p4-unserialised`` shows the raw
emulator). Double leases are detected by a shadow map of live holders kept by a store wrapper: a
successful conditional take of a number another live session still holds is a double lease.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.common import FigureResult, RequestCounter, Row, percentile, verdict

TARGET_ATTEMPTS = 1.2
LEVELS = (0.25, 0.75, 1.0)


class ShadowStore:
    """Wraps a LeaseStore; counts double leases (take succeeding while another live holder exists)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.lock = threading.Lock()
        self.holders: dict[str, str] = {}
        self.double_leases = 0

    def get_rows(self, numbers: Iterable[str]) -> dict[str, dict[str, Any]]:
        return dict(self.inner.get_rows(numbers))

    def take(self, number: str, row: Mapping[str, Any], now: float) -> bool:
        ok = bool(self.inner.take(number, row, now))
        if ok:
            with self.lock:
                holder = self.holders.get(number)
                if holder is not None and holder != row["session_id"]:
                    self.double_leases += 1
                self.holders[number] = str(row["session_id"])
        return ok

    def release(self, number: str, session_id: str, lease_id: str, at: float) -> None:
        # forget the holder BEFORE the release reaches the store: a later take cannot precede it
        with self.lock:
            if self.holders.get(number) == session_id:
                del self.holders[number]
        self.inner.renew(number, session_id, lease_id, at)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@contextlib.contextmanager
def atomic_emulator() -> Iterator[None]:
    """Make each DynamoDB request to the in-process moto server atomic, as DynamoDB's are per item."""
    from moto.dynamodb.responses import DynamoHandler

    lock = threading.Lock()
    original = DynamoHandler.call_action

    def call_action(self: Any) -> Any:
        with lock:
            return original(self)

    DynamoHandler.call_action = call_action  # type: ignore[method-assign]
    try:
        yield
    finally:
        DynamoHandler.call_action = original  # type: ignore[method-assign]


def _client(concurrency: int) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "dynamodb", config=Config(max_pool_connections=concurrency + 4, retries={"max_attempts": 3})
    )


def _drive(
    store: Any, cfg: dict[str, Any], utilisation: float, leases: int, concurrency: int, scope: Any
) -> tuple[list[int], list[float], int]:
    """Fill the pool to ``utilisation`` with live sessions, then serve ``leases`` new sessions
    ``concurrency`` at a time, each leaving once served. Every lease happens at one instant ``now``
    (the sessions arrive together; a number a session leaves is free again at once). Returns the
    attempts of each served lease, every lease's latency, and how many sessions got a shared number."""
    from dni_lease.leasing import lease_number
    from dni_lease.validation import LeaseRequest

    serial = itertools.count()
    lock = threading.Lock()
    now = time.time()
    pool_size = len(cfg["pools"][0]["numbers"])

    def request() -> Any:
        with lock:
            n = next(serial)
        return LeaseRequest(account=cfg["account"], visitor_id=f"bv-{n:08d}", session_id=f"bs-{n:08d}")

    for _ in range(int(pool_size * utilisation)):
        lease_number(store, cfg, request(), now)
    attempts: list[int] = []
    latencies: list[float] = []
    shared = 0

    def one(_: int) -> None:
        nonlocal shared
        req = request()
        t0 = time.perf_counter()
        with scope():
            res = lease_number(store, cfg, req, now)
        elapsed = time.perf_counter() - t0
        with lock:
            latencies.append(elapsed)
            if res.leased:
                attempts.append(res.attempts)
            shared += int(res.shared)
        if res.leased and res.number:
            store.release(res.number, req.session_id, res.lease_id or "", now - 0.001)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, range(leases)))
    return attempts, latencies, shared


class ModelStore(ShadowStore):
    """The in-memory lease store (same conditional semantics, atomic per number) with a fixed round
    trip per request: the lease code's contention at DynamoDB-like latency, without the emulator's
    queueing."""

    def __init__(self, round_trip_s: float) -> None:
        from tests.support.lease_store import InMemoryLeaseStore

        super().__init__(InMemoryLeaseStore())
        self.round_trip_s = round_trip_s

    def get_rows(self, numbers: Iterable[str]) -> dict[str, dict[str, Any]]:
        wanted = list(numbers)
        time.sleep(self.round_trip_s * -(-len(wanted) // 100))  # one BatchGetItem per 100 keys
        return super().get_rows(wanted)

    def take(self, number: str, row: Mapping[str, Any], now: float) -> bool:
        time.sleep(self.round_trip_s)
        return super().take(number, row, now)

    def put_history(self, item: Mapping[str, Any]) -> None:
        time.sleep(self.round_trip_s)
        self.inner.put_history(item)


def model_level(
    utilisation: float, *, pool_size: int, leases: int, concurrency: int, round_trip_s: float
) -> dict[str, Any]:
    from bench.dni_support import pool_config

    store = ModelStore(round_trip_s)
    cfg = pool_config(pool_size, account="bench-dni-model", prefix="+8150977")
    attempts, _, shared = _drive(store, cfg, utilisation, leases, concurrency, contextlib.nullcontext)
    return {
        "utilisation": utilisation,
        "round_trip_ms": round_trip_s * 1000,
        "leased": len(attempts),
        "shared": shared,
        "attempts_mean": sum(attempts) / len(attempts) if attempts else None,
        "attempts_max": max(attempts, default=0),
        "double_leases": store.double_leases,
    }


def measure_level(
    utilisation: float,
    *,
    pool_size: int,
    leases: int,
    concurrency: int,
    prefix: str,
    counter: RequestCounter | None = None,
) -> dict[str, Any]:
    from bench.dni_support import pool_config
    from calltrack.settings import get_settings
    from dni_lease.store import DynamoLeaseStore

    settings = get_settings()
    inner = DynamoLeaseStore(
        _client(concurrency), settings.table_name("leases"), settings.table_name("lease_history")
    )
    store = ShadowStore(inner)
    cfg = pool_config(pool_size, account=f"bench-dni-{prefix[-3:]}", prefix=prefix)
    label = f"p4-{prefix}"
    if counter is not None:
        counter.tallies.pop(label, None)
    scope = (lambda: counter.attribute_to(label)) if counter is not None else contextlib.nullcontext
    attempts, latencies, shared = _drive(store, cfg, utilisation, leases, concurrency, scope)
    tally = counter.snapshot().get(label) if counter is not None else None
    per_lease = (
        {op.split(":", 1)[1]: round(n / leases, 2) for op, n in sorted(tally.requests.items())}
        if tally
        else {}
    )
    return {
        "requests_per_lease": per_lease,
        "items_read_per_lease": round(tally.items.get("dynamodb:BatchGetItem", 0) / leases, 1)
        if tally
        else None,
        "utilisation": utilisation,
        "pool_size": pool_size,
        "held_before": int(pool_size * utilisation),
        "requests": leases,
        "leased": len(attempts),
        "shared": shared,
        "attempts_mean": sum(attempts) / len(attempts) if attempts else None,
        "attempts_max": max(attempts, default=0),
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "double_leases": store.double_leases,
    }


def run(
    *,
    pool_size: int = 256,
    leases: int = 128,
    concurrency: int = 64,
    atomic: bool = True,
    model_round_trip_ms: float = 5.0,
    counter: RequestCounter | None = None,
) -> FigureResult:
    started = time.perf_counter()
    result = FigureResult("P4", f"DNI leases, {concurrency} concurrent sessions, pool of {pool_size}")
    levels = []
    for i, utilisation in enumerate(LEVELS):
        with atomic_emulator() if atomic else contextlib.nullcontext():
            stats = measure_level(
                utilisation,
                pool_size=pool_size,
                leases=leases,
                concurrency=concurrency,
                prefix=f"+815099{i}",
                counter=counter,
            )
        levels.append(stats)
        pct = int(utilisation * 100)
        mean = stats["attempts_mean"]
        shown = f"{mean:.2f} (max {stats['attempts_max']})" if mean is not None else "n/a (no free number)"
        target = f"<= {TARGET_ATTEMPTS}" if utilisation == 0.75 else ""
        status = verdict(mean is not None and mean <= TARGET_ATTEMPTS) if target else "INFO"
        result.rows.append(
            Row(
                f"P4 attempts/lease at {pct}%",
                f"{shown}; leased {stats['leased']}, shared {stats['shared']}",
                target,
                (mean / TARGET_ATTEMPTS) if (target and mean is not None) else None,
                status,
            )
        )
        reqs = ", ".join(f"{op} {n:g}" for op, n in stats["requests_per_lease"].items())
        result.rows.append(
            Row(
                f"P4 lease latency / requests at {pct}%",
                f"p50 {stats['p50_ms']:.0f} ms, p99 {stats['p99_ms']:.0f} ms; per lease: {reqs or 'n/a'}; "
                f"rows read {stats['items_read_per_lease']}",
            )
        )
    for utilisation in (0.25, 0.75):
        model = model_level(
            utilisation,
            pool_size=pool_size,
            leases=leases,
            concurrency=concurrency,
            round_trip_s=model_round_trip_ms / 1000,
        )
        model["model"] = "lease_number on the in-memory store, fixed round trip per request"
        levels.append(model)
        mean = model["attempts_mean"]
        result.rows.append(
            Row(
                f"P4 model at {int(utilisation * 100)}%: same code, {model_round_trip_ms:g} ms per request",
                f"{mean:.2f} (max {model['attempts_max']}); "
                f"leased {model['leased']}, shared {model['shared']}"
                if mean is not None
                else "n/a",
            )
        )
    doubles = sum(s["double_leases"] for s in levels)
    result.rows.append(Row("P4 double leases (all levels)", str(doubles), "0", None, verdict(doubles == 0)))
    result.details = {
        "levels": levels,
        "driver": "lease_number + DynamoLeaseStore on the emulator",
        "emulator_serialised": atomic,
    }
    result.notes.append(
        "Driven through dni_lease.leasing.lease_number + DynamoLeaseStore against the emulator (not over "
        "HTTP: the local per-IP limit is 600/min). Attempts count conditional writes per served lease; "
        "at 100% every new session is handed a shared number without a lease (0 writes). Latency is "
        "queueing on the one in-process emulator (64 threads, every request serialised), not DynamoDB "
        "latency: compare requests per lease. "
        + (
            "Emulator DynamoDB requests serialised (moto's conditional writes are not atomic)."
            if atomic
            else "Emulator NOT serialised: moto may let two concurrent conditional writes both pass."
        )
    )
    result.seconds = time.perf_counter() - started
    return result
