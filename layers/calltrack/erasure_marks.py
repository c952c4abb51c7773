"""Erasure marks: a caller erased from an account is not written back by a callback replayed later.

A Twilio callback that met a storage outage waits in the voice webhook's outbox (and its
dead-letter queue, redriven hourly) for up to about three weeks; replayed after the caller's
erasure it would write the call back (origin, caller, first-call mark) and send it out again. The
erasure (``privacy.callers.erase``) therefore first leaves a mark in the callers table, keyed by a
SHA-256 of the number (never the number), with the moment of the erasure per account; the replay
(``voice_webhook.replay``) drops a callback that arrived before the caller's erasure from the
account it was for. The mark expires with the table's TTL after ``MARK_TTL_S`` (longer than any
callback can wait: 14 days in the dead-letter queue after up to six days of redrives).

The mark also keeps, per account, the CallSids the erasure deleted and the days of the export
files they may be in (``calls#{account}``, ``days#{account}``; Twilio's ids and dates, not the
number) until the erasure has run to its end: an erasure retried after a failure that came once
the calls were gone still sweeps the rows an in-flight event made meanwhile (conversions, webhook
deliveries, export rows), which it finds only by CallSid. A finished erasure removes them, so that
no item ties the account to the erased calls.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

MARK_TTL_S = 30 * 86400
KEY_PREFIX = "erased#"  # callers-table keys of numbers are E.164 ("+..."): no clash
ACCOUNT_PREFIX = "at#"
CALLS_PREFIX = "calls#"
DAYS_PREFIX = "days#"
EVERY_DAY = "*"  # in days#: a call without a start time, every export file


def mark_key(number: str) -> str:
    """The callers-table key of the number's erasure mark."""
    return KEY_PREFIX + hashlib.sha256(number.encode("utf-8")).hexdigest()


def account_attribute(account: str) -> str:
    return ACCOUNT_PREFIX + account


def erased_at(row: Mapping[str, Any] | None) -> dict[str, float]:
    """account -> when the number was erased from it, from a mark row (plain attribute values)."""
    out: dict[str, float] = {}
    for name, value in (row or {}).items():
        if name.startswith(ACCOUNT_PREFIX):
            try:
                out[name[len(ACCOUNT_PREFIX):]] = float(value)
            except (TypeError, ValueError):
                continue
    return out


def erased_since(marks: Mapping[str, float], received_at: float, account: str | None) -> bool:
    """True when a callback received at ``received_at`` for ``account`` (None: not known) belongs
    to an erasure made since: from that account, or from any account when it is not known."""
    since = {a for a, at in marks.items() if at >= received_at}
    return bool(since) and (account is None or account in since)
