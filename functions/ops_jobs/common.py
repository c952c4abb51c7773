"""Shared pieces of the scheduled jobs: ports, call facts, account settings, time windows, fan-out.

Pure logic: no AWS imports. ``ops_jobs.ports`` provides the AWS adapters; unit tests hand in fakes.
The fan-out runs one job over every account: for each account it decides whether the job is due
(and for which period), claims the run key ``job#account#period`` (idempotency), acts, and records
the decision. One account's failure is logged and counted and never stops the others.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from calltrack import clock
from calltrack.accounts import BrokenAccount
from calltrack.call_items import callback_status
from calltrack.days import month_start
from calltrack.schedule import parse_instant
from calltrack.transcript_text import spoken

if TYPE_CHECKING:
    from calltrack.account_config import AccountConfig

log = logging.getLogger("calltrack.jobs")

ANSWERED = "answered"
UNANSWERED = frozenset({"missed", "busy", "failed", "canceled", "no-answer"})
# A lead is a call whose stage reached "lead" or beyond (a lost deal was a lead first).
LEAD_STAGES = frozenset({"lead", "opportunity", "won", "lost"})
WON = "won"

class JobConfigError(ValueError):
    """An account's stored configuration cannot drive a job (bad time zone, bad threshold...)."""


# --------------------------------------------------------------------------- call facts


@dataclass(frozen=True)
class CallFact:
    """What the jobs need from one Call row (no caller number: jobs never need it)."""

    call_sid: str
    started_at: datetime  # aware, UTC
    status: str
    channel: str = "unknown"
    campaign: str | None = None
    stage: str | None = None
    value: float | None = None
    score: float | None = None
    tags: tuple[str, ...] = ()
    recording_stored: bool = False
    talk_seconds: float | None = None
    agent: str | None = None
    caller_said: tuple[str, ...] = ()  # the caller's lines of a stored transcript
    callback_open: bool = False  # a missed call nobody has called back yet
    ended_at: datetime | None = None
    caller_answered_since: bool = False  # an open callback whose caller called again, answered

    @property
    def answered(self) -> bool:
        return self.status == ANSWERED

    @property
    def ended(self) -> bool:
        return self.status == ANSWERED or self.status in UNANSWERED

    @property
    def missed(self) -> bool:
        """Ended and not answered (missed, busy, failed, canceled)."""
        return self.status in UNANSWERED

    def is_lead(self, qualified_score: float | None = None) -> bool:
        if (self.stage or "") in LEAD_STAGES or "qualified" in self.tags:
            return True
        return qualified_score is not None and self.score is not None and self.score >= qualified_score

    @property
    def won(self) -> bool:
        return self.stage == WON


