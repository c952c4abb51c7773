"""The admin context's ports: what its logic needs from storage, as plain data + a Protocol."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from calltrack.accounts import StoredAccount


@dataclass(frozen=True)
class ApplyPlan:
    """One atomic apply: the new Account item, TrackingNumber puts and deletes.

    ``expected_version`` is None when the account is new (the put requires it not to exist),
    otherwise the version read before planning (optimistic concurrency).
    ``previous_rows`` holds the rows as read before planning, so a store that has to split the
    write into several transactions can put things back if a later one fails.
    """

    account: StoredAccount
    expected_version: int | None
    puts: list[dict[str, Any]] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    previous_rows: dict[str, dict[str, Any]] = field(default_factory=dict)


class NumberTaken(Exception):
    """A conditional write found a number owned by another account (a race with another apply)."""

    def __init__(self, number: str) -> None:
        super().__init__(number)
        self.number = number


class ConcurrentUpdate(Exception):
    """The account changed between read and write."""


class AdminStore(Protocol):
    def get_account(self, account: str) -> StoredAccount | None: ...

    def list_accounts(self) -> list[StoredAccount]: ...

    def get_numbers(self, numbers: list[str]) -> dict[str, dict[str, Any]]:
        """number -> TrackingNumber attributes, for those that exist."""
        ...

    def write_apply(self, plan: ApplyPlan) -> None:
        """Write the plan all-or-nothing; raise NumberTaken / ConcurrentUpdate on a lost race."""
        ...

    def put_token(self, *, token_hash: str, account: str, role: str, label: str | None,
                  created_at: datetime, expires_at: datetime | None = None) -> None: ...

    def list_tokens(self, account: str) -> list[dict[str, Any]]:
        """The account's tokens: token_hash, role, label, created_at, last_used_at, expires_at
        (datetimes or None)."""
        ...

    def delete_token(self, token_hash: str) -> None: ...

    def snapshot_routing(self, rows: dict[str, dict[str, Any]], removed: list[str]) -> None:
        """Write every tracking number's row to the routing snapshot and delete the removed ones
        (see ``calltrack.routing_snapshot``); raise when it cannot."""
        ...
