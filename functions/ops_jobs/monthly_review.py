"""Monthly channel review: the 1st at 09:00 account time, for the month before.

Per channel: calls vs the previous month, answer/lead/close rates, won value per call, spend, CPA,
ROMI, and the decision-flow verdict (DESIGN.md):

    calls up?  no  -> review ad copy and targeting
               yes -> quality high?  yes    -> increase spend
                                     partly -> review recordings and improve the script
                                     no     -> change channel or review cost-effectiveness

Quality: lead rate (stage lead or beyond, tag "qualified", or score >= review.qualified_score when
set) >= review.lead_rate_high is high (and, when review.won_value_per_call_high is set, won value
per call must reach it too); < review.lead_rate_low is low; in between is partly.
Plus a seeded random sample of answered calls with stored recordings for manager review (with
their scores), the campaigns on trial (first call within the last 3 weeks of the month) with their
verdict against ``review.pass_score`` (calltrack.trials), and what callers asked: the caller-side
phrases of the month's transcripts that occurred in most calls (ops_jobs.caller_phrases).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from calltrack.review_sample import draw
from ops_jobs.caller_phrases import top_phrases
from ops_jobs.common import (
    AccountInfo,
    CallFact,
    JobPorts,
    iso_utc,
    month_bounds,
    parse_month,
    percent,
    previous_month,
    rate,
    sns_subject,
)

JOB = "monthly-channel-review"
RUN_DAY = 1
RUN_HOUR = 9
TRIAL_WINDOW = timedelta(weeks=3)

REVIEW_AD_COPY = "review ad copy and targeting"
INCREASE_SPEND = "increase spend"
IMPROVE_SCRIPT = "review recordings and improve the script"
CHANGE_CHANNEL = "change channel or review cost-effectiveness"
VERDICT_CODES = {
    REVIEW_AD_COPY: "review_ad_copy",
    INCREASE_SPEND: "increase_spend",
    IMPROVE_SCRIPT: "improve_script",
    CHANGE_CHANNEL: "change_channel",
}
VERDICTS_JA = {
    REVIEW_AD_COPY: "広告文とターゲティングを見直す",
    INCREASE_SPEND: "予算を増やす",
    IMPROVE_SCRIPT: "録音を確認し、トークスクリプトを改善する",
    CHANGE_CHANNEL: "チャネルの変更または費用対効果の見直し",
}


def due(info: AccountInfo, at: datetime) -> str | None:
    """Due from the 1st 09:00 local until the end of that day; the period is the month before."""
    local = at.astimezone(info.tz)
    if local.day != RUN_DAY or local.hour < RUN_HOUR:
        return None
    return review_month(info, at)


def review_month(info: AccountInfo, at: datetime) -> str:
    local = at.astimezone(info.tz).date()
    return previous_month(f"{local.year:04d}-{local.month:02d}")


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def month_days(month: str) -> int:
    """Days in ``month`` (YYYY-MM)."""
    import calendar

    year, number = (int(part) for part in month.split("-"))
    return calendar.monthrange(year, number)[1]


def figures(calls: list[CallFact], previous: int, spend: float | None, qualified_score: float | None,
            days: tuple[int, int] | None = None) -> dict:
    """A channel's (or the totals') figures of the month; ``days``: the month's and the previous
    month's length, so calls compare per day (a February is not "down" for being short)."""
    ended = [c for c in calls if c.ended]
    answered = sum(1 for c in ended if c.answered)
    leads = sum(1 for c in calls if c.is_lead(qualified_score))
    won = [c for c in calls if c.won]
    won_value = round(sum(c.value or 0.0 for c in won), 2)  # values are to the sen: no 300.29999999999995
    n = len(calls)
    this_days, previous_days = days or (1, 1)
    return {
        "calls": n,
        "previous_calls": previous,
        "change": n - previous,
        "days": this_days if days else None,
        "previous_days": previous_days if days else None,
        "answered": answered,
        "missed": sum(1 for c in ended if c.missed),
        "answer_rate": _round(rate(answered, n)),  # answered / calls, as the reports define it
        "leads": leads,
        "lead_rate": _round(rate(leads, n)),
        "won": len(won),
        "close_rate": _round(rate(len(won), n)),
        "won_value": won_value,
        "won_value_per_call": _round(rate(won_value, n), 2),
        "spend": spend,
        "cost_per_call": _round(rate(spend, n), 2) if spend is not None else None,
        "cpa": _round(rate(spend, len(won)), 2) if spend is not None else None,
        "romi": _round(rate(won_value - spend, spend)) if spend is not None else None,
    }


