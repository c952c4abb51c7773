"""Start-up for the admin function: settings read and tables bound once per process."""

from __future__ import annotations

from admin.ports import AdminStore

_store: AdminStore | None = None


def store() -> AdminStore:
    """The process's AdminStore (settings read and models bound on first use)."""
    global _store
    if _store is None:
        from admin.store import DynamoAdminStore
        from calltrack.models import bind_models
        from calltrack.models.accounts import MODELS
        from calltrack.settings import get_settings

        settings = get_settings()
        bind_models(settings, list(MODELS))
        _store = DynamoAdminStore(settings.region)
    return _store


def reset() -> None:
    global _store
    _store = None
