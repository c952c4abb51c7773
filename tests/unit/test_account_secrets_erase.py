"""Account deletion erases every secret of the account (DeleteParameters takes 10 names at a time)
and no other account's."""

from __future__ import annotations

import pytest
from moto import mock_aws

from calltrack.account_secrets import AccountSecrets


@pytest.fixture()
def ssm(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        import boto3

        yield boto3.client("ssm", region_name="us-east-1")


def test_every_secret_of_the_account_is_deleted_and_only_its(ssm):
    # Given 12 secrets of one account (more than one DeleteParameters call) and one of another
    secrets = AccountSecrets(ssm)
    for i in range(12):
        secrets.put("clinic-a", f"crm-{i:02d}", f"value-{i}")
    secrets.put("clinic-b", "crm-00", "kept")
    assert secrets.get("clinic-a", "crm-00") == "value-0"  # cached now
    # When the account's secrets are erased
    deleted = secrets.delete_all("clinic-a")
    # Then all 12 are gone (the cache too), the other account's stays, and a second run finds none
    assert deleted == 12
    assert secrets.names("clinic-a") == [] and secrets.get("clinic-a", "crm-00") is None
    assert secrets.get("clinic-b", "crm-00") == "kept"
    assert secrets.delete_all("clinic-a") == 0
