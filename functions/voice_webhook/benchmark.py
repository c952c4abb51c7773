"""Cold-start benchmark (not a test): import cost of the webhook vs a floor handler.

    .venv/bin/python -m voice_webhook.benchmark [runs]

Each measurement is a fresh interpreter (median of ``runs``):
- floor:             boto3 + Powertools Logger + twilio.twiml.voice_response + twilio.request_validator
- handler import:    ``import voice_webhook.handler`` (what Lambda's init phase pays)
- handler + lazies:  the handler plus everything its first invocation loads (boto3, botocore Config,
                     the two twilio modules, Powertools Metrics) — comparable to the floor
"""

from __future__ import annotations

import statistics
import subprocess
import sys

FLOOR = (
    "import boto3; from aws_lambda_powertools import Logger; "
    "import twilio.twiml.voice_response, twilio.request_validator"
)
HANDLER = "import voice_webhook.handler"
HANDLER_FULL = (
    "import voice_webhook.handler; import boto3, botocore.config; "
    "import twilio.twiml.voice_response, twilio.request_validator; "
    "from aws_lambda_powertools.metrics import Metrics"
)
FORBIDDEN = ("twilio.rest", "pynamodb", "pydantic", "aws_lambda_powertools.event_handler")


def measure(code: str, runs: int) -> float:
    timer = f"import time; t=time.perf_counter(); {code}; print((time.perf_counter()-t)*1000)"
    samples = [float(subprocess.check_output([sys.executable, "-c", timer], text=True)) for _ in range(runs)]
    return statistics.median(samples)


def loaded_modules(code: str) -> set[str]:
    out = subprocess.check_output(
        [sys.executable, "-c", f"{code}; import sys; print('\\n'.join(sys.modules))"], text=True
    )
    return set(out.split())


def main(runs: int = 7) -> None:
    rows = [
        ("floor (boto3+Logger+twiml+validator)", FLOOR),
        ("voice_webhook.handler import", HANDLER),
        ("handler + first-call lazy imports", HANDLER_FULL),
    ]
    for label, code in rows:
        print(f"{label:45s} {measure(code, runs):8.1f} ms (median of {runs})")
    mods = loaded_modules(HANDLER_FULL)
    bad = sorted(m for m in mods if any(m == f or m.startswith(f + ".") for f in FORBIDDEN))
    print("forbidden modules loaded:", ", ".join(bad) or "none")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
