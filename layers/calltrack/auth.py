"""Who is asking: bearer tokens (one account and one role each, stored hashed), the operator token,
and console users signed in with Cognito (calltrack.cognito)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from calltrack.errors import Forbidden, NotFound, Unauthorized

if TYPE_CHECKING:
    from calltrack.cognito import CognitoPool

ROLES = ("admin", "manager", "marketer")
OPERATOR = "operator"
TOKEN_PREFIX = "ct_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the operator (account=None) or an account token with a role."""

    account: str | None
    role: str
    token_id: str | None = None  # tok_…; user:<sub> for a console user; None for the operator
    label: str | None = None
    expires_at: float | None = None  # a console user's ID token: when it expires (epoch seconds)
    session: str | None = None  # a console user's ID token: its jti (what signing out ends)

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


def session_cookie(cookies: list[str] | None, name: str) -> str | None:
    """The console's session cookie ``name`` (``calltrack.cognito.session_cookie_name``:
    ``__Host-ct_session`` when deployed, ``ct_session`` locally; no default, so no caller reads the
    local name in deployed code) from an HTTP API v2 event's ``cookies``."""
    for cookie in cookies or []:
        key, _, value = cookie.partition("=")
        if key.strip() == name and value.strip():
            return value.strip()
    return None


# A disabled console user's ID tokens stay valid until they expire (a JWT is verified, not looked
# up), so disabling writes a marker in the tokens table under the user's token id (``user:<sub>``;
# an API token's key is a SHA-256 hex digest, never that), outside every account's token list and
# deleted by TTL once no token issued before can be alive. Every console request reads it (one
# GetItem, the same as an API token's lookup) and refuses a token issued no later than the marker:
# a user enabled again in Cognito signs in afresh.
DISABLED_USERS = "#disabled-console-users"  # the marker's "account": no account's token list has it

# Cognito's clock (``iat``) and ours may differ by this much: a token issued up to a minute after
# the disable is refused too (a user enabled again signs in a minute later).
CLOCK_SKEW_S = 60.0

# Signing out ends that sign-in's session on the server too, not only in the browser: the session
# (the ID token's ``jti``) joins the ``revoked_sessions`` of the same marker item, which every
# console request reads anyway, so it costs no request. A user who signed out but is not disabled
# has a marker whose "account" is SIGNED_OUT_USERS (no disable time).
SIGNED_OUT_USERS = "#signed-out-console-users"


@dataclass(frozen=True)
class UserMark:
    """What the tokens table says of a console user: disabled when, and the sessions signed out."""

    disabled_at: float | None = None
    signed_out: frozenset[str] = frozenset()


# Port: a console user's token id (``user:<sub>``) -> their mark, or None.
UserMarkLookup = Callable[[str], "UserMark | None"]


def revoke_console_user(sub: str, label: str, now: float | None = None) -> None:
    """Refuse every ID token of console user ``sub`` issued until ``now`` (default: now; see above)."""
    import time
    from datetime import UTC, datetime

    from calltrack.cognito import ID_TOKEN_MAX_S
    from calltrack.models import bind_once
    from calltrack.models.accounts import ApiToken
    from calltrack.settings import get_settings

    if not sub:
        raise ValueError("a console user without a sub cannot be revoked")
    now = time.time() if now is None else now
    bind_once(get_settings(), [ApiToken])
    ApiToken(
        f"user:{sub}",
        account=DISABLED_USERS,
        role="disabled",
        label=label,
        created_at=datetime.fromtimestamp(now, UTC),
        expires_at=int(now + ID_TOKEN_MAX_S + 300),
    ).save()


def sign_out_console_session(sub: str, session: str, label: str, now: float | None = None) -> None:
    """Refuse the ID token of console user ``sub`` whose ``jti`` is ``session`` from now on (the
    user's other sign-ins go on). One UpdateItem on the user's marker; a disable's marker stays one."""
    import time
    from datetime import UTC, datetime

    from calltrack.cognito import ID_TOKEN_MAX_S
    from calltrack.models import bind_once
    from calltrack.models.accounts import ApiToken
    from calltrack.settings import get_settings

    if not sub or not session:
        raise ValueError("a console session without a sub or a jti cannot be signed out")
    now = time.time() if now is None else now
    bind_once(get_settings(), [ApiToken])
    ApiToken(f"user:{sub}").update(
        actions=[
            ApiToken.account.set(ApiToken.account | SIGNED_OUT_USERS),
            ApiToken.role.set(ApiToken.role | "signed-out"),
            ApiToken.label.set(ApiToken.label | label),
            ApiToken.created_at.set(ApiToken.created_at | datetime.fromtimestamp(now, UTC)),
            # the later of the two: a disable's marker lives as long as this session's token could
            ApiToken.expires_at.set(int(now + ID_TOKEN_MAX_S + 300)),
            ApiToken.revoked_sessions.add({session}),
        ]
    )


