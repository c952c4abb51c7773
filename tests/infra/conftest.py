"""Infra tier: the full stack is synthesized ONCE per session (with cdk-nag) and shared.

If ``make layer`` has filled build/layer, the real layer is bundled (and measured); otherwise
the stack is synthesized with the stub layer so every other check still runs, and the layer
tests fail with the command to run.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "1")
os.environ.setdefault("JSII_DEPRECATED", "quiet")

TEST_CONTEXT: dict[str, object] = {
    "twilioAccountSid": "AC" + "0123456789abcdef" * 2,
    "twilioApiKey": "SK" + "0" * 32,
    "fallbackForwardTo": "+81312345678",
}


@dataclass
class Synth:
    outdir: Path
    stack: Any  # infra.stack.CalltrackStack
    template: dict[str, Any]
    report: dict[str, Any]
    manifest: dict[str, Any]
    real_layer: bool
    error: str | None = None
    _assertions: Any = field(default=None, repr=False)

    @property
    def assertions(self) -> Any:
        """aws_cdk.assertions.Template over the synthesized template."""
        if self._assertions is None:
            from aws_cdk.assertions import Template

            self._assertions = Template.from_json(self.template)
        return self._assertions

    def resources(self, type_: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == type_}

    def violations(self) -> list[dict[str, Any]]:
        return [v for plugin in self.report.get("pluginReports", []) for v in plugin.get("violations", [])]


def synthesize(
    outdir: Path, *, nag: bool, wiring: Any = None, context: dict[str, object] | None = None
) -> Synth:
    from infra import layer
    from infra.app import STACK_NAME, build_app
    from infra.wiring import WIRING

    real_layer = layer.is_built()
    ctx = {**TEST_CONTEXT, "calltrack:stubLayer": not real_layer, **(context or {})}
    app, stack = build_app(ctx, outdir=str(outdir), wiring=wiring or WIRING, nag=nag)
    error = None
    try:
        app.synth()
    except RuntimeError as exc:  # cdk-nag findings fail validation; the report says which
        error = str(exc)
    report_path = outdir / "validation-report.json"
    return Synth(
        outdir=outdir,
        stack=stack,
        template=json.loads((outdir / f"{STACK_NAME}.template.json").read_text()),
        report=json.loads(report_path.read_text()) if report_path.exists() else {},
        manifest=json.loads((outdir / "manifest.json").read_text()),
        real_layer=real_layer,
        error=error,
    )


def synthesize_offline(outdir: Path, **kwargs: Any) -> Synth:
    """Synthesis must not touch the network: no lookups, no downloads (jsii talks over pipes).

    Sockets are blocked process-wide while synthesizing, so only when nothing else runs in this
    process (the local stack of the integration tier serves from threads).
    """
    import threading

    import pytest_socket

    if threading.active_count() > 1:
        return synthesize(outdir, **kwargs)
    pytest_socket.disable_socket(allow_unix_socket=True)
    try:
        return synthesize(outdir, **kwargs)
    finally:
        pytest_socket.enable_socket()  # the integration tier shares this process


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize_offline(tmp_path_factory.mktemp("cdk-out"), nag=True)
