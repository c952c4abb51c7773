"""Call rules (``call_rules:`` in the account config) over a call's facts and transcript (pure).

A rule hits a call when every condition it gives holds: ``min_talk_seconds``, ``channels``, and
``phrases_any`` (one of the phrases in what ``speaker`` said; needs the transcript). A hit is
recorded once per rule and call in the call's ``rule_hits`` (rule name -> when, which phrase,
what triggered it); a rule already in ``rule_hits`` is never applied again, so duplicate events
and re-evaluations change nothing. Its effects: ``tags_add`` (set union), ``stage`` (raised,
never lowered: lead < opportunity < won/lost), ``score_add`` (added to the score, kept in 0..100).

Phrase matching is on normalised text (``calltrack.transcript_text.normalise``: NFKC, case-folded,
no spaces in Japanese), so 予約 matches ｢予約｣ and "Booking" matches "booking".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from calltrack.transcript_text import normalise, spoken

STAGE_RANK = {"lead": 1, "opportunity": 2, "won": 3, "lost": 3}


def hit(rule: Any, call: Mapping[str, Any], language: str) -> dict[str, Any] | None:
    """The hit of ``rule`` on ``call`` ({"phrase": ...} or {}), or None when it does not hit."""
    when = rule.when
    if when.min_talk_seconds is not None and float(call.get("talk_seconds") or 0) < when.min_talk_seconds:
        return None
    if when.channels and call.get("channel") not in when.channels:
        return None
    if not when.phrases_any:
        return {}
    said = [normalise(text, language) for text in spoken(call.get("transcript"), when.speaker)]
    for phrase in when.phrases_any:
        wanted = normalise(phrase, language)
        if wanted and any(wanted in text for text in said):
            return {"phrase": phrase}
    return None


def new_hits(
    rules: Sequence[Any], call: Mapping[str, Any], language: str
) -> list[tuple[Any, dict[str, Any]]]:
    """The rules that hit ``call`` now and are not yet in its ``rule_hits``, in config order."""
    done = set((call.get("rule_hits") or {}).keys())
    out = []
    for rule in rules:
        if rule.name in done:
            continue
        found = hit(rule, call, language)
        if found is not None:
            out.append((rule, found))
    return out


def effects(
    call: Mapping[str, Any], hits: Sequence[tuple[Any, dict[str, Any]]], *, at: str, trigger: str
) -> dict[str, Any]:
    """The call attributes the hits change: rule_hits, and tags, stage, score when they change."""
    rule_hits = dict(call.get("rule_hits") or {})
    tags = list(call.get("tags") or [])
    stage = call.get("stage")
    score = call.get("score")
    for rule, found in hits:
        then = rule.then
        rule_hits[rule.name] = {"at": at, "trigger": trigger, **found}
        tags += [t for t in then.tags_add if t not in tags]
        if then.stage and STAGE_RANK[then.stage] > STAGE_RANK.get(str(stage or ""), 0):
            stage = then.stage
        if then.score_add:
            score = max(0, min(100, float(score or 0) + then.score_add))
    changes: dict[str, Any] = {"rule_hits": rule_hits}
    if tags != list(call.get("tags") or []):
        changes["tags"] = tags
    if stage != call.get("stage"):
        changes["stage"] = stage
    if score is not None and score != call.get("score"):
        changes["score"] = int(score) if float(score).is_integer() else score
    return changes