def user_mark_in_table(user_token_id: str) -> UserMark | None:
    """The console user's marker: when they were disabled (``revoke_console_user``) and the
    sessions they signed out of (``sign_out_console_session``), or None."""
    import time

    from calltrack.models import bind_once
    from calltrack.models.accounts import ApiToken
    from calltrack.settings import get_settings

    bind_once(get_settings(), [ApiToken])
    try:
        item = ApiToken.get(user_token_id)
    except ApiToken.DoesNotExist:
        return None
    if item.account not in (DISABLED_USERS, SIGNED_OUT_USERS):
        return None
    if item.expires_at is not None and time.time() >= float(item.expires_at):
        return None
    disabled = item.created_at.timestamp() if item.account == DISABLED_USERS else None
    return UserMark(disabled, frozenset(item.revoked_sessions or ()))


SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def authenticate(
    headers: Mapping[str, str] | None,
    *,
    operator_token: str,
    lookup: TokenLookup = lookup_token_in_table,
    cookies: list[str] | None = None,
    method: str = "GET",
    cognito: CognitoPool | None = None,
    cookie_name: str,
    user_mark: UserMarkLookup = user_mark_in_table,
) -> Principal:
    """Who is asking: a bearer token (API token, operator token or a Cognito ID token), or the
    console's session cookie holding a Cognito ID token. A cookie-authenticated write must carry
    ``X-Calltrack-Console`` (the cookie is SameSite=Strict too): no other site can make one."""
    from calltrack.cognito import CONSOLE_HEADER, looks_like_jwt

    try:
        token = bearer(headers)
        from_cookie = False
    except Unauthorized:
        cookie = session_cookie(cookies, cookie_name)
        if cookie is None:
            raise
        token, from_cookie = cookie, True
    if from_cookie and method.upper() not in SAFE_METHODS:
        if not any(key.lower() == CONSOLE_HEADER for key in (headers or {})):
            raise Forbidden(f"a console write must send the {CONSOLE_HEADER} header")
    if looks_like_jwt(token):
        return cognito_principal(token, cognito, user_mark)
    if from_cookie:
        raise Unauthorized("session expired: sign in again")
    if operator_token and hmac.compare_digest(token.encode(), operator_token.encode()):
        return Principal(account=None, role=OPERATOR)
    found = lookup(hash_token(token))
    if found is None:
        raise Unauthorized("unknown or revoked token")
    account, role = found[0], found[1]
    label = found[2] if len(found) > 2 else None
    return Principal(account=account, role=role, token_id=token_id(hash_token(token)), label=label)


def cognito_principal(
    token: str, cognito: CognitoPool | None, user_mark: UserMarkLookup = user_mark_in_table
) -> Principal:
    """A console user's Principal from a verified Cognito ID token (its ``<account>:<role>`` group);
    401 when the user was disabled after the token was issued (``revoke_console_user``) or signed
    out of this session (``sign_out_console_session``)."""
    from calltrack.cognito import account_role, verify_id_token

    if cognito is None:
        raise Unauthorized("console sign-in is not configured on this stack")
    claims = verify_id_token(token, cognito)
    account, role = account_role(claims)
    mark = user_mark(f"user:{claims.get('sub')}") or UserMark()
    since = mark.disabled_at
    issued = claims.get("iat")
    if since is not None and not (isinstance(issued, (int, float)) and issued > since + CLOCK_SKEW_S):
        raise Unauthorized("this console user is disabled")
    session = str(claims.get("jti") or "")
    if session and session in mark.signed_out:
        raise Unauthorized("session ended: sign in again")
    # The e-mail is the user's name in the audit trail: only admins set it (the app client lets no
    # user write their own attributes, infra/components/console.py).
    user = str(claims.get("email") or claims.get("cognito:username") or claims.get("sub") or "")
    return Principal(account=account, role=role, token_id=f"user:{claims.get('sub')}", label=user,
                     expires_at=float(claims["exp"]), session=session or None)


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
    from calltrack.cognito import CognitoPool, session_cookie_name

    settings = get_settings()
    event = app.current_event  # type: ignore[attr-defined]
    principal = authenticate(
        event.headers,
        operator_token=resolve_operator_token(settings),
        cookies=event.get("cookies"),
        method=event.get("requestContext", {}).get("http", {}).get("method", "GET"),
        cognito=CognitoPool.from_settings(settings),
        cookie_name=session_cookie_name(secure=not settings.local_mode),
    )
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
