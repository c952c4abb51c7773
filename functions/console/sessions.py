"""Console sessions: sign in with e-mail and password, get an HttpOnly cookie holding the Cognito
ID token; read who is signed in; sign out. The cookie is ``HttpOnly`` (no script reads it),
``SameSite=Strict`` (no other site sends it), ``Secure`` when deployed, and lives as long as the
token; the API verifies the token on every request (calltrack.auth), so an expired one is refused
there and the console asks to sign in again. Deployed, its name carries the ``__Host-`` prefix
(``__Host-ct_session``): the browser keeps it only as Secure, for Path=/, without Domain."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.shared.cookies import Cookie, SameSite
from pydantic import BaseModel, ConfigDict, Field

from calltrack.accounts import Accounts, UnknownAccount
from calltrack.auth import Principal
from calltrack.cognito import session_cookie_name
from calltrack.errors import Conflict, Unauthorized
from console.directory import UserDirectory


class SignInBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    password: str = Field(min_length=1, max_length=256)
    new_password: str | None = Field(default=None, min_length=8, max_length=256)


def console_language(language: str) -> str:
    """The console's language from the account's (``ja-JP`` -> ``ja``; anything else -> ``en``)."""
    return "ja" if language.lower().startswith("ja") else "en"


def session_body(principal: Principal, accounts: Accounts) -> dict[str, Any]:
    """Who is signed in; 401 when their account no longer exists (its users are left in the pool)."""
    assert principal.account is not None and principal.expires_at is not None
    try:
        config = accounts.get(principal.account)
    except UnknownAccount:
        raise Unauthorized("this console user's account no longer exists") from None
    expires_at = principal.expires_at
    return {
        "email": principal.label,
        "account": principal.account,
        "role": principal.role,
        "language": console_language(config.language),
        # the console shows times and "today" in the account's zone, as the API's date filters
        "timezone": config.timezone,
        "expires_at": (
            datetime.fromtimestamp(expires_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if expires_at else None
        ),
    }


def sign_in(body: SignInBody, directory: UserDirectory) -> str:
    """-> the ID token; 401 for a wrong e-mail or password, 409 when a new password is due."""
    result = directory.sign_in(body.email.strip().lower(), body.password, body.new_password)
    if result.id_token is None:
        raise Conflict(
            "new_password: this user must choose a new password (send new_password too)", field="new_password"
        )
    return result.id_token


def cookie(token: str, expires_at: float, *, secure: bool) -> Cookie:
    """The session cookie: as long as the token lives, HttpOnly, SameSite=Strict, Secure deployed."""
    return Cookie(
        name=session_cookie_name(secure),
        value=token,
        path="/",
        max_age=max(0, int(expires_at - time.time())),
        secure=secure,
        http_only=True,
        same_site=SameSite.STRICT_MODE,
    )


def cleared_cookie(*, secure: bool) -> Cookie:
    return Cookie(
        name=session_cookie_name(secure),
        value="",
        path="/",
        max_age=0,
        secure=secure,
        http_only=True,
        same_site=SameSite.STRICT_MODE,
    )
