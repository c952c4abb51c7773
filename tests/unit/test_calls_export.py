"""The daily QuickSight export's rows: all accounts' files feed one dataset, so each row names its account."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime

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

    def put(key: str, body: bytes, _: str) -> None:
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
        put=lambda key, body, _: stored.__setitem__(key, body), calls_between=lambda lo, hi: calls,
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


def test_files_of_days_past_the_calls_retention_are_the_expired_ones_read_up_to_the_first_kept() -> None:
    from datetime import date

    from call_records.export import day_key, expired_keys, first_kept_day

    # Given an account keeping calls 30 days, whose files (in S3's key order) run from Oct 20 on
    keep_from = first_kept_day(AT, "Asia/Tokyo", 30)
    files = [day_key("acme", date(2026, 10, d)) for d in range(20, 32)]
    files += [day_key("acme", date(2026, 11, d)) for d in range(1, 26)]
    read: list[str] = []

    def listed() -> Iterator[str]:
        for key in files:
            read.append(key)
            yield key

    # When the run of Nov 26 (JST) looks for expired files
    expired = expired_keys("acme", keep_from, listed())

    # Then every call of Oct 20..26 has passed its 30 days by Nov 26 00:00 JST: those files go,
    # Oct 27 stays (its calls of 23:59 expire on Nov 26 23:59), and the listing is read no further
    assert keep_from == date(2026, 10, 27)
    assert expired == [day_key("acme", date(2026, 10, d)) for d in range(20, 27)]
    assert read[-1] == day_key("acme", date(2026, 10, 27))
    # And an account keeping calls for ever has none
    assert expired_keys("acme", first_kept_day(AT, "Asia/Tokyo", None), iter(files)) == []


def test_a_short_retention_still_writes_the_missed_days_it_keeps_and_none_before() -> None:
    from datetime import date

    from call_records.export import day_key, first_kept_day, missed_days

    # Given an account keeping calls 3 days: files before Nov 23 were deleted as expired, and the
    # runs that would have written the 23rd and 24th failed
    stored = {day_key("acme", date(2026, 11, d)) for d in range(15, 20)}
    keep_from = first_kept_day(AT, "Asia/Tokyo", 3)

    # When the run of the 26th (exporting the 25th) looks back
    missed = missed_days("acme", "Asia/Tokyo", AT, stored.__contains__, keep_from)

    # Then it writes the two missed days inside the retention, and none of the expired days
    assert keep_from == date(2026, 11, 23)
    assert missed == [date(2026, 11, 23), date(2026, 11, 24)]


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
