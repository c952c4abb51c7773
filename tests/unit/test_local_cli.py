"""`calltrack local ...` argument handling (no stack needed)."""

from __future__ import annotations

from typer.testing import CliRunner

from calltrack_cli.main import app

runner = CliRunner()


def test_local_help_teaches_with_examples():
    result = runner.invoke(app, ["local", "--help"])
    assert result.exit_code == 0
    assert "serve" in result.output and "run-job" in result.output and "outbox" in result.output


def test_run_job_rejects_a_malformed_instant_with_exit_2():
    result = runner.invoke(app, ["local", "run-job", "weekly-unanswered-alert", "--at", "next monday"])
    assert result.exit_code == 2
    assert "ISO 8601" in result.output


def test_run_job_requires_at():
    result = runner.invoke(app, ["local", "run-job", "weekly-unanswered-alert"])
    assert result.exit_code == 2
