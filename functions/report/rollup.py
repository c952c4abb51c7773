"""The calls-stream consumer: exactly-once rollup counters (Lambda ``report.rollup_consumer.handler``).

A call's *contribution* is derived from one image of it: for every dimension (channel, campaign,
keyword, landing page, tracking number, agent, hour of week) one rollup row key
``f"{dimension}|{day}#{value}"`` (day in the zone the call was stamped with when it was created,
else the account's current zone: ``contribution``) with the call's counters
(calls, answered, missed, first_time, talk_seconds, leads, opportunities, won, won_value).

Exactly once **per stream batch** (issue 24; docs/decisions.md 2026-11-30 and 2026-12-01). The
calls stream carries NEW_AND_OLD_IMAGES and DynamoDB Streams keeps one item's records in order, so
a record's change is ``contribution(NewImage) - contribution(OldImage)``: no per-call state is read
or written. A batch's changes are summed per (account, row) and written as transactions of one
*idempotency item* and up to 99 rows. The item is keyed by the transaction's first sequence number
and lists every sequence number the transaction covers (records that changed no counter included),
with a TTL beyond the stream's 24-hour retention. A batch first reads the items keyed by its own
records' sequence numbers (``RollupStore.covered``) and skips the records they cover, so a batch
delivered again, or restarted at the record the handler reported failed, counts nothing twice.

That holds only if a retry never starts inside a committed transaction's span: transactions cover
contiguous runs of the batch and are committed in stream order, the handler reports the first
record of the first transaction it did not commit (``ReportBatchItemFailures``), and the event
source mapping must not bisect batches (``StreamConsumer.bisect_on_error=False``).

Ignored, as before: images without an account (a partial write; the emulator's key-only INSERT)
and REMOVE records. A call leaves the calls table only by TTL (``retention.calls_days``: its counts
stay), a caller's erasure (counts stay: rollups hold no personal data) or an account's deletion
(which deletes the account's rollups itself), so no REMOVE takes counts back.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from calltrack.call_items import call_from_item
from calltrack.days import call_timezone, parse_started_at, zone
from calltrack.models.reports import COUNTERS, DIMENSIONS, NONE_VALUE
from calltrack.observability import make_logger
from calltrack.records import json_object

logger = make_logger("rollup")

MISSED_STATUSES = frozenset({"missed", "busy", "failed", "canceled", "no-answer"})
ANSWERED_STATUSES = frozenset({"answered", "completed"})
# Funnel order. "lost" is a lead that did not close: it counts as a lead, not an opportunity.
LEAD_STAGES = frozenset({"lead", "opportunity", "won", "lost"})
QUALIFIED_TAG = "qualified"
OPPORTUNITY_STAGES = frozenset({"opportunity", "won"})

Number = int | float
Contribution = dict[str, dict[str, Number]]
# (account, row key) -> counters: what a batch adds to the rollups table
Rows = dict[tuple[str, str], dict[str, Number]]

# ---------------------------------------------------------------- pure logic


def _num(value: Any) -> Number:
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        return int(value)
    try:
        dec = Decimal(str(value))
    except Exception:  # noqa: BLE001 - garbage in a number field counts as zero
        return 0
    if not dec.is_finite():
        return 0
    return int(dec) if dec == dec.to_integral_value() else float(dec)


# A dimension value is part of a rollup row's sort key (f"{day}#{value}"), which DynamoDB caps at
# 1,024 bytes: a value is cut to 256 characters and 900 UTF-8 bytes (256 emoji are 1,024 bytes, and
# one such keyword failed its whole stream batch, every retry).
MAX_VALUE_CHARS, MAX_VALUE_BYTES = 256, 900


def _text(value: Any) -> str:
    text = str(value).strip() if value is not None else ""
    if not text:
        return NONE_VALUE
    text = text[:MAX_VALUE_CHARS]
    raw = text.encode("utf-8", "replace")
    return raw[:MAX_VALUE_BYTES].decode("utf-8", "ignore") if len(raw) > MAX_VALUE_BYTES else text


def is_lead(image: Mapping[str, Any]) -> bool:
    """A call at stage lead or beyond, or tagged ``qualified`` (a call rule's or a CRM's tag): a lead
    for the reports as for the monthly review (README "Call rules")."""
    stage = str(image.get("stage") or "").lower()
    tags = image.get("tags")
    return stage in LEAD_STAGES or (isinstance(tags, list | tuple | set) and QUALIFIED_TAG in tags)


def call_counters(image: Mapping[str, Any]) -> dict[str, Number]:
    """The counters one call adds to every row it belongs to."""
    status = str(image.get("status") or "ringing").lower()
    stage = str(image.get("stage") or "").lower()
    won = stage == "won"
    return {
        "calls": 1,
        "answered": int(status in ANSWERED_STATUSES),
        "missed": int(status in MISSED_STATUSES),
        "first_time": int(bool(image.get("first_time"))),
        "talk_seconds": _num(image.get("talk_seconds")),
        "leads": int(is_lead(image)),
        "opportunities": int(stage in OPPORTUNITY_STAGES),
        "won": int(won),
        "won_value": _num(image.get("value")) if won else 0,
    }


def dimension_values(image: Mapping[str, Any], local: datetime) -> dict[str, str]:
    attribution = json_object(image.get("attribution"))
    agent = image.get("agent") or image.get("forward_to") or attribution.get("forward_to")
    return {
        "channel": _text(image.get("channel")),
        "campaign": _text(image.get("campaign")),
        "keyword": _text(image.get("keyword") or attribution.get("keyword")),
        "landing_page": _text(attribution.get("landing_page") or image.get("landing_page")),
        "tracking_number": _text(image.get("tracking_number")),
        "agent": _text(agent),
        "hour_of_week": f"{local.weekday()}-{local.hour:02d}",
    }


def contribution(image: Mapping[str, Any] | None, tz: str) -> Contribution:
    """Rollup row key -> counters for one call image (empty for a deleted/unusable call, and for a
    test call: test calls change no report figure).

    The day and hour of week are local to the zone the call was stamped with when it was created
    (``calltrack.days.call_timezone``); ``tz``, the account's current zone, only for a call without
    a usable stamp. Both images of a call carry the same stamp, so a record after the account
    changed its zone takes back exactly what the call added."""
    if not image or not image.get("account") or image.get("test"):
        return {}
    started = parse_started_at(image.get("started_at"))
    if started is None:
        return {}
    local = started.astimezone(zone(call_timezone(image, tz)))
    day = local.date().isoformat()
    counters = {k: v for k, v in call_counters(image).items() if v}
    out: Contribution = {}
    for dimension, value in dimension_values(image, local).items():
        out[row_key(dimension, day, value)] = dict(counters)
    return out


def row_key(dimension: str, day: str, value: str) -> str:
    return f"{dimension}|{day}#{value}"


def split_row_key(key: str) -> tuple[str, str]:
    """-> (dimension, sort key f"{day}#{value}")."""
    dimension, _, sk = key.partition("|")
    return dimension, sk


def diff(old: Contribution, new: Contribution) -> Contribution:
    """new - old per row and counter, dropping zeros."""
    out: Contribution = {}
    for key in set(old) | set(new):
        before, after = old.get(key, {}), new.get(key, {})
        delta: dict[str, Number] = {}
        for counter in COUNTERS:
            change = _num(Decimal(str(after.get(counter, 0))) - Decimal(str(before.get(counter, 0))))
            if change:
                delta[counter] = change
        if delta:
            out[key] = delta
    return out


def merge_rows(rows: Rows, deltas: Rows) -> Rows:
    """``rows`` plus ``deltas``, per row and counter, zeros dropped (a new dict)."""
    out = {key: dict(counters) for key, counters in rows.items()}
    for key, delta in deltas.items():
        target = out.setdefault(key, {})
        add_counters(target, delta)
        if not target:
            del out[key]
    return out


def add_counters(target: dict[str, Number], delta: Mapping[str, Number]) -> None:
    """``target`` plus ``delta``, per counter, in place (exact decimal sums; zeros dropped)."""
    for counter, amount in delta.items():
        total = _num(Decimal(str(target.get(counter, 0))) + Decimal(str(amount)))
        if total:
            target[counter] = total
        else:
            target.pop(counter, None)


# ---------------------------------------------------------------- the port


MAX_TRANSACT_ITEMS = 100  # DynamoDB TransactWriteItems limit
MAX_ROWS_PER_TRANSACTION = MAX_TRANSACT_ITEMS - 1  # one item is the idempotency item


class RollupStore(Protocol):
    def covered(self, seqs: list[str]) -> set[str]:
        """The sequence numbers covered by committed transactions whose idempotency item is keyed
        by one of ``seqs`` (read consistently)."""
        ...

    def commit(self, seqs: list[str], rows: Rows) -> bool:
        """In ONE transaction: the idempotency item keyed ``seqs[0]`` listing ``seqs`` (only if no
        item has that key) and ``ADD`` of ``rows``. True when written, or when the item already
        exists (this transaction committed before); False when cancelled with nothing written (a
        TransactionConflict on a hot row). Anything else raises."""
        ...


class ConflictError(RuntimeError):
    """A transaction kept being cancelled; its first record is reported as failed and retried."""


# ---------------------------------------------------------------- stream records


def _deserialize(image: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return call_from_item(image) if image else None


def sequence_number(record: Mapping[str, Any]) -> str:
    return str((record.get("dynamodb") or {}).get("SequenceNumber", ""))


def record_delta(record: Mapping[str, Any], timezone_of: Callable[[str], str]) -> Rows:
    """What one stream record changes: contribution(NewImage) - contribution(OldImage), per
    (account, row). Empty for a REMOVE (TTL, erasure, account deletion: see the module doc), for an
    image without an account, and for a change that moves no counter (a recording attached)."""
    if record.get("eventName") == "REMOVE":
        return {}
    dynamodb = record.get("dynamodb") or {}
    new = _deserialize(dynamodb.get("NewImage"))
    if not new or not new.get("account"):
        return {}  # incomplete: a call never loses its account, so this image changes nothing
    old = _deserialize(dynamodb.get("OldImage"))
    if old is not None and not old.get("account"):
        old = None  # the emulator's key-only item before the full image: it counted nothing
    out: Rows = {}
    for sign, image in ((1, new), (-1, old)):
        if image is None:
            continue
        account = str(image["account"])
        for key, counters in contribution(image, timezone_of(account)).items():
            target = out.setdefault((account, key), {})
            for counter, amount in counters.items():
                total = _num(Decimal(str(target.get(counter, 0))) + sign * Decimal(str(amount)))
                if total:
                    target[counter] = total
                else:
                    target.pop(counter, None)
    return {key: counters for key, counters in out.items() if counters}


@dataclass
class Transaction:
    """A contiguous run of a batch's records and their summed row changes."""

    seqs: list[str] = field(default_factory=list)
    rows: Rows = field(default_factory=dict)


