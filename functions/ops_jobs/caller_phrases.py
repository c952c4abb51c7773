"""What callers ask: the caller-side phrases that occurred in most calls of a month (pure).

Japanese has no spaces between words. Instead of a morphological analyser (janome/SudachiPy: a
dictionary of tens of MB in the layer and seconds of cold start for a monthly job) the phrases are
the runs of kanji and of katakana in what callers said: in Japanese the content words a caller
asks about (予約, 費用, インプラント, 保険, 駐車場) are written in kanji or katakana and the
grammar between them (したいのですが, はありますか) in hiragana, so cutting at script changes
keeps the topics and drops the grammar. Other languages: words of three or more letters minus a
short stop list. A phrase counts once per call (what many callers ask, not what one repeats).
See docs/decisions.md (2026-11-30) for what this misses.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence

TOP = 10
MIN_CALLS = 2
_KANJI = r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff々〆]"
_KATAKANA = r"[\u30a1-\u30faー]"
_JA = re.compile(rf"{_KANJI}{{2,}}|{_KATAKANA}{{2,}}")
_WORD = re.compile(r"[^\W\d_]{3,}")
# Runs that open or close almost every call and say nothing about what the caller wants.
STOP_JA = frozenset({"失礼", "電話", "少々", "本日", "お願", "大丈夫", "承知", "検討"})
STOP_EN = frozenset({
    "the", "and", "you", "for", "that", "this", "with", "have", "what", "can", "your", "are", "was",
    "but", "not", "just", "like", "yes", "okay", "thank", "thanks", "hello", "please", "would",
    "could", "about", "there", "they", "from", "hi", "bye", "yeah", "will", "when", "how", "want",
})


def phrases(text: str, language: str) -> set[str]:
    """The phrases of one call's caller side."""
    clean = unicodedata.normalize("NFKC", text)
    if language.lower().startswith("ja"):
        found = {m for m in _JA.findall(clean) if m not in STOP_JA}
        found |= {w.casefold() for w in re.findall(r"[A-Za-z]{3,}", clean)} - STOP_EN
        return found
    return {w.casefold() for w in _WORD.findall(clean)} - STOP_EN


def top_phrases(
    calls: Iterable[Sequence[str]], language: str, *, top: int = TOP, min_calls: int = MIN_CALLS
) -> list[dict[str, object]]:
    """[{"phrase", "calls"}] for the phrases in the most calls (each call: its caller lines)."""
    counts: Counter[str] = Counter()
    for lines in calls:
        if lines:
            counts.update(phrases(" ".join(lines), language))
    ranked = sorted(((n, p) for p, n in counts.items() if n >= min_calls), key=lambda x: (-x[0], x[1]))
    return [{"phrase": p, "calls": n} for n, p in ranked[:top]]
