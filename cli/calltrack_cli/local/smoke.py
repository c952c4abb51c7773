"""A one-call smoke run of the local stack (what `make demo` runs until `calltrack demo` exists).

Starts the stack, applies examples/acme-dental.yaml, pushes one signed Twilio call through the
real webhooks (voice -> dial-status -> call-status), drains the pollers and prints the call as the
report API returns it.  Usage: python -m calltrack_cli.local.smoke [CONFIG.yaml]
"""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = Path("examples/acme-dental.yaml")


def run(config_path: Path = DEFAULT_CONFIG, out: Any = sys.stdout) -> dict[str, Any]:
    import yaml

    from calltrack.phone import normalize
    from calltrack_cli.local.client import StackClient
    from calltrack_cli.local.stack import LocalStack

    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    with LocalStack() as stack:
        client = StackClient.for_stack(stack)
        print(f"local stack up at {stack.url} (emulator {stack.moto_url})", file=out)
        applied = client.apply(config)
        print(f"applied {config['account']}: {json.dumps(applied, ensure_ascii=False)[:200]}", file=out)
        token = client.create_token(config["account"], "admin")
        number = normalize(config["numbers"][0]["number"], "JP")
        sid = "CA" + secrets.token_hex(16)
        form = {
            "CallSid": sid,
            "AccountSid": "AC" + "0" * 32,
            "To": number,
            "Called": number,
            "From": "+819012345678",
            "Caller": "+819012345678",
            "CallStatus": "ringing",
            "Direction": "inbound",
        }
        voice = client.twilio_post("/twilio/voice", form)
        print(f"POST /twilio/voice -> {voice.status_code}\n{voice.text}", file=out)
        client.twilio_post(
            "/twilio/dial-status", {**form, "DialCallStatus": "completed", "DialCallDuration": "42"}
        )
        client.twilio_post("/twilio/call-status", {**form, "CallStatus": "completed", "CallDuration": "50"})
        client.drain()
        call = client.request("GET", f"/v1/calls/{sid}", token=token)
        print(f"GET /v1/calls/{sid} -> {call.status_code}", file=out)
        body: dict[str, Any] = (
            call.json() if call.headers.get("content-type", "").startswith("application/json") else {}
        )
        print(json.dumps(body, ensure_ascii=False, indent=2), file=out)
        return body


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_CONFIG
    try:
        run(path)
    except Exception as exc:  # one line, non-zero exit
        print(f"smoke run failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
