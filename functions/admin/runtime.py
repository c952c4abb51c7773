"""The admin function's composition root: its AdminStore, built once per process."""

from __future__ import annotations

from admin.ports import AdminStore
from calltrack.settings import Needs

NEEDS = Needs(
    tables=("accounts", "numbers", "tokens", "leases"), buckets=("routing",), secrets=("admin_token",)
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


def reset() -> None:
    global _store
    _store = None
