"""Account deletion (``DELETE /v1/accounts/{a}?confirm={a}``, operator only): everything of one
account, in every table and bucket, and an answer of what was removed.

Each table's items of the account are found by a Query where a key serves "every item of account
a" (the account as partition key, a complete ``by-account`` index, one rollup partition per
dimension) and by a filtered Scan where none does (small tables: numbers, leases, tokens' owners,
job runs, and the lease history and recordings, which TTL keeps short). Items go page by page as
they are found, so a large account makes progress in every request.

The request has 29 s. When little is left (``out_of_time``) the deletion stops between pages and
answers ``complete: false`` (202) with what it removed so far: the operator sends the same request
again, and every step is idempotent, so each run goes on where the last stopped and the last
answers ``complete: true`` (200). Order matters for the calls stream: the rollup consumer ignores
REMOVE records (2026-12-01), and rollups go after the calls; the per-call rollup markers written
before that change go before them; the ``accounts`` row goes last, so a run that stops or fails
half-way leaves the account to be deleted again. The account's secrets in SSM (``calltrack
secret``) go too, before the ``accounts`` row; its console users and groups in Cognito go first,
their ID tokens revoked. Not removed: what was already sent out (ad platforms, CRMs).
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
# Tables no key serves: scanned with a filter (small, or kept short by their TTL). The recordings
# table's by-account index is sparse (stored recordings only).
ACCOUNT_SCANNED = ("numbers", "leases", "lease_history", "recordings")


class OutOfTime(Exception):
    """A step stopped between pages: the request's time is nearly up. ``done`` items went."""

    def __init__(self, done: int) -> None:
        super().__init__(f"stopped for time after {done} item(s)")
        self.done = done


class AccountStore(Protocol):
    def account_numbers(self, account: str) -> list[str]: ...

    def delete_found(self, table: str, out_of_time: OutOfTimeCheck, **search: Any) -> int:
        """Delete every item a Query (``KeyConditionExpression``, ``IndexName`` for an index) or
        a Scan (``FilterExpression``) finds, page by page; how many. Raises ``OutOfTime`` between
        pages when ``out_of_time()``."""
        ...

    def strip_callers(self, account: str, out_of_time: OutOfTimeCheck) -> int: ...

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
    """Delete what is left of ``account``: {"account", "removed": {what: how many}, "complete"}."""
    if confirm != account:
        raise BadRequest(f"confirm: repeat the account id (?confirm={account}) to delete it", field="confirm")
    removed: dict[str, int] = {}
    for name, step in _steps(account, store, secrets, users, out_of_time):
        if out_of_time():
            return {"account": account, "removed": removed, "complete": False}
        try:
            removed[name] = step()
        except OutOfTime as stop:
            removed[name] = stop.done
            return {"account": account, "removed": removed, "complete": False}
    return {"account": account, "removed": removed, "complete": True}


def _steps(
    account: str,
    store: AccountStore,
    secrets: AccountSecretStore,
    users: AccountUsers,
    out_of_time: OutOfTimeCheck,
) -> list[tuple[str, Callable[[], int]]]:
    a = {":a": {"S": account}}

    def keyed(table: str, index: str | None = None) -> Callable[[], int]:
        search: dict[str, Any] = {"KeyConditionExpression": "account = :a", "ExpressionAttributeValues": a}
        if index:
            search["IndexName"] = index
        return lambda: store.delete_found(table, out_of_time, **search)

    def scanned(table: str, condition: str, values: dict[str, Any]) -> Callable[[], int]:
        return lambda: store.delete_found(
            table, out_of_time, FilterExpression=condition, ExpressionAttributeValues=values
        )

    def snapshots() -> int:
        numbers = store.account_numbers(account)
        return store.delete_prefixes("routing", [key(n) for n in numbers], out_of_time) if numbers else 0

    def rollups() -> int:
        from calltrack.models.reports import DIMENSIONS

        done = 0
        for dimension in DIMENSIONS:  # pk f"{account}#{dimension}": one partition each
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

    return [
        # First: the account's console users can act no more while the rest goes (their tokens too).
        ("console_users", lambda: users.delete_all(account)),
        ("routing_snapshots", snapshots),
        ("rollup_markers", scanned("rollup_markers", "account = :a", a)),
        ("calls", keyed("calls", "by-account")),
        ("rollups", rollups),
        ("job_runs", scanned("job_runs", "contains(run_key, :p)", {":p": {"S": f"#{account}#"}})),
        ("callers", lambda: store.strip_callers(account, out_of_time)),
        *[(table, scanned(table, "account = :a", a)) for table in ACCOUNT_SCANNED],
        *[(table, keyed(table, "by-account")) for table in ACCOUNT_INDEXED],
        *[(table, keyed(table)) for table in ACCOUNT_KEYED],
        ("recording_objects", lambda: store.delete_prefixes(
            "recordings", [f"recordings/{account}/", f"transcripts/{account}/"], out_of_time)),
        ("export_objects", lambda: store.delete_prefixes(
            "exports", [f"calls/account={account}/", f"reviews/{account}/"], out_of_time)),
        ("secrets", lambda: secrets.delete_all(account)),
        ("accounts", keyed("accounts")),
    ]
