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
a failed account fails after the others. The files follow the calls' retention: each write books
when the day's file may go (``file_expiry``: when the last of its calls passes its own TTL,
``expire_at``) in the account's expiry book (``exports/expiry/account={account}.json``, dates and
times only), and each run first deletes the files whose time has come (``expire_files``), whatever
``retention.calls_days`` says now. No run writes or refreshes a day older than the current
``calls_days`` (``first_kept_day``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol, cast

from calltrack.call_items import CALL_TIMEZONE
from calltrack.observability import make_logger, make_tracer
from calltrack.settings import Needs

# A day file's S3 metadata: when its calls were read (two seconds early: the by-account index may
# lag a write by a moment; a file read that soon after a change is written once more, harmlessly).
# A day is stale when a call changed at or after it: not the object's LastModified, which an
# erasure's rewrite (privacy.store.drop_export_rows keeps this metadata) moves on without reading
# the calls again.
SNAPSHOT_AT = "snapshot-at"
SNAPSHOT_SKEW = timedelta(seconds=2)


class Put(Protocol):
    def __call__(self, key: str, body: bytes, content_type: str, *,
                 metadata: Mapping[str, str] | None = None) -> None: ...

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
    put: Put,
    calls_between: Callable[[datetime, datetime], Iterable[Mapping[str, Any]]],
    on_written: Callable[[date, list[Mapping[str, Any]]], None] | None = None,
) -> dict[str, Any]:
    """Export the account's previous local day (relative to ``at``)."""
    return export_day(account, tz, previous_local_day(at, tz), force, exists=exists, put=put,
                      calls_between=calls_between, on_written=on_written)


