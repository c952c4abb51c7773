"""The ``calltrack`` command run in process (Typer's CliRunner), for CLI tests of every tier."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from typing import Any
from unittest import mock

import typer.testing
from typer.testing import CliRunner


def _caller_thread_only(elsewhere: dict[str, Any]) -> type:
    """The text stream Typer's runner makes for ``sys.stdout``/``sys.stderr`` during one CLI run, made to
    keep only what the CLI's own thread writes: what other threads write (the local stack's
    background consumers print their logs and metrics) goes where it went before the run, so it
    never lands in the CLI's output. Typer's stream class is replaced, not the ``sys``
    attributes after Typer set them: a thread printing between Typer's assignment and ours would
    still have landed in the output."""
    caller = threading.get_ident()

    class CallerThreadOnly(typer.testing._NamedTextIOWrapper):
        def _elsewhere(self) -> Any:
            return None if threading.get_ident() == caller else elsewhere.get(self.name)

        def write(self, text: str) -> int:
            other = self._elsewhere()
            return int(other.write(text)) if other is not None else super().write(text)

        def flush(self) -> None:
            other = self._elsewhere()
            other.flush() if other is not None else super().flush()

    return CallerThreadOnly


class _Runner(CliRunner):
    @contextlib.contextmanager
    def isolation(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        streams_before = {"<stdout>": sys.stdout, "<stderr>": sys.stderr}
        with (
            mock.patch.object(typer.testing, "_NamedTextIOWrapper", _caller_thread_only(streams_before)),
            super().isolation(*args, **kwargs) as streams,
        ):
            yield streams


def run_cli(*args: str, input: str | None = None) -> Any:
    """``calltrack ARGS...`` (``input`` as its stdin); returns the click Result (exit_code, stdout,
    stderr, output)."""
    from calltrack_cli.main import app

    return _Runner().invoke(app, list(args), input=input)