def iso_utc(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def call_fact_from_item(item: Mapping[str, Any]) -> CallFact:
    """Build a CallFact from a plain dict of Call attributes (model.attribute_values or raw)."""
    recording = item.get("recording") or {}
    stored = isinstance(recording, Mapping) and recording.get("status") == "stored"
    value = item.get("value")
    score = item.get("score")
    talk = item.get("talk_seconds")
    transcript = item.get("transcript")
    return CallFact(
        call_sid=str(item["call_sid"]),
        started_at=parse_instant(str(item["started_at"])),
        status=str(item.get("status") or "ringing"),
        channel=str(item.get("channel") or "unknown"),
        campaign=item.get("campaign") or None,
        stage=item.get("stage") or None,
        value=float(value) if value is not None else None,
        score=float(score) if score is not None else None,
        tags=tuple(str(t) for t in (item.get("tags") or ())),
        recording_stored=stored,
        talk_seconds=float(talk) if talk is not None else None,
        agent=item.get("agent") or None,
        caller_said=tuple(spoken(transcript if isinstance(transcript, Mapping) else None, "caller")),
        callback_open=callback_status(item) == "open",
        ended_at=parse_instant(str(item["ended_at"])) if item.get("ended_at") else None,
    )


def call_facts(items: Iterable[Mapping[str, Any]]) -> list[CallFact]:
    """The CallFacts of the calls, test calls left out (no job counts them). An open callback whose
    caller called the account again later in ``items`` and was answered is marked
    ``caller_answered_since``: the business has reached them, so no alert asks for a callback;
    the callback itself stays open until someone closes it (the callback rate counts callbacks
    made, not callers who tried again)."""
    from dataclasses import replace

    calls = [item for item in items if not item.get("test")]
    answered_at: dict[str, str] = {}  # caller -> the start of their latest answered call
    for item in calls:
        caller = str(item.get("caller") or "")
        if caller and item.get("status") == ANSWERED:
            answered_at[caller] = max(answered_at.get(caller, ""), str(item["started_at"]))
    facts = []
    for item in calls:
        fact = call_fact_from_item(item)
        caller = str(item.get("caller") or "")
        if fact.callback_open and caller and answered_at.get(caller, "") > str(item["started_at"]):
            fact = replace(fact, caller_answered_since=True)
        facts.append(fact)
    return facts


# --------------------------------------------------------------------------- accounts


@dataclass(frozen=True)
class AccountInfo:
    account: str
    name: str
    tz: ZoneInfo
    language: str
    alerts: dict[str, float]
    review: dict[str, Any]
    # the account's default call flow, compiled (``calltrack.call_flows``): its opening hours
    # decide when overdue callbacks are worth an alert; None: always
    hours: dict[str, Any] | None = None

    def business_hours(self, at: datetime) -> bool:
        from calltrack.call_flows import OPEN, branch

        return self.hours is None or branch(self.hours, at.astimezone(self.tz)) == OPEN

    @property
    def japanese(self) -> bool:
        return self.language.lower().startswith("ja")


def account_info(account: AccountConfig | BrokenAccount) -> AccountInfo:
    """What the jobs use of an account's typed config (defaults come from the model); a stored
    config that no longer validates fails only its own account."""
    if isinstance(account, BrokenAccount):
        raise JobConfigError(f"account {account.account!r}: {account.error}")
    review: dict[str, Any] = account.review.model_dump()
    review["sample_size"] = max(1, int(review["sample_size"]))
    review["trial_sample_calls"] = max(1, int(review["trial_sample_calls"]))
    return AccountInfo(
        account=account.account,
        name=account.name or account.account,
        tz=ZoneInfo(account.timezone),
        language=account.language,
        alerts={k: float(v) for k, v in account.alerts.model_dump().items()},
        review=review,
        hours=_default_hours(account),
    )


def _default_hours(account: AccountConfig) -> dict[str, Any] | None:
    from calltrack.call_flows import compile_flow

    flow = account.flows.get(account.flow or "") if account.flow else None
    if flow is None or flow.hours is None:
        return None
    today = clock.now().astimezone(ZoneInfo(account.timezone)).date()
    return compile_flow(account.flow or "", flow.model_dump(mode="json"), today=today)


# --------------------------------------------------------------------------- time windows


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant of 00:00 local time on ``day`` (correct across DST changes)."""
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def month_bounds(month: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) in UTC of calendar month ``YYYY-MM`` in time zone ``tz``."""
    first = parse_month(month)
    nxt = date(first.year + (first.month // 12), first.month % 12 + 1, 1)
    return local_midnight(first, tz), local_midnight(nxt, tz)


def parse_month(month: str) -> date:
    first = month_start(month)
    if first is None:
        raise ValueError(f"month must be YYYY-MM (years 2000-2100), got {month!r}")
    return first


def previous_month(month: str) -> str:
    first = parse_month(month)
    prev = first - timedelta(days=1)
    return f"{prev.year:04d}-{prev.month:02d}"


# --------------------------------------------------------------------------- ports


class CallsReader(Protocol):
    def __call__(self, account: str, start: datetime, end: datetime) -> list[CallFact]: ...


class RunStore(Protocol):
    def claim(self, run_key: str, *, force: bool) -> dict[str, Any] | None:
        """Claim a run key. None when claimed; else the existing record (already decided)."""

    def finish(self, run_key: str, decided: str, detail: dict[str, Any]) -> None: ...

    def fail(self, run_key: str, error: str) -> None: ...


Publisher = Callable[[str, str, dict[str, str | int | float]], str]


class BlobStore(Protocol):
    def put(self, key: str, body: bytes, content_type: str) -> None: ...


@dataclass
class JobPorts:
    accounts: Callable[[], Iterable[AccountConfig | BrokenAccount]]
    calls: CallsReader
    runs: RunStore
    publish: Publisher
    # (account, first day, last day) -> channel -> the rollups' counters summed over those local
    # days: what was counted then, whether or not the calls are still kept (retention.calls_days)
    counted: Callable[[str, date, date], dict[str, dict[str, float]]]
    spend: Callable[[str, str], dict[str, float]] = field(default=lambda account, month: {})
    blobs: BlobStore | None = None
    force: bool = False  # the run was forced: messages with their own run key go out again too


# --------------------------------------------------------------------------- fan-out

# due(info, at) -> the period this account's run covers now, or None when not due.
Due = Callable[[AccountInfo, datetime], "str | None"]
# act(info, period, at, ports) -> detail dict with at least "decided".
Act = Callable[[AccountInfo, str, datetime, JobPorts], dict[str, Any]]


def run_key(job: str, account: str, period: str) -> str:
    return f"{job}#{account}#{period}"


def fan_out(
    job: str,
    at: datetime,
    force: bool,
    ports: JobPorts,
    due: Due,
    act: Act,
    *,
    only: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Run ``act`` for every due account; returns per-account decisions, the failure count and
    how many of those failures another try of the same run may mend (not a broken config)."""
    from dataclasses import replace

    ports = replace(ports, force=force)
    wanted = set(only) if only else None
    decisions: dict[str, dict[str, Any]] = {}
    failures = retryable = 0
    for row in ports.accounts():
        if wanted is not None and row.account not in wanted:
            continue
        key: str | None = None
        try:
            info = account_info(row)
            period = due(info, at)
            if period is None:
                decisions[row.account] = {"decided": "not-due"}
                continue
            key = run_key(job, row.account, period)
            previous = ports.runs.claim(key, force=force)
            if previous is not None:
                decisions[row.account] = {
                    "decided": "already-done",
                    "period": period,
                    "previous": previous.get("decided"),
                }
                continue
            detail = act(info, period, at, ports)
            detail.setdefault("period", period)
            ports.runs.finish(key, str(detail["decided"]), detail)
            decisions[row.account] = detail
        except Exception as exc:  # one account's failure must not stop the others
            failures += 1
            # A stored config that no longer validates fails every run alike; anything else
            # (a read or publish that failed) may pass when the same run is tried again.
            retryable += not isinstance(exc, JobConfigError)
            message = f"{type(exc).__name__}: {exc}"[:500]
            log.exception("job %s failed for account %s", job, row.account)
            decisions[row.account] = {"decided": "failed", "error": message}
            if key is not None:
                try:
                    ports.runs.fail(key, message)
                except Exception:  # the claim stays; a later run reclaims it after the lease
                    log.exception("could not record failure of %s", key)
    return {"job": job, "time": iso_utc(at), "force": force, "accounts": decisions, "failures": failures,
            "retryable_failures": retryable}


# --------------------------------------------------------------------------- small helpers


def rate(numerator: float, denominator: float) -> float | None:
    return None if not denominator else numerator / denominator


def percent(value: float | None) -> str:
    """A share as people read it: 40%, 29.6%. Cut (not rounded) to 0.1 point, so a rate just under
    a threshold never reads as the threshold itself (29.96% is "29.9%", not "30%" < 30%)."""
    if value is None:
        return "-"
    tenths = math.floor(round(value * 1000, 6))
    return f"{tenths // 10}%" if tenths % 10 == 0 else f"{tenths / 10:.1f}%"


_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def sns_subject(text: str) -> str:
    """SNS subjects: no line breaks or control characters, fewer than 100 characters."""
    clean = _CONTROL.sub(" ", text).strip()
    return clean if len(clean) < 100 else clean[:98] + "…"
