"""Account configs for tests: one builder, one in-memory twin of the account reader."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from calltrack.account_config import AccountConfig
from calltrack.accounts import BrokenAccount, StoredAccount, UnknownAccount, typed_config


def account_config(account: str = "acme", **overrides: Any) -> dict[str, Any]:
    """A minimal valid account config (as ``calltrack apply`` takes it), with overrides."""
    base: dict[str, Any] = {"account": account, "timezone": "Asia/Tokyo", "forward_to": "+81312345678"}
    base.update(overrides)
    return base


class InMemoryAccounts:
    """``calltrack.accounts.Accounts`` over a dict of stored configs (same typing and rules)."""

    def __init__(self, configs: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.configs: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (configs or {}).items()}

    def _stored(self, account: str, config: Mapping[str, Any]) -> StoredAccount:
        return StoredAccount(
            account=account, name=str(config.get("name") or account),
            timezone=str(config.get("timezone") or "Asia/Tokyo"), config=dict(config),
            config_hash="", version=1, updated_at=datetime(2026, 1, 1, tzinfo=UTC),
        )

    def get(self, account: str) -> AccountConfig:
        if account not in self.configs:
            raise UnknownAccount(account)
        return typed_config(self._stored(account, self.configs[account]))

    def all(self) -> Iterator[AccountConfig | BrokenAccount]:
        for account, config in self.configs.items():
            try:
                yield typed_config(self._stored(account, config))
            except Exception as exc:  # noqa: BLE001 - mirrors AccountReader.all
                yield BrokenAccount(account, str(exc))


class AccountsTable:
    """The accounts table as DynamoDB's low-level GetItem/Scan return it (config as JSON text)."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.gets = 0

    def put(self, config: dict[str, Any]) -> None:
        self.items[config["account"]] = {
            "account": {"S": config["account"]},
            "name": {"S": config.get("name") or config["account"]},
            "timezone": {"S": config.get("timezone", "Asia/Tokyo")},
            "config": {"S": json.dumps(config)},
            "config_hash": {"S": "h"},
            "version": {"N": "3"},
            "updated_at": {"S": "2026-11-25T09:00:00.000000+0000"},
        }

    def get_item(self, TableName: str, Key: dict[str, Any], ConsistentRead: bool = False) -> dict[str, Any]:
        self.gets += 1
        item = self.items.get(Key["account"]["S"])
        return {"Item": item} if item else {}

    def get_paginator(self, name: str) -> Any:
        table = self

        class Pages:
            def paginate(self, TableName: str) -> list[dict[str, Any]]:
                return [{"Items": list(table.items.values())}]

        return Pages()
