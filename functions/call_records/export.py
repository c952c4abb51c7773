"""Daily calls export for QuickSight / Athena: the ``calls_export`` Lambda (job "daily-calls-export").

For every account, the previous day in the account's time zone (relative to the job's ``at``)
is written to ``s3://{exports_bucket}/calls/account={account}/date={YYYY-MM-DD}/calls.csv``
(header row, ``account`` as the first column, ISO dates, caller masked to the last four digits,
no BOM: Athena reads it), and ``exports/quicksight-manifest.json`` points QuickSight at the
``calls/`` prefix. QuickSight reads the files' rows, not the ``account=`` path segment, so the
account column is what tells the accounts apart in the one dataset.
Objects carry no SSE header: the exports bucket's default encryption (the stack's KMS key,
infra/components/storage.py) applies, as for the review reports the ops jobs write there.
Idempotent per day: an existing day file is left alone unless ``force`` (which rewrites it), or
one of its calls changed after it was written (``stale_days``: within ``REFRESH_DAYS``, so stages
and values set later reach QuickSight). A day an earlier run missed for an account (it failed,
or the job did not run) is written by the next run, within a week (``missed_days``); a run with
a failed account fails after the others. The files follow the calls' retention: a day whose calls
have all passed the account's ``retention.calls_days`` has its file deleted (``expired_keys``), and
no run writes or refreshes such a day again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

from calltrack.observability import make_logger, make_tracer
from calltrack.settings import Needs

logger = make_logger("calls_export")
tracer = make_tracer("calls_export")

NEEDS = Needs(tables=("accounts", "calls"), buckets=("exports",))

JOB = "daily-calls-export"
MANIFEST_KEY = "exports/quicksight-manifest.json"
CALLS_PREFIX = "calls/"


def day_key(account: str, day: date) -> str:
    return f"{CALLS_PREFIX}account={account}/date={day.isoformat()}/calls.csv"


def manifest(bucket: str) -> dict[str, Any]:
    return {
        "fileLocations": [{"URIPrefixes": [f"s3://{bucket}/{CALLS_PREFIX}"]}],
        "globalUploadSettings": {
            "format": "CSV",
            "delimiter": ",",
            "textqualifier": '"',
            "containsHeader": "true",
        },
    }


def previous_local_day(at: datetime, tz: str) -> date:
    from calltrack.days import zone

    return at.astimezone(zone(tz)).date() - timedelta(days=1)


def export_account(
    account: str,
    tz: str,
    at: datetime,
    force: bool,
    *,
    exists: Callable[[str], bool],
    put: Callable[[str, bytes, str], None],
    calls_between: Callable[[datetime, datetime], Iterable[Mapping[str, Any]]],
) -> dict[str, Any]:
    """Export the account's previous local day (relative to ``at``)."""
    return export_day(account, tz, previous_local_day(at, tz), force, exists=exists, put=put,
                      calls_between=calls_between)


def export_day(
    account: str,
    tz: str,
    day: date,
    force: bool,
    *,
    exists: Callable[[str], bool],
    put: Callable[[str, bytes, str], None],
    calls_between: Callable[[datetime, datetime], Iterable[Mapping[str, Any]]],
) -> dict[str, Any]:
    from call_records.csv_out import export_csv
    from calltrack.days import zone

    key = day_key(account, day)
    if not force and exists(key):
        return {"account": account, "date": day.isoformat(), "key": key, "status": "exists"}
    zi = zone(tz)
    lo = datetime.combine(day, time(0), zi)
    hi = datetime.combine(day + timedelta(days=1), time(0), zi)
    # test calls (the account's test_callers) stay out of QuickSight, like every report
    calls = [c for c in calls_between(lo, hi) if not c.get("test")]
    text = export_csv(calls, account=account, tz=tz)
    put(key, text.encode("utf-8"), "text/csv; charset=utf-8")
    return {"account": account, "date": day.isoformat(), "key": key, "status": "written", "rows": len(calls)}


# How many missed days (runs that failed for the account, or did not run) a run writes at most.
MISSED_DAYS_LOOKBACK = 7


def first_kept_day(at: datetime, tz: str, calls_days: int | None) -> date | None:
    """The oldest local day whose file is kept (None: kept for ever). A call expires ``calls_days``
    after its start (``calltrack.call_items.expire_at``), so every call of an older day has expired
    by the start of the account's local today."""
    from calltrack.days import zone

    if calls_days is None:
        return None
    return at.astimezone(zone(tz)).date() - timedelta(days=calls_days)


def expired_keys(account: str, keep_from: date | None, keys_in_order: Iterable[str]) -> list[str]:
    """The account's day files older than ``keep_from``. ``keys_in_order`` lists the account's
    files in key order (S3's), which is date order: reading stops at the first kept one, so a run
    with nothing to delete reads one key."""
    if keep_from is None:
        return []
    first_kept = day_key(account, keep_from)
    expired = []
    for key in keys_in_order:
        if key >= first_kept:
            break
        expired.append(key)
    return expired


def missed_days(
    account: str, tz: str, at: datetime, exists: Callable[[str], bool], keep_from: date | None = None
) -> list[date]:
    """The days before the previous local day that have no file since the account's last exported
    day, oldest first: a run that failed for the account, or did not run, left them. At most
    ``MISSED_DAYS_LOOKBACK`` of them (a week-long outage is written whole), and only after a day
    that was exported: an account exported for the first time gets no files for days before it
    existed. One HEAD a run when nothing is missing (the day before yesterday is there). Days
    before ``keep_from`` are past the calls' retention: their files were deleted, not missed."""
    yesterday = previous_local_day(at, tz)
    missing: list[date] = []
    for back in range(1, MISSED_DAYS_LOOKBACK + 2):  # the last written day may be a week before them
        day = yesterday - timedelta(days=back)
        if keep_from is not None and day < keep_from:
            return sorted(missing)
        if exists(day_key(account, day)):
            return sorted(missing)
        missing.append(day)
    return []


