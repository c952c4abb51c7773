"""The calls-stream consumer: exactly-once rollup counters (Lambda ``report.rollup.handler``).

A call's *contribution* is derived from its current image alone: for every dimension
(channel, campaign, keyword, landing page, tracking number, agent, hour of week) one rollup row
key ``f"{dimension}|{day}#{value}"`` (day in the account's time zone) with the call's counters
(calls, answered, missed, first_time, talk_seconds, leads, opportunities, won, won_value).

A per-call marker row remembers the contribution last applied. Each stream record computes the
new contribution, diffs it against the marker and writes, in ONE TransactWriteItems, the new
marker (conditioned on the marker's previous ``seq``) together with ``ADD`` deltas on the rollup
rows. A duplicate or replayed record therefore finds nothing to change, a call moving from
ringing to answered to won moves its counters exactly, and two writers racing on one call
cannot both win. When the Call carries a monotonically increasing ``version`` attribute, an
image older than the one applied is skipped; without it, in-order replays still converge.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from calltrack.call_items import call_from_item
from calltrack.days import parse_started_at, zone
from calltrack.models.reports import COUNTERS, DIMENSIONS
from calltrack.observability import make_logger
from calltrack.records import json_object

logger = make_logger("rollup")

NONE_VALUE = "(none)"
MISSED_STATUSES = frozenset({"missed", "busy", "failed", "canceled", "no-answer"})
ANSWERED_STATUSES = frozenset({"answered", "completed"})
# Funnel order. "lost" is a lead that did not close: it counts as a lead, not an opportunity.
LEAD_STAGES = frozenset({"lead", "opportunity", "won", "lost"})
OPPORTUNITY_STAGES = frozenset({"opportunity", "won"})

Number = int | float
Contribution = dict[str, dict[str, Number]]


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


def _text(value: Any) -> str:
    text = str(value).strip() if value is not None else ""
    return text[:256] if text else NONE_VALUE


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
        "leads": int(stage in LEAD_STAGES),
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
    test call: test calls change no report figure)."""
    if not image or not image.get("account") or image.get("test"):
        return {}
    started = parse_started_at(image.get("started_at"))
    if started is None:
        return {}
    local = started.astimezone(zone(tz))
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


# ---------------------------------------------------------------- the port


@dataclass(frozen=True)
class Marker:
    seq: int
    call_version: int | None
    contribution: Contribution
    account: str | None = None


class RollupStore(Protocol):
    def get_marker(self, call_sid: str) -> Marker | None: ...

    def commit(
        self, call_sid: str, account: str, previous: Marker | None, new: Marker, deltas: Contribution
    ) -> bool:
        """Write marker + deltas atomically; False when ``previous`` is no longer current."""
        ...


class ConflictError(RuntimeError):
    """The marker kept changing under us; the record is reported as failed and retried."""


def apply_image(
    call_sid: str,
    image: Mapping[str, Any] | None,
    store: RollupStore,
    timezone_of: Callable[[str], str],
    *,
    account: str | None = None,
    attempts: int = 8,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Bring the rollups in line with ``image`` (None = the call was deleted).

    Returns "applied", "unchanged", "stale" (an image older than the one already applied) or
    "incomplete" (an image without an account: a partial write, or the emulator's key-only
    INSERT; a call never loses its account, so such an image changes nothing).
    """
    if image is not None and not image.get("account"):
        return "incomplete"
    account = (image or {}).get("account") or account
    version_raw = (image or {}).get("version")
    version = int(_num(version_raw)) if version_raw is not None else None
    new_contribution = contribution(image, timezone_of(str(account))) if account else {}
    for attempt in range(attempts):
        previous = store.get_marker(call_sid)
        if not account and previous is not None:
            account = previous.account  # a deleted call: subtract from the account it was counted in
        if previous is not None and version is not None and previous.call_version is not None:
            if version < previous.call_version:
                return "stale"
        old_contribution = previous.contribution if previous else {}
        deltas = diff(old_contribution, new_contribution)
        new_version = version if version is not None else (previous.call_version if previous else None)
        if not deltas and previous is not None and previous.call_version == new_version:
            return "unchanged"
        if not deltas and previous is None and not new_contribution:
            return "unchanged"
        new = Marker(
            seq=(previous.seq if previous else 0) + 1,
            call_version=new_version,
            contribution=new_contribution,
            account=account,
        )
        if store.commit(call_sid, str(account or ""), previous, new, deltas):
            return "applied"
        sleep(min(0.05 * (2**attempt), 1.0) * (0.5 + random.random()))
    raise ConflictError(f"rollup marker for {call_sid} kept changing")


# ---------------------------------------------------------------- stream records


def _deserialize(image: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return call_from_item(image) if image else None


def process_records(
    records: Iterable[Mapping[str, Any]],
    store: RollupStore,
    timezone_of: Callable[[str], str],
) -> list[dict[str, str]]:
    """Apply stream records in order; on the first failure report it (and stop).

    Lambda (ReportBatchItemFailures) restarts from the lowest failed sequence number, and
    re-applying the records after it is harmless, so stopping keeps per-call order.
    """
    for record in records:
        dynamodb = record.get("dynamodb") or {}
        sequence = str(dynamodb.get("SequenceNumber", ""))
        try:
            keys = _deserialize(dynamodb.get("Keys")) or {}
            call_sid = str(keys.get("call_sid", ""))
            if not call_sid:
                continue
            old = _deserialize(dynamodb.get("OldImage"))
            new = None if record.get("eventName") == "REMOVE" else _deserialize(dynamodb.get("NewImage"))
            account = (new or old or {}).get("account")
            outcome = apply_image(call_sid, new, store, timezone_of, account=account)
            logger.debug("rollup", extra={"call_sid": call_sid, "outcome": outcome})
        except Exception:
            logger.exception("rollup record failed", extra={"sequence": sequence})
            return [{"itemIdentifier": sequence}]
    return []


__all__ = [
    "DIMENSIONS",
    "apply_image",
    "contribution",
    "diff",
    "process_records",
]
