"""`cdk synth` runs cdk.json's app command; it works offline, from the repository root."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from infra.app import CDK_JSON


def test_cdk_json_runs_the_app_with_the_venv_and_turns_off_notices_and_telemetry():
    config = json.loads(CDK_JSON.read_text())
    assert config["app"] == ".venv/bin/python infra/app.py"
    assert config["notices"] is False
    assert config["versionReporting"] is False
    assert config["context"]["cli-telemetry"] is False


def test_the_app_command_synthesizes_the_stack(tmp_path):
    # Given the CLI's environment (CDK_OUTDIR, CDK_CONTEXT_JSON), when the app command runs
    # as `cdk synth` would run it, then it writes the Calltrack template.
    env = {
        **os.environ,
        "CDK_OUTDIR": str(tmp_path),
        "CDK_CONTEXT_JSON": json.dumps({"calltrack:stubLayer": True, "calltrack:nag": False}),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "1",
    }
    result = subprocess.run(
        [sys.executable, "infra/app.py"],
        cwd=CDK_JSON.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    template = json.loads((tmp_path / "Calltrack.template.json").read_text())
    assert any(r["Type"] == "AWS::ApiGatewayV2::Api" for r in template["Resources"].values())


def test_a_malformed_context_value_stops_synthesis_naming_the_key(tmp_path):
    env = {
        **os.environ,
        "CDK_OUTDIR": str(tmp_path),
        "CDK_CONTEXT_JSON": json.dumps({"calltrack:stubLayer": True, "fallbackForwardTo": "03-1234-5678"}),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "1",
    }
    result = subprocess.run(
        [sys.executable, "infra/app.py"],
        cwd=CDK_JSON.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode != 0
    assert "fallbackForwardTo" in result.stderr
