"""Accounts on the running local stack: apply a config as the operator (``calltrack apply``'s
PUT /v1/accounts/{account}) and mint the role tokens a test reads it with."""

from __future__ import annotations

from typing import Any

from tests.support import unique_account
from tests.support.accounts import account_config


def apply_account(stack: Any, prefix: str, **config: Any) -> str:
    """A fresh account (``unique_account(prefix)``) applied with ``account_config(account, **config)``."""
    account = unique_account(prefix)
    stack.apply(account_config(account, **config))
    return account


def tokens(stack: Any, account: str, *roles: str) -> dict[str, str]:
    """A new token of each role for ``account``, by role."""
    return {role: stack.create_token(account, role) for role in roles}
