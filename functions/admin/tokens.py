"""API tokens: created by the operator or an account admin, shown once, stored as SHA-256 hashes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from admin.accounts import check_slug
from admin.ports import AdminStore
from calltrack.auth import ROLES, Principal, hash_token, new_token
from calltrack.errors import BadRequest, NotFound

MAX_LABEL = 100


def create_token(
    principal: Principal,
    account: str,
    body: Any,
    store: AdminStore,
    *,
    now: datetime,
    make_token: Callable[[], str] = new_token,
) -> dict[str, Any]:
    """-> {"token", "account", "role"}; the token is never stored or shown again."""
    principal.require_account(account)
    principal.require_role("admin")
    check_slug(account)
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object like {\"role\": \"marketer\"}")
    unknown = sorted(set(body) - {"role", "label"})
    if unknown:
        raise BadRequest(f"{unknown[0]}: unknown key", field=unknown[0])
    role = body.get("role")
    if role not in ROLES:
        raise BadRequest(f"role: must be one of {', '.join(ROLES)} (got {role!r})", field="role")
    label = body.get("label")
    if label is not None and (not isinstance(label, str) or len(label) > MAX_LABEL):
        raise BadRequest(f"label: must be text of at most {MAX_LABEL} characters", field="label")
    if store.get_account(account) is None:
        raise NotFound(f"no account {account!r}")
    token = make_token()
    store.put_token(token_hash=hash_token(token), account=account, role=role, label=label or None,
                    created_at=now)
    return {"token": token, "account": account, "role": role}
