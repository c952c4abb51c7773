"""Account secrets on the running local stack (``calltrack secret set``'s PUT, as the operator)."""

from __future__ import annotations

from typing import Any


def set_account_secret(stack: Any, account: str, name: str, value: str) -> None:
    """Store ``value`` as the account's secret ``name`` (SSM /calltrack/{account}/{name})."""
    resp = stack.request("PUT", f"/v1/accounts/{account}/secrets/{name}", token=stack.admin_token,
                         json={"value": value})
    assert resp.status_code == 200, resp.text
