"""Test helpers shared by every tier: unique ids so tests can share one local stack."""

from __future__ import annotations

import random
import re
import secrets
import threading

_lock = threading.Lock()
_issued: set[str] = set()
_rng = random.SystemRandom()


def unique_account(prefix: str = "t") -> str:
    """A fresh account slug (lower-case letters, digits and dashes), unique in this session."""
    slug = re.sub(r"[^a-z0-9-]", "-", prefix.lower()).strip("-") or "t"
    while True:
        candidate = f"{slug}-{secrets.token_hex(5)}"
        with _lock:
            if candidate not in _issued:
                _issued.add(candidate)
                return candidate


def unique_number(prefix: str = "+8150") -> str:
    """A fresh E.164 number that phonenumbers accepts as possible, unique in this session.

    The default ``+8150`` + 8 digits is a Japanese IP-phone number (050-XXXX-XXXX); any
    prefix works as long as prefix + 8 random digits is a possible number for its country.
    """
    import phonenumbers

    digits_needed = 8
    for _ in range(1000):
        candidate = prefix + "".join(str(_rng.randrange(10)) for _ in range(digits_needed))
        with _lock:
            if candidate in _issued:
                continue
        parsed = phonenumbers.parse(candidate, None)
        if not phonenumbers.is_possible_number(parsed):
            raise ValueError(f"{prefix!r} + {digits_needed} digits is not a possible phone number")
        with _lock:
            if candidate not in _issued:
                _issued.add(candidate)
                return candidate
    raise RuntimeError("could not find a fresh number")  # pragma: no cover


def unique_call_sid() -> str:
    """A Twilio-shaped CallSid (CA + 32 hex digits)."""
    return "CA" + secrets.token_hex(16)


def unique_recording_sid() -> str:
    """A Twilio-shaped RecordingSid (RE + 32 hex digits)."""
    return "RE" + secrets.token_hex(16)
