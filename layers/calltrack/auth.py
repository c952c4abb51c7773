"""Bearer tokens: one account and one role each, stored hashed; plus the operator token."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from calltrack.errors import Forbidden, NotFound, Unauthorized

ROLES = ("admin", "manager", "marketer")
OPERATOR = "operator"
TOKEN_PREFIX = "ct_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the operator (account=None) or an account token with a role."""

    account: str | None
    role: str
    token_id: str | None = None  # tok_…; None for the operator
    label: str | None = None

    @property
    def who(self) -> dict[str, str | None]:
        """The audit trail's "who": token id and label (the operator has neither)."""
        return {"token_id": self.token_id or OPERATOR, "label": self.label, "role": self.role}

    @property
    def is_operator(self) -> bool:
        return self.role == OPERATOR

    def require_role(self, *roles: str) -> None:
        if self.is_operator:
            return
        if self.role not in roles:
            raise Forbidden(f"role {self.role!r} may not do this (needs one of {', '.join(roles)})")

    def require_account(self, account: str) -> None:
        """403 when an account token touches another account (operator may touch any)."""
        if not self.is_operator and self.account != account:
            raise Forbidden("this token belongs to another account")

    def scoped_account(self, requested: str | None = None) -> str:
        """The account a request reads: the token's own; the operator must name one."""
        if self.is_operator:
            if not requested:
                raise NotFound("operator requests must name an account (?account=...)")
            return requested
        if requested and requested != self.account:
            raise Forbidden("this token belongs to another account")
        assert self.account is not None
        return self.account


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def bearer(headers: Mapping[str, str] | None) -> str:
    for key, value in (headers or {}).items():
        if key.lower() == "authorization":
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    raise Unauthorized("missing bearer token (Authorization: Bearer TOKEN)")


# Port: token hash -> (account, role) or (account, role, label) or None. The default reads the table.
TokenLookup = Callable[[str], "tuple[str, str] | tuple[str, str, str | None] | None"]


LAST_USED_EVERY = 3600  # seconds: "last used" is written at most once an hour per token


def token_id(token_hash: str) -> str:
    """A token's public id (``GET /v1/accounts/{a}/tokens``): never the secret, nor its full hash."""
    return "tok_" + token_hash[:16]


def lookup_token_in_table(token_hash: str) -> tuple[str, str, str | None] | None:
    import time

    from calltrack.models import bind_once
    from calltrack.models.accounts import ApiToken
    from calltrack.settings import get_settings

    # Bound here, not by a caller: every function that authenticates (report API, admin, pools
    # report) reaches the stack's tokens table, whatever it bound at start-up.
    bind_once(get_settings(), [ApiToken])
    try:
        item = ApiToken.get(token_hash)
    except ApiToken.DoesNotExist:
        return None  # unknown, or revoked (deleted): 401 from the next request on, no cache
    now = time.time()
    if item.expires_at is not None and now >= float(item.expires_at):
        return None  # expired (DynamoDB's TTL deletes the row later)
    last = item.last_used_at.timestamp() if item.last_used_at is not None else None
    if last is None or now - last >= LAST_USED_EVERY:
        _touch(item, now)
    return item.account, item.role, item.label


def _touch(item: object, now: float) -> None:
    """Record the use, at most once per LAST_USED_EVERY (conditional, so racing requests write once)."""
    from datetime import UTC, datetime

    from calltrack.models.accounts import ApiToken

    assert isinstance(item, ApiToken)
    stamp = datetime.fromtimestamp(now, UTC)
    before = datetime.fromtimestamp(now - LAST_USED_EVERY, UTC)
    try:
        item.update(
            actions=[ApiToken.last_used_at.set(stamp)],
            condition=ApiToken.token_hash.exists()
            & (ApiToken.last_used_at.does_not_exist() | (ApiToken.last_used_at < before)),
        )
    except Exception:  # noqa: BLE001 - a lost race or a throttle: "last used" is best-effort
        pass


def authenticate(
    headers: Mapping[str, str] | None,
    *,
    operator_token: str,
    lookup: TokenLookup = lookup_token_in_table,
) -> Principal:
    token = bearer(headers)
    if operator_token and hmac.compare_digest(token.encode(), operator_token.encode()):
        return Principal(account=None, role=OPERATOR)
    found = lookup(hash_token(token))
    if found is None:
        raise Unauthorized("unknown or revoked token")
    account, role = found[0], found[1]
    label = found[2] if len(found) > 2 else None
    return Principal(account=account, role=role, token_id=token_id(hash_token(token)), label=label)


PRINCIPAL_KEY = "principal"


def principal_from_app(app: object) -> Principal:
    """Authenticate the current request of a Powertools resolver ``app`` (or one of its routers),
    once per request: the principal is kept in the request's routing context, which the resolver
    clears after each request."""
    from calltrack.settings import get_settings

    context = getattr(app, "context", None)
    known = context.get(PRINCIPAL_KEY) if isinstance(context, dict) else None
    if isinstance(known, Principal):
        return known
    settings = get_settings()
    headers = app.current_event.headers  # type: ignore[attr-defined]
    principal = authenticate(headers, operator_token=resolve_operator_token(settings))
    if isinstance(context, dict):
        context[PRINCIPAL_KEY] = principal
    return principal


def resolve_operator_token(settings: object) -> str:
    """The operator token: from env locally, from SSM/Secrets Manager when deployed."""
    token = getattr(settings, "admin_token", "")
    param = getattr(settings, "admin_token_param", "")
    if token or not param:
        return str(token)
    from aws_lambda_powertools.utilities import parameters

    return str(parameters.get_parameter(param, decrypt=True, max_age=300))
