"""The benchmark seeder's calls are counted once (by the stream consumer), and reports read rollup
rows, not calls."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from tests.support.stack import apply_account


def test_seeded_calls_report_exactly_once(local_stack: Any) -> None:
    from bench.seed import seed_calls

    # Given 300 seeded calls, counted by the rollup consumer from the calls table's stream
    account = apply_account(local_stack, "seed", name="Seed", numbers=[])
    token = local_stack.create_token(account, "marketer")
    out = seed_calls(account, 300, start=datetime(2026, 8, 1, tzinfo=ZoneInfo("Asia/Tokyo")), days=31, seed=7)
    # 300 INSERTs reach the rollup and the call-changes fan-out: under CI's load (the other chain
    # of `make test` beside it) more than the HTTP drain's 30 s
    local_stack.stack.drain(timeout_s=240)
    # When the stream is drained a second time (nothing new) and the month's report is read
    local_stack.drain()
    body = local_stack.request(
        "GET", "/v1/reports/channels", token=token, params={"from": "2026-08-01", "to": "2026-08-31"}
    ).json()
    # Then every seeded call is counted exactly once
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
        # 600 INSERTs also reach the call-changes fan-out: more than the HTTP drain's 30 s here
        local_stack.stack.drain(timeout_s=240)
        resp = local_stack.request(
            "GET", "/v1/reports/channels", token=token, params={"from": "2026-08-01", "to": "2026-08-31"}
        )
        assert resp.json()["totals"]["calls"] == n
        reads[n] = int(resp.headers["X-Calltrack-Items-Read"])
    # at most one rollup row per day x channel, whatever the number of calls
    assert reads[600] <= 31 * len(CHANNELS)
    assert reads[600] < 600 / 3