def verdict(fig: dict[str, Any], review: dict[str, Any], previous_label: str) -> dict[str, Any]:
    """The decision flow for one channel: verdict (the action), quality and a reason with figures."""
    calls, prev = fig["calls"], fig["previous_calls"]
    days, prev_days = fig.get("days") or 1, fig.get("previous_days") or 1
    # per day, compared exactly (calls x other month's days): months of 28 to 31 days
    now_rate, prev_rate = calls * prev_days, prev * days
    per_day = f" (a day: {calls / days:.2f} vs {prev / prev_days:.2f})" if days != prev_days else ""
    if now_rate <= prev_rate:
        word = "down" if now_rate < prev_rate else "flat"
        return {
            "verdict": REVIEW_AD_COPY,
            "verdict_code": VERDICT_CODES[REVIEW_AD_COPY],
            "quality": None,
            "reason": f"calls {word}: {calls} vs {prev} in {previous_label}{per_day}",
        }
    lead_rate = fig["lead_rate"] or 0.0
    wvpc = fig["won_value_per_call"] or 0.0
    high, low = review["lead_rate_high"], review["lead_rate_low"]
    wvpc_high = review.get("won_value_per_call_high")
    up = f"calls up: {calls} vs {prev} in {previous_label}{per_day}"
    if lead_rate >= high and (wvpc_high is None or wvpc >= wvpc_high):
        quality, action = "high", INCREASE_SPEND
        why = f"lead rate {percent(lead_rate)} >= {percent(high)}"
        if wvpc_high is not None:
            why += f" and won value per call {wvpc:g} >= {wvpc_high:g}"
    elif lead_rate < low:
        quality, action = "low", CHANGE_CHANNEL
        why = f"lead rate {percent(lead_rate)} < {percent(low)}"
    else:
        quality, action = "partly", IMPROVE_SCRIPT
        if lead_rate >= high:
            why = (
                f"lead rate {percent(lead_rate)} >= {percent(high)} "
                f"but won value per call {wvpc:g} < {wvpc_high:g}"
            )
        else:
            why = f"lead rate {percent(lead_rate)} between {percent(low)} and {percent(high)}"
    return {
        "verdict": action,
        "verdict_code": VERDICT_CODES[action],
        "quality": quality,
        "reason": f"{up}; quality {quality}: {why}",
    }


def draw_sample(info: AccountInfo, month: str, calls: list[CallFact]) -> list[dict[str, Any]]:
    """A reproducible random sample of answered calls with stored recordings, seeded by account+month."""
    candidates = sorted(
        (c for c in calls if c.answered and c.recording_stored), key=lambda c: (c.started_at, c.call_sid)
    )
    drawn = draw(candidates, int(info.review["sample_size"]), info.account, month)
    drawn.sort(key=lambda c: (c.started_at, c.call_sid))
    return [
        {
            "call_sid": c.call_sid,
            "started_at": iso_utc(c.started_at),
            "started_local": c.started_at.astimezone(info.tz).isoformat(timespec="seconds"),
            "channel": c.channel,
            "campaign": c.campaign,
            "agent": c.agent,
            "talk_seconds": c.talk_seconds,
            "stage": c.stage,
            "value": c.value,
            "score": c.score,
            "recording": f"/v1/calls/{c.call_sid}/recording",
        }
        for c in drawn
    ]


def trials(info: AccountInfo, calls: list[CallFact], end: datetime) -> list[dict[str, Any]]:
    """Campaigns whose first call (within the calls read) falls in the 3 weeks before ``end``,
    with their verdict against the pass line."""
    from calltrack.trials import trial_of

    target = int(info.review["trial_sample_calls"])
    pass_score = float(info.review.get("pass_score", 70))
    by_campaign: dict[tuple[str, str], list[CallFact]] = defaultdict(list)
    for call in calls:
        if call.campaign:
            by_campaign[(call.channel, call.campaign)].append(call)
    out = []
    for (channel, campaign), group in sorted(by_campaign.items()):
        first = min(c.started_at for c in group)
        if first < end - TRIAL_WINDOW:
            continue
        verdict = _verdict(trial_of([_trial_call(c) for c in group], target, pass_score))
        sampled = int(verdict["sample_calls"])  # the trial samples answered calls only
        out.append(
            {
                "channel": channel,
                "campaign": campaign,
                "first_call_at": iso_utc(first),
                "trial_week_ends": iso_utc(first + timedelta(weeks=1)),
                "calls": len(group),
                "target": target,
                "progress": round(min(1.0, sampled / target), 4),
                "remaining": max(0, target - sampled),
                "complete": sampled >= target,
                **verdict,
            }
        )
    return out


