"""The "recording-retention-sweep" scheduled job: delete recordings past their account's retention.

Event (EventBridge input transformer / `calltrack local run-job`): {"job", "time", "force"}.
For each account whose recordings have a retention (``calltrack.account_config.effective_retention``:
``retention.recordings_days``, else ``recording.retention_days``, else ``retention.calls_days``;
null = keep forever), every recording stored before ``time - days`` is deleted from S3, every
version of it (the bucket is versioned: a plain delete would keep the audio for the lifecycle's
``recordings_noncurrent_days`` more), its recordings row becomes ``expired`` and the call's
``recording`` shows ``{"status": "expired", ...}`` (the API answers 410). Transcripts: the
``transcript`` of every call that started ``TRANSCRIPT_WINDOW`` before ``time - transcripts_days``
is removed from the call (``force``: every call older than the cutoff, for a first run or a
shortened retention).
Idempotent: a second run finds nothing stored before the cutoff.

Time: a run stops starting work ``STOP_WITH_S`` before the function's timeout and names the
accounts it did not finish in ``unfinished_accounts`` (a warning, not a failure: the next night
goes on from where this one stopped, as everything already expired is not read again). A first
run after a retention is set on years of recordings, or a forced transcript sweep, can take a few
nights; each night starts with a different account (``in_turn``), so one account's backlog does
not hold the others' retention back night after night.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from calltrack.accounts import BrokenAccount
from calltrack.observability import make_logger, make_tracer
from recording_ingest.ingest import iso
from recording_ingest.runtime import RETENTION_NEEDS as NEEDS

if TYPE_CHECKING:
    from calltrack.account_config import AccountConfig

JOB_NAME = "recording-retention-sweep"
TRANSCRIPT_WINDOW = timedelta(days=35)  # a nightly job missed for a month still catches up
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
logger = make_logger("recording_retention")
tracer = make_tracer("recording_retention")


class RetentionRecordings(Protocol):
    def stored_before(self, account: str, cutoff_iso: str) -> list[dict[str, Any]]: ...

    def mark_expired(self, recording_sid: str, *, now: datetime) -> bool: ...


class RetentionCalls(Protocol):
    def get(self, call_sid: str) -> dict[str, Any] | None: ...

    def set_recording(self, call_sid: str, recording: Mapping[str, Any]) -> bool: ...

    def between(self, account: str, start: datetime, end: datetime) -> Iterable[dict[str, Any]]: ...

    def amend(self, account: str, call_sid: str, changes: Mapping[str, Any]) -> dict[str, Any]: ...


@dataclass
class RetentionPorts:
    accounts: Callable[[], Iterable[AccountConfig | BrokenAccount]]
    recordings: RetentionRecordings
    calls: RetentionCalls
    delete_object: Callable[[str], None]
    out_of_time: Callable[[], bool] = lambda: False  # the run must stop starting work


STOP_WITH_S = 30  # of the function's 300 s: the deletion under way and the summary fit in it


class OutOfTime(Exception):
    """The run stopped inside an account: what it had done there."""

    def __init__(self, expired: int, transcripts: int) -> None:
        super().__init__("out of time")
        self.expired, self.transcripts = expired, transcripts


def retention_days(config: AccountConfig | BrokenAccount) -> int | None:
    """Days a recording is kept (None: forever; a broken stored config keeps everything)."""
    if isinstance(config, BrokenAccount):
        return None
    from calltrack.account_config import effective_retention

    return effective_retention(config).recordings


def transcript_days(config: AccountConfig | BrokenAccount) -> int | None:
    if isinstance(config, BrokenAccount):
        return None
    from calltrack.account_config import effective_retention

    return effective_retention(config).transcripts


def sweep_transcripts(
    account: str,
    days: int,
    at: datetime,
    calls: RetentionCalls,
    *,
    force: bool,
    out_of_time: Callable[[], bool] = lambda: False,
) -> int:
    """Remove the transcript of the account's calls started before ``at - days``; answers how many
    (``OutOfTime`` with the count when ``out_of_time`` says stop first)."""
    cutoff = at - timedelta(days=days)
    removed = 0
    # one page of the query at a time: a forced run goes over every call the account ever had
    for call in calls.between(account, EPOCH if force else cutoff - TRANSCRIPT_WINDOW, cutoff):
        if call.get("transcript") is not None:
            if out_of_time():
                raise OutOfTime(0, removed)
            calls.amend(account, str(call["call_sid"]), {"transcript": None})
            removed += 1
    return removed


# How long after its call a recording may be stored and still go when the call's retention ends
# (the fetch's backoff ladder is ~29 h, redrives hourly after it).
STORED_LATE = timedelta(days=3)


def _started_before(call: Mapping[str, Any] | None, cutoff: datetime) -> bool:
    """The call started before ``cutoff``, or is gone (expired, erased): its recording is due."""
    from calltrack.days import parse_started_at

    if call is None:
        return True
    started = parse_started_at(call.get("started_at"))
    return started is not None and started < cutoff


def sweep_account(
    config: AccountConfig | BrokenAccount, at: datetime, ports: RetentionPorts, *, force: bool
) -> tuple[int, int]:
    """Expire one account's due recordings and transcripts: (recordings expired, transcripts
    removed); ``OutOfTime`` with those counts when the run must stop first."""
    account, days = config.account, retention_days(config)
    kept = transcript_days(config)
    transcripts = (
        sweep_transcripts(account, kept, at, ports.calls, force=force, out_of_time=ports.out_of_time)
        if kept is not None
        else 0
    )
    if days is None:
        return 0, transcripts
    expired = 0
    cutoff_at = at - timedelta(days=days)
    cutoff = iso(cutoff_at)
    # Retention counts from the call's start, as the call's own expiry does: a recording stored
    # late (fetched after a Twilio outage, redriven) is due with its call, not days after it
    for row in ports.recordings.stored_before(account, iso(cutoff_at + STORED_LATE)):
        if ports.out_of_time():
            raise OutOfTime(expired, transcripts)
        call_sid = str(row.get("call_sid") or "")
        call = ports.calls.get(call_sid) if call_sid else None
        if str(row.get("stored_at") or "") >= cutoff and not _started_before(call, cutoff_at):
            continue  # stored within the retention, and so is its call: not due yet
        sid, key = str(row["recording_sid"]), row.get("s3_key")
        if key:
            ports.delete_object(str(key))  # every version, for good (idempotent)
        # the call says expired before the row does: should this write fail, the row is still
        # stored and the next run does it again (the other way round, the call would say stored
        # for a recording gone for good, and no run would look at it again)
        current = (call or {}).get("recording") or {}
        if call is not None and current.get("recording_sid") in (None, sid):
            ports.calls.set_recording(
                call_sid,
                {
                    **current,
                    "status": "expired",
                    "recording_sid": sid,
                    "s3_key": None,
                    "expired_at": iso(at),
                    "retention_days": days,
                },
            )
        if ports.recordings.mark_expired(sid, now=at):
            expired += 1
    return expired, transcripts


def in_turn(
    configs: Iterable[AccountConfig | BrokenAccount], at: datetime
) -> list[AccountConfig | BrokenAccount]:
    """The accounts in the order a run at ``at`` sweeps them: by name, starting one further on
    each day, so that a run cut short by one account's backlog leaves a different account last."""
    ordered = sorted(configs, key=lambda c: c.account)
    if not ordered:
        return ordered
    start = at.date().toordinal() % len(ordered)
    return ordered[start:] + ordered[:start]


