"""An account's console users: create (in the ``<account>:<role>`` group), list, disable.

An account admin manages their own account's users; the operator any account's. A user belongs to
one account. Without a password Cognito e-mails a temporary one and the user chooses their own at
first sign-in (``POST /v1/session`` with ``new_password``); with one (``calltrack users create
--password-stdin``) the user signs in with it directly.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from calltrack.accounts import Accounts
from calltrack.auth import ROLES, Principal
from calltrack.errors import BadRequest
from console.directory import UserDirectory

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]+$")
# The e-mail is the Cognito user name: at most 128 characters of letters, marks, symbols, numbers
# and punctuation (Cognito answers InvalidParameterException otherwise: a 500 here).
USER_NAME_MAX = 128


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=254)
    role: str
    # Cognito's password pattern: no space at either end
    password: str | None = Field(default=None, min_length=8, max_length=256, pattern=r"^\S(?:.*\S)?$")


def model(cls: type[BaseModel], raw: Any) -> Any:
    """Validate ``raw`` into ``cls``; the 400 names the first wrong field."""
    try:
        return cls.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        raise BadRequest(f"{field}: {first['msg']}", field=field) from None


def email_address(value: str) -> str:
    email = value.strip().lower()
    # Cognito's user-name pattern [\p{L}\p{M}\p{S}\p{N}\p{P}]+: no control, format or space characters
    if not EMAIL.match(email) or any(unicodedata.category(c)[0] not in "LMSNP" for c in email):
        raise BadRequest(f"email: not an e-mail address: {value[:140]!r}", field="email")
    if len(email) > USER_NAME_MAX:
        raise BadRequest(f"email: at most {USER_NAME_MAX} characters (a console user name)", field="email")
    return email


def _scope(principal: Principal, account: str, accounts: Accounts) -> None:
    principal.require_account(account)
    principal.require_role("admin")
    accounts.get(account)  # 404 for an account that does not exist


def create(
    principal: Principal, account: str, raw: Any, directory: UserDirectory, accounts: Accounts
) -> dict[str, Any]:
    _scope(principal, account, accounts)
    user = model(NewUser, raw)
    if user.role not in ROLES:
        raise BadRequest(f"role: must be one of {', '.join(ROLES)} (got {user.role!r})", field="role")
    return {
        "account": account,
        **directory.create(account, user.role, email_address(user.email), user.password),
    }


def list_users(
    principal: Principal, account: str, directory: UserDirectory, accounts: Accounts
) -> dict[str, Any]:
    _scope(principal, account, accounts)
    return {"account": account, "users": directory.list(account)}


def disable(
    principal: Principal,
    account: str,
    email: str,
    directory: UserDirectory,
    accounts: Accounts,
    revoke: Callable[[str, str], None],
) -> dict[str, Any]:
    """``revoke(sub, email)`` first — the ID tokens already issued are refused from now on, not
    only once they expire — then disable the user in the pool. Should the disable fail, the user's
    tokens are refused all the same and the admin's retry finishes it."""
    _scope(principal, account, accounts)
    user = directory.member(account, email_address(email))
    revoke(str(user["sub"]), str(user["email"]))
    return {"account": account, **directory.disable(account, user["email"])}
