"""Console users in Cognito (console.directory) when Cognito refuses part of a creation."""

from __future__ import annotations

from typing import Any

import pytest
from moto import mock_aws

from calltrack.errors import BadRequest
from console.directory import CognitoDirectory
from console.users import NewUser, model


@pytest.fixture()
def idp(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        import boto3

        client = boto3.client("cognito-idp", region_name="ap-northeast-1")
        pool = client.create_user_pool(PoolName="calltrack")["UserPool"]["Id"]
        yield client, pool


class RefusesPasswords:
    """The emulator's client, with Cognito's answer to a password its pattern refuses."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.exceptions = client.exceptions

    def admin_set_user_password(self, **_: Any) -> None:
        error = {"Error": {"Code": "InvalidParameterException", "Message": "Password does not match"}}
        raise self._client.exceptions.InvalidParameterException(error, "AdminSetUserPassword")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_user_cognito_refuses_a_password_for_is_not_left_behind(idp) -> None:
    client, pool = idp
    directory = CognitoDirectory(RefusesPasswords(client), client, pool, "client-id")
    # When Cognito refuses the password after the user was created
    with pytest.raises(BadRequest) as err:
        directory.create("acme", "manager", "kana@example.jp", "Passw0rd!x")
    # Then the answer is a 400 naming the password, and the half-made user is gone: the address
    # can be used again, not stuck outside every group
    assert err.value.field == "password"
    assert client.list_users(UserPoolId=pool)["Users"] == []
    again = CognitoDirectory(client, client, pool, "client-id")
    made = again.create("acme", "manager", "kana@example.jp", "Passw0rd!x")
    assert made["email"] == "kana@example.jp"


@pytest.mark.parametrize("password", [" passw0rd!", "passw0rd! ", "\tpassw0rd!"])
def test_a_password_with_a_space_at_either_end_is_refused_before_cognito(password: str) -> None:
    with pytest.raises(BadRequest) as err:
        model(NewUser, {"email": "kana@example.jp", "role": "manager", "password": password})
    assert err.value.field == "password"
