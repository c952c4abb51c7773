"""AWS's own linters pass over the synthesized stack: cfn-lint and cdk-nag (AwsSolutions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from infra.nag import acknowledgements

CFN_LINT = Path(sys.executable).with_name("cfn-lint")
GENERIC_REASONS = {"not needed", "n/a", "ok", "false positive", "by design"}


def test_cfn_lint_reports_no_errors(synth):
    template = synth.outdir / "Calltrack.template.json"
    result = subprocess.run(
        [str(CFN_LINT), "--format", "json", "--ignore-checks", "W3005", "--", str(template)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    findings = json.loads(result.stdout or "[]")
    errors = [
        f"{f['Rule']['Id']} {f['Message']} at {f['Location']['Path']}"
        for f in findings
        if f["Level"] == "Error"
    ]
    assert errors == []
    warnings = [f"{f['Rule']['Id']} {f['Message']}" for f in findings if f["Level"] == "Warning"]
    assert warnings == [], "keep the template warning-free too (W3005 excepted)"


def test_cdk_nag_aws_solutions_has_no_unacknowledged_findings(synth):
    assert synth.report, "cdk-nag ran and wrote its validation report"
    unacknowledged = [
        f"{v['ruleName']} at {c['constructPath']}"
        for v in synth.violations()
        for c in v["violatingConstructs"]
    ]
    assert unacknowledged == []
    assert synth.error is None


def test_every_acknowledgement_has_a_design_specific_reason(synth):
    acks = acknowledgements(synth.stack)
    assert acks, "the stack acknowledges the findings its design accepts"
    for ack in acks:
        assert ack["reason"].strip().lower() not in GENERIC_REASONS
        assert len(ack["reason"]) >= 60, ack
    rules = {a["rule"].split("[")[0] for a in acks}
    # The console (issue 23) adds its pool's MFA/threat-protection choices and its CDN's (COG*, CFR*).
    assert rules <= {"AwsSolutions-APIG4", "AwsSolutions-L1", "AwsSolutions-IAM5", "AwsSolutions-SQS3",
                     "AwsSolutions-COG2", "AwsSolutions-COG3", "AwsSolutions-COG8",
                     "AwsSolutions-CFR1", "AwsSolutions-CFR2", "AwsSolutions-CFR3", "AwsSolutions-CFR4"}


def test_acknowledgements_are_on_resources_not_on_the_stack(synth):
    for ack in acknowledgements(synth.stack):
        assert ack["path"] != synth.stack.node.path, ack


def test_twilio_routes_say_the_signature_is_checked_in_the_handler(synth):
    twilio = [
        a
        for a in acknowledgements(synth.stack)
        if a["rule"] == "AwsSolutions-APIG4" and "--twilio--" in a["path"]
    ]
    assert twilio
    assert all("X-Twilio-Signature" in a["reason"] for a in twilio)


def test_cdk_nag_would_catch_a_regression(tmp_path):
    # Given a bucket without TLS enforcement in a stack checked by the same pack,
    # when it synthesizes, then validation fails and names the rule.
    from aws_cdk import App, Stack, Validations
    from aws_cdk import aws_s3 as s3
    from cdk_nag import AwsSolutionsChecks

    app = App(outdir=str(tmp_path))
    stack = Stack(app, "Regression")
    s3.Bucket(stack, "Leaky")
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    try:
        app.synth()
    except RuntimeError:
        pass
    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {v["ruleName"] for p in report["pluginReports"] for v in p["violations"]}
    assert "AwsSolutions-S10" in rules
