"""Report arithmetic over rollup rows, CSV shape, and the daily export's day/key logic."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from call_records.csv_out import calls_csv
from call_records.export import day_key, export_account, manifest, previous_local_day
from calltrack import days
from calltrack.csv_text import BOM, write_csv
from calltrack.errors import BadRequest
from report import figures
from report.rollup_store import RollupRow, SpendRow, prorated_spend


def row(day: str, key: str, **counters: float) -> RollupRow:
    return RollupRow(day=day, key=key, counters=counters)


ROWS = [
    row(
        "2026-11-01",
        "google-ads",
        calls=10,
        answered=8,
        missed=2,
        first_time=7,
        talk_seconds=800,
        leads=4,
        opportunities=2,
        won=1,
        won_value=50000,
    ),
    row("2026-11-02", "google-ads", calls=5, answered=5, talk_seconds=300, leads=1),
    row("2026-11-02", "flyer", calls=3, answered=1, missed=2, first_time=3, talk_seconds=60),
]


def test_channel_rows_sum_to_totals_and_carry_spend_cpa_romi() -> None:
    rows, totals = figures.channel_report(ROWS, "channel", {"google-ads": 20000.0, "radio": 1000.0})
    by_key = {r["key"]: r for r in rows}
    g = by_key["google-ads"]
    assert (g["calls"], g["answered"], g["leads"], g["won_value"]) == (15, 13, 5, 50000)
    assert g["answer_rate"] == round(13 / 15, 4)
    assert g["avg_talk_seconds"] == round(1100 / 13, 1)
    assert g["cpa"] == 4000 and g["romi"] == 1.5
    # a channel with spend and no calls is a row, so rows still add up to the totals
    assert by_key["radio"]["calls"] == 0 and by_key["radio"]["spend"] == 1000
    assert (
        by_key["flyer"]["spend"] == 0 and by_key["flyer"]["romi"] is None and by_key["flyer"]["cpa"] is None
    )
    for key in (
        "calls",
        "answered",
        "missed",
        "first_time_callers",
        "talk_seconds",
        "leads",
        "opportunities",
        "won",
        "won_value",
        "spend",
    ):
        assert totals[key] == sum(r[key] for r in rows), key
    assert list(g) == list(figures.ROW_KEYS)


def test_a_channel_with_leads_and_no_spend_entered_has_no_cpa_beside_channels_with_spend() -> None:
    # Given spend for google-ads only, and flyer calls that became leads
    flyer_leads = row("2026-11-03", "flyer", calls=2, answered=2, talk_seconds=200, leads=2)
    rows, _ = figures.channel_report([*ROWS, flyer_leads], "channel", {"google-ads": 20000.0})
    flyer = next(r for r in rows if r["key"] == "flyer")
    assert flyer["leads"] == 2
    # Then flyer's CPA is unknown, not 0 (free leads), as its ROMI
    assert flyer["spend"] == 0 and flyer["cpa"] is None and flyer["romi"] is None


def test_without_spend_cpa_and_romi_are_null() -> None:
    rows, totals = figures.channel_report(ROWS, "campaign", {})
    assert totals["spend"] is None and totals["cpa"] is None and totals["romi"] is None


def test_heatmap_grid_is_7_by_24() -> None:
    rows = [
        row("2026-11-02", "0-09", calls=4, answered=3, missed=1),
        row("2026-11-09", "0-09", calls=2, answered=1),
    ]
    grid = figures.heatmap(rows, "answer_rate")
    assert len(grid) == 7 and all(len(h) == 24 for h in grid)
    assert grid[0][9] == 0.6667 and grid[3][3] is None
    assert figures.heatmap(rows, "missed")[0][9] == 1


def test_trend_by_week_and_before_after_a_change() -> None:
    out = figures.trend(ROWS, date(2026, 10, 26), date(2026, 11, 8), "week", date(2026, 11, 2))
    assert [p["period"] for p in out["points"]] == ["2026-10-26", "2026-11-02"]
    assert [p["calls"] for p in out["points"]] == [10, 8]
    assert out["before"]["calls"] == 10 and out["after"]["calls"] == 8
    assert out["before"]["days"] == 7 and out["after"]["calls_per_day"] == round(8 / 7, 2)


@pytest.mark.parametrize(
    ("from_", "to", "field"),
    [
        ("2026-13-01", "2026-11-02", "from"),
        ("2026-11-05", "2026-11-01", "from"),
        ("2025-01-01", "2026-11-01", "to"),
        ("2026-11-01", "yesterday", "to"),
        # the calendar's ends overflow a day's UTC bounds: outside 2000-2100 is a 400, not a 500
        ("2026-11-01", "9999-12-31", "to"),
        ("0001-01-01", "2026-11-01", "from"),
        ("1999-12-31", "2000-01-01", "from"),
    ],
)
def test_bad_ranges_name_the_field(from_: str, to: str, field: str) -> None:
    with pytest.raises(BadRequest) as err:
        days.parse_range(from_, to, today=date(2026, 11, 25))
    assert err.value.field == field


def test_spend_is_prorated_by_days_in_range() -> None:
    spend = [SpendRow("2026-11", "google-ads", 30000, "JPY"), SpendRow("2026-12", "google-ads", 31000, "JPY")]
    assert prorated_spend(spend, date(2026, 11, 1), date(2026, 11, 30)) == {"google-ads": 30000.0}
    assert prorated_spend(spend, date(2026, 11, 21), date(2026, 12, 10)) == {"google-ads": 20000.0}


def test_prorated_amounts_are_rounded_to_the_currencys_minor_unit() -> None:
    # Given 100,000 a month on google-ads and a report of 10 of November's 30 days (5 leads)
    spend = prorated_spend([SpendRow("2026-11", "google-ads", 100000, "JPY")], date(2026, 11, 1),
                           date(2026, 11, 10))
    # When the report is made in yen, in dollars and in dinars
    jpy = figures.channel_report(ROWS, "channel", spend, "JPY")
    usd = figures.channel_report(ROWS, "channel", spend, "USD")
    kwd = figures.channel_report(ROWS, "channel", spend, "KWD")
    # Then yen have no decimals (33333, not 33333.33), dollars have cents and dinars fils
    assert [r["spend"] for r in jpy[0] if r["key"] == "google-ads"] == [33333]
    assert jpy[1]["spend"] == 33333 and jpy[1]["cpa"] == 6667
    assert [r["spend"] for r in usd[0] if r["key"] == "google-ads"] == [33333.33]
    assert usd[1]["cpa"] == 6666.67
    assert kwd[1]["spend"] == 33333.333
    # and the campaign rows' totals carry the account's spend the same way
    assert figures.channel_report(ROWS, "campaign", spend, "JPY")[1]["spend"] == 33333


def test_rounded_channel_spend_adds_up_to_the_same_total_whatever_the_report_is_by() -> None:
    # Given 50,000 for the range spread over three channels (16666.67 each, unrounded)
    spend = {"flyer": 50000 / 3, "radio": 50000 / 3, "tv": 50000 / 3}
    # When the report is by channel and by campaign, in yen and in dollars
    for currency, total in (("JPY", 50000), ("USD", 50000)):
        rows, by_channel = figures.channel_report(ROWS, "channel", spend, currency)
        _, by_campaign = figures.channel_report(ROWS, "campaign", spend, currency)
        # Then the rows add up to the total, and both totals are the spend entered (not 50001)
        assert by_channel["spend"] == by_campaign["spend"] == total, currency
        assert round(sum(r["spend"] for r in rows), 2) == total
    assert sorted(r["spend"] for r in figures.channel_report(ROWS, "channel", spend, "JPY")[0]
                  if r["spend"]) == [16666, 16667, 16667]


def test_csv_has_bom_header_iso_dates_masking_and_no_formulas() -> None:
    text = calls_csv(
        [
            {
                "call_sid": "CA1",
                "started_at": "2026-11-02T15:30:00Z",
                "caller": "+819012345678",
                "channel": "=HYPERLINK(1)",
                "status": "answered",
                "tags": ["a", "b"],
            }
        ],
        tz="Asia/Tokyo",
        mask_caller=True,
    )
    assert text.startswith(BOM + "call_sid,started_at,started_at_local")
    line = text.splitlines()[1]
    assert "2026-11-02T15:30:00Z" in line and "2026-11-03T00:30:00+09:00" in line
    assert "5678" in line and "12345678" not in line
    assert "'=HYPERLINK(1)" in line and "a;b" in line
    assert not write_csv(["a"], [[1]], excel=False).startswith(BOM)
    # the full-width forms a Japanese IME types are escaped alike; numbers stay numbers
    row = write_csv(["k"], [["＝HYPERLINK(1)"], ["＋81"], ["-12.5"]], excel=True).splitlines()[1:]
    assert row == ["'＝HYPERLINK(1)", "'＋81", "-12.5"]


def test_export_writes_the_previous_local_day_once() -> None:
    at = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)  # 00:30 JST on the 26th
    assert previous_local_day(at, "Asia/Tokyo") == date(2026, 11, 25)
    assert previous_local_day(at, "America/New_York") == date(2026, 11, 24)
    stored: dict[str, bytes] = {}
    asked: list[tuple[datetime, datetime]] = []

    def calls(lo: datetime, hi: datetime) -> list[dict[str, str]]:
        asked.append((lo, hi))
        return [{"call_sid": "CA1", "started_at": "2026-11-25T01:00:00Z", "caller": "+819012345678"}]

    def put(key: str, body: bytes, _: str, **__: object) -> None:
        stored[key] = body

    first = export_account(
        "acme", "Asia/Tokyo", at, False, exists=stored.__contains__, put=put, calls_between=calls
    )
    again = export_account(
        "acme", "Asia/Tokyo", at, False, exists=stored.__contains__, put=put, calls_between=calls
    )
    assert first["status"] == "written" and again["status"] == "exists"
    assert (
        list(stored)
        == [day_key("acme", date(2026, 11, 25))]
        == ["calls/account=acme/date=2026-11-25/calls.csv"]
    )
    assert b"+819012345678" not in stored[first["key"]] and b"5678" in stored[first["key"]]
    # the 25th in Tokyo, widened by the widest gap between two zones (a call stamped with another
    # zone, from before the account changed its own, may fall on that day)
    from call_records.export import ZONE_MARGIN

    assert (asked[0][0] + ZONE_MARGIN).isoformat() == "2026-11-25T00:00:00+09:00"
    assert (asked[0][1] - ZONE_MARGIN).isoformat() == "2026-11-26T00:00:00+09:00"
    assert manifest("b")["fileLocations"][0]["URIPrefixes"] == ["s3://b/calls/"]
