"""The benchmark seeder's calls are counted once (by the stream consumer), and reports read rollup
rows, not calls."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from tests.support.stack import apply_account


def test_seeded_calls_are_counted_once_and_reports_read_rollup_rows_not_calls(local_stack: Any) -> None:
    from bench.seed import CHANNELS, seed_calls

    # Given 240 seeded calls over ten days of a month, counted by the rollup consumer from the calls
    # table's stream (one test rather than two seedings: each seeded call costs the stack ~0.2 s;
    # ten days of six channels are at most 60 rollup rows, a quarter of the calls)
    account = apply_account(local_stack, "seed", name="Seed", numbers=[])
    token = local_stack.create_token(account, "marketer")
    out = seed_calls(account, 240, start=datetime(2026, 8, 1, tzinfo=ZoneInfo("Asia/Tokyo")), days=10, seed=7)
    # 240 INSERTs reach the rollup and the call-changes fan-out: under CI's load (the other chain
    # of `make test` beside it) more than the HTTP drain's 30 s
    local_stack.stack.drain(timeout_s=240)
    # When the stream is drained a second time (nothing new) and the month's report is read
    local_stack.drain()
    resp = local_stack.request(
        "GET", "/v1/reports/channels", token=token, params={"from": "2026-08-01", "to": "2026-08-31"}
    )
    body = resp.json()
    # Then every seeded call is counted exactly once
    assert out["calls"] == 240
    assert body["totals"]["calls"] == 240
    assert sum(r["calls"] for r in body["rows"]) == 240
    # And the report read at most one rollup row per day x channel, far fewer items than calls
    reads = int(resp.headers["X-Calltrack-Items-Read"])
    assert 0 < reads <= 10 * len(CHANNELS)
    assert reads < 240 / 3
