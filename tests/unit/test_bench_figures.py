"""Pure parts of the bench figures: the floor handler, double-lease detection, rollup seeding, cost
arithmetic and the command line."""

from __future__ import annotations

import base64
from collections import Counter
from typing import Any
from urllib.parse import urlencode

import pytest

from bench import cost, floor_handler, p4_dni, p5_reports
from bench.__main__ import FIGURES, parse_args
from bench.common import Tally


class FakeDynamo:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def batch_get_item(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("batch_get_item", kwargs))
        return {"Responses": {}}

    def update_item(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("update_item", kwargs))
        return {}


def test_floor_handler_makes_one_read_and_one_write_and_answers_twiml(monkeypatch):
    # Given the floor handler with a fake DynamoDB client
    fake = FakeDynamo()
    monkeypatch.setattr(floor_handler, "_client", fake)
    body = urlencode({"CallSid": "CA" + "1" * 32, "To": "+815012345678", "From": "+819012345678"})
    event = {"body": base64.b64encode(body.encode()).decode(), "isBase64Encoded": True}
    # When a webhook arrives
    resp = floor_handler.handler(event, None)
    # Then it read the webhook's keys once, wrote the call once, and answered with a <Dial>
    assert [name for name, _ in fake.calls] == ["batch_get_item", "update_item"]
    keys = fake.calls[0][1]["RequestItems"]
    assert set(keys) == {"calltrack-numbers", "calltrack-leases", "calltrack-callers"}
    assert fake.calls[1][1]["TableName"] == "calltrack-calls"
    assert resp["statusCode"] == 200 and "<Dial" in resp["body"]


class LeakyStore:
    """A broken store that lets every take succeed (no condition): the shadow must catch it."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    def take(self, number: str, row: dict[str, Any], now: float) -> bool:
        self.rows[number] = dict(row)
        return True

    def renew(self, number: str, session_id: str, lease_id: str, expires_at: float) -> bool:
        return True

    def release(self, number: str, session_id: str, lease_id: str, at: float) -> bool:
        return True


def test_shadow_store_counts_a_take_of_a_number_another_live_session_holds():
    shadow = p4_dni.ShadowStore(LeakyStore())
    shadow.take("+815099900001", {"session_id": "a"}, 0.0)
    shadow.take("+815099900001", {"session_id": "a"}, 0.0)  # the same session again: not a double
    assert shadow.double_leases == 0
    shadow.take("+815099900001", {"session_id": "b"}, 0.0)
    assert shadow.double_leases == 1


def test_shadow_store_allows_a_take_after_the_holder_released():
    shadow = p4_dni.ShadowStore(LeakyStore())
    shadow.take("+815099900002", {"session_id": "a"}, 0.0)
    shadow.release("+815099900002", "a", "lease-a", 0.0)
    shadow.take("+815099900002", {"session_id": "b"}, 0.0)
    assert shadow.double_leases == 0


def test_seeded_rollups_count_every_call_once_per_dimension():
    calls = p5_reports.synthetic_calls("acct", 500)
    rows = p5_reports.rollup_rows(calls)
    per_dimension: Counter[str] = Counter()
    for key, counters in rows.items():
        per_dimension[key.split("|", 1)[0]] += int(counters["calls"])
    assert per_dimension and all(total == 500 for total in per_dimension.values())
    # every call falls in October 2026, Tokyo time
    assert all(key.split("|", 1)[1].startswith("2026-10-") for key in rows)


def test_capacity_charges_transactions_twice_and_ignores_other_services():
    tally = Tally(
        items=Counter(
            {
                "dynamodb:TransactWriteItems": 2,
                "dynamodb:UpdateItem": 3,
                "dynamodb:BatchGetItem": 2,
                "sqs:SendMessage": 1,
            }
        )
    )
    assert cost.capacity(tally) == (2 * 2 + 3, 2)


def test_quick_flag_shrinks_every_size_and_only_selects_figures():
    args = parse_args(["--quick", "--only", "p1,cost"])
    assert args.figures == ["P1", "COST"]
    assert args.p1_runs < 10 and args.p3_requests < 300 and max(args.p5_sizes) <= 1000
    assert parse_args([]).figures == list(FIGURES)
    assert parse_args(["--p5-sizes", "1000,10000,100000"]).p5_sizes == (1000, 10000, 100000)


def test_unknown_figure_is_refused():
    with pytest.raises(SystemExit):
        parse_args(["--only", "P9"])
