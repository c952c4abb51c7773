"""Start-up for dni_lease: settings, table binding, the lease store and the account cache.

Everything here is created once per process (first invocation), never at import.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from calltrack.errors import NotFound

ACCOUNT_TTL_S = 10.0

ConfigLoader = Callable[[str], "Mapping[str, Any] | None"]


def load_account_config(account: str) -> Mapping[str, Any] | None:
    """Account.config (the normalised account YAML) or None when the account does not exist."""
    from calltrack.models.accounts import Account

    try:
        item = Account.get(account)
    except Account.DoesNotExist:
        return None
    config = dict(item.config or {})
    config.setdefault("account", item.account)
    config.setdefault("timezone", item.timezone)
    return config


class AccountCache:
    """Account configs cached per process for a short TTL (config changes show up within it)."""

    def __init__(
        self, loader: ConfigLoader, ttl_s: float = ACCOUNT_TTL_S, clock: Callable[[], float] = time.monotonic
    ):
        self.loader = loader
        self.ttl_s = ttl_s
        self.clock = clock
        self._items: dict[str, tuple[float, Mapping[str, Any] | None]] = {}
        self._lock = threading.Lock()

    def get(self, account: str) -> Mapping[str, Any]:
        now = self.clock()
        with self._lock:
            hit = self._items.get(account)
        if hit is None or now - hit[0] > self.ttl_s:
            config = self.loader(account)
            with self._lock:
                if len(self._items) > 10_000:
                    self._items.clear()
                # Unknown accounts are not cached: a freshly applied account works at once.
                if config is not None:
                    self._items[account] = (now, config)
            hit = (now, config)
        if hit[1] is None:
            raise NotFound(f"account: unknown account {account!r}", field="account")
        return hit[1]


_lock = threading.Lock()
_state: dict[str, Any] = {}


def ensure_started() -> dict[str, Any]:
    """The process's ports: {"store": LeaseStore, "accounts": AccountCache}."""
    if _state:
        return _state
    with _lock:
        if _state:
            return _state
        import boto3

        from calltrack.models import bind_models
        from calltrack.settings import get_settings
        from dni_lease.store import DynamoLeaseStore

        settings = get_settings()
        bind_models(settings)
        client = boto3.client("dynamodb", region_name=settings.region)
        _state["store"] = DynamoLeaseStore(
            client, settings.table_name("leases"), settings.table_name("lease_history")
        )
        _state["accounts"] = AccountCache(load_account_config)
    return _state


def reset() -> None:
    with _lock:
        _state.clear()
