"""One Lambda execution environment: run by the Lambda's Python (3.12) with ``-I -S``, standard library only.

Usage: ``python3.12 -I -S -B lambda_worker.py HANDLER PATH [PATH ...]`` with Lambda's path (the
function's code asset, the layer's ``python/``, the runtime's boto3) and the function's environment
(``calltrack_cli.local.as_deployed`` builds both from the synthesized template). Nothing from the
development virtualenv is importable here, which is the point.

Protocol, one JSON object per line: the parent writes ``{"event": ..., "at": epoch|None,
"request_id": str, "timeout_ms": int}`` on stdin; the worker answers on its *original* stdout
``{"ok": true, "result": ..., "max_memory_mb": int}`` or ``{"ok": false, "error": {"errorType",
"errorMessage", "stackTrace"}, ...}`` (Lambda's shape for an unhandled error). Everything the handler
prints (Powertools logs go to stdout) is sent to stderr instead, so it cannot corrupt the protocol.
The handler is imported first (Lambda's init phase); the worker then writes ``{"ok": true}`` (or
the import error, and exits) before reading events. The parent owns the timeouts: it kills this
process when the init or a call outlives its limit.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import time
import traceback
from typing import Any


class Context:
    """The Lambda context attributes handlers and Powertools read."""

    def __init__(self, request_id: str, timeout_ms: int) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.invoked_function_arn = os.environ.get("CALLTRACK_LOCAL_FUNCTION_ARN", "")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "local")
        self.aws_request_id = request_id
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _load(dotted: str) -> Any:
    module_name, _, attr = dotted.rpartition(".")
    return getattr(importlib.import_module(module_name), attr)


def _error(exc: BaseException, kind: str) -> dict[str, Any]:
    return {"errorType": kind, "errorMessage": str(exc), "stackTrace": traceback.format_exception(exc)}


def _max_memory_mb() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # KiB on Linux


def _invoke(handler: Any, request: dict[str, Any]) -> Any:
    context = Context(str(request.get("request_id", "")), int(request.get("timeout_ms", 3000)))
    at = request.get("at")
    if at is None:
        return handler(request["event"], context)
    from calltrack.clock import frozen  # local only: replayed demo calls, scheduled jobs

    with frozen(float(at)):
        return handler(request["event"], context)


def main(argv: list[str]) -> int:
    dotted, paths = argv[0], argv[1:]
    sys.path[:0] = paths
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # the handler's prints and logs go to stderr
    sys.stdout = sys.stderr
    try:
        handler = _load(dotted)
    except Exception as exc:  # noqa: BLE001 - an init failure, as Lambda reports it
        kind = "Runtime.ImportModuleError" if isinstance(exc, ImportError) else "Runtime.HandlerNotFound"
        protocol.write(json.dumps({"ok": False, "error": _error(exc, kind)}) + "\n")
        protocol.flush()
        return 1
    protocol.write(json.dumps({"ok": True}) + "\n")
    protocol.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        try:
            answer: dict[str, Any] = {"ok": True, "result": _invoke(handler, request)}
        except Exception as exc:  # noqa: BLE001 - Lambda reports any unhandled error
            answer = {"ok": False, "error": _error(exc, type(exc).__name__)}
        answer["max_memory_mb"] = _max_memory_mb()
        try:
            text = json.dumps(answer, default=str)
        except (TypeError, ValueError) as exc:  # Lambda cannot serialize it either
            text = json.dumps({"ok": False, "error": {"errorType": "Runtime.MarshalError",
                                                      "errorMessage": str(exc), "stackTrace": []},
                               "max_memory_mb": _max_memory_mb()})
        protocol.write(text + "\n")
        protocol.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
