"""ops_jobs.handler.handler: dispatch on the job name (no AWS touched for unknown jobs)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from ops_jobs import handler as jobs
from tests.support.events import lambda_context
from tests.support.jobs import JobsWorld


def test_unknown_job_fails_loudly_naming_the_known_ones() -> None:
    event = {"job": "weekly-digest", "time": "2026-11-30T00:00:00Z", "force": False}
    with pytest.raises(jobs.UnknownJob) as err:
        jobs.handler(event, lambda_context("ops_jobs"))
    assert "weekly-unanswered-alert" in str(err.value) and "monthly-channel-review" in str(err.value)


def test_every_scheduled_job_of_ops_jobs_is_dispatched() -> None:
    from infra.wiring import SCHEDULES

    wired = {s.name for s in SCHEDULES if s.function == "ops_jobs"}
    assert wired == set(jobs.JOBS)
    for name in jobs.JOBS:
        module = jobs._job_module(name)
        assert module.JOB == name and callable(module.due) and callable(module.act)


def _emf_lines(out: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"_aws"' in line]
    return [line for line in lines if "_aws" in line]


def test_a_failed_account_fails_the_invocation_so_the_same_hour_is_tried_again_and_the_alarm_sees_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an hour with a missed-call spike, and the calls read failing once
    world = JobsWorld()
    world.add_account("acme", language="ja-JP")
    world.add_calls("acme", datetime(2026, 11, 24, 3, 0, tzinfo=UTC), ["missed"] * 8)
    read = world.read_calls
    fails = [RuntimeError("DynamoDB throttled")]

    def flaky(account: str, start: datetime, end: datetime) -> Any:
        if fails:
            raise fails.pop()
        return read(account, start, end)

    world.read_calls = flaky  # type: ignore[method-assign]
    monkeypatch.setattr("ops_jobs.runtime.ports", world.ports)
    event = {"job": "missed-call-spike-check", "time": "2026-11-24T04:05:00Z", "force": False}

    # When the 04:05 run fails for the account
    with pytest.raises(jobs.JobFailed):
        jobs.handler(event, lambda_context("ops_jobs"))
    # Then the failure is counted on the metric the alarm watches (service dimension only)
    [emf] = _emf_lines(capsys.readouterr().out)
    assert emf["JobAccountFailures"] == [1.0] or emf["JobAccountFailures"] == 1.0
    assert emf["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert world.published == []

    # When Lambda tries the same event again
    result = jobs.handler(event, lambda_context("ops_jobs"))
    # Then that hour's spike is published, once
    assert result["accounts"]["acme"]["decided"] == "published" and len(world.published) == 1


def test_a_stored_config_that_no_longer_validates_does_not_fail_the_invocation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an account whose stored config no longer validates (another try cannot mend it)
    world = JobsWorld()
    world.add_raw_account("broken", {"account": "broken", "forward_to": "not a number"})
    monkeypatch.setattr("ops_jobs.runtime.ports", world.ports)
    event = {"job": "missed-call-spike-check", "time": "2026-11-24T04:05:00Z", "force": False}
    # When the job runs, then it reports the failure and returns (the alarm counts it)
    result = jobs.handler(event, lambda_context("ops_jobs"))
    assert result["failures"] == 1 and result["retryable_failures"] == 0
