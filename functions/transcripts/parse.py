"""Amazon Transcribe's batch output JSON -> the compact transcript stored on a call (pure).

The output shape is Transcribe's documented one (https://docs.aws.amazon.com/transcribe/latest/dg/
how-input.html#how-it-works-output and, with ChannelIdentification, .../channel-id-output-batch.html):
``results.channel_labels.channels[].items[]`` per channel (``ch_0``, ``ch_1``), else ``results.items``;
each item has ``type`` (pronunciation | punctuation), ``start_time`` (a string of seconds, absent on
punctuation) and ``alternatives[0].content``.

On Twilio's dual-channel recordings of a ``<Dial>`` the first channel is the parent call (the
caller) and the second the dialled leg (the staff who answered): ``ch_0`` -> caller, ``ch_1`` ->
staff. Mono output gives the speaker ``unknown``.

A segment is one speaker's run of words, cut at a sentence end or a pause of ``PAUSE_S``. Stored
compact as ``[speaker, start_seconds, text]`` and capped at ``MAX_TEXT_BYTES`` of text (the call
item must stay far below DynamoDB's 400 KB and the call event below SQS's 256 KB).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from calltrack.transcript_text import unspaced

SPEAKERS = {"ch_0": "caller", "ch_1": "staff"}
PAUSE_S = 1.5
SENTENCE_ENDS = frozenset(".?!。？！")
MAX_TEXT_BYTES = 48 * 1024

Segment = list[Any]  # [speaker, start seconds, text]


def _content(item: Mapping[str, Any]) -> str:
    alternatives = item.get("alternatives") or [{}]
    return str((alternatives[0] or {}).get("content") or "").strip()


def _start(item: Mapping[str, Any]) -> float | None:
    try:
        return round(float(item["start_time"]), 2)
    except (KeyError, TypeError, ValueError):
        return None


def _runs(items: Sequence[Mapping[str, Any]], speaker: str, language: str) -> list[Segment]:
    joiner = "" if unspaced(language) else " "
    out: list[Segment] = []
    words: list[str] = []
    start: float | None = None
    last_end: float | None = None

    def flush() -> None:
        nonlocal words, start
        text = joiner.join(words).strip()
        if text:
            out.append([speaker, start if start is not None else 0.0, text])
        words, start = [], None

    for item in items:
        content = _content(item)
        if not content:
            continue
        if item.get("type") == "punctuation":
            if words:
                words[-1] += content
            if content in SENTENCE_ENDS:
                flush()
            continue
        begin = _start(item)
        if words and begin is not None and last_end is not None and begin - last_end >= PAUSE_S:
            flush()
        if start is None:
            start = begin
        words.append(content)
        try:
            last_end = float(item.get("end_time", begin or 0))
        except (TypeError, ValueError):
            last_end = begin
    flush()
    return out


def segments(output: Mapping[str, Any], language: str) -> list[Segment]:
    """The transcript's segments in time order (speaker, start seconds, text)."""
    results = output.get("results") or {}
    channels = (results.get("channel_labels") or {}).get("channels")
    found: list[Segment] = []
    if channels:
        for channel in channels:
            speaker = SPEAKERS.get(str(channel.get("channel_label")), "unknown")
            found.extend(_runs(channel.get("items") or [], speaker, language))
    else:
        found = _runs(results.get("items") or [], "unknown", language)
    found.sort(key=lambda s: (s[1], s[0]))
    return found


def capped(found: list[Segment], max_bytes: int = MAX_TEXT_BYTES) -> tuple[list[Segment], bool]:
    """The leading segments whose text fits ``max_bytes`` (UTF-8); and whether any were dropped."""
    kept: list[Segment] = []
    used = 0
    for segment in found:
        size = len(str(segment[2]).encode("utf-8")) + 16
        if used + size > max_bytes:
            return kept, True
        kept.append(segment)
        used += size
    return kept, False
