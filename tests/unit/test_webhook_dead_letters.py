"""The webhook dead-letter sweep (webhooks.dead_letters): which dead letters fail their row, and the
retry route's round that tells an earlier round's dead letter from the row's current message."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
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


def retrying(tried: str = "2026-12-01T16:00:00Z", **extra: Any) -> dict[str, Any]:
    """Its last try at ``tried`` (default 20 h before NOW), the next one seven hours later."""
    next_try = datetime.strptime(tried, "%Y-%m-%dT%H:%M:%SZ") + timedelta(hours=7)
    return {"status": "retrying", "reason": "http-503", "updated_at": tried, "kind": "webhook",
            "next_attempt_at": next_try.strftime("%Y-%m-%dT%H:%M:%SZ"), **extra}


def test_a_stranded_delivery_is_failed_naming_its_last_failure_and_its_dead_letter_is_kept() -> None:
    # Given a delivery last tried 20 h ago (next try due 13 h ago, never made), and its dead letter
    rows = Rows(dlv_a=retrying())
    # When the sweep runs
    counts, shown = run(rows, [dead_letter("dlv_a")])
    # Then the row is failed with its last failure named, and the dead letter is visible again
    assert counts["failed"] == 1
    assert rows.rows["dlv_a"]["status"] == "failed" and rows.rows["dlv_a"]["next_attempt_at"] is None
    reason = "gave up: dead-lettered before its last try ran (last failure: http-503)"
    assert rows.rows["dlv_a"]["reason"] == reason
    assert shown == ["r0"]


def test_a_never_tried_delivery_says_no_try_finished() -> None:
    rows = Rows(dlv_a={"status": "pending", "updated_at": "2026-12-01T09:00:00Z", "kind": "webhook"})
    run(rows, [dead_letter("dlv_a")])
    assert rows.rows["dlv_a"]["reason"] == "gave up: dead-lettered before any try finished"


@pytest.mark.parametrize("row, letter", [
    # tried 10 h ago: another copy of its message (a call event planned twice) may still be waiting
    # out a backoff step of up to 12 h
    (retrying("2026-12-02T02:00:00Z"), {}),
    # planned an hour ago and not tried yet (the queue is behind)
    ({"status": "pending", "updated_at": "2026-12-02T11:00:00Z", "kind": "webhook"}, {}),
    # retried through the API since: the row is in round 1, the dead letter of round 0
    (retrying(requeues=1), {}),
    # the dead letter of round 1 while the row was retried again (round 2)
    (retrying(requeues=2), {"requeues": 1}),
])
def test_a_delivery_that_may_still_be_tried_is_left_open(row: dict[str, Any], letter: dict[str, Any]) -> None:
    rows = Rows(dlv_a=row)
    status = row["status"]
    counts, _ = run(rows, [dead_letter("dlv_a", **letter)])
    assert counts["on_its_way"] == 1 and rows.rows["dlv_a"]["status"] == status


def test_the_dead_letter_of_the_current_round_fails_the_row() -> None:
    rows = Rows(dlv_a=retrying(requeues=2))
    counts, _ = run(rows, [dead_letter("dlv_a", requeues=2)])
    assert counts["failed"] == 1 and rows.rows["dlv_a"]["status"] == "failed"


def test_a_try_landing_between_the_read_and_the_write_wins() -> None:
    # Given a stranded delivery whose copy is tried just as the sweep reads the row
    rows = Rows(dlv_a=retrying())
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

        def update(self, account: str, delivery: str, **fields: Any) -> bool:
            row.update(fields)
            return True

    ports = Ports(store=Store(), config=lambda a: None, secret=lambda a, n: None, send=lambda *a: None,
                  enqueue=queued.extend, present=lambda c: {}, now=lambda: NOW)
    # When it is retried through the API
    reopen("acme", "dlv_a", ports)
    # Then the row is pending in round 2, and its new message says round 2
    assert row["status"] == "pending" and row["requeues"] == 2
    assert queued == [{"delivery": "dlv_a", "account": "acme", "requeues": 2}]
    assert delivery_of(json.dumps(queued[0])) == ("acme", "dlv_a", 2)


@pytest.fixture()
def deliveries_table(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``DynamoDeliveries`` on an in-process DynamoDB (moto), the table as the stack makes it."""
    from calltrack.models.webhooks import WebhookDelivery
    from tests.support.dynamo import moto_table
    from webhooks.store import DynamoDeliveries

    with moto_table(monkeypatch, WebhookDelivery, {"account": "HASH", "delivery_id": "RANGE"},
                    {"by-status": ("status_key", "updated_at")}):
        yield DynamoDeliveries()


@pytest.mark.parametrize("change, failed", [
    ({}, True),
    ({"updated_at": "2026-12-02T11:59:00Z"}, False),  # a try wrote the row after it was read
    ({"requeues": 1}, False),  # retried through the API since
    ({"status": "failed", "updated_at": "2026-12-01T16:00:00Z"}, False),  # failed meanwhile, same time
    ({"lease_until": int(NOW.timestamp()) + 100}, False),  # a sender is posting it right now
    ({"lease_until": int(NOW.timestamp()) - 100}, True),  # a crashed sender's claim, run out
])
def test_the_store_fails_a_row_only_as_it_was_read_and_never_while_a_sender_holds_it(
        deliveries_table: Any, change: dict[str, Any], failed: bool) -> None:
    from calltrack.models.webhooks import WebhookDelivery

    # Given a stranded delivery read by the sweep, then changed (or not) before the sweep's write
    WebhookDelivery("acme", "dlv_a", kind="webhook", destination="bridge", status="retrying",
                    status_key="acme#retrying", reason="http-503", updated_at="2026-12-01T16:00:00Z",
                    next_attempt_at="2026-12-01T23:00:00Z").save()
    seen = deliveries_table.get("acme", "dlv_a")
    if change:
        deliveries_table.update("acme", "dlv_a", **change)
    # When the sweep fails it as read
    done = deliveries_table.fail_if_unchanged("acme", "dlv_a", seen, "gave up: test", NOW)
    # Then it is failed (listed under failed, no next try, no claim) only if nothing changed
    row = deliveries_table.get("acme", "dlv_a")
    assert done is failed
    if failed:
        assert (row["status"], row["status_key"], row["reason"]) == ("failed", "acme#failed", "gave up: test")
        assert "next_attempt_at" not in row and "lease_until" not in row
        assert [r["delivery_id"] for r in deliveries_table.with_status("acme", "failed", 10)] == ["dlv_a"]
    else:
        assert row["reason"] == "http-503"
