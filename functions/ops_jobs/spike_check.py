"""Missed-call spike check: hourly, for the last full clock hour (UTC) before the run instant.

An account whose missed calls in that hour exceed ``alerts.spike_missed_per_hour`` gets one SNS
message per account-hour (the run key makes re-runs of the same hour publish once).

The same run, when it falls in the account's business hours (its default call flow's hours),
also says which callbacks are overdue: missed calls of the last day still open more than
``alerts.callback_within_minutes`` after they ended (one more message, same account-hour).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ops_jobs import callbacks
from ops_jobs.common import AccountInfo, JobPorts, iso_utc, sns_subject

JOB = "missed-call-spike-check"


def hour_window(at: datetime) -> tuple[datetime, datetime]:
    end = at.replace(minute=0, second=0, microsecond=0)
    return end - timedelta(hours=1), end


def due(info: AccountInfo, at: datetime) -> str | None:
    """Every run is due: the period is the UTC hour it covers, e.g. '2026-11-30T03'."""
    start, _ = hour_window(at)
    return start.strftime("%Y-%m-%dT%H")


def render(info: AccountInfo, missed: int, calls: int, start: datetime, end: datetime) -> tuple[str, str]:
    local_start = start.astimezone(info.tz)
    local_end = end.astimezone(info.tz)
    window = f"{local_start:%Y-%m-%d %H:%M}-{local_end:%H:%M} ({info.tz.key})"
    limit = f"{info.alerts['spike_missed_per_hour']:g}"
    if info.japanese:
        headline = f"不在着信が急増: 直近1時間で{missed}件 ({local_start:%H}時台)"
        body = [
            headline,
            "",
            f"アカウント: {info.name} ({info.account})",
            f"時間帯: {window}",
            f"着信: {calls}件 / 不在: {missed}件 (基準: 1時間あたり{limit}件まで)",
        ]
    else:
        headline = f"Missed-call spike: {missed} missed in the last hour ({local_start:%H}:00)"
        body = [
            headline,
            "",
            f"Account: {info.name} ({info.account})",
            f"Hour: {window}",
            f"Calls: {calls} / missed: {missed} (threshold: {limit} per hour)",
        ]
    return sns_subject(f"[{info.name}] {headline}"), "\n".join(body) + "\n"


def act(info: AccountInfo, period: str, at: datetime, ports: JobPorts) -> dict[str, Any]:
    # The callbacks message first: it has its own run key, so if the spike message then fails, the
    # retry publishes only the spike (the other way round, a failed callbacks message would
    # publish the spike twice).
    overdue: dict[str, Any] = {}
    if info.business_hours(at):
        calls = ports.calls(info.account, at - callbacks.LOOKBACK, at)
        overdue = callbacks.alert(info, period, at, calls, ports)
    return {**_spike(info, period, at, ports), **overdue}


def _spike(info: AccountInfo, period: str, at: datetime, ports: JobPorts) -> dict[str, Any]:
    start, end = hour_window(at)
    calls = [c for c in ports.calls(info.account, start, end) if start <= c.started_at < end]
    missed = sum(1 for c in calls if c.missed)
    detail: dict[str, Any] = {
        "from": iso_utc(start), "to": iso_utc(end), "calls": len(calls), "missed": missed
    }
    if missed <= info.alerts["spike_missed_per_hour"]:
        detail["decided"] = "nothing-to-say"
        return detail
    subject, body = render(info, missed, len(calls), start, end)
    detail["message_id"] = ports.publish(
        subject,
        body,
        {"account": info.account, "kind": JOB, "period": period, "missed": missed, "calls": len(calls)},
    )
    detail["subject"] = subject
    detail["decided"] = "published"
    return detail
