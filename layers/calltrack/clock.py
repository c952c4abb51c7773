"""The one clock every domain module asks for the time.

Domain code calls ``calltrack.clock.now()`` / ``epoch()`` instead of ``datetime.now``. In AWS that is
the system clock. The local runtime may run one invocation "at" another instant (the demo replays a
month of calls through the real webhooks) by wrapping the invocation in ``frozen(at)``; the override
is a context variable, so it applies to that request's thread only. Domain code never knows.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

_override: contextvars.ContextVar[float | None] = contextvars.ContextVar("calltrack_clock", default=None)


def epoch() -> float:
    """Seconds since the epoch (UTC)."""
    fixed = _override.get()
    return time.time() if fixed is None else fixed


def now() -> datetime:
    """The current instant as an aware UTC datetime."""
    return datetime.fromtimestamp(epoch(), tz=UTC)


@contextmanager
def frozen(at: datetime | float) -> Iterator[None]:
    """Run the block as if it were ``at`` (aware datetime or epoch seconds)."""
    value = at.timestamp() if isinstance(at, datetime) else float(at)
    token = _override.set(value)
    try:
        yield
    finally:
        _override.reset(token)