# How many days before yesterday a run checks for calls changed since their day's file was written.
REFRESH_DAYS = 35


def stale_days(
    account: str,
    tz: str,
    at: datetime,
    written_at: Callable[[str], datetime | None],
    calls_between: Callable[[datetime, datetime], Iterable[Mapping[str, Any]]],
    keep_from: date | None = None,
) -> list[date]:
    """The days among the ``REFRESH_DAYS`` before yesterday whose file was written before one of its
    calls last changed, oldest first: a stage, value or score set days later (a manager, the CRM
    leads), a call still ringing at 00:30. One read of those days' calls, one HEAD per day with calls."""
    from calltrack.days import parse_started_at, zone

    zi = zone(tz)
    yesterday = previous_local_day(at, tz)
    first = yesterday - timedelta(days=REFRESH_DAYS)
    if keep_from is not None:
        first = max(first, keep_from)  # a day past the calls' retention is not written again
    lo = datetime.combine(first, time(0), zi)
    hi = datetime.combine(yesterday, time(0), zi)
    changed: dict[date, str] = {}
    for call in calls_between(lo, hi):
        started, updated = parse_started_at(call.get("started_at")), str(call.get("updated_at") or "")
        if call.get("test") or started is None or not updated:
            continue  # a stored time without its zone is skipped, not the account's whole export
        day = started.astimezone(zi).date()
        changed[day] = max(changed.get(day, ""), updated)
    stale = []
    for day in sorted(changed):
        written = written_at(day_key(account, day))
        # the same second counts as later: rewriting once more is harmless, missing a change is not
        if written is not None and changed[day] >= written.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"):
            stale.append(day)
    return stale


def run(at: datetime, force: bool = False) -> dict[str, Any]:
    """Export yesterday's calls of every account; returns what was written or already there."""
    import boto3

    from calltrack.accounts import BrokenAccount, account_reader
    from calltrack.call_items import call_items
    from calltrack.models import start

    settings = start(NEEDS)
    bucket = settings.exports_bucket
    s3 = boto3.client("s3", region_name=settings.region)

    def written_at(key: str) -> datetime | None:
        try:
            head = s3.head_object(Bucket=bucket, Key=key)
        except s3.exceptions.ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return cast(datetime, head["LastModified"])

    def exists(key: str) -> bool:
        return written_at(key) is not None

    def put(key: str, body: bytes, content_type: str) -> None:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)

    def keys_under(prefix: str) -> Iterator[str]:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents") or ():
                yield str(obj["Key"])

    def delete(keys: list[str]) -> None:
        for i in range(0, len(keys), 1000):  # DeleteObjects takes 1,000 keys
            answer = s3.delete_objects(
                Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]], "Quiet": True}
            )
            if answer.get("Errors"):
                raise RuntimeError(f"{len(answer['Errors'])} expired export file(s) not deleted")

    exports: list[dict[str, Any]] = []
    failures = 0
    for config in account_reader().all():
        account = config.account

        def reader(lo: datetime, hi: datetime, a: str = account) -> Iterable[Mapping[str, Any]]:
            return call_items().between(a, lo, hi)

        try:
            if isinstance(config, BrokenAccount):
                raise ValueError(config.error)
            keep_from = first_kept_day(at, config.timezone, config.retention.calls_days)
            for day in missed_days(account, config.timezone, at, exists, keep_from):
                exports.append(export_day(account, config.timezone, day, False, exists=exists, put=put,
                                          calls_between=reader))
            def changes(lo: datetime, hi: datetime, a: str = account) -> Iterable[Mapping[str, Any]]:
                return call_items().between(a, lo, hi, fields=("updated_at", "test"))

            for day in stale_days(account, config.timezone, at, written_at, changes, keep_from):
                exports.append({**export_day(account, config.timezone, day, True, exists=exists, put=put,
                                             calls_between=reader), "status": "refreshed"})
            exports.append(export_account(account, config.timezone, at, force, exists=exists, put=put,
                                          calls_between=reader))
            expired = expired_keys(account, keep_from, keys_under(f"{CALLS_PREFIX}account={account}/"))
            if expired:
                delete(expired)
                exports.append({"account": account, "status": "expired", "files": len(expired),
                                "before": cast(date, keep_from).isoformat()})
        except Exception:  # one account's failure must not stop the others
            failures += 1
            logger.exception("export failed", extra={"account": account})
            exports.append({"account": account, "status": "failed"})
    put(MANIFEST_KEY, json.dumps(manifest(bucket), indent=2).encode("utf-8"), "application/json")
    return {"job": JOB, "at": at.isoformat(), "bucket": bucket, "manifest": MANIFEST_KEY,
            "exports": exports, "failures": failures}


class ExportFailed(RuntimeError):
    """Some account's export failed: the run fails after the others (the errors alarm sees it, and
    Lambda's retries of the scheduled invocation, like the next day's run, write only the days still
    missing)."""


@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from calltrack.schedule import job_event

    job = job_event(event)
    result = run(at=job.at, force=job.force)
    if result["failures"]:
        failed = [e["account"] for e in result["exports"] if e["status"] == "failed"]
        raise ExportFailed(f"the export failed for {len(failed)} account(s): {', '.join(failed)[:500]}")
    return result
