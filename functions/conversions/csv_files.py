"""The manual-import files for users without API access (pure; golden files in tests/golden/).

- Google Ads "conversions from clicks" template: UTF-8 without a BOM, CRLF; first line
  ``Parameters:TimeZone=<account zone>``, then ``Google Click ID,Conversion Name,Conversion Time,
  Conversion Value,Conversion Currency``; times ``yyyy-mm-dd hh:mm:ss`` in that zone. Only gclid
  rows (the template's click id column is the GCLID).
- Yahoo! JAPAN 検索広告 offline conversion template: Shift_JIS (cp932, no BOM), CRLF, every cell
  quoted: ``YCLID,コンバージョン名,コンバージョン発生日時,1コンバージョンあたりの価値,通貨コード``;
  times ``yyyymmdd hhmmss <zone>``.
Both list the conversions the API did not deliver: ``skipped`` for ``no_credentials`` or
``credentials_refused: ...`` (Google) or ``csv_only`` (Yahoo!), oldest first. See
docs/decisions.md (2026-11-30) for the pages followed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from typing import Any

from calltrack.dni_match import click_id_or_none
from conversions.rules import CSV_ONLY, parse_utc, waits_for_credentials

GOOGLE_HEADER = (
    "Google Click ID",
    "Conversion Name",
    "Conversion Time",
    "Conversion Value",
    "Conversion Currency",
)
YAHOO_HEADER = (
    "YCLID",
    "コンバージョン名",
    "コンバージョン発生日時",
    "1コンバージョンあたりの価値",
    "通貨コード",
)


def _value(row: Mapping[str, Any]) -> str:
    value = row.get("restated_value") if row.get("restated_value") is not None else row.get("value")
    if value is None:
        return ""
    number = float(value)
    return str(int(number)) if number.is_integer() else f"{number:.2f}"


def _local(row: Mapping[str, Any], timezone: str, fmt: str) -> str:
    from calltrack.days import zone

    return parse_utc(str(row["converted_at"])).astimezone(zone(timezone)).strftime(fmt)


def for_import(rows: Iterable[Mapping[str, Any]], destination: str) -> list[Mapping[str, Any]]:
    def not_sent(reason: str | None) -> bool:
        return waits_for_credentials(reason) if destination == "google_ads" else reason == CSV_ONLY

    picked = [
        r
        for r in rows
        if r.get("destination") == destination
        and r.get("status") == "skipped"
        and not_sent(r.get("reason"))
        and click_id_or_none(r.get("click_id"))  # a stored oddity never reaches the spreadsheet
        and (destination != "google_ads" or r.get("click_id_type") == "gclid")
    ]
    return sorted(picked, key=lambda r: (str(r.get("converted_at")), str(r.get("order_id"))))


def google_ads_csv(rows: Iterable[Mapping[str, Any]], timezone: str) -> bytes:
    buf = io.StringIO()
    buf.write(f"Parameters:TimeZone={timezone}\r\n")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(GOOGLE_HEADER)
    for r in for_import(rows, "google_ads"):
        writer.writerow(
            [
                r["click_id"],
                r["rule"],
                _local(r, timezone, "%Y-%m-%d %H:%M:%S"),
                _value(r),
                r.get("currency") or "",
            ]
        )
    return buf.getvalue().encode("utf-8")


def yahoo_ads_csv(rows: Iterable[Mapping[str, Any]], timezone: str) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    writer.writerow(YAHOO_HEADER)
    for r in for_import(rows, "yahoo_ads"):
        when = f"{_local(r, timezone, '%Y%m%d %H%M%S')} {timezone}"
        writer.writerow([r["click_id"], r["rule"], when, _value(r), r.get("currency") or ""])
    return buf.getvalue().encode("cp932", errors="replace")
