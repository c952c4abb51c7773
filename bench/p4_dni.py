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
POISSON_UTILISATION = 0.75


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

    def release(self, number: str, session_id: str, lease_id: str, at: float, **kw: Any) -> bool:
        # forget the holder BEFORE the release reaches the store: a later take cannot precede it
        with self.lock:
            if self.holders.get(number) == session_id:
                del self.holders[number]
        return bool(self.inner.release(number, session_id, lease_id, at, **kw))

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

    def renew(self, number: str, session_id: str, lease_id: str, expires_at: float,
              cookies: Any = None, *, now: float, page_id: str | None = None) -> bool:
        time.sleep(self.round_trip_s)
        return bool(self.inner.renew(number, session_id, lease_id, expires_at, cookies, now=now,
                                     page_id=page_id))

    def release(self, number: str, session_id: str, lease_id: str, at: float, **kw: Any) -> bool:
        time.sleep(self.round_trip_s)
        return super().release(number, session_id, lease_id, at, **kw)

    def extend_history(self, number: str, leased_at: float, ended_at: float) -> None:
        time.sleep(self.round_trip_s)
        self.inner.extend_history(number, leased_at, ended_at)


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


def poisson_level(
    store: Any,
    *,
    pool_size: int,
    leases: int,
    rate: float,
    utilisation: float = POISSON_UTILISATION,
    counter: RequestCounter | None = None,
    seed: int = 24,
    prefix: str = "+8150955",
) -> dict[str, Any]:
    """New sessions arrive as a Poisson process (``rate`` per second, real clock) at a pool held at
    ``utilisation``, every number of which some session has held before (steady traffic: a new lease
    also ends its previous holder's history item): each arrival first lets one random live session
    leave (a release), then leases. Then every held session heartbeats once naming its lease (the
    renewal fast path). Returns attempts per lease and, per new lease and per renewal, requests and
    rows read (when a ``counter`` sees the store's requests)."""
    import random

    from bench.dni_support import pool_config
    from dni_lease.leasing import lease_number
    from dni_lease.validation import LeaseRequest

    cfg = pool_config(pool_size, account=f"bench-dni-poisson-{prefix[-3:]}", prefix=prefix)
    rng = random.Random(seed)
    lock = threading.Lock()
    serial = itertools.count()
    held: list[tuple[str, str, str]] = []  # (number, session, lease id)
    labels = {k: f"p4-poisson-{k}" for k in ("lease", "renew", "release")}
    if counter is not None:
        for label in labels.values():
            counter.tallies.pop(label, None)

    def scope(kind: str) -> Any:
        return counter.attribute_to(labels[kind]) if counter is not None else contextlib.nullcontext()

    def request(**kw: Any) -> Any:
        n = next(serial)
        return LeaseRequest(
            account=cfg["account"], visitor_id=f"bpv-{n:08d}", session_id=f"bps-{n:08d}", **kw
        )

    for k in range(pool_size):  # the free numbers held once and released: no never-used number left
        req = request()
        res = lease_number(store, cfg, req, time.time())
        if k < int(pool_size * utilisation):
            held.append((res.number or "", req.session_id, res.lease_id or ""))
        else:
            store.release(res.number or "", req.session_id, res.lease_id or "", time.time())
    attempts: list[int] = []
    shared = 0

    def arrive(_: int) -> None:
        nonlocal shared
        with lock:
            leaving = held.pop(rng.randrange(len(held))) if held else None
        if leaving:
            with scope("release"):
                store.release(leaving[0], leaving[1], leaving[2], time.time())
        req = request()
        with scope("lease"):
            res = lease_number(store, cfg, req, time.time())
        with lock:
            if res.leased:
                attempts.append(res.attempts)
                held.append((res.number or "", req.session_id, res.lease_id or ""))
            shared += int(res.shared)

    gaps = [rng.expovariate(rate) for _ in range(leases)]
    scale = leases / (rate * sum(gaps))  # the sample's mean gap made 1/rate: the rate asked for
    gaps = [g * scale for g in gaps]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = []
        at = 0.0
        for i, gap in enumerate(gaps):
            at += gap
            delay = t0 + at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)  # the arrival process itself: a benchmark, not a test
            futures.append(pool.submit(arrive, i))
        for f in futures:
            f.result()
    achieved = leases / max(time.perf_counter() - t0, 1e-9)
    renewals = list(held)
    renewed = 0
    for number, session, lease_id in renewals:
        req = LeaseRequest(
            account=cfg["account"],
            visitor_id="bpv-renew",
            session_id=session,
            number=number,
            lease_id=lease_id,
        )
        with scope("renew"):
            res = lease_number(store, cfg, req, time.time())
        renewed += int(res.renewed)
    tallies = counter.snapshot() if counter is not None else {}

    def per(kind: str, n: int) -> dict[str, Any]:
        tally = tallies.get(labels[kind])
        if tally is None or not n:
            return {}
        return {
            "requests": {op.split(":", 1)[1]: round(c / n, 2) for op, c in sorted(tally.requests.items())},
            "rows_read": round(tally.items.get("dynamodb:BatchGetItem", 0) / n, 1),
        }

    return {
        "arrivals": "poisson",
        "rate_per_s": rate,
        "achieved_rate_per_s": round(achieved, 1),
        "utilisation": utilisation,
        "pool_size": pool_size,
        "requests": leases,
        "leased": len(attempts),
        "shared": shared,
        "attempts_mean": sum(attempts) / len(attempts) if attempts else None,
        "attempts_max": max(attempts, default=0),
        "per_new_lease": per("lease", leases),
        "per_renewal": per("renew", len(renewals)),
        "renewals": len(renewals),
        "renewed": renewed,
        "double_leases": store.double_leases,
    }


