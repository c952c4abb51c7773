"""One fake of the calls port the recording pipeline writes to (``recording_ingest.ingest.CallRepo``,
``recording_ingest.retention.RetentionCalls``): call rows by CallSid, each with its recording view."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any


class InMemoryCalls:
    """Call rows in ``rows``; ``get`` returns a copy (as a read would), ``set_recording`` updates one."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    def get(self, call_sid: str) -> dict[str, Any] | None:
        row = self.rows.get(call_sid)
        return dict(row) if row else None

    def set_recording(self, call_sid: str, recording: Mapping[str, Any]) -> bool:
        if call_sid not in self.rows:
            return False
        self.rows[call_sid]["recording"] = dict(recording)
        return True

    def between(self, account: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        lo, hi = (t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in (start, end))
        return sorted((dict(r) for r in self.rows.values()
                       if r.get("account") == account and lo <= str(r.get("started_at", "")) < hi),
                      key=lambda r: str(r["started_at"]))

    def amend(self, account: str, call_sid: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        row = self.rows[call_sid]
        for name, value in changes.items():
            if value is None:
                row.pop(name, None)
            else:
                row[name] = value
        return dict(row)


class ReconcileWorld:
    """The recording reconciliation's ports in memory (``recording_ingest.reconcile.ReconcilePorts``):
    accounts, call rows per account, what Twilio lists per CallSid (or the error it answers with),
    and the queue messages sent."""

    def __init__(self, twilio_account_sid: str = "AC" + "0" * 32) -> None:
        from tests.support.accounts import InMemoryAccounts

        self.twilio_account_sid = twilio_account_sid
        self.accounts = InMemoryAccounts()
        self.calls: dict[str, list[dict[str, Any]]] = {}
        self.listed: dict[str, list[dict[str, Any]]] = {}
        self.errors: dict[str, list[Exception]] = {}
        self.asked: list[str] = []
        self.sent: list[str] = []
        self.reads: list[tuple[str, str, str]] = []

    def add_account(self, account: str, **recording: Any) -> None:
        from tests.support.accounts import account_config

        self.accounts.configs[account] = account_config(account, recording=recording)

    def add_call(self, account: str, call_sid: str, **fields: Any) -> dict[str, Any]:
        row = {"call_sid": call_sid, "account": account, **fields}
        self.calls.setdefault(account, []).append(row)
        return row

    def list_at_twilio(self, call_sid: str, *recordings: dict[str, Any]) -> None:
        self.listed[call_sid] = list(recordings)

    def fail_at_twilio(self, call_sid: str, *errors: Exception) -> None:
        self.errors.setdefault(call_sid, []).extend(errors)

    # ports
    def between(self, account: str, start: Any, end: Any) -> list[dict[str, Any]]:
        from calltrack.call_items import utc_bound

        lo, hi = utc_bound(start), utc_bound(end)
        self.reads.append((account, lo, hi))
        rows = [r for r in self.calls.get(account, []) if lo <= str(r.get("started_at", "")) < hi]
        return sorted((dict(r) for r in rows), key=lambda r: str(r["started_at"]))

    def list_recordings(self, call_sid: str) -> list[dict[str, Any]]:
        self.asked.append(call_sid)
        errors = self.errors.get(call_sid)
        if errors:
            raise errors.pop(0)
        return [dict(r) for r in self.listed.get(call_sid, [])]

    def send(self, body: str) -> None:
        self.sent.append(body)
