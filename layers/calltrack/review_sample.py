"""The month's review sample (brief 002: a manager reviews at least 5 random calls a month), drawn
the same way by the monthly review (ops_jobs) and the console's review inbox (report): answered calls
with a stored recording, in (started_at, call_sid) order, ``review.sample_size`` of them drawn with a
generator seeded by account and month, so the draw is reproducible. While the month runs the inbox
draws from the calls so far; the sample settles when the month ends (the monthly review's draw)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def sample_seed(account: str, month: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{account}#{month}".encode()).digest()[:8], "big")


def draw(candidates: Sequence[T], k: int, account: str, month: str) -> list[T]:
    """``k`` of ``candidates`` (already in (started_at, call_sid) order), seeded by account+month."""
    return random.Random(sample_seed(account, month)).sample(list(candidates), min(k, len(candidates)))
