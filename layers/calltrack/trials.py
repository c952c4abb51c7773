"""Campaign trials scored against the pass line (合格ライン), shared by the API and the monthly review.

The SOP (brief 002): a new campaign runs a one-week trial, 50 sample calls are collected and scored
from their recordings against a pass line, and a failing campaign gets its script fixed and is
re-tested. Here a campaign's sample is its first ``review.trial_sample_calls`` answered calls (in
the period read); its verdict:
- ``in_progress`` until the sample is complete and at least ``MIN_SCORED_SHARE`` of it is scored
  (a manager's PATCH ``score``, or the call rules' ``score_add``);
- then ``passed`` when the mean score of the scored sample calls reaches ``review.pass_score``,
  else ``failed`` (fix the script and re-test: a re-test is a new campaign name, or a new period).

Pure: calls are mappings with call_sid, channel, campaign, started_at (sortable), status, score.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

MIN_SCORED_SHARE = 0.8
IN_PROGRESS, PASSED, FAILED = "in_progress", "passed", "failed"
ACTIONS = {
    IN_PROGRESS: "keep collecting and scoring sample calls",
    PASSED: "the script works: keep the campaign",
    FAILED: "fix the script and re-test",
}
ACTIONS_JA = {
    IN_PROGRESS: "サンプル通話の収集と採点を継続",
    PASSED: "合格: スクリプトを継続",
    FAILED: "不合格: スクリプトを修正して再テスト",
}


def trial_of(calls: list[Mapping[str, Any]], target: int, pass_score: float) -> dict[str, Any]:
    """The trial figures and verdict of one campaign's calls."""
    answered = sorted((c for c in calls if c.get("status") == "answered"),
                      key=lambda c: (c.get("started_at"), c.get("call_sid")))
    sample = answered[:target]
    scores = [float(c["score"]) for c in sample if c.get("score") is not None]
    share = len(scores) / len(sample) if sample else 0.0
    mean = round(sum(scores) / len(scores), 1) if scores else None
    if len(sample) < target or share < MIN_SCORED_SHARE:
        verdict = IN_PROGRESS
    else:
        verdict = PASSED if mean is not None and mean >= pass_score else FAILED
    return {
        "calls": len(calls),
        "sample_calls": len(sample),
        "target": target,
        "scored": len(scores),
        "scored_share": round(share, 4),
        "mean_score": mean,
        "pass_score": pass_score,
        "verdict": verdict,
        "action": ACTIONS[verdict],
        "sample": [
            {"call_sid": c.get("call_sid"), "started_at": c.get("started_at"), "score": c.get("score")}
            for c in sample
        ],
    }


def trials(calls: Iterable[Mapping[str, Any]], *, target: int, pass_score: float) -> list[dict[str, Any]]:
    """Every campaign's trial (calls without a campaign are not on trial), by channel and campaign."""
    by_campaign: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for call in calls:
        if call.get("campaign"):
            by_campaign[(str(call.get("channel") or "unknown"), str(call["campaign"]))].append(call)
    out = []
    for (channel, campaign), group in sorted(by_campaign.items()):
        first = min(str(c.get("started_at")) for c in group)
        out.append({"channel": channel, "campaign": campaign, "first_call_at": first,
                    **trial_of(group, max(1, target), pass_score)})
    return out
