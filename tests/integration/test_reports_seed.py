"""The benchmark seeder counts every call once, and reports read rollup rows, not calls."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from tests.support.stack import apply_account


def test_seeded_calls_report_exactly_once(local_stack: Any) -> None:
    from bench.seed import seed_calls

    account = apply_account(local_stack, "seed", name="Seed", numbers=[])
    token = local_stack.create_token(account, "marketer")
    out = seed_calls(account, 300, start=datetime(2026, 8, 1, tzinfo=ZoneInfo("Asia/Tokyo")), days=31, seed=7)
    local_stack.drain()  # the calls table's stream records reach the real consumer too
    body = local_stack.request(
        "GET", "/v1/reports/channels", token=token, params={"from": "2026-08-01", "to": "2026-08-31"}
    ).json()
    assert out["calls"] == 300
    assert body["totals"]["calls"] == 300
    assert sum(r["calls"] for r in body["rows"]) == 300


def test_items_read_depend_on_days_and_channels_not_on_calls(local_stack: Any) -> None:
    from bench.seed import CHANNELS, seed_calls

    reads = {}
    for n in (60, 600):
        account = apply_account(local_stack, "cost", name="Cost", numbers=[])
        token = local_stack.create_token(account, "marketer")
        seed_calls(account, n, start=datetime(2026, 8, 1, tzinfo=ZoneInfo("Asia/Tokyo")), days=31, seed=n)
        resp = local_stack.request(
            "GET", "/v1/reports/channels", token=token, params={"from": "2026-08-01", "to": "2026-08-31"}
        )
        assert resp.json()["totals"]["calls"] == n
        reads[n] = int(resp.headers["X-Calltrack-Items-Read"])
    # at most one rollup row per day x channel, whatever the number of calls
    assert reads[600] <= 31 * len(CHANNELS)
    assert reads[600] < 600 / 3
