"""The webhook dead-letter sweep (webhooks.dead_letters): which dead letters fail their row, and the
retry route's round that tells an earlier round's dead letter from the row's current message."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from webhooks.dead_letters import SweepPorts, delivery_of, sweep
from webhooks.deliver import Ports, reopen

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


class Rows:
    """Delivery rows by id, failing one only if it is as read (the store's conditional write)."""

    def __init__(self, **rows: dict[str, Any]) -> None:
        self.rows = rows
        self.change_before_write: dict[str, Any] = {}  # a try landing between read and write

    def get(self, account: str, delivery: str) -> dict[str, Any] | None:
        row = self.rows.get(delivery)
        return dict(row) if row else None

    def fail_if_unchanged(self, account: str, delivery: str, seen: dict[str, Any], reason: str,
                          now: datetime) -> bool:
        row = self.rows[delivery]
        row.update(self.change_before_write)
        if any(row.get(k) != seen.get(k) for k in ("status", "updated_at", "requeues")):
            return False
        row.update(status="failed", reason=reason, next_attempt_at=None)
        return True


def dead_letter(delivery: str, **extra: Any) -> str:
    return json.dumps({"delivery": delivery, "account": "acme", **extra})


def run(rows: Rows, bodies: list[str]) -> tuple[dict[str, int], list[str]]:
    batches = [[(f"r{i}", b) for i, b in enumerate(bodies)], []]
    shown: list[str] = []
    ports = SweepPorts(receive=lambda: batches.pop(0), show=shown.extend, rows=rows, now=lambda: NOW)
    return sweep(ports), shown


def retrying(next_try: str, **extra: Any) -> dict[str, Any]:
    return {"status": "retrying", "reason": "http-503", "next_attempt_at": next_try,
            "updated_at": "2026-12-01T20:00:00Z", "kind": "webhook", **extra}


def test_a_dead_lettered_delivery_whose_next_try_is_long_past_is_failed_and_its_letter_kept() -> None:
    # Given a delivery retrying with a next try two hours ago, and its dead letter
    rows = Rows(dlv_a=retrying("2026-12-02T10:00:00Z"))
    # When the sweep runs
    counts, shown = run(rows, [dead_letter("dlv_a")])
    # Then the row is failed with its last failure named, and the dead letter is visible again
    assert counts["failed"] == 1
    assert rows.rows["dlv_a"]["status"] == "failed" and rows.rows["dlv_a"]["next_attempt_at"] is None
    reason = "gave up: dead-lettered before its last try ran (last failure: http-503)"
    assert rows.rows["dlv_a"]["reason"] == reason
    assert shown == ["r0"]


def test_a_never_tried_delivery_says_no_try_finished() -> None:
    rows = Rows(dlv_a={"status": "pending", "updated_at": "2026-12-02T09:00:00Z", "kind": "webhook"})
    run(rows, [dead_letter("dlv_a")])
    assert rows.rows["dlv_a"]["reason"] == "gave up: dead-lettered before any try finished"


@pytest.mark.parametrize("row, letter", [
    # a copy of the message still on its way: its next try is only ten minutes overdue
    (retrying("2026-12-02T11:50:00Z"), {}),
    # retried through the API since: the row is in round 1, the dead letter of round 0
    (retrying("2026-12-02T10:00:00Z", requeues=1), {}),
    # the dead letter of round 1 while the row was retried again (round 2)
    (retrying("2026-12-02T10:00:00Z", requeues=2), {"requeues": 1}),
])
def test_a_delivery_that_may_still_be_tried_is_left_open(row: dict[str, Any], letter: dict[str, Any]) -> None:
    rows = Rows(dlv_a=row)
    counts, _ = run(rows, [dead_letter("dlv_a", **letter)])
    assert counts["on_its_way"] == 1 and rows.rows["dlv_a"]["status"] == "retrying"


def test_the_dead_letter_of_the_current_round_fails_the_row() -> None:
    rows = Rows(dlv_a=retrying("2026-12-02T10:00:00Z", requeues=2))
    counts, _ = run(rows, [dead_letter("dlv_a", requeues=2)])
    assert counts["failed"] == 1 and rows.rows["dlv_a"]["status"] == "failed"


def test_a_try_landing_between_the_read_and_the_write_wins() -> None:
    # Given a stranded delivery whose copy is tried just as the sweep reads the row
    rows = Rows(dlv_a=retrying("2026-12-02T10:00:00Z"))
    rows.change_before_write = {"updated_at": "2026-12-02T12:00:00Z",
                                "next_attempt_at": "2026-12-02T20:00:00Z"}
    # When the sweep runs, then the row keeps what the try wrote
    counts, _ = run(rows, [dead_letter("dlv_a")])
    assert counts["on_its_way"] == 1 and rows.rows["dlv_a"]["status"] == "retrying"


def test_ended_unknown_and_foreign_messages_are_left_as_they_are() -> None:
    rows = Rows(dlv_done={"status": "failed", "reason": "gave up after 24 h: http-503", "kind": "webhook"},
                dlv_ok={"status": "delivered", "kind": "webhook"})
    bodies = [dead_letter("dlv_done"), dead_letter("dlv_ok"), dead_letter("dlv_gone"),
              json.dumps({"type": "call.completed", "account": "acme", "call_sid": "CA1"}),
              "not json", dead_letter("dlv_x", requeues="1"), dead_letter("link#hubspot#CA1")]
    counts, shown = run(rows, bodies)
    assert counts == {"failed": 0, "ended": 3, "on_its_way": 0, "other": 4}
    assert rows.rows["dlv_done"]["reason"] == "gave up after 24 h: http-503"
    assert shown == [f"r{i}" for i in range(len(bodies))]


def test_what_a_run_received_is_shown_again_even_when_the_run_fails() -> None:
    class Down(Rows):
        def get(self, account: str, delivery: str) -> dict[str, Any] | None:
            raise ConnectionError("DynamoDB unreachable")

    # Given dead letters received while DynamoDB is down
    shown: list[str] = []
    batches = [[("r0", dead_letter("dlv_a")), ("r1", dead_letter("dlv_b"))]]
    ports = SweepPorts(receive=lambda: batches.pop(0), show=shown.extend, rows=Down(), now=lambda: NOW)
    # When the run fails, then what it received is visible again for the operator and the next run
    with pytest.raises(ConnectionError):
        sweep(ports)
    assert shown == ["r0", "r1"]


def test_a_retry_through_the_api_starts_a_new_round_its_message_carries() -> None:
    # Given a failed delivery retried once before
    row = {"delivery_id": "dlv_a", "kind": "webhook", "status": "failed", "requeues": 1}
    queued: list[dict[str, Any]] = []

    class Store:
        def get(self, account: str, delivery: str) -> dict[str, Any]:
            return row

        def update(self, account: str, delivery: str, **fields: Any) -> None:
            row.update(fields)

    ports = Ports(store=Store(), config=lambda a: None, secret=lambda a, n: None, send=lambda *a: None,
                  enqueue=queued.extend, present=lambda c: {}, now=lambda: NOW)
    # When it is retried through the API
    reopen("acme", "dlv_a", ports)
    # Then the row is pending in round 2, and its new message says round 2
    assert row["status"] == "pending" and row["requeues"] == 2
    assert queued == [{"delivery": "dlv_a", "account": "acme", "requeues": 2}]
    assert delivery_of(json.dumps(queued[0])) == ("acme", "dlv_a", 2)
