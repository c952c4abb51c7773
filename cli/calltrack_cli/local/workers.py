"""Invoke each function in its own long-lived Python 3.12 process, as one warm Lambda environment.

``WorkerInvoker`` is the as-deployed counterpart of ``calltrack_cli.local.invoker.Invoker`` (same
``invoke`` signature, so the gateway and the pollers use either): instead of importing handlers
into this process it sends each event to the function's worker (``lambda_worker.py``, run by the
Lambda's Python with only the function's asset, the layer and the runtime's boto3 on its path and
only the function's synthesized environment) as one JSON line, and reads one line back.

Timeout: the worker imports the handler when it starts (Lambda's init phase, see INIT_TIMEOUT_S); a call
that outlives the function's ``Timeout`` gets its worker killed (the next event starts a fresh one:
a cold start, as in Lambda) and raises ``FunctionError`` with Lambda's message
``Task timed out after N.00 seconds``; the gateway answers it 500 like any function error,
the pollers leave the batch for a retry. MemorySize is reported, not enforced: each answer carries
the worker's peak RSS, and a peak above MemorySize is logged as a warning (Lambda would kill it).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calltrack_cli.local.invoker import Invoker
from infra.wiring import Wiring

log = logging.getLogger("calltrack.local")

WORKER_SCRIPT = Path(__file__).with_name("lambda_worker.py")
# Lambda limits the init phase to 10 s; a shared 2-core CI machine's cold start is not Lambda's, so
# only a hung init is caught here (cold-start time is measured by `make bench`, not enforced).
INIT_TIMEOUT_S = 60.0


class FunctionError(RuntimeError):
    """The function failed as Lambda reports it: an unhandled error, or its Timeout was exceeded."""

    def __init__(self, function: str, error_type: str, message: str, trace: str = "") -> None:
        super().__init__(f"{function}: {error_type}: {message}" + (f"\n{trace}" if trace else ""))
        self.function = function
        self.error_type = error_type
        self.message = message


@dataclass
class WorkerSpec:
    """What the synthesized template says about one function (see ``as_deployed.worker_specs``)."""

    name: str  # the wiring name
    handler: str
    memory_mb: int
    timeout_s: float
    path: list[str]  # asset, layer python/, runtime stand-in
    env: dict[str, str]
    python: str
    peak_memory_mb: int = field(default=0)


class Worker:
    """One process: started on first use, killed on timeout, replaced on the next event."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.process: subprocess.Popen[str] | None = None
        self.cold_starts = 0

    def _start(self) -> subprocess.Popen[str]:
        """A fresh environment: start the process and wait for its init phase (handler import)."""
        self.cold_starts += 1
        process = subprocess.Popen(
            [self.spec.python, "-I", "-S", "-B", str(WORKER_SCRIPT), self.spec.handler, *self.spec.path],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, text=True, bufsize=1,
            env=self.spec.env, cwd=self.spec.path[0],
        )
        self.process = process
        ready = self._reply(process, INIT_TIMEOUT_S, "Init")
        if not ready.get("ok"):
            self.stop()  # Lambda runs the init again on the next event
            self._raise(ready)
        return process

    def _reply(self, process: subprocess.Popen[str], timeout_s: float, phase: str,
               since: float | None = None) -> dict[str, Any]:
        """The process's next line within ``timeout_s`` (from ``since``, default now); killed, and
        FunctionError raised, if none. A line that arrives later than that is a timeout too, however
        the threads were scheduled (a loaded machine can wake this thread late)."""
        answer: list[str] = []
        arrived: list[float] = []
        stdout = process.stdout
        assert stdout is not None
        start = time.monotonic() if since is None else since

        def read() -> None:
            answer.append(stdout.readline())
            arrived.append(time.monotonic())

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(max(0.0, start + timeout_s - time.monotonic()))
        if reader.is_alive() or (arrived and arrived[0] - start > timeout_s):
            self.stop()
            raise FunctionError(self.spec.name, "Sandbox.Timedout",
                                f"{phase} timed out after {timeout_s:.2f} seconds")
        if not answer or not answer[0]:
            self.stop()
            raise FunctionError(self.spec.name, "Runtime.ExitError",
                                "the worker exited (see its stderr above)")
        reply: dict[str, Any] = json.loads(answer[0])
        return reply

    def _raise(self, reply: dict[str, Any]) -> None:
        error = reply.get("error") or {}
        raise FunctionError(self.spec.name, str(error.get("errorType")), str(error.get("errorMessage")),
                            "".join(error.get("stackTrace") or []))

    def call(self, event: Any, at: float | None) -> Any:
        """One invocation; the Timeout counts from the event, as in Lambda (init is separate)."""
        spec = self.spec
        process = self.process
        if process is None or process.poll() is not None:
            process = self._start()
        assert process.stdin is not None
        request = {"event": event, "at": at, "request_id": str(uuid.uuid4()),
                   "timeout_ms": int(spec.timeout_s * 1000)}
        sent = time.monotonic()
        try:
            process.stdin.write(json.dumps(request, default=str) + "\n")
            process.stdin.flush()
        except OSError:
            pass  # it died; _reply reports it
        reply = self._reply(process, spec.timeout_s, "Task", since=sent)
        peak = int(reply.get("max_memory_mb") or 0)
        if peak > spec.memory_mb and spec.peak_memory_mb <= spec.memory_mb:
            log.warning("%s: peak memory %d MB exceeds its MemorySize %d MB", spec.name, peak, spec.memory_mb)
        spec.peak_memory_mb = max(spec.peak_memory_mb, peak)
        if not reply.get("ok"):
            self._raise(reply)
        return reply.get("result")

    def reconfigure(self, overrides: dict[str, str]) -> None:
        changed = {k: v for k, v in overrides.items() if self.spec.env.get(k) != v}
        if changed:
            self.spec.env.update(changed)
            self.stop()  # the next event starts a worker with the new environment

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass


