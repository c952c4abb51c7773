"""P5: a month's channel report (GET /v1/reports/channels) at 1k, 10k and 100k calls.

Seeding 100k calls through the webhooks would take far too long, so rollup rows are seeded the way
the rollup consumer would write them: synthetic call images (6 channels, 12 campaigns, 40 keywords,
20 landing pages, 30 tracking numbers, 5 agents; spread over the month) go through the consumer's
pure ``report.rollup.contribution`` function, are aggregated in memory, and the resulting rows are
batch-written to the rollups table. The report then runs over real HTTP with a marketer token;
items read come from its X-Calltrack-Items-Read header, requests from the RequestCounter.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import FigureResult, RequestCounter, Row, median, verdict
from bench.stack import static_account

TARGET = 1.1
MONTH_START = datetime(2026, 10, 1, tzinfo=UTC) - timedelta(hours=9)  # 2026-10-01 00:00 JST
DAYS = 31
CHANNELS = ("google-ads", "yahoo-ads", "facebook", "flyer", "newspaper", "radio")
STATUSES = ("answered", "answered", "answered", "missed", "busy")
STAGES = ("", "", "lead", "opportunity", "won", "lost")


def synthetic_calls(account: str, n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    calls = []
    for i in range(n):
        at = MONTH_START + timedelta(seconds=rng.randrange(DAYS * 86400))
        stage = rng.choice(STAGES)
        calls.append(
            {
                "call_sid": f"CA{i:032d}",
                "account": account,
                "started_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "status": rng.choice(STATUSES),
                "channel": rng.choice(CHANNELS),
                "campaign": f"campaign-{rng.randrange(12)}",
                "keyword": f"keyword-{rng.randrange(40)}",
                "attribution": {"landing_page": f"https://example.jp/lp/{rng.randrange(20)}"},
                "tracking_number": f"+815090{rng.randrange(30):06d}",
                "agent": f"+81312340{rng.randrange(5):03d}",
                "first_time": rng.random() < 0.7,
                "talk_seconds": rng.randrange(30, 600),
                "stage": stage,
                "value": rng.randrange(1, 50) * 1000 if stage == "won" else None,
            }
        )
    return calls


def rollup_rows(calls: list[dict[str, Any]], tz: str = "Asia/Tokyo") -> dict[str, dict[str, float]]:
    """Row key -> summed counters, via the consumer's own contribution function."""
    from report.rollup import contribution

    rows: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for call in calls:
        for key, counters in contribution(call, tz).items():
            row = rows[key]
            for counter, value in counters.items():
                row[counter] += value
    return rows


def seed(client: Any, account: str, rows: dict[str, dict[str, float]]) -> int:
    from calltrack.settings import get_settings
    from report.rollup import split_row_key

    table = get_settings().table_name("rollups")
    ddb = client.stack.client("dynamodb")
    items = []
    for key, counters in rows.items():
        dimension, sk = split_row_key(key)
        item: dict[str, Any] = {"pk": {"S": f"{account}#{dimension}"}, "sk": {"S": sk}}
        for counter, value in counters.items():
            item[counter] = {"N": str(int(value)) if float(value).is_integer() else repr(value)}
        items.append({"PutRequest": {"Item": item}})
    for i in range(0, len(items), 25):
        request = {table: items[i : i + 25]}
        while request:
            request = ddb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
    return len(items)


def run(client: Any, counter: RequestCounter, sizes: tuple[int, ...] = (1000, 10000, 100000)) -> FigureResult:
    started = time.perf_counter()
    result = FigureResult("P5", "Month channel report: items read and latency vs call volume")
    per_size: dict[int, dict[str, Any]] = {}
    for size in sizes:
        account, _ = static_account(client)
        rows = rollup_rows(synthetic_calls(account, size))
        seeded = seed(client, account, rows)
        token = client.create_token(account, "marketer")
        latencies, items, requests = [], 0, 0
        for _ in range(5):
            counter.reset()
            t0 = time.perf_counter()
            resp = client.request(
                "GET", "/v1/reports/channels", token=token, params={"from": "2026-10-01", "to": "2026-10-31"}
            )
            latencies.append(time.perf_counter() - t0)
            if resp.status_code != 200:
                raise RuntimeError(f"channel report answered {resp.status_code}: {resp.text[:300]}")
            items = int(resp.headers.get("X-Calltrack-Items-Read", "-1"))
            tally = counter.snapshot().get("report_api")
            requests = tally.request_count if tally else 0
            total_calls = sum(r["calls"] for r in resp.json()["rows"])
        if total_calls != size:
            raise RuntimeError(f"report counted {total_calls} calls, seeded {size}")
        per_size[size] = {
            "rollup_rows_seeded": seeded,
            "items_read": items,
            "dynamodb_requests": requests,
            "p50_ms": median(latencies) * 1000,
        }
        result.rows.append(
            Row(
                f"P5 channel report at {size:,} calls",
                f"{items} items read, {requests} requests, {median(latencies) * 1000:.0f} ms",
            )
        )
    smallest, largest = min(sizes), max(sizes)
    ratio = per_size[largest]["items_read"] / max(1, per_size[smallest]["items_read"])
    result.rows.append(
        Row(
            f"P5 items read {largest:,} / {smallest:,}",
            f"{per_size[largest]['items_read']} / {per_size[smallest]['items_read']}",
            f"<= {TARGET}",
            ratio,
            verdict(ratio <= TARGET),
        )
    )
    result.details = {"sizes": per_size}
    result.notes.append(
        "Rollup rows seeded as the rollup consumer would write them (report.rollup.contribution over "
        "synthetic calls, aggregated in memory, batch-written), not by pushing calls through the webhooks."
    )
    result.seconds = time.perf_counter() - started
    return result
