"""Reading the compact transcript stored on a call (``transcript`` attribute, written by the
transcripts function), shared by the call rules and the calls search.

Stored shape: ``{"status": "stored", "language", "segments": [[speaker, start_seconds, text], ...],
"truncated", ...}``; speaker is ``caller``, ``staff`` or ``unknown``.

Text is compared normalised: Unicode NFKC (full-width and half-width forms alike), case-folded,
whitespace collapsed, and removed altogether for languages written without spaces.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

# Languages written without spaces between words.
UNSPACED = ("ja", "zh", "th", "ko")


def unspaced(language: str) -> bool:
    return language.lower().split("-")[0] in UNSPACED


def normalise(text: str, language: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    if unspaced(language):
        return "".join(folded.split())
    return " ".join(folded.split())


def spoken(transcript: Mapping[str, Any] | None, speaker: str = "any") -> list[str]:
    """What ``speaker`` (caller, staff or any) said, segment by segment, in a stored transcript."""
    if not isinstance(transcript, Mapping) or transcript.get("status") != "stored":
        return []
    return [
        str(seg[2]) for seg in transcript.get("segments") or []
        if isinstance(seg, list | tuple) and len(seg) == 3 and (speaker == "any" or seg[0] == speaker)
    ]
