"""Invoke a wiring function's real handler in-process, like one warm Lambda container each.

Handlers are imported lazily ("module.attr" from the wiring) and cached. Each function has
one lock: Lambda runs one event at a time per execution environment, and Powertools' resolver
keeps per-event state on the module-level app, so concurrent calls into the same function
would race. The in-flight counter lets ``drain()`` wait until no handler is running.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from calltrack_cli.local.events import LambdaContext
from infra.wiring import LambdaFunction, Wiring

log = logging.getLogger("calltrack.local")

Handler = Callable[[Any, Any], Any]


def import_handler(dotted: str) -> Handler:
    module_name, _, attr = dotted.rpartition(".")
    if not module_name:
        raise ValueError(f"handler must be 'module.attr', got {dotted!r}")
    module = importlib.import_module(module_name)
    fn = getattr(module, attr)
    if not callable(fn):
        raise TypeError(f"{dotted} is not callable")
    return fn


def share_botocore_data() -> None:
    """One botocore data loader for every botocore session of this process (idempotent).

    A Lambda container runs one event at a time on one thread, so pynamodb's per-thread botocore
    session is made once per container. Here every invocation runs on the thread of the request
    or poll that caused it, so pynamodb made a session per invocation, and each session parsed
    botocore's endpoint rules and service models again: 12% of the CPU of an integration test run
    went to that JSON (py-spy, 2026-12-03). The loader caches what it parsed and is only read, so
    sessions share it; what a session builds from it (clients, resolvers) stays its own. A boto3
    session adds boto3's data folder to its loader's search paths: the shared loader keeps each
    folder once."""
    import botocore.loaders
    import botocore.session

    if getattr(botocore.session.create_loader, "shared", False):
        return
    create = botocore.loaders.create_loader
    loaders: dict[str | None, botocore.loaders.Loader] = {}
    guard = threading.Lock()

    def shared_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
        with guard:
            loader = loaders.get(search_path_string)
            if loader is None:
                loader = loaders[search_path_string] = create(search_path_string)
                loader._search_paths = _Folders(loader.search_paths)
            return loader

    shared_loader.shared = True  # type: ignore[attr-defined]
    botocore.session.create_loader = shared_loader


class _Folders(list[str]):
    """Search paths that hold each folder once, whoever appends it."""

    def append(self, folder: str) -> None:
        if folder not in self:
            super().append(folder)


class Invoker:
    def __init__(self, wiring: Wiring) -> None:
        share_botocore_data()
        self.wiring = wiring
        self._handlers: dict[str, Handler] = {}
        self._locks: dict[str, threading.Lock] = {fn.name: threading.Lock() for fn in wiring.functions}
        self._guard = threading.Lock()
        self._in_flight = 0
        self._finished = 0
        self._idle = threading.Condition(self._guard)

    @property
    def in_flight(self) -> int:
        with self._guard:
            return self._in_flight

    @property
    def finished(self) -> int:
        """Invocations ended so far (drain: a round during which one ended is not idle)."""
        with self._guard:
            return self._finished

    def handler_for(self, fn: LambdaFunction) -> Handler:
        handler = self._handlers.get(fn.name)
        if handler is None:
            handler = import_handler(fn.handler)
            self._handlers[fn.name] = handler
        return handler

    def invoke(self, function_name: str, event: Any, *, at: float | None = None) -> Any:
        """Call the function's handler with ``event`` and a Lambda-like context; exceptions propagate.

        ``at`` (epoch seconds) runs the invocation as if it were that instant: domain code reading
        ``calltrack.clock`` sees it (local only: replayed demo calls, scheduled jobs).
        """
        fn = self.wiring.function(function_name)
        with self._guard:
            self._in_flight += 1
        try:
            lock = self._locks.setdefault(fn.name, threading.Lock())
            with lock:
                handler = self.handler_for(fn)
                context = LambdaContext(fn.name, memory_limit_in_mb=fn.memory_mb, timeout_s=fn.timeout_s)
                if at is None:
                    return handler(event, context)
                from calltrack.clock import frozen

                with frozen(at):
                    return handler(event, context)
        finally:
            with self._guard:
                self._in_flight -= 1
                self._finished += 1
                self._idle.notify_all()
