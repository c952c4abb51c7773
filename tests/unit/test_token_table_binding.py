"""Every function that authenticates reads the stack's tokens table, whatever it bound at start-up
(a deployed table has a generated name; the local default name does not exist there)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from moto import mock_aws

from calltrack.auth import lookup_token_in_table
from calltrack.settings import reset_settings


@pytest.fixture()
def deployed_tokens_table(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("CALLTRACK_LOCAL", raising=False)
    monkeypatch.setenv("CALLTRACK_TABLE_TOKENS", "Calltrack-DataTokensTable-1A2B3C")
    reset_settings()
    with mock_aws():
        import boto3

        from calltrack.models.accounts import ApiToken

        boto3.client("dynamodb", region_name="us-east-1").create_table(
            TableName="Calltrack-DataTokensTable-1A2B3C",
            KeySchema=[{"AttributeName": "token_hash", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "token_hash", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield ApiToken
        ApiToken.Meta.table_name = "calltrack-tokens"  # as the rest of the unit tier expects
        ApiToken._connection = None
    reset_settings()


def test_a_token_is_looked_up_in_the_table_the_stack_named(deployed_tokens_table) -> None:
    # Given a deployed stack whose tokens table has a generated name, and a stored token
    api_token = deployed_tokens_table
    from calltrack.models import bind_models
    from calltrack.settings import get_settings

    bind_models(get_settings(), [api_token])
    api_token("h" * 64, account="acme", role="manager", created_at=datetime(2026, 11, 30, tzinfo=UTC)).save()
    api_token.Meta.table_name = "calltrack-tokens"  # as a function that bound nothing else finds it
    api_token._connection = None
    # When a route authenticates, Then the token is found there (not in calltrack-tokens)
    assert lookup_token_in_table("h" * 64) == ("acme", "manager", None)
    # and its use is recorded once (at most once an hour), and an expired token is refused
    assert api_token.get("h" * 64).last_used_at is not None
    bind_models(get_settings(), [api_token])
    api_token("e" * 64, account="acme", role="admin", created_at=datetime(2026, 11, 30, tzinfo=UTC),
              expires_at=1).save()
    assert lookup_token_in_table("e" * 64) is None
