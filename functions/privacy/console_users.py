"""An account's console users and their groups, removed with the account (account deletion): a
name re-used for a new account must not inherit the old one's users. Each user's ID tokens are
revoked first (``calltrack.auth.revoke_console_user``): deleting a Cognito user does not end the
tokens it holds, which name the account's group. Only three actions on the pool are granted to
this function (``infra.components.console.USER_REMOVE_ACTIONS``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from calltrack.auth import ROLES
from calltrack.cognito import group_name


class CognitoAccountUsers:
    def __init__(self, client: Any, pool_id: str, revoke: Callable[[str, str], None]) -> None:
        self._idp = client
        self._pool = pool_id
        self._revoke = revoke  # (sub, username): refuse the user's tokens issued until now

    def delete_all(self, account: str) -> int:
        """Delete every user of the account's ``<account>:<role>`` groups, then the groups; the
        number of users deleted (0 again on a second run)."""
        deleted = 0
        for role in ROLES:
            group = group_name(account, role)
            try:
                for username, sub in self._members(group):
                    if sub:
                        self._revoke(sub, username)
                    try:
                        self._idp.admin_delete_user(UserPoolId=self._pool, Username=username)
                        deleted += 1
                    except self._idp.exceptions.UserNotFoundException:
                        pass
                self._idp.delete_group(UserPoolId=self._pool, GroupName=group)
            except self._idp.exceptions.ResourceNotFoundException:
                continue  # no such group: nothing of this role
        return deleted

    def _members(self, group: str) -> list[tuple[str, str]]:
        """(username, sub) of every user in ``group``."""
        names: list[tuple[str, str]] = []
        kwargs: dict[str, Any] = {"UserPoolId": self._pool, "GroupName": group}
        while True:
            page = self._idp.list_users_in_group(**kwargs)
            for user in page.get("Users", []):
                attrs = {a["Name"]: a["Value"] for a in user.get("Attributes", [])}
                names.append((str(user["Username"]), str(attrs.get("sub") or "")))
            if not page.get("NextToken"):
                return names
            kwargs["NextToken"] = page["NextToken"]
