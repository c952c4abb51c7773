"""ops_jobs.handler.handler: dispatch on the job name (no AWS touched for unknown jobs)."""

from __future__ import annotations

import pytest

from ops_jobs import handler as jobs
from tests.support.events import lambda_context


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
