"""report_jobs: the scheduled jobs' Lambda. Dispatch on ``event["job"]`` only; logic is in sibling modules.

Event (EventBridge input transformer, and ``calltrack local run-job``):
``{"job": NAME, "time": "<ISO 8601 UTC>", "force": false}``; an optional ``"accounts": [...]``
restricts the fan-out (ops re-runs).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from calltrack.observability import make_logger, make_metrics

logger = make_logger("report_jobs")
metrics = make_metrics("report_jobs")

FAN_OUT_JOBS = ("weekly-unanswered-alert", "missed-call-spike-check", "monthly-channel-review")
JOBS = (*FAN_OUT_JOBS, "daily-calls-export")


class UnknownJob(ValueError):
    pass


def _job_module(name: str) -> Any:
    if name == "weekly-unanswered-alert":
        from report import weekly_alert

        return weekly_alert
    if name == "missed-call-spike-check":
        from report import spike_check

        return spike_check
    from report import monthly_review

    return monthly_review


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from report.job_common import fan_out, parse_instant
    from report.runtime import ensure_started

    name = str(event.get("job", ""))
    if name not in JOBS:
        raise UnknownJob(f"unknown job {name!r}; known jobs: {', '.join(JOBS)}")
    at = parse_instant(str(event["time"]))
    force = bool(event.get("force", False))
    ensure_started()
    metrics.add_dimension(name="job", value=name)
    metrics.add_metric(name="JobRuns", unit=MetricUnit.Count, value=1)
    if name == "daily-calls-export":
        from report.export import run

        result: dict[str, Any] = run(at=at, force=force)
        return result

    from calltrack.settings import get_settings
    from report.job_ports import aws_ports

    module = _job_module(name)
    only = event.get("accounts")
    result = fan_out(name, at, force, aws_ports(get_settings()), module.due, module.act, only=only)
    metrics.add_metric(name="JobAccountFailures", unit=MetricUnit.Count, value=result["failures"])
    decided = [d["decided"] for d in result["accounts"].values()]
    metrics.add_metric(name="JobMessagesPublished", unit=MetricUnit.Count, value=decided.count("published"))
    logger.info(
        "job finished",
        extra={"job": name, "at": result["time"], "failures": result["failures"],
               "decisions": {k: decided.count(k) for k in set(decided)}},
    )
    return result
