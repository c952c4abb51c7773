"""For the benchmark (issue 10): conditional-write attempts per lease at a given pool utilisation.

``attempts_at_utilisation(store=None, pool_size=20, utilisation=0.75, leases=200, concurrency=8)``
fills the pool to ``utilisation`` with live sessions, then runs ``leases`` new-session lease
requests (``concurrency`` at a time; each new lease's session leaves as the next arrives, keeping
utilisation steady) and returns per-lease attempts and latencies. Pass a ``DynamoLeaseStore`` to
measure against the emulator; the default is the in-memory twin (pure, no AWS).
"""

from __future__ import annotations

import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dni_lease.leasing import lease_number
from dni_lease.store import LeaseStore
from dni_lease.validation import LeaseRequest
from tests.support.lease_store import InMemoryLeaseStore


def pool_config(pool_size: int, account: str = "bench", prefix: str = "+8150900") -> dict[str, Any]:
    numbers = [f"{prefix}{i:05d}" for i in range(pool_size)]
    return {
        "account": account,
        "site": {"numbers": ["+81312345678"]},
        "pools": [{"id": "bench", "channel": "direct", "match": {}, "lease_minutes": 30, "numbers": numbers}],
    }


def attempts_at_utilisation(
    store: LeaseStore | None = None,
    *,
    pool_size: int = 20,
    utilisation: float = 0.75,
    leases: int = 200,
    concurrency: int = 8,
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    store = store or InMemoryLeaseStore()
    cfg = config or pool_config(pool_size)
    numbers = cfg["pools"][0]["numbers"]
    now = time.time()
    counter = iter(range(10**9))
    lock = threading.Lock()

    def request() -> LeaseRequest:
        with lock:
            n = next(counter)
        return LeaseRequest(
            account=cfg["account"], visitor_id=f"bench-v-{n:08d}", session_id=f"bench-s-{n:08d}"
        )

    held = int(len(numbers) * utilisation)
    for _ in range(held):
        lease_number(store, cfg, request(), now)
    attempts: list[int] = []
    latencies: list[float] = []
    shared = 0

    def one(_: int) -> None:
        nonlocal shared
        started = time.perf_counter()
        req = request()
        result = lease_number(store, cfg, req, now)
        elapsed = time.perf_counter() - started
        with lock:
            attempts.append(result.attempts)
            latencies.append(elapsed)
            shared += int(result.shared)
        if result.leased and result.number:
            # the session leaves (its page closed): its lease ends now, keeping utilisation steady
            store.release(result.number, req.session_id, result.lease_id or "", now - 0.001)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, range(leases)))
    latencies.sort()
    return {
        "pool_size": len(numbers),
        "utilisation": utilisation,
        "leases": leases,
        "attempts_mean": statistics.fmean(attempts) if attempts else 0.0,
        "attempts_max": max(attempts, default=0),
        "shared": shared,
        "latency_p50_s": latencies[len(latencies) // 2] if latencies else 0.0,
        "latency_p95_s": latencies[int(len(latencies) * 0.95) - 1] if latencies else 0.0,
    }
