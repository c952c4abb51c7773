"""Account deletion (``DELETE /v1/accounts/{a}?confirm={a}``, operator only): everything of one
account, in every table and bucket, and an answer of what was removed.

Rare and operator-only, so it finds an account's items by scanning each table with a filter (no
index serves "every item of account a" in every table). Order matters for the calls stream:
the rollup consumer ignores REMOVE records (2026-12-01), and rollups go after the calls; the
per-call rollup markers written before that change go before them; the ``accounts`` row goes
last, so a run that fails half-way is run again (idempotent: a second run answers zeros). The
account's secrets in SSM (``calltrack secret``) go too, before the ``accounts`` row; its console
users and groups in Cognito go first, their ID tokens revoked. Not removed:
what was already sent out (ad platforms, CRMs).
"""

from __future__ import annotations

from typing import Any, Protocol

from calltrack.errors import BadRequest
from calltrack.routing_snapshot import key

# table -> (filter expression, values) identifying the account's items; ":a" is the account
ACCOUNT_ATTR = "account = :a"
TABLES_BY_ACCOUNT = ("numbers", "tokens", "leases", "lease_history", "recordings", "conversions",
                     "crm_leads", "spend", "webhook_deliveries", "audit")


class AccountStore(Protocol):
    def account_numbers(self, account: str) -> list[str]: ...

    def delete_where(self, table: str, filter_expression: str, values: dict[str, Any]) -> int: ...

    def strip_callers(self, account: str) -> int: ...

    def delete_prefixes(self, bucket: str, prefixes: list[str]) -> int: ...


class AccountSecretStore(Protocol):
    def delete_all(self, account: str) -> int: ...


class AccountUsers(Protocol):
    def delete_all(self, account: str) -> int:
        """Delete the account's console users and groups; how many users."""
        ...


def delete_account(account: str, confirm: str | None, store: AccountStore,
                   secrets: AccountSecretStore, users: AccountUsers) -> dict[str, Any]:
    if confirm != account:
        raise BadRequest(f"confirm: repeat the account id (?confirm={account}) to delete it", field="confirm")
    a = {":a": {"S": account}}
    removed: dict[str, int] = {}
    # First: the account's console users can act no more while the rest goes (their tokens too).
    removed["console_users"] = users.delete_all(account)
    numbers = store.account_numbers(account)
    removed["routing_snapshots"] = (
        store.delete_prefixes("routing", [key(n) for n in numbers]) if numbers else 0)
    removed["rollup_markers"] = store.delete_where("rollup_markers", ACCOUNT_ATTR, a)
    removed["calls"] = store.delete_where("calls", ACCOUNT_ATTR, a)
    removed["rollups"] = store.delete_where("rollups", "begins_with(pk, :p)", {":p": {"S": f"{account}#"}})
    removed["job_runs"] = store.delete_where("job_runs", "contains(run_key, :p)",
                                             {":p": {"S": f"#{account}#"}})
    removed["callers"] = store.strip_callers(account)
    for table in TABLES_BY_ACCOUNT:
        removed[table] = store.delete_where(table, ACCOUNT_ATTR, a)
    removed["recording_objects"] = store.delete_prefixes(
        "recordings", [f"recordings/{account}/", f"transcripts/{account}/"])
    removed["export_objects"] = store.delete_prefixes(
        "exports", [f"calls/account={account}/", f"reviews/{account}/"])
    removed["secrets"] = secrets.delete_all(account)
    removed["accounts"] = store.delete_where("accounts", ACCOUNT_ATTR, a)
    return {"account": account, "removed": removed}
