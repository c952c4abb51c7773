"""Weekly unanswered-call alert: Monday 09:00 account time, for the 7 local days before.

Rule (thresholds from the account's ``alerts``): fire when the answer rate is below
``answer_rate_below``, or when missed calls exceed ``missed_vs_baseline`` x the trailing 4-week
weekly average AND reach ``min_missed``. One SNS message per firing account; nothing for healthy ones.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ops_jobs import callbacks
from ops_jobs.common import (
    AccountInfo,
    CallFact,
    JobPorts,
    iso_utc,
    local_midnight,
    percent,
    rate,
    sns_subject,
)

JOB = "weekly-unanswered-alert"
RUN_WEEKDAY = 0  # Monday
RUN_HOUR = 9
BASELINE_WEEKS = 4

WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
WEEKDAYS_JA = ("月曜", "火曜", "水曜", "木曜", "金曜", "土曜", "日曜")


def due(info: AccountInfo, at: datetime) -> str | None:
    """Due from Monday 09:00 local until the end of that Monday (hourly runs retry a missed hour)."""
    local = at.astimezone(info.tz)
    if local.weekday() != RUN_WEEKDAY or local.hour < RUN_HOUR:
        return None
    return week_period(info, at)


def week_period(info: AccountInfo, at: datetime) -> str:
    start_day = at.astimezone(info.tz).date() - timedelta(days=7)
    year, week, _ = start_day.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(frozen=True)
class WeekStats:
    calls: int
    ended: int
    answered: int
    missed: int
    answer_rate: float | None
    slots: list[tuple[int, int, int]]  # (weekday, hour, missed) worst first
    baseline_missed: float  # average missed per week over the trailing weeks
    baseline_answer_rate: float | None


def week_stats(info: AccountInfo, week: list[CallFact], baseline: Mapping[str, float]) -> WeekStats:
    """``baseline``: the rollups' counters summed over the trailing weeks (every channel)."""
    ended = [c for c in week if c.ended]
    answered = sum(1 for c in ended if c.answered)
    missed = [c for c in ended if c.missed]
    by_slot: Counter[tuple[int, int]] = Counter()
    for call in missed:
        local = call.started_at.astimezone(info.tz)
        by_slot[(local.weekday(), local.hour)] += 1
    slots = sorted(((d, h, n) for (d, h), n in by_slot.items()), key=lambda s: (-s[2], s[0], s[1]))
    base_answered, base_missed = baseline.get("answered", 0), baseline.get("missed", 0)
    return WeekStats(
        calls=len(week),
        ended=len(ended),
        answered=answered,
        missed=len(missed),
        answer_rate=rate(answered, len(ended)),
        slots=slots,
        baseline_missed=base_missed / BASELINE_WEEKS,
        baseline_answer_rate=rate(base_answered, base_answered + base_missed),
    )


def reasons(info: AccountInfo, stats: WeekStats) -> list[str]:
    """Why the rule fires (empty = healthy)."""
    out = []
    if stats.answer_rate is not None and stats.answer_rate < info.alerts["answer_rate_below"]:
        out.append("answer_rate_below")
    if (
        stats.missed >= info.alerts["min_missed"]
        and stats.missed > info.alerts["missed_vs_baseline"] * stats.baseline_missed
    ):
        out.append("missed_vs_baseline")
    return out


def slot_label(weekday: int, hour: int, *, japanese: bool) -> str:
    if japanese:
        return f"{WEEKDAYS_JA[weekday]} {hour}時台"
    return f"{WEEKDAYS_EN[weekday]} {hour:02d}:00-{(hour + 1) % 24:02d}:00"


def slot_key(weekday: int, hour: int) -> str:
    """Language-neutral slot for message attributes and filters: 'Tue 12'."""
    return f"{WEEKDAYS_EN[weekday]} {hour:02d}"


