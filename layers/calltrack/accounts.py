"""The one reader of account config from DynamoDB (the ``accounts`` table).

Every function that needs an account's settings asks an ``AccountReader``:

- ``get(account)`` -> the typed ``AccountConfig`` (``calltrack.account_config``: the pydantic model
  is the one place defaults are declared), cached per process for ``ACCOUNT_TTL_S`` seconds, so a
  ``calltrack apply`` reaches warm functions within that time. The one rule for a missing account:
  ``UnknownAccount`` (a 404 naming the field ``account``); a missing account is never cached, so a
  freshly applied account works at once.
- ``all()`` -> every account, for scheduled fan-outs; an account whose stored config no longer
  validates is yielded as a ``BrokenAccount`` so it fails alone.
- ``stored(account)`` / ``stored_all()`` -> the raw rows (config as stored, hash, version) for the
  admin context, which owns and writes them.

Raw boto3 (no PynamoDB import on the read path); the process's reader (``account_reader()``) uses the
process's DynamoDB client (``calltrack.clients``).
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from calltrack.errors import NotFound

if TYPE_CHECKING:  # pydantic loads only when a config is read
    from calltrack.account_config import AccountConfig

ACCOUNT_TTL_S = 30.0
MAX_CACHED = 10_000


class UnknownAccount(NotFound):
    def __init__(self, account: str) -> None:
        super().__init__(f"account: unknown account {account!r}", field="account")
        self.account = account


@dataclass(frozen=True)
class StoredAccount:
    """An accounts row as stored: ``config`` is the normalised account YAML (a plain dict)."""

    account: str
    name: str
    timezone: str
    config: dict[str, Any]
    config_hash: str
    version: int
    updated_at: datetime
    # An account deletion has started (privacy.account_deletion): readers treat the account as gone.
    deleting: bool = False
    # Pool id -> number -> when (epoch seconds) an apply took the number out of the pool (removed from
    # the account or moved to another pool), kept HISTORY_TTL_DAYS: the pools report still reads the
    # lease history the number gathered in the pool before (``former_pool_numbers`` on the row).
    former_pool_numbers: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "name": self.name,
            "timezone": self.timezone,
            "version": self.version,
            "updated_at": self.updated_at.isoformat().replace("+00:00", "Z"),
        }


@dataclass(frozen=True)
class BrokenAccount:
    """An account whose stored config does not validate any more (only that account fails)."""

    account: str
    error: str


class Accounts(Protocol):
    """The port every context reads account config through (``AccountReader``; tests use
    ``tests.support.accounts.InMemoryAccounts``)."""

    def get(self, account: str) -> AccountConfig: ...

    def all(self) -> Iterator[AccountConfig | BrokenAccount]: ...


def typed_config(stored: StoredAccount) -> AccountConfig:
    """The stored config as the typed model (every default filled by the model)."""
    from calltrack.account_config import AccountConfig

    data = dict(stored.config)
    data.setdefault("account", stored.account)
    data.setdefault("timezone", stored.timezone)
    return AccountConfig.model_validate(data, context={"region": "JP", "stored": True})


def _from_item(item: Mapping[str, Any]) -> StoredAccount:
    def text(name: str, default: str = "") -> str:
        value = item.get(name) or {}
        return str(value.get("S", default)) if isinstance(value, Mapping) else default

    raw = text("config")
    try:
        config = json.loads(raw) if raw else {}
    except ValueError:
        config = None
    updated_at = datetime.fromtimestamp(0, UTC)
    try:
        # PynamoDB's UTCDateTimeAttribute: 2026-11-25T09:00:00.000000+0000
        updated_at = datetime.strptime(text("updated_at"), "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError:
        pass
    version_attr = item.get("version") or {}
    return StoredAccount(
        former_pool_numbers=_former_pool_numbers(text("former_pool_numbers")),
        account=text("account"),
        name=text("name"),
        timezone=text("timezone", "Asia/Tokyo") or "Asia/Tokyo",
        config=config if isinstance(config, dict) else {"__broken__": raw[:200]},
        config_hash=text("config_hash"),
        version=int(version_attr.get("N", 1)) if isinstance(version_attr, Mapping) else 1,
        updated_at=updated_at,
        deleting="deletion_progress" in item,
    )


def _former_pool_numbers(raw: str) -> dict[str, dict[str, float]]:
    """The row's ``former_pool_numbers`` (JSON); anything unreadable reads as none."""
    try:
        loaded = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    if not isinstance(loaded, dict):
        return {}
    out: dict[str, dict[str, float]] = {}
    for pool, numbers in loaded.items():
        if isinstance(numbers, dict):
            out[str(pool)] = {str(n): float(t) for n, t in numbers.items() if isinstance(t, (int, float))}
    return out


class AccountReader:
    def __init__(
        self,
        client: Any,
        table: str,
        *,
        ttl_s: float = ACCOUNT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.table = table
        self.ttl_s = ttl_s
        self.clock = clock
        self._cache: dict[str, tuple[float, AccountConfig]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ raw rows (admin)
    def stored(self, account: str, *, consistent: bool = False) -> StoredAccount | None:
        resp = self.client.get_item(TableName=self.table, Key={"account": {"S": account}},
                                    ConsistentRead=consistent)
        item = resp.get("Item")
        return _from_item(item) if item else None

    def former_pool_numbers(self, account: str) -> Mapping[str, Mapping[str, float]]:
        """The numbers applies took out of the account's pools (``StoredAccount.former_pool_numbers``)."""
        row = self.stored(account)
        return row.former_pool_numbers if row is not None else {}

    def stored_all(self) -> Iterator[StoredAccount]:
        for page in self.client.get_paginator("scan").paginate(TableName=self.table):
            for item in page.get("Items", []):
                yield _from_item(item)

    # ------------------------------------------------------------------ typed config (everyone)
    def get(self, account: str) -> AccountConfig:
        now = self.clock()
        with self._lock:
            hit = self._cache.get(account)
        if hit is not None and now - hit[0] <= self.ttl_s:
            return hit[1]
        row = self.stored(account)
        if row is None or row.deleting:
            raise UnknownAccount(account)
        config = typed_config(row)
        with self._lock:
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            self._cache[account] = (now, config)
        return config

    def find(self, account: str) -> AccountConfig | None:
        try:
            return self.get(account)
        except UnknownAccount:
            return None

    def all(self) -> Iterator[AccountConfig | BrokenAccount]:
        for row in self.stored_all():
            if row.deleting:
                continue
            try:
                yield typed_config(row)
            except Exception as exc:  # noqa: BLE001 - a broken stored config fails only its account
                yield BrokenAccount(row.account, f"stored config does not validate: {str(exc)[:300]}")

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()


@functools.cache
def account_reader() -> AccountReader:
    """The process's reader (settings read, the process's DynamoDB client, on first use)."""
    from calltrack.clients import dynamodb
    from calltrack.settings import get_settings

    return AccountReader(dynamodb(), get_settings().table_name("accounts"))


def reset() -> None:
    """Forget the process's reader and client (tests; the local runtime after changing the environment)."""
    from calltrack.clients import dynamodb

    account_reader.cache_clear()
    dynamodb.cache_clear()
