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

from ops_jobs.common import AccountInfo, CallFact, JobPorts, iso_utc, sns_subject

JOB = "missed-call-spike-check"
CALLBACKS = "callbacks-overdue"
CALLBACK_LOOKBACK = timedelta(days=1)


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


def overdue_callbacks(info: AccountInfo, calls: list[CallFact], at: datetime) -> list[CallFact]:
    """Open callbacks whose call ended more than ``alerts.callback_within_minutes`` before ``at``."""
    limit = at - timedelta(minutes=info.alerts["callback_within_minutes"])
    return [c for c in calls if c.callback_open and (c.ended_at or c.started_at) <= limit]


def render_callbacks(info: AccountInfo, overdue: list[CallFact]) -> tuple[str, str]:
    oldest = min(c.ended_at or c.started_at for c in overdue).astimezone(info.tz)
    within = f"{info.alerts['callback_within_minutes']:g}"
    if info.japanese:
        headline = f"折り返し待ち: {len(overdue)}件が{within}分を超えています"
        lines = [headline, "", f"アカウント: {info.name} ({info.account})",
                 f"最も古い不在着信: {oldest:%Y-%m-%d %H:%M} ({info.tz.key})",
                 "一覧: GET /v1/callbacks?status=open"]
    else:
        headline = f"Callbacks overdue: {len(overdue)} missed calls not called back within {within} minutes"
        lines = [headline, "", f"Account: {info.name} ({info.account})",
                 f"Oldest missed call: {oldest:%Y-%m-%d %H:%M} ({info.tz.key})",
                 "List: GET /v1/callbacks?status=open"]
    return sns_subject(f"[{info.name}] {headline}"), "\n".join(lines) + "\n"


def _callbacks(info: AccountInfo, period: str, at: datetime, ports: JobPorts, detail: dict[str, Any]) -> None:
    if not info.business_hours(at):
        return
    overdue = overdue_callbacks(info, ports.calls(info.account, at - CALLBACK_LOOKBACK, at), at)
    if not overdue:
        return
    detail["callbacks_overdue"] = len(overdue)
    subject, body = render_callbacks(info, overdue)
    detail["callbacks_message_id"] = ports.publish(
        subject, body, {"account": info.account, "kind": CALLBACKS, "period": period, "overdue": len(overdue)}
    )


def act(info: AccountInfo, period: str, at: datetime, ports: JobPorts) -> dict[str, Any]:
    detail: dict[str, Any] = {}
    _callbacks(info, period, at, ports, detail)
    return {**_spike(info, period, at, ports), **detail}


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
