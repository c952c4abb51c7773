"""ops_jobs.handler.handler: dispatch on the job name (no AWS touched for unknown jobs)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ops_jobs import handler as jobs


def context() -> SimpleNamespace:
    return SimpleNamespace(
        function_name="ops_jobs",
        memory_limit_in_mb=512,
        invoked_function_arn="arn:aws:lambda:us-east-1:000000000000:function:ops_jobs",
        aws_request_id="req-1",
    )


def test_unknown_job_fails_loudly_naming_the_known_ones() -> None:
    with pytest.raises(jobs.UnknownJob) as err:
        jobs.handler({"job": "weekly-digest", "time": "2026-11-30T00:00:00Z", "force": False}, context())
    assert "weekly-unanswered-alert" in str(err.value) and "monthly-channel-review" in str(err.value)


def test_every_scheduled_job_of_ops_jobs_is_dispatched() -> None:
    from infra.wiring import SCHEDULES

    wired = {s.name for s in SCHEDULES if s.function == "ops_jobs"}
    assert wired == set(jobs.JOBS)
    for name in jobs.JOBS:
        module = jobs._job_module(name)
        assert module.JOB == name and callable(module.due) and callable(module.act)
