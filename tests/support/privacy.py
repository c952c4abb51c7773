"""An in-memory CallerStore (privacy.callers): rows per kind, object versions by key."""

from __future__ import annotations

from datetime import date
from typing import Any


class FakeCallerStore:
    def __init__(self) -> None:
        self.call_rows: dict[str, dict[str, Any]] = {}
        self.lead_rows: list[dict[str, Any]] = []
        self.recording_rows: dict[str, dict[str, Any]] = {}
        self.conversion_rows: list[dict[str, Any]] = []
        self.delivery_rows: list[dict[str, Any]] = []
        self.versions: list[tuple[str, str]] = []
        self.first_calls: dict[str, set[str]] = {}  # number -> accounts
        self.markers: set[str] = set()
        self.staged: dict[str, bytes] = {}
        self.export_rows: dict[str, list[str]] = {}  # account -> call sids
        self.log: list[str] = []  # the order of deletions
        self.export_days: set[date] | None = None  # the days whose export files erasure read
        self.erasure_marks: dict[tuple[str, str], float] = {}  # (account, number) -> erased at
        # (account, number) -> the CallSids and export days its erasure left in the mark
        self.erased: dict[tuple[str, str], tuple[list[str], set[date] | None]] = {}

    def calls(self, account: str, number: str) -> list[dict[str, Any]]:
        return [c for c in self.call_rows.values() if c["account"] == account and c.get("caller") == number]

    def leads(self, account: str, number: str) -> list[dict[str, Any]]:
        return [r for r in self.lead_rows if r["account"] == account and r["phone"] == number]

    def recordings(self, account: str, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
        sids = {c["call_sid"] for c in calls}  # an erased row is what an earlier erasure left
        return [r for r in self.recording_rows.values() if r["call_sid"] in sids and r["status"] != "erased"]

    def conversions(self, account: str, call_sids: list[str]) -> list[dict[str, Any]]:
        return [r for r in self.conversion_rows if r["account"] == account and r["call_sid"] in call_sids]

    def deliveries(self, account: str, call_sids: list[str]) -> list[dict[str, Any]]:
        return [r for r in self.delivery_rows if r["account"] == account and r["call_sid"] in call_sids]

    def object_versions(self, prefixes: list[str]) -> list[tuple[str, str]]:
        return [v for v in self.versions if any(v[0].startswith(p) for p in prefixes)]

    def presign(self, key: str) -> str:
        return f"https://signed.example/{key}"

    def stage_export(self, key: str, body: bytes) -> str:
        self.staged[key] = body
        return f"https://signed.example/{key}"

    def delete_staged_exports(self, prefix: str) -> int:
        gone = [k for k in self.staged if k.startswith(prefix)]
        for key in gone:
            del self.staged[key]
        return len(gone)

    def drop_export_rows(self, account: str, call_sids: set[str], days: set[date] | None) -> int:
        self.log.append("exports")
        self.export_days = days
        rows = self.export_rows.get(account, [])
        kept = [s for s in rows if s not in call_sids]
        self.export_rows[account] = kept
        return len(rows) - len(kept)

    def delete_object_versions(self, versions: list[tuple[str, str]]) -> None:
        self.log.append("objects")
        self.versions = [v for v in self.versions if v not in versions]

    def erase_recordings(self, recordings: list[dict[str, Any]], at: float) -> None:
        from recording_ingest.ingest import erased_row

        self.log.append("recordings")
        for row in recordings:
            self.recording_rows[row["recording_sid"]] = erased_row(row["recording_sid"], row["call_sid"], at)

    def delete_conversions(self, keys: list[tuple[str, str]]) -> None:
        self.log.append("conversions")
        self.conversion_rows = [r for r in self.conversion_rows if (r["call_sid"], r["key"]) not in keys]

    def delete_deliveries(self, account: str, delivery_ids: list[str]) -> None:
        self.log.append("deliveries")
        self.delivery_rows = [r for r in self.delivery_rows
                              if not (r["account"] == account and r["delivery_id"] in delivery_ids)]

    def delete_rollup_markers(self, call_sids: list[str]) -> None:
        self.log.append("markers")
        self.markers -= set(call_sids)

    def delete_leads(self, account: str, external_ids: list[str]) -> None:
        self.log.append("leads")
        self.lead_rows = [r for r in self.lead_rows
                          if not (r["account"] == account and r["external_id"] in external_ids)]

    def forget_first_call(self, account: str, number: str) -> bool:
        self.log.append("callers")
        accounts = self.first_calls.get(number, set())
        if account not in accounts:
            return False
        accounts.discard(account)
        return True

    def mark_erased(
        self, account: str, number: str, at: float, call_sids: list[str], days: set[date] | None
    ) -> None:
        self.log.append("mark")
        self.erasure_marks[(account, number)] = at
        if call_sids:
            sids, known = self.erased.get((account, number), ([], set()))
            every = known is None or days is None
            self.erased[(account, number)] = (sorted({*sids, *call_sids}), None if every else known | days)

    def forget_erased_calls(self, account: str, number: str) -> None:
        self.erased.pop((account, number), None)

    def erased_calls(self, account: str, number: str) -> tuple[list[str], set[date] | None]:
        return self.erased.get((account, number), ([], set()))

    def delete_calls(self, call_sids: list[str]) -> None:
        self.log.append("calls")
        for sid in call_sids:
            self.call_rows.pop(sid, None)


class FakeAccountStore:
    """An in-memory AccountStore (privacy.account_deletion): each table's items of the account as a
    count, deleted ``page`` items a page. A table in ``scan_pages`` is scanned: a whole scan reads
    that many pages (mostly other accounts' items) whatever is left, and a resumed scan goes on
    from its page. ``out_of_time`` is asked before each page, as the DynamoDB store does."""

    def __init__(
        self, items: dict[str, int], *, page: int = 2, scan_pages: dict[str, int] | None = None
    ) -> None:
        self.items = dict(items)  # table (or "callers", "recordings", "exports"...) -> count left
        self.page = page
        self.scan_pages = dict(scan_pages or {})
        self.pages = 0  # pages read, over every run
        self.pages_of: dict[str, int] = {}  # the same, per table
        self.progress: dict[str, Any] | None = None  # kept on the accounts row

    def _delete(self, what: str, out_of_time: Any, start: dict[str, Any] | None = None) -> int:
        from privacy.account_deletion import OutOfTime

        done, at = 0, int((start or {}).get("page", 0))
        while True:
            if out_of_time():
                raise OutOfTime(done, {"page": at} if what in self.scan_pages else None)
            self.pages += 1
            self.pages_of[what] = self.pages_of.get(what, 0) + 1
            step = min(self.page, self.items.get(what, 0))
            self.items[what] = self.items.get(what, 0) - step
            done += step
            at += 1
            last = at >= self.scan_pages[what] if what in self.scan_pages else not self.items[what]
            if last:
                return done

    def account_numbers(self, account: str) -> list[str]:
        return ["+81300000001"] if self.items.get("numbers") else []

    def delete_found(self, table: str, out_of_time: Any, *, start: dict[str, Any] | None = None,
                     **search: Any) -> int:
        if table == "rollups":  # one partition per dimension: count the channel one only
            return self._delete("rollups", out_of_time) if search["ExpressionAttributeValues"][":p"][
                "S"].endswith("#channel") else 0
        return self._delete(table, out_of_time, start)

    def strip_callers(self, account: str, out_of_time: Any, *, start: dict[str, Any] | None = None) -> int:
        return self._delete("callers", out_of_time, start)

    def delete_prefixes(self, bucket: str, prefixes: list[str], out_of_time: Any) -> int:
        return self._delete(bucket, out_of_time)

    def deletion_progress(self, account: str) -> dict[str, Any] | None:
        return self.progress if self.items.get("accounts") else None  # it goes with the accounts row

    def save_deletion_progress(self, account: str, progress: dict[str, Any]) -> None:
        if self.items.get("accounts"):  # kept on the accounts row, which goes last
            self.progress = dict(progress)


class FakeDeleteAll:
    """The account's secrets (AccountSecretStore) or console users (AccountUsers): ``count`` left."""

    def __init__(self, count: int) -> None:
        self.count = count

    def delete_all(self, account: str) -> int:
        done, self.count = self.count, 0
        return done