def export_day(
    account: str,
    tz: str,
    day: date,
    force: bool,
    *,
    exists: Callable[[str], bool],
    put: Put,
    calls_between: Callable[[datetime, datetime], Iterable[Mapping[str, Any]]],
    on_written: Callable[[date, list[Mapping[str, Any]]], None] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict[str, Any]:
    """Write one local day's file (unless it exists and not ``force``); ``on_written`` is told the
    calls it holds."""
    from call_records.csv_out import export_csv

    key = day_key(account, day)
    if not force and exists(key):
        return {"account": account, "date": day.isoformat(), "key": key, "status": "exists"}
    # wall time, as S3 and the calls' updated_at keep it (not the local runtime's frozen job time)
    read_at = now().astimezone(UTC) - SNAPSHOT_SKEW
    # test calls (the account's test_callers) stay out of QuickSight, like every report; a call
    # belongs to the day it was on in the zone it was stamped with (the rollups' day), which after
    # the account changed its zone is not the account's day: read around it, keep the day's own
    lo, hi = day_bounds(day, tz)
    calls = [c for c in calls_between(lo - ZONE_MARGIN, hi + ZONE_MARGIN)
             if not c.get("test") and local_day(c, tz) == day]
    text = export_csv(calls, account=account, tz=tz)
    put(key, text.encode("utf-8"), "text/csv; charset=utf-8",
        metadata={SNAPSHOT_AT: read_at.strftime("%Y-%m-%dT%H:%M:%SZ")})
    if on_written is not None:
        on_written(day, calls)
    return {"account": account, "date": day.isoformat(), "key": key, "status": "written", "rows": len(calls)}


# How many missed days (runs that failed for the account, or did not run) a run writes at most.
MISSED_DAYS_LOOKBACK = 7


# What the staleness check reads of each call (with ``started_at``): when it changed, whether it is
# a test call, and the zone it was stamped with (the day it is filed on).
CHANGE_FIELDS = ("updated_at", "test", CALL_TIMEZONE)

# The most two zones' offsets differ (UTC+14 and UTC-12): how far a call's own day may lie from the
# account's.
ZONE_MARGIN = timedelta(hours=26)


def local_day(call: Mapping[str, Any], tz: str) -> date | None:
    """The call's day in the zone it was stamped with (``calltrack.days.call_timezone``), else in
    ``tz``; None for a start time without its zone."""
    from calltrack.days import call_timezone, parse_started_at, zone

    started = parse_started_at(call.get("started_at"))
    return None if started is None else started.astimezone(zone(call_timezone(call, tz))).date()


def day_bounds(day: date, tz: str) -> tuple[datetime, datetime]:
    """The local day's start and the next day's start, in the account's zone."""
    from calltrack.days import zone

    zi = zone(tz)
    return datetime.combine(day, time(0), zi), datetime.combine(day + timedelta(days=1), time(0), zi)


def first_kept_day(at: datetime, tz: str, calls_days: int | None) -> date | None:
    """The oldest local day a run writes or refreshes (None: any). A call expires ``calls_days``
    after its start (``calltrack.call_items.expire_at``), so every call of an older day made under
    the current setting has expired by the start of the account's local today."""
    from calltrack.days import zone

    if calls_days is None:
        return None
    return at.astimezone(zone(tz)).date() - timedelta(days=calls_days)


EXPIRY_PREFIX = "exports/expiry/"
# How many files written before the expiry book a run looks up (one query of their day's calls each).
UNBOOKED_PER_RUN = 100
_DAY_FILE = re.compile(r"date=(\d{4}-\d{2}-\d{2})/calls\.csv")


def expiry_key(account: str) -> str:
    """The account's expiry book: ``{"days": {"YYYY-MM-DD": epoch seconds or null}}``."""
    return f"{EXPIRY_PREFIX}account={account}.json"


def file_expiry(calls: Iterable[Mapping[str, Any]], day: date, tz: str, calls_days: int | None) -> int | None:
    """When a day's file may go: once the last of its calls has passed its own ``expire_at`` (None:
    one of them is kept for ever). A day without calls holds nobody's data: it follows the
    account's current ``calls_days`` from the day's end."""
    latest: int | None = None
    for call in calls:
        value = call.get("expire_at")
        if value is None:
            return None
        latest = max(latest or 0, int(value))
    if latest is not None:
        return latest
    if calls_days is None:
        return None
    return int(day_bounds(day, tz)[1].timestamp()) + calls_days * 86400


def unbooked_old_days(
    account: str, keep_from: date | None, keys_in_order: Iterable[str], booked: Mapping[str, Any]
) -> list[date]:
    """Day files of the account older than ``keep_from`` that the expiry book does not know (written
    before it). ``keys_in_order`` lists the account's objects in key order (S3's), which is date
    order for day files: reading stops at the first kept day, so a run reads one key when there
    is nothing to look up. Other objects under the prefix are never touched."""
    if keep_from is None:
        return []
    prefix = f"{CALLS_PREFIX}account={account}/"
    first_kept = day_key(account, keep_from)
    days = []
    for key in keys_in_order:
        if key >= first_kept:
            break
        match = _DAY_FILE.fullmatch(key.removeprefix(prefix))
        if match is None or match.group(1) in booked:
            continue
        try:
            days.append(date.fromisoformat(match.group(1)))
        except ValueError:
            continue
    return days


def expire_files(
    account: str,
    tz: str,
    calls_days: int | None,
    now: datetime,
    book: dict[str, int | None],
    *,
    keep_from: date | None,
    keys_in_order: Iterable[str],
    day_calls: Callable[[date], Iterable[Mapping[str, Any]]],
    delete: Callable[[list[str]], None],
) -> list[str]:
    """Delete the account's day files whose calls have all expired; -> their days (ISO), taken out
    of ``book``. A booked day goes when its time has passed. A file from before the book and older
    than ``keep_from`` is looked up once (its day's calls' ``expire_at``): booked, or deleted when
    they have all expired (at most ``UNBOOKED_PER_RUN`` a run)."""
    now_s = now.timestamp()
    for day in unbooked_old_days(account, keep_from, keys_in_order, book)[:UNBOOKED_PER_RUN]:
        calls = [c for c in day_calls(day) if not c.get("test")]
        book[day.isoformat()] = file_expiry(calls, day, tz, calls_days)
    due = sorted(d for d, at in book.items() if at is not None and at <= now_s)
    if due:
        delete([day_key(account, date.fromisoformat(d)) for d in due])
        for d in due:
            del book[d]
    return due


def missed_days(
    account: str,
    tz: str,
    at: datetime,
    exists: Callable[[str], bool],
    keep_from: date | None = None,
    *,
    exported_before: bool = False,
) -> list[date]:
    """The days before the previous local day that have no file since the account's last exported
    day, oldest first: a run that failed for the account, or did not run, left them. At most
    ``MISSED_DAYS_LOOKBACK`` of them (a week-long outage is written whole), and only after a day
    that was exported: an account exported for the first time gets no files for days before it
    existed. One HEAD a run when nothing is missing (the day before yesterday is there). Days
    before ``keep_from`` are past the calls' retention: their files were deleted, not missed, so
    the days after it are missed only for an account ``exported_before`` (it has an expiry book)."""
    yesterday = previous_local_day(at, tz)
    missing: list[date] = []
    for back in range(1, MISSED_DAYS_LOOKBACK + 2):  # the last written day may be a week before them
        day = yesterday - timedelta(days=back)
        if keep_from is not None and day < keep_from:
            return sorted(missing) if exported_before else []
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
    from calltrack.days import zone

    zi = zone(tz)
    yesterday = previous_local_day(at, tz)
    first = yesterday - timedelta(days=REFRESH_DAYS)
    if keep_from is not None:
        first = max(first, keep_from)  # a day past the calls' retention is not written again
    lo = datetime.combine(first, time(0), zi)
    hi = datetime.combine(yesterday, time(0), zi)
    changed: dict[date, str] = {}
    for call in calls_between(lo - ZONE_MARGIN, hi + ZONE_MARGIN):  # each call on its own zone's day
        day, updated = local_day(call, tz), str(call.get("updated_at") or "")
        if call.get("test") or day is None or not updated or not first <= day < yesterday:
            continue  # a stored time without its zone is skipped, not the account's whole export
        changed[day] = max(changed.get(day, ""), updated)
    stale = []
    for day in sorted(changed):
        written = written_at(day_key(account, day))
        # the same second counts as later: rewriting once more is harmless, missing a change is not
        if written is not None and changed[day] >= written.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"):
            stale.append(day)
    return stale


def snapshot_of(s3: Any, bucket: str, key: str) -> datetime | None:
    """When a day file's calls were read (its ``snapshot-at`` metadata; a file written before it
    existed: its LastModified); None when there is no file."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    stamp = str((head.get("Metadata") or {}).get(SNAPSHOT_AT) or "")
    try:
        return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return cast(datetime, head["LastModified"])


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
        return snapshot_of(s3, bucket, key)

    def exists(key: str) -> bool:
        return written_at(key) is not None

    def put(key: str, body: bytes, content_type: str, *, metadata: Mapping[str, str] | None = None) -> None:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type,
                      Metadata=dict(metadata or {}))

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

    def load_book(account: str) -> dict[str, int | None]:
        try:
            body = s3.get_object(Bucket=bucket, Key=expiry_key(account))["Body"].read()
        except s3.exceptions.NoSuchKey:
            return {}
        days = json.loads(body).get("days") or {}
        return {str(d): (int(t) if t is not None else None) for d, t in days.items()}

    def save_book(account: str, book: Mapping[str, int | None]) -> None:
        put(expiry_key(account), json.dumps({"days": dict(sorted(book.items()))}).encode("utf-8"),
            "application/json")

    exports: list[dict[str, Any]] = []
    failures = 0
    for config in account_reader().all():
        account = config.account

        def reader(lo: datetime, hi: datetime, a: str = account) -> Iterable[Mapping[str, Any]]:
            return call_items().between(a, lo, hi)

        if isinstance(config, BrokenAccount):
            failures += 1
            logger.error("export failed: the stored config does not validate", extra={"account": account})
            exports.append({"account": account, "status": "failed"})
            continue
        tz, calls_days = config.timezone, config.retention.calls_days
        keep_from = first_kept_day(at, tz, calls_days)
        failed = False
        try:
            book = load_book(account)
        except Exception:  # noqa: BLE001 - without its book the account is left for the next run
            failures += 1
            logger.exception("export failed: expiry book unreadable", extra={"account": account})
            exports.append({"account": account, "status": "failed"})
            continue
        before = dict(book)
        try:
            # first, and on its own: an export that fails must not keep files past their calls
            def day_calls(day: date, a: str = account, zone_: str = tz) -> Iterable[Mapping[str, Any]]:
                return call_items().between(a, *day_bounds(day, zone_), fields=("expire_at", "test"))

            gone = expire_files(account, tz, calls_days, at, book, keep_from=keep_from,
                                keys_in_order=keys_under(f"{CALLS_PREFIX}account={account}/"),
                                day_calls=day_calls, delete=delete)
            if gone:
                exports.append({"account": account, "status": "expired", "files": len(gone), "days": gone})
        except Exception:  # noqa: BLE001 - logged and counted; the writes still run
            failed = True
            logger.exception("export retention failed", extra={"account": account})

        def note(day: date, calls: list[Mapping[str, Any]], b: dict[str, int | None] = book,
                 zone_: str = tz, days_: int | None = calls_days) -> None:
            b[day.isoformat()] = file_expiry(calls, day, zone_, days_)

        try:
            for day in missed_days(account, tz, at, exists, keep_from, exported_before=bool(before)):
                exports.append(export_day(account, tz, day, False, exists=exists, put=put,
                                          calls_between=reader, on_written=note))

            def changes(lo: datetime, hi: datetime, a: str = account) -> Iterable[Mapping[str, Any]]:
                return call_items().between(a, lo, hi, fields=CHANGE_FIELDS)

            for day in stale_days(account, tz, at, written_at, changes, keep_from):
                exports.append({**export_day(account, tz, day, True, exists=exists, put=put,
                                             calls_between=reader, on_written=note), "status": "refreshed"})
            exports.append(export_account(account, tz, at, force, exists=exists, put=put,
                                          calls_between=reader, on_written=note))
        except Exception:  # one account's failure must not stop the others
            failed = True
            logger.exception("export failed", extra={"account": account})
        try:
            if book != before:
                save_book(account, book)
        except Exception:  # noqa: BLE001 - the files it missed are looked up again once old
            failed = True
            logger.exception("export failed: expiry book not saved", extra={"account": account})
        if failed:
            failures += 1
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
