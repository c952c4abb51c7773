"""P1: cold start = import (+ first-use init) of each handler module in fresh interpreters.

Each sample is a new ``python -c`` that times the import with ``time.perf_counter`` (interpreter
start-up itself is not counted; Lambda pays it for the floor too). Median of ``runs`` samples.
The floor is ``bench.floor_handler`` (boto3, Powertools Logger, twilio.twiml.voice_response,
twilio.request_validator). voice_webhook defers boto3 and the twilio modules to its first call,
so its target row times the import PLUS what its first call loads and builds (the same lazies
twilio modules, Powertools Metrics, and the DynamoDB client), against the floor's import plus its
DynamoDB client. A row also checks that this first use loads none of the heavy modules the webhook
avoids (``FORBIDDEN``). Each interpreter has the checkout root and ``functions/`` on PYTHONPATH,
as Lambda has the asset dir on its path.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from bench.common import FigureResult, Row, median, verdict

TARGET = 1.2
REPO = Path(__file__).resolve().parent.parent
FLOOR_MODULE = "bench.floor_handler"
FLOOR_INIT = "import bench.floor_handler as f; f.client()"
VOICE_INIT = (
    "import voice_webhook.handler; import voice_webhook.dynamo as d; d.client('us-east-1'); "
    "import twilio.twiml.voice_response, twilio.request_validator; "
    "from aws_lambda_powertools.metrics import Metrics"
)

# The webhook's hot path must not load these (they belong to other functions or to the API).
FORBIDDEN = ("twilio.rest", "pynamodb", "pydantic", "aws_lambda_powertools.event_handler")


def handler_modules() -> list[str]:
    from infra.wiring import FUNCTIONS

    return list(dict.fromkeys(fn.handler.rpartition(".")[0] for fn in FUNCTIONS))


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CALLTRACK_"))}
    env.update(
        {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "PYTHONDONTWRITEBYTECODE": "0",
        }
    )
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, (str(REPO), str(REPO / "functions"), env.get("PYTHONPATH")))
    )
    return env


def time_once(code: str) -> float:
    """Seconds one fresh interpreter spends running ``code``."""
    timer = f"import time; _t = time.perf_counter()\n{code}\nprint(time.perf_counter() - _t)"
    out = subprocess.run(
        [sys.executable, "-c", timer], cwd=REPO, env=_env(), capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"{code!r} failed: {out.stderr.strip()[-500:]}")
    return float(out.stdout.strip().splitlines()[-1])


def forbidden_loaded(code: str) -> list[str]:
    """Modules under ``FORBIDDEN`` that a fresh interpreter has loaded after running ``code``."""
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return sorted(m for m in out.stdout.split() if any(m == f or m.startswith(f + ".") for f in FORBIDDEN))


def time_median(code: str, runs: int) -> float:
    time_once(code)  # the first run may compile byte code: not a Lambda cold start
    return median([time_once(code) for _ in range(runs)])


_IMPORTTIME = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def slowest_imports(code: str, top: int = 8, exclude: tuple[str, ...] = ()) -> list[dict[str, object]]:
    """Top ``top`` imports by cumulative time under ``-X importtime`` (microseconds -> ms)."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    rows = []
    for line in out.stderr.splitlines():
        m = _IMPORTTIME.match(line)
        if not m:
            continue
        name = m.group(4)
        if name in exclude:
            continue
        rows.append(
            {
                "module": name,
                "cumulative_ms": int(m.group(2)) / 1000,
                "self_ms": int(m.group(1)) / 1000,
                "depth": (len(m.group(3)) - 1) // 2,
            }
        )
    rows.sort(key=lambda r: -float(str(r["cumulative_ms"])))
    return rows[:top]


def run(runs: int = 10, modules: list[str] | None = None) -> FigureResult:
    started = time.perf_counter()
    result = FigureResult("P1", "Cold start: import (+ first-use init), median of fresh interpreters")
    floor_import = time_median(f"import {FLOOR_MODULE}", runs)
    floor_init = time_median(FLOOR_INIT, runs)
    details: dict[str, object] = {
        "runs": runs,
        "floor_import_ms": floor_import * 1000,
        "floor_import_and_client_ms": floor_init * 1000,
        "modules": {},
    }
    result.rows.append(Row("P1 floor import (boto3+Logger+twiml+validator)", f"{floor_import * 1000:.0f} ms"))
    voice_init = time_median(VOICE_INIT, runs)
    ratio = voice_init / floor_init
    result.rows.append(
        Row(
            "P1 voice_webhook import+first-use / floor import+client",
            f"{voice_init * 1000:.0f} ms / {floor_init * 1000:.0f} ms",
            f"<= {TARGET}x",
            ratio,
            verdict(ratio <= TARGET),
        )
    )
    details["voice_webhook_first_use_ms"] = voice_init * 1000
    heavy = forbidden_loaded(VOICE_INIT)
    details["voice_webhook_forbidden_loaded"] = heavy
    result.rows.append(
        Row(
            "P1 voice_webhook first use loads no twilio.rest/pynamodb/pydantic/event_handler",
            ", ".join(heavy) or "none",
            "none",
            None,
            verdict(not heavy),
        )
    )
    modules_ms: dict[str, float] = {}
    for module in modules or handler_modules():
        ms = time_median(f"import {module}", runs)
        modules_ms[module] = ms * 1000
        result.rows.append(
            Row(
                f"P1 import {module}",
                f"{ms * 1000:.0f} ms",
                "<= 1.2x floor" if module == "voice_webhook.handler" else "(no target)",
                ms / floor_import,
                verdict(ms / floor_import <= TARGET) if module == "voice_webhook.handler" else "INFO",
            )
        )
    details["modules"] = modules_ms
    details["voice_webhook_slowest_imports"] = slowest_imports(
        VOICE_INIT, exclude=("voice_webhook", "voice_webhook.handler")
    )
    result.details = details
    result.notes.append(
        "Ratios of import-only rows are against the floor's import; the voice_webhook target row adds "
        "first-use work to both sides (its lazy imports + the DynamoDB client; the floor's client)."
    )
    result.seconds = time.perf_counter() - started
    return result
