"""One call event -> the conversions it earns, each delivered at most once (logic; ports as arguments).

For every (rule, destination) the call qualifies for (``conversions.rules.plan``):
1. a skip (no click id, no credentials, CSV only, too old) is recorded once as ``skipped``;
2. otherwise the row is created ``pending`` and claimed (or a lapsed pending row is reclaimed);
   only the worker holding the claim sends it, and the platform also deduplicates on the order id;
3. the claimed rows go out per destination in one request (Google: partial failure per row), and
   each row records ``sent``, ``failed`` (permanent, with the platform's reason) or stays
   ``pending`` for a retry (429, 5xx, no answer) -- then ``RetryLater`` makes the queue deliver the
   message again after the backoff, and only the rows still pending are sent then.
A row already ``sent`` whose value follows the call's won value and has changed is restated once
(Google: conversion adjustment RESTATEMENT); Meta and GA4 cannot restate, so the row notes it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from conversions.destinations import FAILED, RETRY, SENT, SKIPPED, Destination, Outcome
from conversions.rules import Planned, plan, waits_for_credentials

CLAIM_S = 120  # a worker's claim on a row (the function times out after 60 s)
RESTATES = ("google_ads",)


class RetryLater(Exception):
    """Some rows got a 429/5xx/no answer: deliver the message again after the backoff (or after
    ``wait_s``, when the platform said when it takes them)."""

    def __init__(self, reasons: list[str], wait_s: int = 0) -> None:
        super().__init__("; ".join(sorted(set(reasons)))[:500])
        self.reasons = reasons
        self.wait_s = wait_s


class ConversionStore(Protocol):
    def get(self, call_sid: str, key: str) -> dict[str, Any] | None: ...

    def create(
        self,
        account: str,
        planned: Planned,
        *,
        status: str,
        reason: str | None,
        now_iso: str,
        claim_until: float,
        expire_at: int | None = None,
    ) -> bool: ...

    def reclaim(
        self, call_sid: str, key: str, *, now: float, claim_until: float, planned: Planned, now_iso: str,
        any_version: bool = False,
    ) -> bool: ...

    def finish(
        self,
        call_sid: str,
        key: str,
        *,
        status: str,
        reason: str | None,
        now_iso: str,
        sent_at: str | None = None,
        hold_until: float = 0,
    ) -> None: ...

    def claim_restatement(
        self,
        call_sid: str,
        key: str,
        *,
        seen: float | None,
        restated: bool,
        now: float,
        claim_until: float,
        version: int,
    ) -> bool: ...

    def finish_restatement(
        self,
        call_sid: str,
        key: str,
        *,
        value: float | None,
        note: str | None,
        now_iso: str,
        version: int = 0,
    ) -> None: ...

    def set_note(self, call_sid: str, key: str, note: str, now_iso: str) -> None: ...

    def revalue(
        self, call_sid: str, key: str, *, value: float | None, version: int, now_iso: str
    ) -> bool: ...

    def of_call(self, call_sid: str) -> list[dict[str, Any]]: ...

    def of_account(self, account: str, lo: str, hi: str) -> Iterator[dict[str, Any]]: ...


@dataclass(frozen=True)
class Ports:
    store: ConversionStore
    accounts: Any  # calltrack.accounts.Accounts
    secret: Callable[[str, str], str | None]  # (account, secret name) -> value or None
    destinations: Mapping[str, Destination]  # google_ads, meta, ga4 (yahoo_ads is CSV only)
    now: Callable[[], datetime]
    call_exists: Callable[[str], bool]  # the call is still stored (not erased, not expired)
    # a platform's wait held on its row, on the clock the queue's delays run on (settings'
    # retry_time_scale: 1 in AWS; the local stack compresses both alike)
    wait_scale: float = 1.0


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def call_expiry(call: Mapping[str, Any]) -> int | None:
    """The call's TTL (``expire_at``, from the account's ``retention.calls_days``): its conversion
    rows expire with it, click ids and values included (None: the call is kept for ever)."""
    from calltrack.call_items import TTL_ATTRIBUTE

    value = call.get(TTL_ATTRIBUTE)
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError, OverflowError):
        return None


def deliver(event: Mapping[str, Any], ports: Ports) -> dict[str, int]:
    """Handle one call event; -> counts by outcome. Raises RetryLater when rows await a retry."""
    from calltrack.accounts import UnknownAccount

    call = event.get("call") or {}
    account = str(event.get("account") or call.get("account") or "")
    call_sid = str(event.get("call_sid") or call.get("call_sid") or "")
    if not account or not call_sid:
        return {}
    try:
        config = ports.accounts.get(account)
    except UnknownAccount:
        return {}
    if not config.conversions:
        return {}
    now = ports.now()
    now_s, now_iso = now.timestamp(), _iso(now)
    claim_until = now_s + CLAIM_S
    expire_at = call_expiry(call)
    if expire_at is not None and expire_at <= now_s:
        # past its retention (DynamoDB deletes it within days): its conversion rows may be gone
        # already, and a change now must not send the call out again
        return {}
    if not ports.call_exists(call_sid):
        # erased on request (or deleted) since this event was queued: a retry must not bring its
        # conversion rows back, nor send the caller's data again
        return {}
    secrets: dict[str, str | None] = {}

    def secret(name: str) -> str | None:
        if name not in secrets:
            secrets[name] = ports.secret(account, name)
        return secrets[name]

    counts: dict[str, int] = defaultdict(int)
    to_send: dict[str, list[Planned]] = defaultdict(list)
    to_restate: list[tuple[Planned, dict[str, Any]]] = []
    retry: list[Outcome] = []
    for planned in plan(
        {**call, "call_sid": call_sid}, config, now, has_secret=lambda n: secret(n) is not None
    ):
        if planned.skip:
            if ports.store.create(
                account, planned, status="skipped", reason=planned.skip, now_iso=now_iso, claim_until=0,
                expire_at=expire_at,
            ):
                counts["skipped"] += 1
                continue
            row = ports.store.get(call_sid, planned.key) or {}
            if _skip_pending(ports.store, call_sid, planned, row, now_s, claim_until, now_iso):
                counts["skipped"] += 1
            elif planned.value_from_call and row.get("status") == "skipped" and _changed(row, planned):
                # a CSV-only row (Yahoo!, no credentials) follows the call's value as a sent one
                # is restated: the import file lists what the call is worth now
                ports.store.revalue(call_sid, planned.key, value=planned.value,
                                    version=planned.call_version, now_iso=now_iso)
            continue
        if ports.store.create(
            account, planned, status="pending", reason=None, now_iso=now_iso, claim_until=claim_until,
            expire_at=expire_at,
        ):
            to_send[planned.destination].append(planned)
            continue
        row = ports.store.get(call_sid, planned.key) or {}
        if _reclaimable(row, now_s) and ports.store.reclaim(
            call_sid, planned.key, now=now_s, claim_until=claim_until, planned=planned, now_iso=now_iso
        ):
            to_send[planned.destination].append(planned)
        elif row.get("status") == "sent" and planned.value_from_call and _changed(row, planned):
            to_restate.append((planned, row))
        elif row.get("status") == "pending" and not _older_than(planned, row):
            # held: another worker is sending it right now, or it waits for the platform (Google's
            # "too recent"): this event comes back after that and sends, restates or finds it done
            # (also the held event's own message, should its delay not have been set)
            held_s = int(max(0.0, float(row.get("claimed_until") or 0) - now_s) / (ports.wait_scale or 1.0))
            retry.append(Outcome(RETRY, "held: sent by another worker, or taken by the platform later",
                                 wait_s=held_s))

    for destination, rows in to_send.items():
        target = getattr(config.destinations, destination)
        adapter = ports.destinations[destination]
        # one request per row (Meta, GA4): record each before sending the next
        batches = [[row] for row in rows] if getattr(adapter, "one_per_request", False) else [rows]
        for batch in batches:
            outcomes = adapter.send(batch, secret(str(batch[0].secret)) or "", target, config.timezone)
            for planned, outcome in zip(batch, outcomes, strict=True):
                _record(ports.store, call_sid, planned, outcome, now_iso, now_s, ports.wait_scale)
                counts[outcome.status] += 1
                if outcome.status == RETRY:
                    retry.append(outcome)
    retry += _restate(to_restate, config, ports, call_sid, now, claim_until, secret, counts)
    if retry:
        raise RetryLater([o.reason or "retry" for o in retry], wait_s=max(o.wait_s for o in retry))
    return dict(counts)


def _skip_pending(
    store: ConversionStore, call_sid: str, planned: Planned, row: Mapping[str, Any], now_s: float,
    claim_until: float, now_iso: str,
) -> bool:
    """A row (``row``, as read) left pending by a retryable failure whose retry now plans a skip (the
    platform's window passed, the secret was removed): take it like a retry and end it skipped,
    with the reason, rather than leave it pending for ever. True when this worker did."""
    if row.get("status") != "pending" or float(row.get("claimed_until") or 0) >= now_s:
        return False
    if not store.reclaim(call_sid, planned.key, now=now_s, claim_until=claim_until, planned=planned,
                         now_iso=now_iso, any_version=True):
        return False
    store.finish(call_sid, planned.key, status="skipped", reason=planned.skip, now_iso=now_iso)
    return True


def _reclaimable(row: Mapping[str, Any], now_s: float) -> bool:
    """A pending row nobody holds (a retry, or a worker that died), or one skipped only for missing
    or refused credentials (perhaps set or fixed since); the store's conditional update decides
    between racing workers."""
    if row.get("status") == "pending":
        return float(row.get("claimed_until") or 0) < now_s
    return row.get("status") == "skipped" and waits_for_credentials(row.get("reason"))


def _effective(row: Mapping[str, Any]) -> float | None:
    value = row.get("restated_value")
    if value is None:
        value = row.get("value")
    return None if value is None else float(value)


def _older_than(planned: Planned, row: Mapping[str, Any]) -> bool:
    """The row holds a newer version of the call than this event (a late retry of an older one)."""
    return planned.call_version < int(row.get("call_version") or 0)


def _changed(row: Mapping[str, Any], planned: Planned) -> bool:
    """A newer version of the call has another value than the one the platform has."""
    newer = planned.call_version > int(row.get("call_version") or 0)
    return newer and planned.value is not None and _effective(row) != planned.value


def _record(store: ConversionStore, call_sid: str, planned: Planned, outcome: Outcome, now_iso: str,
            now_s: float, wait_scale: float = 1.0) -> None:
    if outcome.status == SENT:
        store.finish(call_sid, planned.key, status="sent", reason=None, now_iso=now_iso, sent_at=now_iso)
    elif outcome.status == FAILED:
        store.finish(call_sid, planned.key, status="failed", reason=outcome.reason, now_iso=now_iso)
    elif outcome.status == SKIPPED:  # the credentials were refused: taken again once fixed
        store.finish(call_sid, planned.key, status="skipped", reason=outcome.reason, now_iso=now_iso)
    else:  # stays pending, claim released: the retried message (or the next event) takes it again
        # -- or held until the platform takes it (Google's "too recent"): an event meanwhile would
        # only upload it again and get the same answer
        store.finish(call_sid, planned.key, status="pending", reason=outcome.reason, now_iso=now_iso,
                     hold_until=now_s + outcome.wait_s * wait_scale if outcome.wait_s else 0)


def _restate(
    items: list[tuple[Planned, dict[str, Any]]],
    config: Any,
    ports: Ports,
    call_sid: str,
    now: datetime,
    claim_until: float,
    secret: Callable[[str], str | None],
    counts: dict[str, int],
) -> list[Outcome]:
    retry: list[Outcome] = []
    now_iso = _iso(now)
    claimed: list[tuple[Planned, float]] = []
    for planned, row in items:
        seen = _effective(row)
        if planned.destination not in RESTATES:
            note = (
                f"value changed to {planned.value:g}; {planned.destination} has no restatement, "
                f"so it keeps {seen:g}"
                if seen is not None
                else "value changed; not restated"
            )
            if row.get("note") != note:
                ports.store.set_note(call_sid, planned.key, note, now_iso)
                counts["not_restated"] += 1
            continue
        if ports.store.claim_restatement(
            call_sid,
            planned.key,
            seen=seen,
            restated=row.get("restated_value") is not None,
            now=now.timestamp(),
            claim_until=claim_until,
            version=planned.call_version,
        ):
            assert planned.value is not None
            claimed.append((planned, planned.value))
        elif (
            float((ports.store.get(call_sid, planned.key) or {}).get("claimed_until") or 0) >= now.timestamp()
        ):
            retry.append(Outcome(RETRY, "restatement in progress by another worker"))  # this value after it
    if not claimed:
        return retry
    target = config.destinations.google_ads
    adapter: Any = ports.destinations["google_ads"]
    outcomes = adapter.restate(claimed, secret(str(target.secret)) or "", target, config.timezone, now)
    for (planned, value), outcome in zip(claimed, outcomes, strict=True):
        if outcome.status == SENT:
            ports.store.finish_restatement(
                call_sid, planned.key, value=value, note=None, now_iso=now_iso, version=planned.call_version
            )
            counts["restated"] += 1
        elif outcome.status in (FAILED, SKIPPED):
            ports.store.finish_restatement(
                call_sid,
                planned.key,
                value=None,
                note=f"restatement to {value:g} failed: {outcome.reason}",
                now_iso=now_iso,
            )
            counts["restatement_failed"] += 1
        else:
            ports.store.finish_restatement(call_sid, planned.key, value=None, note=None, now_iso=now_iso)
            retry.append(outcome)
    return retry
