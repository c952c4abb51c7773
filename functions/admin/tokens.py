"""API tokens: created by the operator or an account admin, shown once, stored as SHA-256 hashes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from admin.accounts import check_slug, live_account
from admin.ports import AdminStore
from calltrack.auth import ROLES, Principal, hash_token, new_token, token_id
from calltrack.errors import BadRequest, NotFound

MAX_LABEL = 100
MAX_EXPIRY_DAYS = 3650


def create_token(
    principal: Principal,
    account: str,
    body: Any,
    store: AdminStore,
    *,
    now: datetime,
    make_token: Callable[[], str] = new_token,
) -> dict[str, Any]:
    """-> {"token", "id", "account", "role", "expires_at"}; the token is never stored or shown again."""
    principal.require_account(account)
    principal.require_role("admin")
    check_slug(account)
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object like {\"role\": \"marketer\"}")
    unknown = sorted(set(body) - {"role", "label", "expires_in_days"})
    if unknown:
        raise BadRequest(f"{unknown[0]}: unknown key", field=unknown[0])
    role = body.get("role")
    if role not in ROLES:
        raise BadRequest(f"role: must be one of {', '.join(ROLES)} (got {role!r})", field="role")
    label = body.get("label")
    if label is not None and (not isinstance(label, str) or len(label) > MAX_LABEL):
        raise BadRequest(f"label: must be text of at most {MAX_LABEL} characters", field="label")
    days = body.get("expires_in_days")
    if days is not None and (isinstance(days, bool) or not isinstance(days, int)
                             or not 1 <= days <= MAX_EXPIRY_DAYS):
        raise BadRequest(f"expires_in_days: a whole number of days from 1 to {MAX_EXPIRY_DAYS}",
                         field="expires_in_days")
    live_account(store, account, f"no account {account!r}")
    token = make_token()
    expires_at = now + timedelta(days=days) if days else None
    store.put_token(token_hash=hash_token(token), account=account, role=role, label=label or None,
                    created_at=now, expires_at=expires_at)
    return {"token": token, "id": token_id(hash_token(token)), "account": account, "role": role,
            "expires_at": _iso(expires_at)}


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def list_tokens(principal: Principal, account: str, store: AdminStore) -> dict[str, Any]:
    """The account's tokens: id, label, role, created, last used, expiry; never the secret."""
    principal.require_account(account)
    principal.require_role("admin")
    check_slug(account)
    rows = sorted(store.list_tokens(account), key=lambda r: (r["created_at"], r["token_hash"]))
    return {"account": account, "tokens": [
        {"id": token_id(r["token_hash"]), "label": r.get("label"), "role": r["role"],
         "created_at": _iso(r["created_at"]), "last_used_at": _iso(r.get("last_used_at")),
         "expires_at": _iso(r.get("expires_at"))}
        for r in rows
    ]}


def revoke_token(principal: Principal, account: str, tid: str, store: AdminStore) -> dict[str, Any]:
    """Delete the token: the next request with it answers 401 (every request reads the table)."""
    principal.require_account(account)
    principal.require_role("admin")
    check_slug(account)
    for row in store.list_tokens(account):
        if token_id(row["token_hash"]) == tid:
            store.delete_token(row["token_hash"])
            return {"account": account, "id": tid, "revoked": True}
    raise NotFound(f"token: no token {tid[:40]!r} in account {account!r}", field="token")
