"""How much of a Lambda invocation is left, for work that stops in time instead of being killed.

The context's ``get_remaining_time_in_millis`` (the local runtime's contexts have it too); without a
context (a test, a script) there is no limit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def remaining(context: Any) -> Callable[[], int] | None:
    """The context's remaining time in milliseconds, when it has one."""
    fn = getattr(context, "get_remaining_time_in_millis", None)
    return fn if callable(fn) else None


def out_of_time(context: Any, keep_ms: int) -> Callable[[], bool]:
    """True once less than ``keep_ms`` of the invocation is left (never without a context)."""
    left = remaining(context)
    if left is None:
        return lambda: False
    return lambda: left() < keep_ms
