"""The as-deployed worker protocol: one process per function, Lambda's answers for errors and timeouts."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from calltrack_cli.local.workers import FunctionError, Worker, WorkerSpec

HANDLERS = '''
import os, threading

def echo(event, context):
    print("a log line on stdout must not corrupt the protocol")
    return {"event": event, "function": context.function_name, "memory": context.memory_limit_in_mb,
            "pid": os.getpid(), "left_ms": context.get_remaining_time_in_millis()}

def fails(event, context):
    raise ValueError("bad event")

def hangs(event, context):
    threading.Event().wait()
'''


def worker(tmp_path: Path, handler: str, timeout_s: float = 5) -> Worker:
    (tmp_path / "fn.py").write_text(HANDLERS)
    env = {"AWS_LAMBDA_FUNCTION_NAME": "calltrack-fn", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256"}
    return Worker(WorkerSpec(name="fn", handler=f"fn.{handler}", memory_mb=256, timeout_s=timeout_s,
                             path=[str(tmp_path)], env=env, python=sys.executable))


def test_a_warm_worker_serves_events_in_one_process_with_the_functions_context(tmp_path):
    w = worker(tmp_path, "echo")
    try:
        # When two events arrive
        first, second = w.call({"n": 1}, None), w.call({"n": 2}, None)
        # Then both are answered by the same process (one cold start) with Lambda's context
        assert first["event"] == {"n": 1} and second["event"] == {"n": 2}
        assert first["pid"] == second["pid"] and w.cold_starts == 1
        assert (first["function"], first["memory"]) == ("calltrack-fn", 256)
        assert 0 < first["left_ms"] <= 5000
        assert w.spec.peak_memory_mb > 0
    finally:
        w.stop()


def test_a_handler_that_cannot_be_imported_fails_the_init_naming_it(tmp_path):
    # Given a handler whose module is not on the function's path
    w = worker(tmp_path, "echo")
    w.spec.handler = "no_such_module.handler"
    with pytest.raises(FunctionError) as failure:
        w.call({}, None)
    assert failure.value.error_type == "Runtime.ImportModuleError"
    assert "no_such_module" in failure.value.message and w.process is None


def test_an_unhandled_error_is_reported_as_lambda_reports_it(tmp_path):
    w = worker(tmp_path, "fails")
    try:
        with pytest.raises(FunctionError) as failure:
            w.call({}, None)
        assert (failure.value.error_type, failure.value.message) == ("ValueError", "bad event")
        assert w.process is not None and w.process.poll() is None  # the environment stays warm
    finally:
        w.stop()


def test_an_event_that_outlives_the_timeout_kills_the_worker_and_the_next_one_starts_cold(tmp_path):
    w = worker(tmp_path, "hangs", timeout_s=0.5)
    # When the handler never returns
    with pytest.raises(FunctionError) as failure:
        w.call({}, None)
    # Then Lambda's timeout error is raised and the process is gone
    assert failure.value.error_type == "Sandbox.Timedout"
    assert failure.value.message == "Task timed out after 0.50 seconds"
    assert w.process is None
    # And a changed environment also replaces a worker (as a configuration change does in Lambda)
    w.spec.handler, w.spec.timeout_s = "fn.echo", 5
    assert w.call({}, None)["function"] == "calltrack-fn" and w.cold_starts == 2
    w.reconfigure({"AWS_LAMBDA_FUNCTION_NAME": "calltrack-other"})
    assert w.process is None
    assert w.call({}, None)["function"] == "calltrack-other" and w.cold_starts == 3
    w.stop()
