"""Account secrets through the API: set (write-only) and list (names and update times only).

The values live in SSM (``calltrack.account_secrets``); nothing here ever returns or logs one.
"""

from __future__ import annotations

from typing import Any, Protocol

from admin.accounts import check_slug, live_account
from admin.ports import AdminStore
from calltrack.account_secrets import check_name, check_value
from calltrack.auth import Principal
from calltrack.errors import BadRequest, NotFound


class SecretStore(Protocol):
    def put(self, account: str, name: str, value: str) -> dict[str, Any]: ...

    def names(self, account: str) -> list[dict[str, Any]]: ...


def _admin_of_existing(
    principal: Principal, account: str, store: AdminStore, *, writing: bool = False
) -> None:
    principal.require_account(account)
    principal.require_role("admin")
    check_slug(account)
    missing = f"no account {account!r}: apply its config first (calltrack apply)"
    if writing:  # a secret set while the account is being deleted would outlive it
        live_account(store, account, missing)
    elif store.get_account(account) is None:
        raise NotFound(missing)


def set_secret(
    principal: Principal, account: str, name: str, body: Any, store: AdminStore, secrets: SecretStore
) -> dict[str, Any]:
    """-> {"account", "name", "updated_at", "version"}."""
    _admin_of_existing(principal, account, store, writing=True)
    check_name(name)
    if not isinstance(body, dict):
        raise BadRequest('body must be a JSON object like {"value": "..."}')
    unknown = sorted(set(body) - {"value"})
    if unknown:
        raise BadRequest(f"{unknown[0]}: unknown key (send only \"value\")", field=unknown[0])
    value = check_value(body.get("value"))
    return {"account": account, **secrets.put(account, name, value)}


def list_secrets(
    principal: Principal, account: str, store: AdminStore, secrets: SecretStore
) -> dict[str, Any]:
    _admin_of_existing(principal, account, store)
    return {"account": account, "secrets": secrets.names(account)}
