"""The admin function's composition root: its AdminStore, built once per process."""

from __future__ import annotations

from admin.ports import AdminStore
from calltrack.account_secrets import AccountSecrets
from calltrack.settings import Needs

NEEDS = Needs(
    tables=("accounts", "numbers", "tokens", "audit"), buckets=("routing",),
    secrets=("admin_token",),
    account_secrets="write",
)

_store: AdminStore | None = None


def store() -> AdminStore:
    """The process's AdminStore (settings read and checked, models bound on first use)."""
    global _store
    if _store is None:
        import boto3

        from admin.store import DynamoAdminStore
        from calltrack.accounts import account_reader
        from calltrack.models import start
        from calltrack.models.accounts import MODELS

        settings = start(NEEDS, list(MODELS))
        s3 = boto3.session.Session().client("s3", region_name=settings.region)
        _store = DynamoAdminStore(
            settings.region, account_reader(), s3=s3, routing_bucket=settings.routing_bucket
        )
    return _store


def account_secrets() -> AccountSecrets:
    """The process's account secrets in SSM (settings checked first, like every port here)."""
    from calltrack.account_secrets import account_secrets as shared
    from calltrack.settings import get_settings

    get_settings(NEEDS)
    return shared()


def stack_public_url() -> str:
    """The base URL Twilio signs its requests to this stack with (``CALLTRACK_PUBLIC_URL``)."""
    from calltrack.settings import get_settings

    return get_settings(NEEDS).public_url.rstrip("/")


def reset() -> None:
    global _store
    _store = None
