"""Account deletion (``DELETE /v1/accounts/{a}?confirm={a}``, operator only): everything of one
account, in every table and bucket, and an answer of what was removed.

Each table's items of the account are found by a Query where a key serves "every item of account
a" (the account as partition key, a complete ``by-account`` index, one rollup partition per
dimension) and by a filtered Scan where none does (numbers, leases, lease history, recordings, job
runs, the callers' marks and the legacy rollup markers). Items go page by page as they are found.

The request has 29 s. When little is left (``out_of_time``) the deletion stops between pages,
records on the ``accounts`` row the step and the scan's key it stopped at, and answers
``complete: false`` (202) with what it removed so far: the operator sends the same request again,
and the next run goes on from there (every step is idempotent, so a run that fails instead simply
starts over); the last answers ``complete: true`` (200). Order matters for the calls stream: the
rollup consumer ignores REMOVE records (2026-12-01), and rollups go after the calls; the per-call
rollup markers written before that change go before them; the ``accounts`` row goes last (with
the recorded progress), so a run that stops or fails half-way leaves the account to be deleted
again. The account's secrets in SSM (``calltrack secret``) go too, before the ``accounts`` row;
its console users and groups in Cognito go first, their ID tokens revoked. Not removed: what was
already sent out (ad platforms, CRMs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from calltrack.errors import BadRequest
from calltrack.routing_snapshot import key

OutOfTimeCheck = Callable[[], bool]

# Tables whose partition key is the account, and tables with a by-account index that holds every
# item of the account (calls: every call has its origin's started_at; conversions: converted_at).
ACCOUNT_KEYED = ("crm_leads", "spend", "webhook_deliveries", "audit")
ACCOUNT_INDEXED = ("tokens", "conversions")
# Tables no key serves: scanned with a filter (a run out of time goes on from the scan's key next
# time). The recordings table's by-account index is sparse (stored recordings only).
ACCOUNT_SCANNED = ("numbers", "leases", "lease_history", "recordings")


class OutOfTime(Exception):
    """A step stopped between pages: the request's time is nearly up. ``done`` items went;
    ``resume`` is the scan's key to go on from (None: the step starts over, cheaply)."""

    def __init__(self, done: int, resume: dict[str, Any] | None = None) -> None:
        super().__init__(f"stopped for time after {done} item(s)")
        self.done = done
        self.resume = resume


class AccountStore(Protocol):
    def account_numbers(self, account: str) -> list[str]: ...

    def delete_found(
        self,
        table: str,
        out_of_time: OutOfTimeCheck,
        *,
        start: dict[str, Any] | None = None,
        **search: Any,
    ) -> int:
        """Delete every item a Query (``KeyConditionExpression``, ``IndexName`` for an index) or
        a Scan (``FilterExpression``) finds, page by page from ``start``; how many. Raises
        ``OutOfTime`` (with the key to go on from) between pages when ``out_of_time()``."""
        ...

    def strip_callers(
        self, account: str, out_of_time: OutOfTimeCheck, *, start: dict[str, Any] | None = None
    ) -> int: ...

    def deletion_progress(self, account: str) -> dict[str, Any] | None:
        """Where the last run that ran out of time stopped ({"step", "resume"}), kept on the
        accounts row (it goes last, with it)."""
        ...

    def save_deletion_progress(self, account: str, progress: dict[str, Any]) -> None: ...

    def delete_prefixes(self, bucket: str, prefixes: list[str], out_of_time: OutOfTimeCheck) -> int: ...


class AccountSecretStore(Protocol):
    def delete_all(self, account: str) -> int: ...


class AccountUsers(Protocol):
    def delete_all(self, account: str) -> int:
        """Delete the account's console users and groups; how many users."""
        ...


def _never() -> bool:
    return False


