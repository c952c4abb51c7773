"""Point the running stack's handlers somewhere else for a while (a fake's base URL, a timeout)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from calltrack.settings import reset_settings


@contextmanager
def settings_env(overrides: Mapping[str, str]) -> Iterator[None]:
    """Set these variables and re-read settings; restore both afterwards."""
    saved = {key: os.environ.get(key) for key in overrides}
    os.environ.update(overrides)
    reset_settings()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_settings()
