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
ACCOUNT_SCANNED = ("leases", "lease_history", "recordings")  # and numbers, which goes early


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

    The first run marks the accounts row (``deletion_progress``): from then on the functions treat
    the account as gone (no more leases, jobs or deliveries), and the number rows go early (no more
    calls). A run that runs out of time records the step it stopped in and the scan's key; the next
    run goes on from there, doing again only the cheap steps before it (Queries by account, which
    pick up anything written meanwhile) and skipping the finished scans of large shared tables,
    which would otherwise be read from the start on every request and never finish."""
    if confirm != account:
        raise BadRequest(f"confirm: repeat the account id (?confirm={account}) to delete it", field="confirm")
    steps = _steps(account, store, secrets, users, out_of_time)
    names = [name for name, _, _ in steps]
    version = _version(names)
    progress = store.deletion_progress(account) or {}
    if progress.get("version") != version or progress.get("step") not in names:
        progress = {}  # none, or of another deploy's steps: start over
    at = names.index(progress["step"]) if progress else 0
    resume = progress.get("resume") if progress else None
    removed: dict[str, int] = {}

    def save(step: str, key: dict[str, Any] | None) -> None:
        store.save_deletion_progress(account, {"version": version, "step": step, "resume": key})

    def stopped(step: str, key: dict[str, Any] | None) -> dict[str, Any]:
        save(step, key)
        return {"account": account, "removed": removed, "complete": False}

    if not progress:
        save(names[0], None)  # the account is being deleted: readers treat it as gone
    for index, (name, step, cheap) in enumerate(steps):
        if index < at and not cheap:
            continue  # a scan finished by an earlier run
        key = resume if index == at else None
        if out_of_time():
            return stopped(names[max(index, at)], resume if index <= at else None)
        try:
            removed[name] = removed.get(name, 0) + _run(step, key)
        except OutOfTime as stop:
            removed[name] = removed.get(name, 0) + stop.done
            # a cheap step re-done before the saved one: keep the saved place
            return stopped(name, stop.resume) if index >= at else stopped(names[at], resume)
    return {"account": account, "removed": removed, "complete": True}


def _run(step: Callable[[dict[str, Any] | None], int], key: dict[str, Any] | None) -> int:
    """A step from ``key``; from the start when the table refuses that key (one saved by a run
    of another kind of read, say a Scan key fed to a Query after a deploy)."""
    if key is None:
        return step(None)
    try:
        return step(key)
    except OutOfTime:
        raise
    except Exception:  # noqa: BLE001 - e.g. ValidationException: the exclusive start key is invalid
        return step(None)


def _version(names: list[str]) -> str:
    """The step list's identity: progress saved by a deploy with other steps is not resumed."""
    import hashlib

    return hashlib.sha256("|".join(names).encode()).hexdigest()[:12]


def _steps(
    account: str,
    store: AccountStore,
    secrets: AccountSecretStore,
    users: AccountUsers,
    out_of_time: OutOfTimeCheck,
) -> list[tuple[str, Callable[[dict[str, Any] | None], int], bool]]:
    """(name, step(resume key) -> items removed, cheap), in order. A cheap step (a Query by the
    account, a listing of its own prefixes) is done again by every run; a scan is done once."""
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
        # First: the account's console users can act no more while the rest goes (their tokens too);
        # then the number rows, so no more calls arrive (the voice webhook answers "unknown number").
        ("console_users", lambda _: users.delete_all(account), True),
        ("routing_snapshots", snapshots, False),
        ("numbers", scanned("numbers", "account = :a", a), False),
        ("rollup_markers", scanned("rollup_markers", "account = :a", a), False),
        ("calls", keyed("calls", "by-account"), True),
        ("rollups", rollups, True),
        ("job_runs", scanned("job_runs", "contains(run_key, :p)", {":p": {"S": f"#{account}#"}}), False),
        ("callers", lambda start: store.strip_callers(account, out_of_time, start=start), False),
        *[(table, scanned(table, "account = :a", a), False) for table in ACCOUNT_SCANNED],
        *[(table, keyed(table, "by-account"), True) for table in ACCOUNT_INDEXED],
        *[(table, keyed(table), True) for table in ACCOUNT_KEYED],
        ("recording_objects", objects("recordings", [f"recordings/{account}/", f"transcripts/{account}/"]),
         True),
        ("export_objects", objects("exports", [f"calls/account={account}/", f"reviews/{account}/",
                                                 f"exports/expiry/account={account}.json",
                                                 f"privacy-exports/{account}/"]), True),
        ("secrets", lambda _: secrets.delete_all(account), True),
        ("accounts", keyed("accounts"), True),
    ]
