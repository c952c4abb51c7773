"""PynamoDB models: the one declaration of every table's keys, indexes, TTL and streams.

The CDK stack builds its tables from ``all_models()`` (see infra/), the local runtime creates
the same tables in the emulator from them, and ``bind_models`` points them at the physical
table names from settings at start-up. Functions whose cold start matters (voice_webhook) use
raw boto3 with the same key names instead of importing PynamoDB; ``table_keys()`` documents them.

Each bounded context owns one module here; add a model there and list it in its ``MODELS``.
"""

from __future__ import annotations

from typing import Any

from calltrack.settings import Needs, Settings

# Logical table name -> module that owns it; importing is deferred so callers pay only for use.
_MODULES = ("accounts", "calls", "dni", "recordings", "reports", "jobs", "conversions")


def all_models() -> list[type[Any]]:
    import importlib

    models: list[type[Any]] = []
    for name in _MODULES:
        module = importlib.import_module(f"calltrack.models.{name}")
        models.extend(module.MODELS)
    return models


def logical_name(model: type[Any]) -> str:
    """The logical table name of a model (its Meta.logical_name)."""
    return str(model.Meta.logical_name)


def bind_models(settings: Settings, models: list[type[Any]] | None = None) -> None:
    """Point every model at its physical table (and region) from settings."""
    for model in models if models is not None else all_models():
        name = settings.table_name(logical_name(model))
        if model.Meta.table_name != name:
            model.Meta.table_name = name
            model._connection = None  # drop the cached TableConnection for the old name
        model.Meta.region = settings.region


_bound: dict[int, Settings] = {}  # id(model) -> the settings it was bound with


def bind_once(settings: Settings, models: list[type[Any]] | None = None) -> None:
    """Bind each model not yet bound with these settings (cheap; any number of callers)."""
    todo = [m for m in (models if models is not None else all_models()) if _bound.get(id(m)) is not settings]
    if todo:
        bind_models(settings, todo)
        for model in todo:
            _bound[id(model)] = settings


def start(needs: Needs, models: list[type[Any]] | None = None) -> Settings:
    """A PynamoDB-using function's start-up: settings read (``needs`` checked, see
    ``calltrack.settings.get_settings``) and the models bound (each model once per settings, so
    two contexts sharing a process bind what each uses)."""
    from calltrack.settings import get_settings

    settings = get_settings(needs)
    bind_once(settings, models)
    return settings
