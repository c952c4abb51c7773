"""The daily QuickSight export's rows: all accounts' files feed one dataset, so each row names its account."""

from __future__ import annotations

import csv
import io
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
