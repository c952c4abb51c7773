"""The daily QuickSight export's rows: all accounts' files feed one dataset, so each row names its account."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from call_records.csv_out import CALL_COLUMNS, EXPORT_COLUMNS, calls_csv
from call_records.export import export_account
from calltrack.csv_text import BOM

AT = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)  # 00:30 JST on the 26th: exports the 25th
CALLS = [
    {"call_sid": "CA1", "account": "acme", "started_at": "2026-11-25T01:00:00Z", "caller": "+819012345678"},
    {"call_sid": "CA2", "account": "acme", "started_at": "2026-11-25T02:00:00Z", "status": "missed"},
]


def _export(account: str) -> tuple[str, list[dict[str, str]]]:
    stored: dict[str, bytes] = {}

    def put(key: str, body: bytes, _: str, **__: Any) -> None:
        stored[key] = body

    result = export_account(
        account,
        "Asia/Tokyo",
        AT,
        False,
        exists=stored.__contains__,
        put=put,
        calls_between=lambda lo, hi: CALLS,
    )
    text = stored[result["key"]].decode("utf-8")
    return text, list(csv.DictReader(io.StringIO(text)))


def test_export_rows_start_with_the_account_column_equal_to_the_account() -> None:
    text, rows = _export("acme")
    header = text.splitlines()[0].split(",")
    assert header[0] == "account"
    assert tuple(header) == EXPORT_COLUMNS == ("account", *CALL_COLUMNS)
    assert [r["account"] for r in rows] == ["acme", "acme"]
    assert [r["call_sid"] for r in rows] == ["CA1", "CA2"]
    assert rows[0]["caller"].endswith("5678") and "+819012345678" not in text
    assert not text.startswith(BOM)  # Athena reads it


def test_each_accounts_file_names_that_account_so_one_dataset_keeps_them_apart() -> None:
    _, a_rows = _export("acme")
    _, b_rows = _export("beta-dental")
    assert {r["account"] for r in a_rows} == {"acme"}
    assert {r["account"] for r in b_rows} == {"beta-dental"}


def test_the_api_csv_keeps_its_columns() -> None:
    text = calls_csv(CALLS, tz="Asia/Tokyo", mask_caller=True)
    assert text.removeprefix(BOM).splitlines()[0] == ",".join(CALL_COLUMNS)
    assert "account" not in CALL_COLUMNS


def test_test_calls_stay_out_of_the_quicksight_export() -> None:
    # Given a day with a real call and a test call (issue 18)
    stored: dict[str, bytes] = {}
    test_call = {"call_sid": "CA3", "account": "acme", "started_at": "2026-11-25T03:00:00Z", "test": True}
    calls = [*CALLS, test_call]
    result = export_account(
        "acme", "Asia/Tokyo", AT, False, exists=stored.__contains__,
        put=lambda key, body, _, **__: stored.__setitem__(key, body), calls_between=lambda lo, hi: calls,
    )
    # Then only the real calls are exported
    rows = list(csv.DictReader(io.StringIO(stored[result["key"]].decode("utf-8"))))
    assert [r["call_sid"] for r in rows] == ["CA1", "CA2"] and result["rows"] == 2


def test_a_day_a_failed_run_left_without_its_file_is_found_by_the_next_run() -> None:
    from datetime import date

    from call_records.export import day_key, missed_days

    # Given files for the account up to the 21st, and none for the 22nd to the 24th (runs failed)
    stored = {day_key("acme", date(2026, 11, d)) for d in range(15, 22)}
    # When the run of the 26th (exporting the 25th) looks back
    missed = missed_days("acme", "Asia/Tokyo", AT, stored.__contains__)
    # Then it finds the three missing days, oldest first
    assert missed == [date(2026, 11, 22), date(2026, 11, 23), date(2026, 11, 24)]


def test_a_normal_run_misses_nothing_and_a_new_account_gets_no_files_for_days_before_it() -> None:
    from datetime import date

    from call_records.export import MISSED_DAYS_LOOKBACK, day_key, missed_days

    asked: list[str] = []

    def exists(key: str) -> bool:
        asked.append(key)
        return key == day_key("acme", date(2026, 11, 24))

    # Given yesterday's run wrote its day: one look, nothing missing
    assert missed_days("acme", "Asia/Tokyo", AT, exists) == [] and len(asked) == 1
    # Given an account never exported before: nothing to backfill, after a week and a day of looks
    asked.clear()
    assert missed_days("new", "Asia/Tokyo", AT, exists) == [] and len(asked) == MISSED_DAYS_LOOKBACK + 1


def test_a_week_long_outage_is_written_whole_by_the_next_run() -> None:
    from datetime import date

    from call_records.export import MISSED_DAYS_LOOKBACK, day_key, missed_days

    # Given the last file on the 17th and no run from the 18th to the 24th (seven days)
    stored = {day_key("acme", date(2026, 11, 17))}
    # When the run of the 26th (exporting the 25th) looks back, Then all seven are written
    missed = missed_days("acme", "Asia/Tokyo", AT, stored.__contains__)
    assert missed == [date(2026, 11, d) for d in range(18, 25)] and len(missed) == MISSED_DAYS_LOOKBACK


def test_a_days_file_goes_when_the_last_of_its_calls_expires_whatever_calls_days_says_now() -> None:
    from datetime import date, timedelta

    from call_records.export import day_key, expire_files, file_expiry

    tokyo_day = date(2026, 10, 20)
    t = int(datetime(2026, 10, 20, 3, 0, tzinfo=UTC).timestamp())
    # Given three days booked when their files were written: Oct 20's calls expire after 30 days,
    # Oct 21's after 1095 (written before the account lowered calls_days to 30), and Oct 22 holds
    # a call kept for ever
    book = {
        "2026-10-20": file_expiry([{"expire_at": t + 30 * 86400}, {"expire_at": t + 29 * 86400}],
                                  tokyo_day, "Asia/Tokyo", 30),
        "2026-10-21": file_expiry([{"expire_at": t + 1095 * 86400}], tokyo_day, "Asia/Tokyo", 30),
        "2026-10-22": file_expiry([{"expire_at": t + 86400}, {"expire_at": None}], tokyo_day,
                                  "Asia/Tokyo", 30),
    }
    assert book["2026-10-20"] == t + 30 * 86400 and book["2026-10-22"] is None
    deleted: list[str] = []

    def run(now: datetime) -> list[str]:
        return expire_files("acme", "Asia/Tokyo", 30, now, book, keep_from=None, keys_in_order=iter(()),
                            day_calls=lambda d: [], delete=deleted.extend)

    # When the run of the second before the last call of Oct 20 expires, Then nothing goes
    assert run(datetime.fromtimestamp(t + 30 * 86400 - 1, UTC)) == [] and deleted == []
    # When that call has expired, Then Oct 20's file goes (and leaves the book); Oct 21 stays,
    # though calls_days is 30 now: its calls are still there for years
    assert run(datetime.fromtimestamp(t + 30 * 86400, UTC) + timedelta(hours=1)) == ["2026-10-20"]
    assert deleted == [day_key("acme", tokyo_day)] and set(book) == {"2026-10-21", "2026-10-22"}
    # And Oct 22's file, with a call kept for ever, is never due
    assert run(datetime.fromtimestamp(t + 2000 * 86400, UTC)) == ["2026-10-21"]
    assert set(book) == {"2026-10-22"}


def test_files_from_before_the_book_are_looked_up_once_when_old_and_nothing_else_is_touched() -> None:
    from datetime import date

    from call_records.export import day_key, expire_files, first_kept_day

    # Given an account keeping calls 30 days, whose objects (in S3's key order) are day files from
    # Oct 20 on written before the expiry book, plus objects that are not day files
    keep_from = first_kept_day(AT, "Asia/Tokyo", 30)
    files = [day_key("acme", date(2026, 10, d)) for d in range(20, 32)]
    files += [day_key("acme", date(2026, 11, d)) for d in range(1, 26)]
    keys = sorted([*files, "calls/account=acme/_tmp/x.csv", "calls/account=acme/date=2026-10-21/aaa.csv"])
    read: list[str] = []

    def listed() -> Iterator[str]:
        for key in keys:
            read.append(key)
            yield key

    expiry = int(datetime(2026, 11, 30, tzinfo=UTC).timestamp())  # calls kept longer, on Oct 25
    looked_up: list[date] = []

    def day_calls(day: date) -> list[dict[str, Any]]:
        looked_up.append(day)
        return [{"expire_at": expiry}] if day == date(2026, 10, 25) else []  # the rest: expired, gone

    deleted: list[str] = []
    book: dict[str, int | None] = {}
    # When the run of Nov 26 (JST) expires files
    gone = expire_files("acme", "Asia/Tokyo", 30, AT, book, keep_from=keep_from, keys_in_order=listed(),
                        day_calls=day_calls, delete=deleted.extend)

    # Then the days before Oct 27 were looked up, once, and those without calls left went
    assert keep_from == date(2026, 10, 27)
    assert looked_up == [date(2026, 10, d) for d in range(20, 27)]
    assert gone == [f"2026-10-{d}" for d in (20, 21, 22, 23, 24, 26)]
    assert deleted == [day_key("acme", date(2026, 10, d)) for d in (20, 21, 22, 23, 24, 26)]
    # And Oct 25, whose calls are kept longer, is booked for their expiry instead
    assert book == {"2026-10-25": expiry}
    # And objects that are not day files stay, and the listing was read no further than Oct 27
    assert not {"calls/account=acme/_tmp/x.csv", "calls/account=acme/date=2026-10-21/aaa.csv"} & set(deleted)
    assert read[-1] == day_key("acme", date(2026, 10, 27))


def test_a_short_retention_still_writes_the_missed_days_it_keeps_and_none_before() -> None:
    from datetime import date

    from call_records.export import day_key, first_kept_day, missed_days

    # Given an account keeping calls 3 days: files before Nov 23 were deleted as expired, and the
    # runs that would have written the 23rd and 24th failed
    stored = {day_key("acme", date(2026, 11, d)) for d in range(15, 20)}
    keep_from = first_kept_day(AT, "Asia/Tokyo", 3)

    # When the run of the 26th (exporting the 25th) looks back
    missed = missed_days("acme", "Asia/Tokyo", AT, stored.__contains__, keep_from, exported_before=True)

    # Then it writes the two missed days inside the retention, and none of the expired days
    assert keep_from == date(2026, 11, 23)
    assert missed == [date(2026, 11, 23), date(2026, 11, 24)]
    # And an account exported for the first time gets no files for the days before it existed
    assert missed_days("new", "Asia/Tokyo", AT, stored.__contains__, keep_from) == []


def test_the_export_run_fails_after_the_others_when_an_account_failed(monkeypatch) -> None:
    import pytest

    from call_records import export

    # Given a run in which one account's export failed and another's was written
    exports = [{"account": "ok", "status": "written"}, {"account": "bad", "status": "failed"}]
    result = {"failures": 1, "exports": exports}
    monkeypatch.setattr(export, "run", lambda at, force: result)
    # When EventBridge invokes the function, Then the invocation fails naming the account
    with pytest.raises(export.ExportFailed, match="bad"):
        export.handler({"job": "daily-calls-export", "time": "2026-11-25T15:30:00Z"}, None)


def test_a_change_made_before_an_erasure_rewrote_the_day_file_is_still_exported_the_next_night():
    import boto3
    from moto import mock_aws

    from call_records.export import day_key, export_day, snapshot_of, stale_days
    from privacy.store import DynamoCallerStore

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="exports")
        day = AT.date()
        calls = {c["call_sid"]: {**c, "updated_at": "2026-11-25T02:00:00Z"} for c in CALLS}

        def between(lo: datetime, hi: datetime) -> list[dict[str, Any]]:
            return [dict(c) for c in calls.values()
                    if lo <= datetime.fromisoformat(c["started_at"].replace("Z", "+00:00")) < hi]

        def put(key: str, body: bytes, content_type: str, *, metadata: Any = None) -> None:
            s3.put_object(Bucket="exports", Key=key, Body=body, ContentType=content_type,
                          Metadata=dict(metadata or {}))

        # Given the nightly file of the 25th, written at 00:30 JST on the 26th
        export_day("acme", "Asia/Tokyo", day, False, exists=lambda k: False, put=put,
                   calls_between=between, now=lambda: AT)
        # And a manager marking CA1 won that morning
        calls["CA1"].update(stage="won", value=50000, updated_at="2026-11-26T01:00:00Z")
        # When an admin erases CA2's caller (the day file is rewritten without its row, days later)
        store = DynamoCallerStore(None, s3, {}, recordings_bucket="recordings", exports_bucket="exports")
        assert store.drop_export_rows("acme", {"CA2"}, {day}) == 1
        del calls["CA2"]
        # Then the next nightly run still finds the day changed since its calls were read
        def written_at(key: str) -> datetime | None:
            return snapshot_of(s3, "exports", key)

        next_night = datetime(2026, 11, 26, 15, 30, tzinfo=UTC)
        assert stale_days("acme", "Asia/Tokyo", next_night, written_at, between) == [day]
        # and rewriting it shows the stage (without the erased row)
        export_day("acme", "Asia/Tokyo", day, True, exists=lambda k: True, put=put,
                   calls_between=between, now=lambda: next_night)
        text = s3.get_object(Bucket="exports", Key=day_key("acme", day))["Body"].read().decode("utf-8")
        rows = list(csv.DictReader(io.StringIO(text.lstrip(BOM))))
        assert [(r["call_sid"], r["stage"]) for r in rows] == [("CA1", "won")]


@pytest.mark.parametrize("zones", [("Asia/Tokyo", "America/Los_Angeles"),
                                   ("America/Los_Angeles", "Asia/Tokyo")])
def test_after_an_account_changes_its_zone_every_call_is_in_exactly_one_day_file(zones):
    from datetime import timedelta

    from call_records.export import CHANGE_FIELDS, export_account, export_day, missed_days, stale_days

    # Given a call every hour for 60 days, each stamped with the account's zone when it was made, and
    # the account moving to another zone on day 45; the nightly export runs every night
    before, after = zones
    start = datetime(2026, 9, 1, tzinfo=UTC)
    switch = start + timedelta(days=45, hours=16)
    calls = []
    for h in range(60 * 24):
        t = start + timedelta(hours=h, minutes=10)
        zone = before if t < switch else after
        calls.append({"call_sid": f"CA{h:04d}", "account": "acme", "timezone": zone,
                      "started_at": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
                      "updated_at": (t + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")})
    files: dict[str, str] = {}
    written: dict[str, datetime] = {}
    now: list[datetime] = []

    def put(key: str, body: bytes, _: str, **__: Any) -> None:
        files[key], written[key] = body.decode("utf-8"), now[-1]

    def between(lo: datetime, hi: datetime) -> list[dict[str, Any]]:  # the calls made by then
        stamp = now[-1].strftime("%Y-%m-%dT%H:%M:%SZ")
        return [c for c in calls if c["updated_at"] <= stamp
                and lo <= datetime.fromisoformat(c["started_at"].replace("Z", "+00:00")) < hi]

    for night in range(1, 61):
        at = start + timedelta(days=night, hours=15, minutes=30)
        now.append(at)
        tz = before if at < switch else after
        for day in missed_days("acme", tz, at, files.__contains__):
            export_day("acme", tz, day, False, exists=files.__contains__, put=put, calls_between=between)
        def changes(lo: datetime, hi: datetime) -> list[dict[str, Any]]:  # what the run reads of each
            read = ("call_sid", "started_at", *CHANGE_FIELDS)
            return [{k: c[k] for k in read if k in c} for c in between(lo, hi)]

        for day in stale_days("acme", tz, at, written.get, changes):
            export_day("acme", tz, day, True, exists=files.__contains__, put=put, calls_between=between)
        export_account("acme", tz, at, False, exists=files.__contains__, put=put, calls_between=between)
    # When the files are read, Then each call of the days between is in exactly one of them
    seen: dict[str, int] = {}
    for text in files.values():
        for row in csv.DictReader(io.StringIO(text)):
            seen[row["call_sid"]] = seen.get(row["call_sid"], 0) + 1
    span = [c["call_sid"] for c in calls if "2026-09-02T00" <= c["started_at"] < "2026-10-28T00"]
    assert [sid for sid in span if seen.get(sid) != 1] == []


def test_a_change_to_a_call_made_before_a_zone_change_marks_the_day_the_call_is_filed_on():
    from call_records.export import CHANGE_FIELDS, day_key, stale_days

    # Given an account now in Los Angeles, and a call made while it was in Tokyo at 01:30 on the
    # 25th there (08:30 on the 24th in Los Angeles), filed in the 25th's file, set won after it
    call = {"call_sid": "CA1", "account": "acme", "started_at": "2026-11-24T16:30:00Z",
            "timezone": "Asia/Tokyo", "updated_at": "2026-11-27T01:00:00Z", "stage": "won"}
    written = {day_key("acme", d): datetime(2026, 11, 26, tzinfo=UTC) for d in
               (datetime(2026, 11, 24).date(), datetime(2026, 11, 25).date())}

    def changes(lo: datetime, hi: datetime) -> list[dict[str, Any]]:  # what the nightly run reads
        start = datetime.fromisoformat(call["started_at"].replace("Z", "+00:00"))
        read = ("call_sid", "started_at", *CHANGE_FIELDS)
        return [{k: call[k] for k in read if k in call}] if lo <= start < hi else []

    # When the next nightly run looks for changed days
    at = datetime(2026, 11, 28, 8, 30, tzinfo=UTC)  # 00:30 on the 28th in Los Angeles
    # Then the day to write again is the 25th, the file the call is in
    stale = stale_days("acme", "America/Los_Angeles", at, written.get, changes)
    assert stale == [datetime(2026, 11, 25).date()]
