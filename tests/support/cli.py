"""The ``calltrack`` command run in process (Typer's CliRunner), for CLI tests of every tier."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from typing import Any

from typer.testing import CliRunner


class _CallerThreadOnly:
    """A stand-in for ``sys.stdout``/``sys.stderr`` during one CLI run: what the CLI's own thread
    writes is captured; what other threads write (the local stack's background consumers print
    their logs and metrics) goes where it went before, so it never lands in the CLI's output."""

    def __init__(self, captured: Any, elsewhere: Any) -> None:
        self._captured = captured
        self._elsewhere = elsewhere
        self._thread = threading.get_ident()

    def _target(self) -> Any:
        return self._captured if threading.get_ident() == self._thread else self._elsewhere

    def write(self, text: str) -> int:
        return int(self._target().write(text))

    def flush(self) -> None:
        self._target().flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._captured, name)


class _Runner(CliRunner):
    @contextlib.contextmanager
    def isolation(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        outer_out, outer_err = sys.stdout, sys.stderr
        with super().isolation(*args, **kwargs) as streams:
            sys.stdout = _CallerThreadOnly(sys.stdout, outer_out)  # type: ignore[assignment]
            sys.stderr = _CallerThreadOnly(sys.stderr, outer_err)  # type: ignore[assignment]
            yield streams


def run_cli(*args: str, input: str | None = None) -> Any:
    """``calltrack ARGS...`` (``input`` as its stdin); returns the click Result (exit_code, stdout,
    stderr, output)."""
    from calltrack_cli.main import app

    return _Runner().invoke(app, list(args), input=input)