def delete_account(
    account: str,
    confirm: str | None,
    store: AccountStore,
    secrets: AccountSecretStore,
    users: AccountUsers,
    out_of_time: OutOfTimeCheck = _never,
) -> dict[str, Any]:
    """Delete what is left of ``account``: {"account", "removed": {what: how many}, "complete"}.

    A run that runs out of time records on the accounts row the step it stopped in and the scan's
    key, and the next run goes on from there: scans of large shared tables are not read again from
    the start on every request (they would never finish)."""
    if confirm != account:
        raise BadRequest(f"confirm: repeat the account id (?confirm={account}) to delete it", field="confirm")
    steps = _steps(account, store, secrets, users, out_of_time)
    names = [name for name, _ in steps]
    progress = store.deletion_progress(account) or {}
    first = names.index(progress["step"]) if progress.get("step") in names else 0
    resume = progress.get("resume") if first else None
    removed: dict[str, int] = {}

    def stopped(step: str, key: dict[str, Any] | None) -> dict[str, Any]:
        store.save_deletion_progress(account, {"step": step, "resume": key})
        return {"account": account, "removed": removed, "complete": False}

    for name, step in steps[first:]:
        if out_of_time():
            return stopped(name, resume)
        try:
            removed[name] = step(resume)
        except OutOfTime as stop:
            removed[name] = stop.done
            return stopped(name, stop.resume)
        resume = None
    return {"account": account, "removed": removed, "complete": True}


def _steps(
    account: str,
    store: AccountStore,
    secrets: AccountSecretStore,
    users: AccountUsers,
    out_of_time: OutOfTimeCheck,
) -> list[tuple[str, Callable[[dict[str, Any] | None], int]]]:
    """(name, step(resume key) -> items removed), in order."""
    a = {":a": {"S": account}}

    def keyed(table: str, index: str | None = None) -> Callable[[dict[str, Any] | None], int]:
        search: dict[str, Any] = {"KeyConditionExpression": "account = :a", "ExpressionAttributeValues": a}
        if index:
            search["IndexName"] = index
        return lambda start: store.delete_found(table, out_of_time, start=start, **search)

    def scanned(table: str, condition: str, values: dict[str, Any]) -> Callable[[dict[str, Any] | None], int]:
        return lambda start: store.delete_found(
            table, out_of_time, start=start, FilterExpression=condition, ExpressionAttributeValues=values
        )

    def snapshots(_: dict[str, Any] | None) -> int:
        numbers = store.account_numbers(account)
        return store.delete_prefixes("routing", [key(n) for n in numbers], out_of_time) if numbers else 0

    def rollups(_: dict[str, Any] | None) -> int:
        from calltrack.models.reports import DIMENSIONS

        done = 0
        for dimension in DIMENSIONS:  # pk f"{account}#{dimension}": one partition each (cheap to redo)
            try:
                done += store.delete_found(
                    "rollups",
                    out_of_time,
                    KeyConditionExpression="pk = :p",
                    ExpressionAttributeValues={":p": {"S": f"{account}#{dimension}"}},
                )
            except OutOfTime as stop:
                raise OutOfTime(done + stop.done) from None
        return done

    def objects(bucket: str, prefixes: list[str]) -> Callable[[dict[str, Any] | None], int]:
        return lambda _: store.delete_prefixes(bucket, prefixes, out_of_time)

    return [
        # First: the account's console users can act no more while the rest goes (their tokens too).
        ("console_users", lambda _: users.delete_all(account)),
        ("routing_snapshots", snapshots),
        ("rollup_markers", scanned("rollup_markers", "account = :a", a)),
        ("calls", keyed("calls", "by-account")),
        ("rollups", rollups),
        ("job_runs", scanned("job_runs", "contains(run_key, :p)", {":p": {"S": f"#{account}#"}})),
        ("callers", lambda start: store.strip_callers(account, out_of_time, start=start)),
        *[(table, scanned(table, "account = :a", a)) for table in ACCOUNT_SCANNED],
        *[(table, keyed(table, "by-account")) for table in ACCOUNT_INDEXED],
        *[(table, keyed(table)) for table in ACCOUNT_KEYED],
        ("recording_objects", objects("recordings", [f"recordings/{account}/", f"transcripts/{account}/"])),
        ("export_objects", objects("exports", [f"calls/account={account}/", f"reviews/{account}/"])),
        ("secrets", lambda _: secrets.delete_all(account)),
        ("accounts", keyed("accounts")),
    ]