def sweep(at: datetime, ports: RetentionPorts, *, force: bool = False) -> dict[str, Any]:
    """Expire what is due at ``at``. Returns a summary (per-account counts). One account's failure
    (an S3 or DynamoDB error) is logged and named in ``failed_accounts``; the others are swept (the
    handler then raises), and a retry or the next run, which expires everything older than each
    cutoff, finishes the failed one. A run out of time names the accounts it left, or left
    unfinished, in ``unfinished_accounts``: the next run finishes them."""
    expired: dict[str, int] = {}
    transcripts: dict[str, int] = {}
    failed: list[str] = []
    unfinished: list[str] = []
    accounts_checked = 0
    for config in in_turn(ports.accounts(), at):
        if unfinished or ports.out_of_time():
            unfinished.append(config.account)
            continue
        try:
            n_expired, n_transcripts = sweep_account(config, at, ports, force=force)
        except OutOfTime as stop:
            unfinished.append(config.account)
            n_expired, n_transcripts = stop.expired, stop.transcripts
        except Exception:  # noqa: BLE001 - one account's failure must not stop the others
            logger.exception(
                "retention sweep failed for an account", extra={"account": config.account}
            )
            failed.append(config.account)
            continue
        if n_transcripts:
            transcripts[config.account] = n_transcripts
        if retention_days(config) is not None:
            accounts_checked += 1
        if n_expired:
            expired[config.account] = n_expired
    return {
        "job": JOB_NAME,
        "time": iso(at),
        "accounts_with_retention": accounts_checked,
        "expired": sum(expired.values()),
        "by_account": expired,
        "transcripts_removed": sum(transcripts.values()),
        "failed_accounts": failed,
        "unfinished_accounts": unfinished,
    }


@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from calltrack.accounts import account_reader
    from calltrack.call_items import call_items
    from calltrack.schedule import job_event
    from calltrack.time_left import out_of_time
    from recording_ingest import runtime
    from recording_ingest.store import DynamoRecordings

    settings = runtime.ensure_started(NEEDS)
    objects = runtime.objects(settings)
    job = job_event(event, now=runtime.now())
    at = job.at
    ports = RetentionPorts(
        accounts=account_reader().all,
        recordings=DynamoRecordings(),
        calls=call_items(),
        delete_object=objects.delete_every_version,
        out_of_time=out_of_time(context, STOP_WITH_S * 1000),
    )
    summary = sweep(at, ports, force=job.force)
    logger.info("recording retention sweep", extra={"summary": summary})
    if summary["unfinished_accounts"]:
        logger.warning(
            "retention sweep out of time: the next run goes on",
            extra={"unfinished_accounts": summary["unfinished_accounts"]},
        )
    if summary["failed_accounts"]:
        # after every other account is swept: the function's Errors alarm sees it, and EventBridge's
        # asynchronous retries run the (idempotent) sweep again
        raise RuntimeError(f"retention sweep failed for {len(summary['failed_accounts'])} account(s)")
    return summary