def run(
    *,
    pool_size: int = 256,
    leases: int = 128,
    concurrency: int = 64,
    atomic: bool = True,
    model_round_trip_ms: float = 5.0,
    poisson_rate: float = 20.0,
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
        result.rows.append(
            Row(
                f"P4 attempts/lease at {pct}%, {concurrency} arriving at one instant",
                f"{shown}; leased {stats['leased']}, shared {stats['shared']}",
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
    # Poisson arrivals: attempts on the model store (DynamoDB-like round trip; the emulator's
    # queueing would turn 20 arrivals/s into dozens of concurrent leases), request and row costs
    # on the emulator (counts do not depend on latency).
    poisson = poisson_level(
        ModelStore(model_round_trip_ms / 1000), pool_size=pool_size, leases=leases, rate=poisson_rate
    )
    poisson["model"] = f"lease_number on the in-memory store, {model_round_trip_ms:g} ms per request"
    levels.append(poisson)
    with atomic_emulator() if atomic else contextlib.nullcontext():
        from calltrack.settings import get_settings
        from dni_lease.store import DynamoLeaseStore

        settings = get_settings()
        emulated = ShadowStore(
            DynamoLeaseStore(_client(16), settings.table_name("leases"), settings.table_name("lease_history"))
        )
        costs = poisson_level(
            emulated,
            pool_size=pool_size,
            leases=min(leases, 32),
            rate=5.0,
            counter=counter,
            prefix="+8150944",
        )
    costs["driver"] = "lease_number + DynamoLeaseStore on the emulator (request and row counts)"
    levels.append(costs)
    mean = poisson["attempts_mean"]
    result.rows.append(
        Row(
            f"P4 attempts/lease at 75%, Poisson arrivals {poisson_rate:g}/s, "
            f"{model_round_trip_ms:g} ms model",
            (f"{mean:.2f} (max {poisson['attempts_max']})" if mean is not None else "n/a")
            + f"; leased {poisson['leased']}, shared {poisson['shared']}, "
            f"achieved {poisson['achieved_rate_per_s']:g}/s",
            f"<= {TARGET_ATTEMPTS}",
            (mean / TARGET_ATTEMPTS) if mean is not None else None,
            verdict(mean is not None and mean <= TARGET_ATTEMPTS),
        )
    )

    def cost_text(per: dict[str, Any]) -> str:
        reqs = ", ".join(f"{op} {n:g}" for op, n in per.get("requests", {}).items())
        return f"{reqs or 'n/a'}; rows read {per.get('rows_read', 'n/a')}"

    new, renew = costs["per_new_lease"], costs["per_renewal"]
    result.rows.append(Row("P4 cost per new lease (emulator)", cost_text(new)))
    renew_ok = (
        bool(renew)
        and renew.get("rows_read") == 0
        and sum(renew.get("requests", {}).values()) == 1
        and costs["renewed"] == costs["renewals"]
    )
    result.rows.append(
        Row(
            "P4 cost per renewal (heartbeat naming its lease)",
            cost_text(renew) + f"; renewed {costs['renewed']}/{costs['renewals']}",
            "1 conditional write, 0 rows read",
            None,
            verdict(renew_ok),
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