def _trial_call(c: CallFact) -> dict[str, Any]:
    return {"call_sid": c.call_sid, "started_at": iso_utc(c.started_at), "status": c.status, "score": c.score}


def _verdict(trial: dict[str, Any]) -> dict[str, Any]:
    """What the review shows of a trial's verdict (the sampled calls' scores included)."""
    keys = ("sample_calls", "scored", "scored_share", "mean_score", "pass_score", "verdict", "action",
            "sample")
    return {k: trial[k] for k in keys}


def build_review(
    info: AccountInfo,
    month: str,
    calls: list[CallFact],
    spend: dict[str, float],
    generated_at: datetime,
    previous_calls: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The review document (JSON-ready). ``calls`` spans the previous month and ``month``;
    ``previous_calls`` (channel -> calls counted in the previous month, from the rollups) replaces
    the previous month's calls as read, which a short ``retention.calls_days`` has expired."""
    prev = previous_month(month)
    start, end = month_bounds(month, info.tz)
    prev_start, _ = month_bounds(prev, info.tz)
    this = [c for c in calls if start <= c.started_at < end]
    this_by: dict[str, list[CallFact]] = defaultdict(list)
    prev_by: dict[str, int] = defaultdict(int)
    for c in this:
        this_by[c.channel].append(c)
    if previous_calls is None:
        for c in calls:
            if prev_start <= c.started_at < start:
                prev_by[c.channel] += 1
    else:
        prev_by.update({channel: n for channel, n in previous_calls.items() if n})
    qs = info.review.get("qualified_score")
    channels = []
    days = (month_days(month), month_days(prev))
    for channel in sorted(set(this_by) | set(prev_by) | set(spend)):
        fig = figures(this_by.get(channel, []), prev_by.get(channel, 0), spend.get(channel), qs, days)
        channels.append({"channel": channel, **fig, **verdict(fig, info.review, prev)})
    channels.sort(key=lambda ch: (-ch["calls"], ch["channel"]))
    total_spend = round(sum(spend.values()), 2) if spend else None
    sample = draw_sample(info, month, this)
    return {
        "account": info.account,
        "name": info.name,
        "month": month,
        "previous_month": prev,
        "timezone": info.tz.key,
        "language": info.language,
        "from": iso_utc(start),
        "to": iso_utc(end),
        "generated_at": iso_utc(generated_at),
        "thresholds": dict(info.review),
        "totals": figures(this, sum(prev_by.values()), total_spend, qs, days),
        "channels": channels,
        "review_sample": sample,
        "review_sample_target": int(info.review["sample_size"]),
        "review_sample_shortfall": max(0, int(info.review["sample_size"]) - len(sample)),
        "trials": trials(info, [c for c in calls if c.started_at < end], end),
        "caller_phrases": top_phrases([c.caller_said for c in this], info.language),
        "transcribed_calls": sum(1 for c in this if c.caller_said),
    }


# The SNS announcement's lines, per language (str.format templates).
SUMMARY_PHRASES = {
    "ja": {
        "headline": "月次チャネルレビュー {month}: 着信 {calls}件",
        "account": "アカウント: {name} ({account})",
        "channel": "- {channel}: {calls}件 (前月 {previous_calls}件), "
        "応答率 {answer_rate}, リード率 {lead_rate} → {verdict}",
        "sample": "録音レビュー対象: {count}件",
        "trial": "トライアル中: {channel}/{campaign} 応答{calls}/{target}件 平均{mean} "
        "(合格ライン {pass_score}) → {verdict}",
        "phrases": "お客様がよく話した言葉: {phrases}",
        "details": "詳細: GET /v1/reviews/{month} (?format=html)",
    },
    "en": {
        "headline": "Monthly channel review {month}: {calls} calls",
        "account": "Account: {name} ({account})",
        "channel": "- {channel}: {calls} calls (previous {previous_calls}), "
        "answer rate {answer_rate}, lead rate {lead_rate} -> {verdict}",
        "sample": "Calls to review: {count}",
        "trial": "On trial: {channel}/{campaign} {calls}/{target} answered calls, mean score {mean} "
        "(pass {pass_score}) -> {verdict}",
        "phrases": "What callers talked about: {phrases}",
        "details": "Details: GET /v1/reviews/{month} (?format=html)",
    },
}


def summary(info: AccountInfo, review: dict[str, Any]) -> tuple[str, str]:
    """(subject, body) of the SNS announcement, in the account's language."""
    month = review["month"]
    say = SUMMARY_PHRASES["ja" if info.japanese else "en"]
    headline = say["headline"].format(month=month, calls=review["totals"]["calls"])
    lines = [headline, "", say["account"].format(name=info.name, account=info.account)]
    for ch in review["channels"]:
        verdict = VERDICTS_JA[ch["verdict"]] if info.japanese else ch["verdict"]
        lines.append(
            say["channel"].format(
                channel=ch["channel"],
                calls=ch["calls"],
                previous_calls=ch["previous_calls"],
                answer_rate=percent(ch["answer_rate"]),
                lead_rate=percent(ch["lead_rate"]),
                verdict=verdict,
            )
        )
    lines.append(say["sample"].format(count=len(review["review_sample"])))
    from calltrack.trials import ACTIONS_JA

    for t in review["trials"]:
        mean = "-" if t.get("mean_score") is None else f"{t['mean_score']:g}"
        verdict = ACTIONS_JA[t["verdict"]] if info.japanese else f"{t['verdict']} ({t['action']})"
        lines.append(say["trial"].format(channel=t["channel"], campaign=t["campaign"],
                                         calls=t["sample_calls"], target=t["target"], mean=mean,
                                         pass_score=f"{t['pass_score']:g}", verdict=verdict))
    if review.get("caller_phrases"):
        joined = ", ".join(f"{p['phrase']} ({p['calls']})" for p in review["caller_phrases"][:5])
        lines.append(say["phrases"].format(phrases=joined))
    lines.append(say["details"].format(month=month))
    return sns_subject(f"[{info.name}] {headline}"), "\n".join(lines) + "\n"


def review_key(account: str, month: str, ext: str) -> str:
    return f"reviews/{account}/{month}.{ext}"


def act(info: AccountInfo, period: str, at: datetime, ports: JobPorts) -> dict[str, Any]:
    from ops_jobs.review_render import render_html

    month = period
    parse_month(month)
    prev_start, _ = month_bounds(previous_month(month), info.tz)
    _, end = month_bounds(month, info.tz)
    calls = ports.calls(info.account, prev_start, end)  # the previous month's: trials started then
    spend = ports.spend(info.account, month)
    first = parse_month(previous_month(month))
    counted = ports.counted(info.account, first, parse_month(month) - timedelta(days=1))
    previous = {channel: int(c.get("calls", 0)) for channel, c in counted.items()}
    review = build_review(info, month, calls, spend, at, previous)
    detail: dict[str, Any] = {
        "month": month,
        "channels": {ch["channel"]: ch["verdict"] for ch in review["channels"]},
        "review_sample": len(review["review_sample"]),
    }
    if not review["channels"]:
        detail["decided"] = "nothing-to-say"
        return detail
    if ports.blobs is None:
        raise RuntimeError("no blob store configured for reviews")
    body = json.dumps(review, ensure_ascii=False, indent=2).encode("utf-8")
    ports.blobs.put(review_key(info.account, month, "json"), body, "application/json")
    html = render_html(review, japanese=info.japanese).encode("utf-8")
    ports.blobs.put(review_key(info.account, month, "html"), html, "text/html; charset=utf-8")
    subject, text = summary(info, review)
    detail["message_id"] = ports.publish(
        subject,
        text,
        {
            "account": info.account,
            "kind": JOB,
            "month": month,
            "calls": review["totals"]["calls"],
            "channels": len(review["channels"]),
        },
    )
    detail["subject"] = subject
    detail["decided"] = "published"
    return detail
