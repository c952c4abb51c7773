"""One fake of the scheduled jobs' ports (accounts, calls, runs, SNS, spend, blobs) for unit tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from types import ModuleType
from typing import Any

from ops_jobs.common import CallFact, JobPorts, fan_out
from tests.support.accounts import InMemoryAccounts, account_config


class FakeRuns:
    """The job_runs claims: a failed run may be claimed again, anything else only with force."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    def claim(self, run_key: str, *, force: bool) -> dict[str, Any] | None:
        row = self.rows.get(run_key)
        if row is not None and not force and row["decided"] != "failed":
            return row
        self.rows[run_key] = {"decided": "running"}
        return None

    def finish(self, run_key: str, decided: str, detail: dict[str, Any]) -> None:
        self.rows[run_key] = {"decided": decided, "detail": detail}

    def fail(self, run_key: str, error: str) -> None:
        self.rows[run_key] = {"decided": "failed", "error": error}


class JobsWorld:
    """Accounts (typed and validated like the account reader does), calls, and what jobs wrote."""

    def __init__(self) -> None:
        self.accounts = InMemoryAccounts()
        self.calls: dict[str, list[CallFact]] = {}
        self.spend: dict[tuple[str, str], dict[str, float]] = {}
        self.published: list[tuple[str, str, dict[str, Any]]] = []
        self.blobs: dict[str, tuple[bytes, str]] = {}
        self.runs = FakeRuns()
        # account -> the instant before which its calls have expired from the calls table
        # (retention.calls_days): read_calls no longer finds them; the rollups still count them
        self.expired_before: dict[str, datetime] = {}

    def add_account(self, account: str, **config: Any) -> None:
        self.accounts.configs[account] = account_config(account, **{"name": account.title(), **config})

    def add_raw_account(self, account: str, config: Any) -> None:
        """A stored config as it is, even one that no longer validates."""
        self.accounts.configs[account] = config

    def add_call(self, account: str, when: datetime, status: str = "answered", **kw: Any) -> None:
        calls = self.calls.setdefault(account, [])
        calls.append(CallFact(f"CA{account}{len(calls):05d}", when.astimezone(UTC), status, **kw))

    def add_stored_calls(self, account: str, items: list[dict[str, Any]]) -> None:
        """Calls as the calls table holds them, read into CallFacts the way the jobs' port does."""
        from ops_jobs.common import call_facts

        self.calls.setdefault(account, []).extend(call_facts(items))

    def add_calls(self, account: str, start: datetime, statuses: list[str]) -> None:
        """One call every five minutes from ``start`` with these statuses."""
        for i, status in enumerate(statuses):
            self.add_call(account, start + timedelta(minutes=5 * i), status)

    # ports
    def put(self, key: str, body: bytes, content_type: str) -> None:
        self.blobs[key] = (body, content_type)

    def publish(self, subject: str, message: str, attributes: dict[str, Any]) -> str:
        self.published.append((subject, message, attributes))
        return f"msg-{len(self.published)}"

    def read_calls(self, account: str, start: datetime, end: datetime) -> list[CallFact]:
        kept = self.expired_before.get(account, start)
        return [c for c in self.calls.get(account, []) if max(start, kept) <= c.started_at < end]

    def counted(self, account: str, first: date, last: date) -> dict[str, dict[str, float]]:
        """The rollups' channel rows over local days first..last: every call ever counted."""
        from zoneinfo import ZoneInfo

        tz = ZoneInfo(str(self.accounts.configs[account].get("timezone") or "Asia/Tokyo"))
        out: dict[str, dict[str, float]] = {}
        for c in self.calls.get(account, []):
            if first <= c.started_at.astimezone(tz).date() <= last:
                row = out.setdefault(c.channel, {"calls": 0.0, "answered": 0.0, "missed": 0.0})
                row["calls"] += 1
                row["answered"] += int(c.answered)
                row["missed"] += int(c.missed)
        return out

    def ports(self) -> JobPorts:
        return JobPorts(
            accounts=lambda: list(self.accounts.all()),
            calls=self.read_calls,
            runs=self.runs,
            publish=self.publish,
            counted=self.counted,
            spend=lambda a, month: self.spend.get((a, month), {}),
            blobs=self,
        )

    def run_job(self, job: ModuleType, at: datetime, force: bool = False) -> dict[str, Any]:
        return fan_out(job.JOB, at, force, self.ports(), job.due, job.act)
