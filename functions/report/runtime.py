"""Start-up for the report functions: settings read and tables bound once per process."""

from __future__ import annotations

_started = False


def ensure_started() -> None:
    global _started
    if _started:
        return
    from calltrack.models import bind_models
    from calltrack.settings import get_settings

    bind_models(get_settings())
    _started = True


def reset() -> None:
    global _started
    _started = False
