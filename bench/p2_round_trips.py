"""P2: AWS requests on the incoming-call critical path, per POST /twilio/voice.

Counted with ``bench.common.RequestCounter``: every botocore HTTP send made while the
voice_webhook handler runs (pollers off). Cold = the webhook's process state reset first
(``voice_webhook.handler.reset()``: new boto3 client, empty caches), as on a fresh Lambda
container; warm = the next request in the same process.
"""

from __future__ import annotations

import time
from typing import Any

from bench.common import FigureResult, RequestCounter, Row, verdict
from bench.stack import CALLER_PREFIX, static_account, unique_number, voice_form

TARGET = 2


def _one(client: Any, counter: RequestCounter, number: str, caller: str) -> dict[str, Any]:
    counter.reset()
    resp = client.twilio_post("/twilio/voice", voice_form(number, caller))
    if resp.status_code != 200 or "<Dial" not in resp.text:
        raise RuntimeError(f"voice webhook answered {resp.status_code}: {resp.text[:200]}")
    tally = counter.snapshot().get("voice_webhook")
    requests = dict(tally.requests) if tally else {}
    return {"requests": sum(requests.values()), "operations": requests}


def run(client: Any, counter: RequestCounter) -> FigureResult:
    import voice_webhook.handler as vh

    started = time.perf_counter()
    result = FigureResult("P2", "AWS requests per incoming call (POST /twilio/voice)")
    _, (number,) = static_account(client)
    repeat_caller = unique_number(CALLER_PREFIX)
    cases: list[tuple[str, str, bool]] = [
        ("cold process, new caller", unique_number(CALLER_PREFIX), True),
        ("warm process, new caller", unique_number(CALLER_PREFIX), False),
        ("warm process, repeat caller", repeat_caller, False),
        ("cold process, repeat caller", repeat_caller, True),
    ]
    # the repeat caller calls once first, so the cases below see a known caller
    _one(client, counter, number, repeat_caller)
    for label, caller, cold in cases:
        if cold:
            vh.reset()
        measured = _one(client, counter, number, caller)
        result.details[label] = measured
        ops = ", ".join(f"{op.split(':', 1)[1]} x{n}" for op, n in sorted(measured["operations"].items()))
        result.rows.append(
            Row(
                f"P2 requests: {label}",
                f"{measured['requests']} ({ops})",
                f"<= {TARGET}",
                measured["requests"] / TARGET,
                verdict(measured["requests"] <= TARGET),
            )
        )
    result.seconds = time.perf_counter() - started
    return result
