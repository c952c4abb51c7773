"""P3: warm latency of the incoming-call webhook vs the floor, behind the same local gateway.

Both are signed Twilio form POSTs over real HTTP to the local API gateway (127.0.0.1), run through
the same invoker: POST /twilio/voice (the real voice_webhook) and POST /bench/floor
(``bench.floor_handler``: one BatchGetItem + one UpdateItem with raw boto3, fixed TwiML).
Requests alternate webhook/floor so machine drift hits both alike. Callers come from a small set
that the warm-up already saw, so every measured webhook call is a warm repeat caller (BatchGetItem
+ UpdateItem, the same shape as the floor).
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from bench.common import FigureResult, Row, percentile, verdict
from bench.stack import CALLER_PREFIX, FLOOR_PATH, static_account, unique_number, voice_form

TARGET = 1.3
WARMUP = 30


def _post(client: Any, path: str, form: dict[str, str]) -> float:
    started = time.perf_counter()
    resp = client.twilio_post(path, form)
    elapsed = time.perf_counter() - started
    if resp.status_code != 200 or "<Dial" not in resp.text:
        raise RuntimeError(f"{path} answered {resp.status_code}: {resp.text[:200]}")
    return elapsed


def run(client: Any, requests: int = 300) -> FigureResult:
    started = time.perf_counter()
    result = FigureResult("P3", "Warm latency: POST /twilio/voice vs floor handler, same local gateway")
    _, (number,) = static_account(client)
    callers = itertools.cycle([unique_number(CALLER_PREFIX) for _ in range(10)])
    samples: dict[str, list[float]] = {"webhook": [], "floor": []}
    for i in range(WARMUP + requests):
        form = voice_form(number, next(callers))
        order = [("webhook", "/twilio/voice"), ("floor", FLOOR_PATH)]
        if i % 2:
            order.reverse()
        for name, path in order:
            elapsed = _post(client, path, dict(form))
            if i >= WARMUP:
                samples[name].append(elapsed)
    stats = {
        name: {"p50_ms": percentile(s, 50) * 1000, "p99_ms": percentile(s, 99) * 1000, "n": len(s)}
        for name, s in samples.items()
    }
    result.details = stats
    for q in ("p50", "p99"):
        web, floor = stats["webhook"][f"{q}_ms"], stats["floor"][f"{q}_ms"]
        ratio = web / floor if floor else float("inf")
        result.rows.append(
            Row(
                f"P3 warm {q} webhook / floor",
                f"{web:.1f} ms / {floor:.1f} ms",
                f"<= {TARGET}x",
                ratio,
                verdict(ratio <= TARGET),
            )
        )
    result.notes.append(
        f"{requests} requests each after {WARMUP} warm-up, alternating; warm repeat callers; "
        "local gateway + in-process moto on this machine (absolute times are not AWS times)."
    )
    result.seconds = time.perf_counter() - started
    return result
