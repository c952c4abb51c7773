"""The benchmark's local stack: the real wiring plus the P3 floor route, pollers off.

``bench_stack()`` starts ``calltrack_cli.local.stack.LocalStack`` in this process (moto server,
local API gateway) with ``POST /bench/floor`` -> function ``bench_floor`` (handler
``bench.floor_handler.handler``) added to a copy of ``infra.wiring.WIRING``. Pollers are off so the
rollup consumer never competes with the measured requests; figures that need the stream or the
queue worked off drive pollers explicitly (``drain``).
"""

from __future__ import annotations

import dataclasses
import itertools
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from infra.wiring import WIRING, LambdaFunction, Route, Wiring

FLOOR_FUNCTION = LambdaFunction(
    "bench_floor",
    "bench",
    "bench.floor_handler.handler",
    memory_mb=512,
    timeout_s=8,
    description="benchmark floor: the webhook's two DynamoDB calls with raw boto3, fixed TwiML",
)
FLOOR_PATH = "/bench/floor"
FORWARD_TO = "+81312345678"
CALLER_PREFIX = "+8190"
_numbers = itertools.count(1)


def bench_wiring(base: Wiring = WIRING) -> Wiring:
    return dataclasses.replace(
        base,
        functions=(*base.functions, FLOOR_FUNCTION),
        routes=(*base.routes, Route("POST", FLOOR_PATH, FLOOR_FUNCTION.name, "twilio")),
    )


def unique_account(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def unique_number(prefix: str = "+8150") -> str:
    """A fresh Japanese 050 number (+8150 + 8 digits) for this run."""
    return f"{prefix}{secrets.randbelow(10**4):04d}{next(_numbers):04d}"


def call_sid() -> str:
    return "CA" + secrets.token_hex(16)


def recording_sid() -> str:
    return "RE" + secrets.token_hex(16)


@contextmanager
def bench_stack(log_level: str = "ERROR") -> Iterator[Any]:
    """Yield a StackClient (``.stack`` = the in-process LocalStack) for the benchmark wiring."""
    from calltrack.settings import LOCAL_TWILIO_ACCOUNT_SID, LOCAL_TWILIO_AUTH_TOKEN
    from calltrack_cli.local.client import StackClient
    from calltrack_cli.local.stack import LocalStack, free_port

    port = free_port()
    env = {
        "CALLTRACK_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "TWILIO_AUTH_TOKEN": LOCAL_TWILIO_AUTH_TOKEN,
        "TWILIO_ACCOUNT_SID": LOCAL_TWILIO_ACCOUNT_SID,
        "CALLTRACK_ADMIN_TOKEN": "ct_operator_bench_" + secrets.token_hex(8),
        "POWERTOOLS_LOG_LEVEL": log_level,
    }
    stack = LocalStack(port=port, env=env, wiring=bench_wiring(), pollers=False).start()
    try:
        client = StackClient.for_stack(stack)
        client.stack = stack
        yield client
    finally:
        stack.stop()


def static_account(client: Any, *, recording: bool = False, numbers: int = 1) -> tuple[str, list[str]]:
    """Apply an account with ``numbers`` static tracking numbers; returns (account, numbers)."""
    account = unique_account("bench")
    tracking = [unique_number() for _ in range(numbers)]
    client.apply(
        {
            "account": account,
            "name": "Benchmark",
            "forward_to": FORWARD_TO,
            "recording": {"enabled": recording},
            "numbers": [
                {"number": n, "channel": "newspaper", "campaign": f"bench-{i}"}
                for i, n in enumerate(tracking)
            ],
        }
    )
    return account, tracking


def voice_form(number: str, caller: str, sid: str | None = None) -> dict[str, str]:
    from calltrack.settings import LOCAL_TWILIO_ACCOUNT_SID

    return {
        "CallSid": sid or call_sid(),
        "AccountSid": LOCAL_TWILIO_ACCOUNT_SID,
        "From": caller,
        "To": number,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
    }


def drain(client: Any, timeout_s: float = 60.0) -> dict[str, Any]:
    """Work off the calls stream and the recording queue once with explicit pollers (no threads)."""
    from calltrack_cli.local.pollers import QueuePoller, StreamPoller, wait_idle

    stack = client.stack
    pollers = getattr(stack, "_bench_pollers", None)
    if pollers is None:
        from calltrack.settings import get_settings

        settings = get_settings()
        sqs = stack.client("sqs")
        pollers = [
            StreamPoller(stack.invoker, consumer, settings.table_name(consumer.table), stack.client)
            for consumer in stack.wiring.streams
        ]
        for queue in stack.wiring.queues:
            url = stack.queue_urls[queue.name]
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
            arn = attrs["QueueArn"]
            pollers.append(QueuePoller(stack.invoker, queue, url, arn, stack.client))
        stack._bench_pollers = pollers
    return dict(wait_idle(pollers, stack.invoker, timeout_s))
