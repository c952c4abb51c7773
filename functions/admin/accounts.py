"""Accounts: list, read and apply (config as code). Pure logic over the AdminStore port."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from admin.ports import AdminStore, ApplyPlan, ConcurrentUpdate, NumberTaken, StoredAccount
from calltrack.account_config import (
    ACCOUNT_SLUG,
    config_hash,
    dialled_paths,
    normalize_config,
    number_paths,
    parse_config,
    stored_numbers,
    tracking_rows,
)
from calltrack.auth import OPERATOR, Principal
from calltrack.errors import BadRequest, Conflict, NotFound, Unavailable
from calltrack.models.dni import HISTORY_TTL_DAYS


class NumbersTaken(Conflict):
    """409: numbers of the config belong to another account; every one is listed in ``errors``."""

    SHOWN = 3

    def __init__(self, errors: list[str], *, field: str | None = None) -> None:
        message = "; ".join(errors[: self.SHOWN])
        if len(errors) > self.SHOWN:
            message += f"; and {len(errors) - self.SHOWN} more"
        super().__init__(message, field=field)
        self.errors = errors

    def body(self) -> dict[str, object]:
        return {**super().body(), "errors": self.errors}


def check_slug(account: str) -> None:
    if not ACCOUNT_SLUG.fullmatch(account or ""):
        raise BadRequest(f"account: not an account id: {account!r}", field="account")


def list_accounts(principal: Principal, store: AdminStore) -> dict[str, Any]:
    if principal.is_operator:
        accounts = sorted(store.list_accounts(), key=lambda a: a.account)
    else:
        assert principal.account is not None
        own = store.get_account(principal.account)
        accounts = [own] if own else []
    # "token": who is asking (operator, or an account and its role), for `calltrack doctor`.
    return {"accounts": [a.summary() for a in accounts],
            "token": {"account": principal.account, "role": principal.role}}


def get_account(principal: Principal, account: str, store: AdminStore) -> dict[str, Any]:
    """The account and its config. A webhook's URL is often its only secret (a Slack or Zapier
    hook): managers and marketers see where it goes, not the URL itself."""
    principal.require_account(account)
    found = store.get_account(account)
    if found is None:
        raise NotFound(f"no account {account!r}")
    config = found.config
    if principal.role not in (OPERATOR, "admin") and config.get("webhooks"):
        config = {**config, "webhooks": [{**hook, "url": _where(str(hook.get("url", "")))}
                                          for hook in config["webhooks"]]}
    return {**found.summary(), "config": config}


def _where(url: str) -> str:
    """A webhook URL as non-admins see it: its scheme and host only."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}/… (hidden: admin only)" if parts.hostname else "(hidden)"


# The stored config is one DynamoDB item (at most 400 KB with its other attributes), and each number
# row carries its flow: the expanded config must fit with room, as written (compact UTF-8) and as
# stored (calltrack.models.accounts: JSON with ASCII escapes, so a Japanese character takes 6 bytes).
MAX_CONFIG_BYTES = 300_000
MAX_STORED_BYTES = 380_000


