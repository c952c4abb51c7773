"""Missed-call spike check: last full hour, threshold, one message per account-hour (fakes only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from report import spike_check
from report.job_common import AccountRow, CallFact, JobPorts, fan_out

AT = datetime(2026, 11, 24, 4, 5, tzinfo=UTC)  # 13:05 JST: checks 12:00-13:00 JST (03:00-04:00 UTC)


class World:
    def __init__(self) -> None:
        self.accounts: list[AccountRow] = []
        self.calls: list[tuple[str, CallFact]] = []
        self.published: list[tuple[str, str, dict[str, Any]]] = []
        self.runs: dict[str, str] = {}

    def claim(self, key: str, *, force: bool) -> dict[str, Any] | None:
        if key in self.runs and not force:
            return {"decided": self.runs[key]}
        self.runs[key] = "running"
        return None

    def finish(self, key: str, decided: str, detail: dict[str, Any]) -> None:
        self.runs[key] = decided

    def fail(self, key: str, error: str) -> None:
        self.runs[key] = "failed"

    def publish(self, subject: str, message: str, attributes: dict[str, Any]) -> str:
        self.published.append((subject, message, attributes))
        return "m"

    def add_calls(self, account: str, start: datetime, statuses: list[str]) -> None:
        for i, status in enumerate(statuses):
            sid = f"CA{account}{len(self.calls):04d}"
            self.calls.append((account, CallFact(sid, start + timedelta(minutes=5 * i), status)))

    def run(self, at: datetime = AT, force: bool = False) -> dict[str, Any]:
        ports = JobPorts(
            accounts=lambda: list(self.accounts),
            calls=lambda a, s, e: [c for acct, c in self.calls if acct == a and s <= c.started_at < e],
            runs=self,
            publish=self.publish,
        )
        return fan_out(spike_check.JOB, at, force, ports, spike_check.due, spike_check.act)


def test_more_misses_than_the_threshold_in_the_last_hour_publish_once() -> None:
    world = World()
    world.accounts.append(AccountRow("acme", "Acme", None, {"language": "ja-JP"}))
    world.add_calls(
        "acme", datetime(2026, 11, 24, 3, 0, tzinfo=UTC), ["missed"] * 4 + ["busy"] * 2 + ["answered"]
    )
    result = world.run()
    assert result["accounts"]["acme"] == {
        "decided": "published",
        "period": "2026-11-24T03",
        "from": "2026-11-24T03:00:00Z",
        "to": "2026-11-24T04:00:00Z",
        "calls": 7,
        "missed": 6,
        "message_id": "m",
        "subject": "[Acme] 不在着信が急増: 直近1時間で6件 (12時台)",
    }
    _, body, attrs = world.published[0]
    assert "2026-11-24 12:00-13:00 (Asia/Tokyo)" in body
    assert attrs == {
        "account": "acme",
        "kind": "missed-call-spike-check",
        "period": "2026-11-24T03",
        "missed": 6,
        "calls": 7,
    }
    # the same hour checked again (a retry) does not publish twice
    assert world.run(AT + timedelta(minutes=20))["accounts"]["acme"]["decided"] == "already-done"
    assert len(world.published) == 1


def test_at_the_threshold_or_outside_the_hour_is_quiet() -> None:
    world = World()
    world.accounts.append(AccountRow("calm", "Calm", None, {"alerts": {"spike_missed_per_hour": 5}}))
    world.add_calls("calm", datetime(2026, 11, 24, 3, 30, tzinfo=UTC), ["missed"] * 5)
    world.add_calls("calm", datetime(2026, 11, 24, 4, 0, tzinfo=UTC), ["missed"] * 3)  # current hour
    world.add_calls("calm", datetime(2026, 11, 24, 2, 0, tzinfo=UTC), ["missed"] * 3)  # hour before
    result = world.run()
    assert result["accounts"]["calm"]["decided"] == "nothing-to-say"
    assert result["accounts"]["calm"]["missed"] == 5
    assert world.published == []


def test_threshold_is_per_account() -> None:
    world = World()
    world.accounts.append(
        AccountRow("touchy", "Touchy", None, {"alerts": {"spike_missed_per_hour": 1}, "language": "en"})
    )
    world.add_calls("touchy", datetime(2026, 11, 24, 3, 0, tzinfo=UTC), ["missed", "canceled", "ringing"])
    world.run()
    assert world.published[0][0] == "[Touchy] Missed-call spike: 2 missed in the last hour (12:00)"
