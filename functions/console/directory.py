"""The Cognito user pool as the console's user directory (the port ``UserDirectory``).

Sign-in is ``InitiateAuth`` with ``USER_PASSWORD_AUTH`` on the console's app client (no client
secret), sent unsigned as a browser would; management uses the ``Admin*`` actions the function's
role is granted on the stack's pool. A user's username is their e-mail address, lower-cased.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from calltrack.cognito import group_name
from calltrack.errors import BadRequest, Conflict, NotFound, Unauthorized

ROLES = ("admin", "manager", "marketer")


@dataclass(frozen=True)
class SignIn:
    """The ID token of a completed sign-in, or the challenge Cognito asks for next."""

    id_token: str | None = None
    challenge: str | None = None


class UserDirectory(Protocol):
    def sign_in(self, email: str, password: str, new_password: str | None = None) -> SignIn: ...

    def create(self, account: str, role: str, email: str, password: str | None) -> dict[str, Any]: ...

    def list(self, account: str) -> list[dict[str, Any]]: ...

    def member(self, account: str, email: str) -> dict[str, Any]: ...

    def disable(self, account: str, email: str) -> dict[str, Any]: ...


class CognitoDirectory:
    def __init__(self, client: Any, public_client: Any, pool_id: str, client_id: str) -> None:
        self._idp = client  # signed: Admin* actions
        self._public = public_client  # unsigned: InitiateAuth / RespondToAuthChallenge
        self._pool = pool_id
        self._client_id = client_id

    # -- sign-in -------------------------------------------------------------------------------
    def sign_in(self, email: str, password: str, new_password: str | None = None) -> SignIn:
        errors = self._public.exceptions
        try:
            answer = self._public.initiate_auth(
                ClientId=self._client_id,
                AuthFlow="USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": email, "PASSWORD": password},
            )
            if answer.get("ChallengeName") == "NEW_PASSWORD_REQUIRED":
                if not new_password:
                    return SignIn(challenge="new_password_required")
                answer = self._public.respond_to_auth_challenge(
                    ClientId=self._client_id,
                    ChallengeName="NEW_PASSWORD_REQUIRED",
                    Session=answer["Session"],
                    ChallengeResponses={"USERNAME": email, "NEW_PASSWORD": new_password},
                )
        except (
            errors.NotAuthorizedException,
            errors.UserNotFoundException,
            errors.PasswordResetRequiredException,
            errors.UserNotConfirmedException,
        ):
            raise Unauthorized("wrong e-mail address or password") from None
        except errors.InvalidPasswordException as exc:
            raise BadRequest(f"new_password: {_message(exc)}", field="new_password") from None
        if answer.get("ChallengeName"):
            raise Unauthorized(f"sign-in needs {answer['ChallengeName']}, which the console does not support")
        token = (answer.get("AuthenticationResult") or {}).get("IdToken")
        if not token:
            raise Unauthorized("sign-in returned no token")
        return SignIn(id_token=str(token))

    # -- users ---------------------------------------------------------------------------------
    def _ensure_group(self, account: str, role: str) -> str:
        name = group_name(account, role)
        try:
            self._idp.get_group(GroupName=name, UserPoolId=self._pool)
        except self._idp.exceptions.ResourceNotFoundException:
            try:
                self._idp.create_group(
                    GroupName=name,
                    UserPoolId=self._pool,
                    Description=f"calltrack {role}s of account {account}",
                )
            except self._idp.exceptions.GroupExistsException:
                pass
        return name

    def _groups_of(self, email: str) -> list[str]:
        out = self._idp.admin_list_groups_for_user(Username=email, UserPoolId=self._pool)
        return [str(g["GroupName"]) for g in out.get("Groups", [])]

    def create(self, account: str, role: str, email: str, password: str | None) -> dict[str, Any]:
        errors = self._idp.exceptions
        group = self._ensure_group(account, role)
        request: dict[str, Any] = {
            "UserPoolId": self._pool,
            "Username": email,
            "UserAttributes": [
                {"Name": "email", "Value": email},
                {"Name": "email_verified", "Value": "true"},
            ],
            "DesiredDeliveryMediums": ["EMAIL"],
        }
        if password:
            request["MessageAction"] = "SUPPRESS"  # the admin hands the password over themselves
        try:
            self._idp.admin_create_user(**request)
        except errors.UsernameExistsException:
            # One answer whether the address is this account's or another's: an account admin
            # learns nothing about other accounts' users.
            raise Conflict(
                "email: this address is already a console user (ask the operator)", field="email"
            ) from None
        except errors.InvalidParameterException as exc:
            raise BadRequest(f"email: {_message(exc)}", field="email") from None
        step = "password"
        try:
            if password:
                self._idp.admin_set_user_password(
                    UserPoolId=self._pool, Username=email, Password=password, Permanent=True
                )
            step = "group"
            self._idp.admin_add_user_to_group(UserPoolId=self._pool, Username=email, GroupName=group)
        except Exception as exc:
            # A user left without its group could sign in to nothing and be seen by no list or
            # disable (they look in the groups), and would block its address: it goes.
            self._idp.admin_delete_user(UserPoolId=self._pool, Username=email)
            refused = errors.InvalidPasswordException | errors.InvalidParameterException
            if step == "password" and isinstance(exc, refused):
                raise BadRequest(f"password: {_message(exc)}", field="password") from None
            raise
        return {
            "email": email,
            "role": role,
            "enabled": True,
            "status": "CONFIRMED" if password else "FORCE_CHANGE_PASSWORD",
        }

    def list(self, account: str) -> list[dict[str, Any]]:
        users: dict[str, dict[str, Any]] = {}
        for role in ROLES:  # lowest first: a user in two roles shows the higher
            kwargs: dict[str, Any] = {"UserPoolId": self._pool, "GroupName": group_name(account, role)}
            while True:
                try:
                    page = self._idp.list_users_in_group(**kwargs)
                except self._idp.exceptions.ResourceNotFoundException:
                    break
                for user in page.get("Users", []):
                    attrs = {a["Name"]: a["Value"] for a in user.get("Attributes", [])}
                    email = attrs.get("email") or str(user.get("Username"))
                    users[email] = {
                        "email": email,
                        "role": role,
                        "enabled": bool(user.get("Enabled", True)),
                        "status": user.get("UserStatus"),
                        "created_at": _iso(user.get("UserCreateDate")),
                    }
                if not page.get("NextToken"):
                    break
                kwargs["NextToken"] = page["NextToken"]
        return sorted(users.values(), key=lambda u: u["email"])

    def member(self, account: str, email: str) -> dict[str, Any]:
        """The account's console user ``email``: its highest role and Cognito ``sub``; NotFound
        when no such user is in one of the account's groups."""
        try:
            groups = self._groups_of(email)
            user = self._idp.admin_get_user(UserPoolId=self._pool, Username=email)
        except self._idp.exceptions.UserNotFoundException:
            raise NotFound(f"no console user {email} in account {account}") from None
        roles = [g.split(":", 1)[1] for g in groups if g.startswith(f"{account}:")]
        if not roles:
            raise NotFound(f"no console user {email} in account {account}")
        sub = next((a["Value"] for a in user.get("UserAttributes", []) if a["Name"] == "sub"), "")
        return {"email": email, "role": max(roles, key=ROLES.index), "sub": sub}

    def disable(self, account: str, email: str) -> dict[str, Any]:
        user = self.member(account, email)
        self._idp.admin_disable_user(UserPoolId=self._pool, Username=email)
        # Refresh tokens are revoked too; the ID tokens already issued are refused by the API
        # through the marker written before (calltrack.auth.revoke_console_user).
        self._idp.admin_user_global_sign_out(UserPoolId=self._pool, Username=email)
        return {"email": email, "role": user["role"], "enabled": False}


def _message(exc: Exception) -> str:
    response = getattr(exc, "response", {}) or {}
    return str((response.get("Error") or {}).get("Message") or exc)


def _iso(value: object) -> str | None:
    from datetime import UTC, datetime

    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return None
