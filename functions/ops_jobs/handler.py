"""ops_jobs: the scheduled ops messages' Lambda. Dispatch on ``event["job"]`` only.

Event (EventBridge input transformer, and ``calltrack local run-job``): see ``calltrack.schedule``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from calltrack.observability import make_logger, make_metrics, make_tracer
from ops_jobs.runtime import NEEDS as NEEDS

logger = make_logger("ops_jobs")
metrics = make_metrics("ops_jobs")
tracer = make_tracer("ops_jobs")

JOBS = ("weekly-unanswered-alert", "missed-call-spike-check", "monthly-channel-review")


class UnknownJob(ValueError):
    pass


class JobFailed(RuntimeError):
    """Some accounts failed in a way another try of the same run may mend."""


def _job_module(name: str) -> Any:
    if name == "weekly-unanswered-alert":
        from ops_jobs import weekly_alert

        return weekly_alert
    if name == "missed-call-spike-check":
        from ops_jobs import spike_check

        return spike_check
    from ops_jobs import monthly_review

    return monthly_review


@tracer.capture_lambda_handler
@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from calltrack.schedule import job_event
    from ops_jobs.common import fan_out
    from ops_jobs.runtime import ports

    job = job_event(event)
    if job.job not in JOBS:
        raise UnknownJob(f"unknown job {job.job!r}; known jobs: {', '.join(JOBS)}")
    # Metrics carry the service dimension only: the alarm on JobAccountFailures watches that one
    # metric (another dimension makes another metric). The job is in the log line.
    metrics.add_metric(name="JobRuns", unit=MetricUnit.Count, value=1)
    module = _job_module(job.job)
    result = fan_out(job.job, job.at, job.force, ports(), module.due, module.act, only=job.accounts)
    metrics.add_metric(name="JobAccountFailures", unit=MetricUnit.Count, value=result["failures"])
    decided = [d["decided"] for d in result["accounts"].values()]
    metrics.add_metric(name="JobMessagesPublished", unit=MetricUnit.Count, value=decided.count("published"))
    logger.info(
        "job finished",
        extra={"job": job.job, "at": result["time"], "failures": result["failures"],
               "decisions": {k: decided.count(k) for k in set(decided)}},
    )
    if result["retryable_failures"]:
        # Fail the invocation after every account had its turn: EventBridge's asynchronous
        # invocation tries the same event (the same due period) again, where the accounts done
        # answer already-done and the failed claims are taken again. A spike check's hour is
        # never due again otherwise.
        raise JobFailed(f"{job.job} at {result['time']}: {result['retryable_failures']} account(s) failed; "
                        "Lambda tries the same run again")
    return result
