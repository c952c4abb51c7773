"""X-Ray tracing: every function off the incoming-call path is traced with a Powertools Tracer;
the voice webhook (and dni_lease, on the browser's path) are not, since the tracer's import costs
~0.3 s of cold start. Locally and in tests the tracer is a no-op (not in Lambda / disabled)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools import Tracer

from infra.wiring import WIRING

REPO = Path(__file__).resolve().parents[2]

# wiring function -> why it is not traced (anything else must be)
UNTRACED = {
    "voice_webhook": "a caller waits on its cold start (bench P1 target)",
    "dni_lease": "the visitor's number swap waits on its cold start",
    "admin": "operator-only config API; not yet traced",
}
# aws_lambda_powertools.tracing itself comes with Logger (lazily); the X-Ray SDK is the cost
TRACER_MODULES = ("aws_xray_sdk",)


def _handler(dotted: str) -> tuple[Any, Any]:
    module_name, _, attr = dotted.rpartition(".")
    module = importlib.import_module(module_name)
    return module, getattr(module, attr)


def _traced_by(fn: Any, tracer: Tracer) -> bool:
    """Whether ``fn`` or anything it wraps is ``tracer.capture_lambda_handler``'s wrapper."""
    while fn is not None:
        code = getattr(fn, "__code__", None)
        if code is not None and code.co_qualname.startswith("Tracer.capture_lambda_handler."):
            cells = [c.cell_contents for c in fn.__closure__ or ()]
            if any(c is tracer for c in cells):
                return True
        fn = getattr(fn, "__wrapped__", None)
    return False


TRACED = [fn for fn in WIRING.functions if fn.name not in UNTRACED]


def test_every_function_is_either_traced_or_has_a_reason_not_to_be() -> None:
    names = {fn.name for fn in WIRING.functions}
    assert set(UNTRACED) <= names
    assert {"report_api", "ops_jobs", "recording_ingest", "calls_export"} <= {fn.name for fn in TRACED}


@pytest.mark.parametrize("spec", TRACED, ids=lambda spec: spec.name)
def test_functions_off_the_call_path_trace_their_handler(spec: Any) -> None:
    module, handler = _handler(spec.handler)
    tracer = getattr(module, "tracer", None)
    assert isinstance(tracer, Tracer), f"{spec.handler}: no module-level tracer = make_tracer(...)"
    assert _traced_by(handler, tracer), f"{spec.handler} is not decorated with @tracer.capture_lambda_handler"


def test_the_check_tells_an_undecorated_handler_from_a_decorated_one() -> None:
    from calltrack.observability import make_tracer

    tracer = make_tracer("test")

    def plain(event: Any, context: Any) -> Any:
        return event

    traced = tracer.capture_lambda_handler(plain)
    assert not _traced_by(plain, tracer)
    assert _traced_by(traced, tracer)


def test_outside_lambda_the_tracer_is_disabled_and_the_handler_just_runs(monkeypatch: Any) -> None:
    from calltrack.observability import make_tracer

    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    tracer = make_tracer("test")
    assert tracer.disabled  # type: ignore[attr-defined]

    @tracer.capture_lambda_handler
    def handler(event: Any, context: Any) -> Any:
        return {"echo": event}

    assert handler({"a": 1}, None) == {"echo": {"a": 1}}


def test_the_voice_webhook_import_and_first_use_load_no_tracer() -> None:
    # recording_ingest is bundled with the webhook: its callback module must not pull the tracer in
    code = (
        "import voice_webhook.handler, recording_ingest.callback, sys; "
        f"print([m for m in sys.modules if m.startswith({TRACER_MODULES!r})])"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(REPO), str(REPO / "functions")))}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