def render(
    info: AccountInfo, stats: WeekStats, why: list[str], start: datetime, end: datetime
) -> tuple[str, str]:
    """(subject, body) in the account's language (ja-JP, else English)."""
    ja = info.japanese
    worst = stats.slots[:3]
    first_day = start.astimezone(info.tz).date()
    last_day = (end.astimezone(info.tz) - timedelta(seconds=1)).date()
    rate_text = percent(stats.answer_rate)
    if ja:
        headline = f"先週の不在着信: {stats.missed}件 (応答率 {rate_text})"
        if worst:
            headline += f" — {slot_label(worst[0][0], worst[0][1], japanese=True)}に集中"
        slots_text = "、".join(f"{slot_label(d, h, japanese=True)} ({n}件)" for d, h, n in worst) or "なし"
        why_text = {
            "answer_rate_below": f"応答率が基準 {percent(info.alerts['answer_rate_below'])} を下回りました",
            "missed_vs_baseline": (
                f"不在着信が過去{BASELINE_WEEKS}週平均 ({stats.baseline_missed:g}件/週) の"
                f"{info.alerts['missed_vs_baseline']:g}倍を超えました"
            ),
        }
        lines = [
            headline,
            "",
            f"アカウント: {info.name} ({info.account})",
            f"期間: {first_day.isoformat()} 〜 {last_day.isoformat()} ({info.tz.key})",
            f"着信: {stats.calls}件 / 応答: {stats.answered}件 / 不在: {stats.missed}件 / "
            f"応答率: {rate_text}",
            f"過去{BASELINE_WEEKS}週平均: 不在 {stats.baseline_missed:g}件/週, "
            f"応答率 {percent(stats.baseline_answer_rate)}",
            f"不在着信が多い時間帯: {slots_text}",
            "判定: " + " / ".join(why_text[w] for w in why),
        ]
    else:
        headline = f"Last week's missed calls: {stats.missed} (answer rate {rate_text})"
        if worst:
            headline += f" - mostly {slot_label(worst[0][0], worst[0][1], japanese=False)}"
        slots_text = ", ".join(f"{slot_label(d, h, japanese=False)} ({n})" for d, h, n in worst) or "none"
        why_text = {
            "answer_rate_below": (
                f"answer rate below the {percent(info.alerts['answer_rate_below'])} threshold"
            ),
            "missed_vs_baseline": (
                f"missed calls above {info.alerts['missed_vs_baseline']:g}x the {BASELINE_WEEKS}-week "
                f"average ({stats.baseline_missed:g} per week)"
            ),
        }
        lines = [
            headline,
            "",
            f"Account: {info.name} ({info.account})",
            f"Period: {first_day.isoformat()} to {last_day.isoformat()} ({info.tz.key})",
            f"Calls: {stats.calls} / answered: {stats.answered} / missed: {stats.missed} / "
            f"answer rate: {rate_text}",
            f"{BASELINE_WEEKS}-week average: {stats.baseline_missed:g} missed per week, "
            f"answer rate {percent(stats.baseline_answer_rate)}",
            f"Missed calls by time slot: {slots_text}",
            "Why: " + "; ".join(why_text[w] for w in why),
        ]
    return sns_subject(f"[{info.name}] {headline}"), "\n".join(lines) + "\n"


def act(info: AccountInfo, period: str, at: datetime, ports: JobPorts) -> dict[str, Any]:
    run_day = at.astimezone(info.tz).date()
    end = local_midnight(run_day, info.tz)
    start = local_midnight(run_day - timedelta(days=7), info.tz)
    week = ports.calls(info.account, start, end)
    # the baseline weeks from the rollups: their counts outlive calls that a short
    # retention.calls_days has expired (read as calls, they were missing: every week "above baseline")
    counted = ports.counted(info.account, run_day - timedelta(days=7 * (BASELINE_WEEKS + 1)),
                            run_day - timedelta(days=8))
    baseline = {k: sum(c.get(k, 0) for c in counted.values()) for k in ("answered", "missed")}
    stats = week_stats(info, week, baseline)
    why = reasons(info, stats)
    detail: dict[str, Any] = {
        "period": period,
        "from": iso_utc(start),
        "to": iso_utc(end),
        "calls": stats.calls,
        "missed": stats.missed,
        "answer_rate": None if stats.answer_rate is None else round(stats.answer_rate, 4),
        "baseline_missed_per_week": stats.baseline_missed,
        "worst_slots": [slot_key(d, h) for d, h, _ in stats.slots[:3]],
        "reasons": why,
    }
    if info.business_hours(at):
        detail.update(callbacks.alert(info, period, at, week, ports))
    if not why:
        detail["decided"] = "nothing-to-say"
        return detail
    subject, body = render(info, stats, why, start, end)
    attributes: dict[str, str | int | float] = {
        "account": info.account,
        "kind": JOB,
        "period": period,
        "calls": stats.calls,
        "missed": stats.missed,
        "answer_rate": round(stats.answer_rate, 4) if stats.answer_rate is not None else 0,
    }
    if stats.slots:
        attributes["worst_slot"] = slot_key(stats.slots[0][0], stats.slots[0][1])
    detail["message_id"] = ports.publish(subject, body, attributes)
    detail["subject"] = subject
    detail["decided"] = "published"
    return detail