class WorkerInvoker(Invoker):
    """``Invoker`` whose functions run in their own workers (the per-function lock is the parent's).

    ``overrides`` returns the current values of the local-only variables: when one changed since a
    worker started (a test points the stack at a fake server), the worker is replaced with the new
    environment, as a Lambda configuration change replaces the function's execution environments.
    """

    def __init__(self, wiring: Wiring, overrides: Callable[[], dict[str, str]] | None = None) -> None:
        super().__init__(wiring)
        self.workers: dict[str, Worker] = {}
        self.overrides = overrides or dict

    def configure(self, specs: dict[str, WorkerSpec]) -> None:
        self.workers = {name: Worker(spec) for name, spec in specs.items()}

    def prewarm(self) -> None:
        """Run every worker's init phase now, in the background, each under its function's lock:
        the first events after start-up then do not pay a chain of cold starts (call_changes,
        then each subscriber, ...) inside one ``drain()``'s timeout on a busy machine."""

        def start(name: str, worker: Worker) -> None:
            with self._locks.setdefault(name, threading.Lock()):
                if worker.process is not None and worker.process.poll() is None:
                    return
                try:
                    worker.reconfigure(self.overrides())
                    worker._start()
                except FunctionError as exc:  # the first event retries the init and reports it
                    log.warning("%s: init failed while pre-warming: %s", name, exc)

        for name, worker in self.workers.items():
            threading.Thread(target=start, args=(name, worker), name=f"prewarm-{name}", daemon=True).start()

    def invoke(self, function_name: str, event: Any, *, at: float | None = None) -> Any:
        fn = self.wiring.function(function_name)
        worker = self.workers.get(fn.name)
        if worker is None:
            raise FunctionError(fn.name, "ResourceNotFoundException",
                                "no function with this name in the synthesized template")
        with self._guard:
            self._in_flight += 1
        try:
            with self._locks.setdefault(fn.name, threading.Lock()):
                worker.reconfigure(self.overrides())
                return worker.call(event, at)
        finally:
            with self._guard:
                self._in_flight -= 1
                self._finished += 1
                self._idle.notify_all()

    def stop(self) -> None:
        for worker in self.workers.values():
            worker.stop()

    def report(self) -> list[dict[str, Any]]:
        return [
            {"function": name, "memory_mb": w.spec.memory_mb, "peak_memory_mb": w.spec.peak_memory_mb,
             "timeout_s": w.spec.timeout_s, "cold_starts": w.cold_starts}
            for name, w in sorted(self.workers.items())
        ]


def worker_env_base() -> dict[str, str]:
    """What every worker inherits from this machine (nothing else leaks in)."""
    return {key: os.environ[key] for key in ("PATH", "LANG", "TZ") if key in os.environ}
