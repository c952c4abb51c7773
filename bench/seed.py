"""Seed N synthetic calls fast, for benchmarks (``bench.seed.seed_calls``); never used by the API.

Calls are written straight into the calls table (BatchWriteItem) in the shape the voice webhook
writes, and the rollups come from the real stream consumer: drain the stack (or wait for the event
source mapping) before reading reports. Since issue 24 the consumer counts each stream record's
``contribution(NewImage) - contribution(OldImage)`` exactly once per batch, with no per-call
marker, so rows written here in bulk could not stop the calls' INSERT records from counting every
call a second time (and the records' sequence numbers, which its idempotency items are keyed by,
are not known before the writes). Counting a batch of 100 records costs a few transactions.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from report.rollup import contribution

CHANNELS = ("google-ads", "yahoo-ads", "facebook", "flyer", "newspaper", "radio")


def synthetic_call(
    account: str, rng: random.Random, start: datetime, days: int, channels: Sequence[str]
) -> dict[str, Any]:
    started = start + timedelta(seconds=rng.randrange(days * 86400))
    answered = rng.random() < 0.8
    stage = rng.choices([None, "lead", "opportunity", "won", "lost"], weights=[55, 20, 10, 8, 7])[0]
    channel = rng.choice(list(channels))
    return {
        "call_sid": "CA" + secrets.token_hex(16),
        "account": account,
        "started_at": started.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "tracking_number": f"+8150{rng.randrange(10**8):08d}",
        "caller": f"+8190{rng.randrange(10**8):08d}",
        "status": "answered" if answered else rng.choice(["missed", "busy"]),
        "talk_seconds": rng.randrange(20, 900) if answered else 0,
        "first_time": rng.random() < 0.6,
        "channel": channel,
        "campaign": f"{channel}-c{rng.randrange(3)}",
        "keyword": rng.choice([None, "歯医者 新宿", "dentist", "implant"]),
        "attribution": {"landing_page": rng.choice(["/", "/lp/implant", "/lp/whitening"])},
        "stage": stage,
        "value": rng.randrange(1, 100) * 1000 if stage == "won" else None,
        "agent": rng.choice(["sato", "tanaka", "suzuki"]),
        "version": 1,
    }


def _to_item(call: dict[str, Any]) -> dict[str, Any]:
    """The stored form of a call (the one call codec, ``calltrack.call_items``)."""
    from calltrack.call_items import attr_for

    return {k: attr_for(k, v) for k, v in call.items() if v is not None}


def _batch_write(client: Any, table: str, items: list[dict[str, Any]]) -> None:
    for start in range(0, len(items), 25):
        request = {table: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]}
        while request:
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}


def seed_calls(
    account: str,
    n: int,
    *,
    start: datetime,
    days: int = 30,
    timezone: str = "Asia/Tokyo",
    channels: Sequence[str] = CHANNELS,
    seed: int = 0,
    client: Any = None,
) -> dict[str, Any]:
    """Write ``n`` calls of ``account`` between ``start`` and ``start + days``; returns counts. The
    rollup rows they make (``rollup_rows``) are counted by the stream consumer, not here."""
    import boto3

    from calltrack.settings import get_settings

    settings = get_settings()
    client = client or boto3.client("dynamodb", region_name=settings.region)
    rng = random.Random(seed)
    calls = [synthetic_call(account, rng, start, days, channels) for _ in range(n)]
    _batch_write(client, settings.table_name("calls"), [_to_item(c) for c in calls])
    rows = {key for call in calls for key in contribution(call, timezone)}
    return {"account": account, "calls": n, "rollup_rows": len(rows), "rollups": "stream"}
