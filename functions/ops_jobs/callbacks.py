"""Overdue callbacks (issue 18): missed calls nobody called back within
``alerts.callback_within_minutes`` (a caller answered on a later call has been reached: left out).
The hourly spike check (missed calls of the last day) and the weekly alert (of the week) both say
so, only when they run within the account's business hours (its default call flow's hours; always
without one): an alert at 3 a.m. helps no one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ops_jobs.common import AccountInfo, CallFact, JobPorts, run_key, sns_subject

KIND = "callbacks-overdue"
LOOKBACK = timedelta(days=1)  # the hourly check's window


def overdue(info: AccountInfo, calls: list[CallFact], at: datetime) -> list[CallFact]:
    """Open callbacks whose call ended more than ``alerts.callback_within_minutes`` before ``at``,
    less those whose caller has since called again and been answered (reached already)."""
    limit = at - timedelta(minutes=info.alerts["callback_within_minutes"])
    return [c for c in calls if c.callback_open and not c.caller_answered_since
            and (c.ended_at or c.started_at) <= limit]


def render(info: AccountInfo, late: list[CallFact]) -> tuple[str, str]:
    oldest = min(c.ended_at or c.started_at for c in late).astimezone(info.tz)
    within = f"{info.alerts['callback_within_minutes']:g}"
    if info.japanese:
        headline = f"折り返し待ち: {len(late)}件が{within}分を超えています"
        lines = [headline, "", f"アカウント: {info.name} ({info.account})",
                 f"最も古い不在着信: {oldest:%Y-%m-%d %H:%M} ({info.tz.key})",
                 "一覧: GET /v1/callbacks?status=open"]
    else:
        headline = f"Callbacks overdue: {len(late)} missed calls not called back within {within} minutes"
        lines = [headline, "", f"Account: {info.name} ({info.account})",
                 f"Oldest missed call: {oldest:%Y-%m-%d %H:%M} ({info.tz.key})",
                 "List: GET /v1/callbacks?status=open"]
    return sns_subject(f"[{info.name}] {headline}"), "\n".join(lines) + "\n"


def alert(
    info: AccountInfo, period: str, at: datetime, calls: list[CallFact], ports: JobPorts
) -> dict[str, Any]:
    """Publish one message when ``calls`` hold overdue callbacks; the detail keys to add to the run.

    The message has its own run key (``callbacks-overdue#{account}#{period}``), so a job that fails
    after publishing it (its own message failed) does not publish it again when it is retried."""
    late = overdue(info, calls, at)
    if not late:
        return {}
    key = run_key(KIND, info.account, period)
    if ports.runs.claim(key, force=ports.force) is not None:
        return {"callbacks_overdue": len(late), "callbacks_message": "already-published"}
    subject, body = render(info, late)
    try:
        message_id = ports.publish(
            subject, body, {"account": info.account, "kind": KIND, "period": period, "overdue": len(late)}
        )
    except Exception as exc:
        ports.runs.fail(key, f"{type(exc).__name__}: {exc}"[:500])
        raise
    ports.runs.finish(key, "published", {"message_id": message_id, "overdue": len(late)})
    return {"callbacks_overdue": len(late), "callbacks_message_id": message_id}