def group(deltas: Iterable[tuple[str, Rows]], limit: int = MAX_ROWS_PER_TRANSACTION) -> list[Transaction]:
    """Records in stream order -> transactions of contiguous records whose summed rows fit
    ``limit``. Records that change nothing join the current transaction (so they are covered); a
    trailing run that changes nothing is left out (there is nothing to write, and nothing to count
    twice when it is delivered again)."""
    out: list[Transaction] = []
    current = Transaction()
    for seq, delta in deltas:
        merged = merge_rows(current.rows, delta)
        if len(merged) > limit and current.rows:
            out.append(current)
            current = Transaction()
            merged = merge_rows({}, delta)
        current.seqs.append(seq)
        current.rows = merged
    if current.rows:
        out.append(current)
    return out


def process_records(
    records: Iterable[Mapping[str, Any]],
    store: RollupStore,
    timezone_of: Callable[[str], str],
    *,
    sleep: Callable[[float], None] = time.sleep,
    remaining_ms: Callable[[], int] | None = None,
    attempts: int = 6,
    reserve_ms: int = 5000,
    max_rows: int = MAX_ROWS_PER_TRANSACTION,
) -> list[dict[str, str]]:
    """Apply a stream batch exactly once; returns the batch item failures (at most one: the first
    record not applied, from which Lambda delivers the batch again).

    Records already covered by committed transactions are skipped; the rest are grouped and
    committed in stream order. A cancelled transaction (a conflict on a hot row) is retried with
    jittered backoff, then reported. A record whose change cannot be computed (e.g. the account's
    time zone unreadable) is reported after the records before it are written. With less than
    ``reserve_ms`` left (``remaining_ms``: the Lambda context's), no further transaction starts.
    """
    records = list(records)
    if not records:
        return []
    seqs = [sequence_number(r) for r in records]
    try:
        covered = store.covered(seqs)
    except Exception:
        logger.exception("rollup idempotency items unreadable")
        return [{"itemIdentifier": seqs[0]}]
    zones: dict[str, str] = {}

    def cached_zone(account: str) -> str:
        if account not in zones:
            zones[account] = timezone_of(account)
        return zones[account]

    deltas: list[tuple[str, Rows]] = []
    stopped_at: str | None = None
    for seq, record in zip(seqs, records, strict=True):
        if seq in covered:
            continue
        try:
            deltas.append((seq, record_delta(record, cached_zone)))
        except Exception:
            logger.exception("rollup record unreadable", extra={"sequence": seq})
            stopped_at = seq
            break
    for transaction in group(deltas, max_rows):
        first = transaction.seqs[0]
        if remaining_ms is not None and remaining_ms() < reserve_ms:
            logger.warning("rollup batch stopped before the timeout", extra={"sequence": first})
            return [{"itemIdentifier": first}]
        try:
            _commit(store, transaction, sleep, attempts)
        except Exception:
            logger.exception("rollup transaction failed", extra={"sequence": first})
            return [{"itemIdentifier": first}]
    if stopped_at is not None:
        return [{"itemIdentifier": stopped_at}]
    return []


def _commit(
    store: RollupStore, transaction: Transaction, sleep: Callable[[float], None], attempts: int
) -> None:
    for attempt in range(attempts):
        if store.commit(transaction.seqs, transaction.rows):
            return
        sleep(min(0.05 * (2**attempt), 1.0) * (0.5 + random.random()))
    raise ConflictError(f"rollup transaction at {transaction.seqs[0]} kept being cancelled")


__all__ = [
    "DIMENSIONS",
    "MAX_ROWS_PER_TRANSACTION",
    "RollupStore",
    "Rows",
    "Transaction",
    "contribution",
    "diff",
    "group",
    "merge_rows",
    "process_records",
    "record_delta",
]