def _check_size(normalized: dict[str, Any], *, as_stored: bool = True) -> None:
    """``as_stored`` False: the written size only (an unchanged re-apply of a config stored before
    the stored-size check must still repair its number rows)."""
    import json

    size = len(json.dumps(normalized, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    stored = len(json.dumps(normalized)) if as_stored else 0
    if size > MAX_CONFIG_BYTES or stored > MAX_STORED_BYTES:
        raise BadRequest(
            f"config: {size // 1000} KB once expanded, {stored // 1000} KB as stored (closed date ranges "
            f"become dates, one per flow; a non-ASCII character is stored as 6 bytes); at most "
            f"{MAX_CONFIG_BYTES // 1000} KB and {MAX_STORED_BYTES // 1000} KB: drop past closed dates, "
            "share flows or shorten long texts",
            field="config",
        )


def live_account(store: AdminStore, account: str, missing: str) -> StoredAccount:
    """The stored account, or 404 (``missing`` says what to do) or 409 while it is being deleted:
    a config, token or secret written then would bring parts of it back."""
    found = store.get_account(account)
    if found is None:
        raise NotFound(missing)
    if found.deleting:
        raise Conflict(f"account: {account!r} is being deleted; wait for the deletion to finish",
                       field="account")
    return found


def _empty_numbers() -> dict[str, list[str]]:
    return {"added": [], "removed": [], "updated": []}


def _repair_rows(store: AdminStore, current: StoredAccount, rows: dict[str, dict[str, Any]]) -> list[str]:
    """Write the account's number rows that are missing or differ from its stored config (a failed
    or interrupted apply, two large applies at once, a row deleted by hand): the voice webhook routes
    from these rows, so "apply again" must bring them back. Rows of another account are left, and
    dropped from ``rows`` (the routing snapshot must not send that account's callers here)."""
    existing = store.get_numbers(sorted(rows))
    mine = current.account
    for n in [n for n in rows if n in existing and existing[n].get("account") != mine]:
        del rows[n]
    fix = sorted(
        n for n in rows
        if n not in existing or (existing[n].get("account") == mine and _differs(existing[n], rows[n]))
    )
    if fix:
        try:
            # previous_rows: a failed later chunk rolls the earlier ones back to these, not to nothing
            previous = {n: existing[n] for n in fix if n in existing}
            store.write_apply(ApplyPlan(account=current, expected_version=current.version,
                                        puts=[rows[n] for n in fix], deletes=[], previous_rows=previous))
        except (ConcurrentUpdate, NumberTaken):
            raise Conflict(f"account {mine!r} was changed while its number rows were repaired; apply again",
                           field="account") from None
    return fix


def apply_account(
    principal: Principal,
    account: str,
    body: Any,
    store: AdminStore,
    *,
    now: datetime,
    dry_run: bool = False,
    expected_version: int | None = None,
) -> dict[str, Any]:
    """Create or update an account from its config; idempotent; all-or-nothing. With
    ``expected_version`` (0: the account must not exist yet), a 409 naming it when the stored
    account is at another version: the caller read it, changed it, and someone applied meanwhile.

    Returns {"account", "changed", "version", "numbers": {"added", "removed", "updated"}}.
    """
    principal.require_account(account)
    principal.require_role("admin")
    check_slug(account)
    config = parse_config(body)
    if config.account != account:
        raise BadRequest(
            f"account: {config.account!r} does not match the account in the URL ({account!r})",
            field="account",
        )
    normalized = normalize_config(config)
    _check_size(normalized, as_stored=False)
    digest = config_hash(normalized)
    current = store.get_account(account)
    if current is not None and current.deleting:
        raise Conflict(f"account: {account!r} is being deleted; apply it again once the deletion "
                       "has finished", field="account")
    stored_version = current.version if current is not None else 0
    if expected_version is not None and expected_version != stored_version:
        raise Conflict(
            f"expected_version: account {account!r} is at version {stored_version}, not {expected_version}: "
            "another apply changed it since it was read; read it again and re-apply",
            field="expected_version",
        )
    rows = tracking_rows(normalized)
    if current is not None and current.config_hash == digest:
        numbers = _empty_numbers()
        if not dry_run:  # an unchanged apply still (re)writes the rows and snapshot: re-applying repairs
            numbers["repaired"] = _repair_rows(store, current, rows)
            _snapshot(store, rows, [])
        return {"account": account, "changed": False, "version": current.version, "numbers": numbers}
    _check_size(normalized)  # as stored, too: only a changed config is written to the accounts row

    old_numbers = stored_numbers(current.config) if current is not None else set()
    dialled = dialled_paths(config)
    existing = store.get_numbers(sorted(set(rows) | old_numbers | {n for _, n in dialled}))

    taken = [(path, n) for path, n in number_paths(config)
             if n in existing and existing[n].get("account") != account]
    if taken:
        errors = [f"{path}: {n} is already a tracking number of another account" for path, n in taken]
        raise NumbersTaken(errors, field=taken[0][0])
    # A call forwarded to another account's tracking number arrives there as a new call: counted
    # twice, credited to that number's channel, and a loop when that account forwards back.
    foreign = [(path, n) for path, n in dialled if n in existing and existing[n].get("account") != account]
    if foreign:
        errors = [f"{path}: {n} is a tracking number of another account; forward to the phone that "
                  "answers (calls to it would be counted twice, or loop)" for path, n in foreign]
        raise NumbersTaken(errors, field=foreign[0][0])

    added = sorted(n for n in rows if n not in existing)
    updated = sorted(n for n in rows if n in existing and _differs(existing[n], rows[n]))
    removed = sorted(n for n in old_numbers - set(rows)
                     if n in existing and existing[n].get("account") == account)
    version = (current.version + 1) if current is not None else 1
    result = {
        "account": account,
        "changed": True,
        "version": version,
        "numbers": {"added": added, "removed": removed, "updated": updated},
    }
    if dry_run:
        return result
    plan = ApplyPlan(
        account=StoredAccount(
            account=account, name=normalized["name"], timezone=normalized["timezone"], config=normalized,
            config_hash=digest, version=version, updated_at=now,
            former_pool_numbers=former_pool_numbers(current, normalized, now.timestamp(),
                                                    room=FORMER_ITEM_BYTES - len(json.dumps(normalized))),
        ),
        expected_version=current.version if current is not None else None,
        puts=[rows[n] for n in added + updated],
        deletes=removed,
        previous_rows={n: existing[n] for n in set(updated) | set(removed)},
    )
    # Removed numbers leave the snapshot before the numbers table: a failure here changes nothing
    # (apply again), and a number moving to another account is never deleted after its new put.
    _snapshot(store, {}, removed)
    try:
        store.write_apply(plan)
    except NumberTaken as exc:
        path = next((p for p, n in number_paths(config) if n == exc.number), "numbers")
        raise Conflict(f"{path}: {exc.number} is already a tracking number of another account",
                       field=path) from None
    except ConcurrentUpdate:
        if expected_version is not None:  # the caller's read is stale: as the check above says
            raise Conflict(f"expected_version: account {account!r} was changed by another apply at "
                           "the same time; read it again and re-apply", field="expected_version") from None
        raise Conflict(f"account {account!r} was changed by another apply at the same time; apply again",
                       field="account") from None
    _snapshot(store, rows, [])
    return result


# Numbers that left a pool are remembered as long as their lease history is kept (the pools report
# reads it), the newest first as far as the accounts item has room: DynamoDB's 400 KB item, less
# what the other attributes take, holds the config (at most MAX_STORED_BYTES as stored) and them.
FORMER_KEPT_S = HISTORY_TTL_DAYS * 86400
FORMER_ITEM_BYTES = 396_000


def _pool_numbers(config: dict[str, Any]) -> dict[str, set[str]]:
    """Pool id -> its numbers and overflow number."""
    return {
        str(pool.get("id")): set(pool.get("numbers") or []) | ({pool.get("overflow_number")} - {None})
        for pool in config.get("pools") or []
    }


def former_pool_numbers(
    current: StoredAccount | None, config: dict[str, Any], now: float, *, room: int = FORMER_ITEM_BYTES
) -> dict[str, dict[str, float]]:
    """What the account's row remembers of numbers taken out of its pools (removed from the account
    or moved to another pool) after this apply: those this apply takes out, at ``now`` (whole
    seconds, rounded up: a lease of that second came before), and those earlier applies took out
    within ``FORMER_KEPT_S``; a number back in its pool is forgotten there. The newest that fit in
    ``room`` bytes as stored (JSON) are kept."""
    if current is None:
        return {}
    before, after = _pool_numbers(current.config), _pool_numbers(config)
    left: list[tuple[float, str, str]] = [
        (float(t), pool, n)
        for pool, numbers in current.former_pool_numbers.items()
        for n, t in numbers.items()
        if now - float(t) < FORMER_KEPT_S and n not in after.get(pool, set())
    ]
    leaving = {(pool, n) for pool, had in before.items() for n in had - after.get(pool, set())}
    left = [entry for entry in left if (entry[1], entry[2]) not in leaving]
    left += [(float(math.ceil(now)), pool, n) for pool, n in leaving]
    kept: dict[str, dict[str, float]] = {}
    used = 2  # {}
    for t, pool, n in sorted(left, reverse=True):  # newest first
        entry = len(json.dumps({n: t})) + (0 if pool in kept else len(json.dumps({pool: {}})))
        if used + entry > room:
            break
        kept.setdefault(pool, {})[n] = t
        used += entry
    return {pool: dict(sorted(numbers.items())) for pool, numbers in sorted(kept.items())}


def _snapshot(store: AdminStore, rows: dict[str, dict[str, Any]], removed: list[str]) -> None:
    """The routing snapshot the voice webhook forwards from while DynamoDB is down."""
    try:
        store.snapshot_routing(rows, removed)
    except Exception as exc:
        raise Unavailable(
            "the routing snapshot could not be updated (S3): apply the same file again",
            field="numbers",
        ) from exc


_ROW_KEYS = ("account", "kind", "channel", "campaign", "medium", "pool", "routing")


def _differs(old: dict[str, Any], new: dict[str, Any]) -> bool:
    return any(old.get(k) != new.get(k) for k in _ROW_KEYS)
