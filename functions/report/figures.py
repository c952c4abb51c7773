"""Pure report arithmetic over rollup rows: channel rows and totals, heatmap, agents, trend.

Definitions (also in docs/decisions.md):
- answer_rate = answered / calls; lead_rate = leads / calls; close_rate = won / calls
- avg_talk_seconds = aht_seconds = talk_seconds / answered; avg_order_value = won_value / won
- cpa = spend / leads (null without leads or spend); romi = (won_value - spend) / spend (null
  without spend). Every ratio is null when its denominator is zero.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Any

from calltrack.models.reports import COUNTERS
from report.rollup_store import RollupRow

Number = int | float
REPORT_DIMENSIONS = ("channel", "campaign", "keyword", "landing_page", "tracking_number")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
ROW_KEYS = (
    "key",
    "calls",
    "answered",
    "missed",
    "answer_rate",
    "first_time_callers",
    "talk_seconds",
    "avg_talk_seconds",
    "leads",
    "opportunities",
    "won",
    "won_value",
    "lead_rate",
    "close_rate",
    "spend",
    "cpa",
    "romi",
)


def ratio(numerator: Number, denominator: Number, digits: int = 4) -> float | None:
    if not denominator:
        return None
    return round(float(numerator) / float(denominator), digits)


# ISO 4217 minor units other than 2 (the SIX list, "Minor unit" column): an amount in these
# currencies is rounded to their own unit, so a prorated 100,000 JPY reads 32258, not 32258.06.
MINOR_UNITS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI",
                     "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}


def minor_units(currency: str | None) -> int:
    """Decimals an amount in ``currency`` is shown with (2 when the currency is not known)."""
    return MINOR_UNITS.get(currency or "", 2)


def rounded_shares(amounts: Mapping[str, float], digits: int) -> dict[str, float]:
    """Each amount rounded to ``digits`` decimals so that together they make their rounded sum
    (largest remainder: the units rounding loses go to the amounts that lost most), so a report's
    rows add up to the same total whichever dimension it is by (3 x 16666.67 JPY: 16667, 16667,
    16666, not 3 x 16667 = 50001)."""
    unit = 10**digits
    scaled = {key: float(value) * unit for key, value in amounts.items()}
    shares = {key: math.floor(value + 1e-6) for key, value in scaled.items()}
    left = round(sum(scaled.values())) - sum(shares.values())
    for key in sorted(scaled, key=lambda k: (shares[k] - scaled[k], k))[: max(0, left)]:
        shares[key] += 1
    return {key: share / unit for key, share in shares.items()}


def money(value: float | None, digits: int = 2) -> float | int | None:
    """An amount rounded to ``digits`` decimals (the currency's minor unit), an int when whole."""
    if value is None:
        return None
    rounded = round(float(value), digits)
    return int(rounded) if rounded == int(rounded) else rounded


def sum_counters(rows: Iterable[Mapping[str, Number]]) -> dict[str, Number]:
    out: dict[str, Number] = dict.fromkeys(COUNTERS, 0)
    for row in rows:
        for counter in COUNTERS:
            out[counter] = out[counter] + row.get(counter, 0)
    return out


def group(rows: Iterable[RollupRow]) -> dict[str, dict[str, Number]]:
    out: dict[str, dict[str, Number]] = {}
    for row in rows:
        acc = out.setdefault(row.key, dict.fromkeys(COUNTERS, 0))
        for counter in COUNTERS:
            acc[counter] += row.get(counter)
    return out


def report_row(key: str, c: Mapping[str, Number], spend: float | None, digits: int = 2) -> dict[str, Any]:
    """One report row; amounts (spend, won value, CPA) to ``digits`` decimals (``minor_units``)."""
    spend_m = money(spend, digits)
    won_value = money(c["won_value"], digits) or 0
    return {
        "key": key,
        "calls": int(c["calls"]),
        "answered": int(c["answered"]),
        "missed": int(c["missed"]),
        "answer_rate": ratio(c["answered"], c["calls"]),
        "first_time_callers": int(c["first_time"]),
        "talk_seconds": money(c["talk_seconds"]) or 0,
        "avg_talk_seconds": ratio(c["talk_seconds"], c["answered"], 1),
        "leads": int(c["leads"]),
        "opportunities": int(c["opportunities"]),
        "won": int(c["won"]),
        "won_value": won_value,
        "lead_rate": ratio(c["leads"], c["calls"]),
        "close_rate": ratio(c["won"], c["calls"]),
        "spend": spend_m,
        # no spend entered for the channel (its row shows 0 beside channels that have spend): no cost
        # per lead to tell, as ROMI; a CPA of 0 would read as free leads
        "cpa": money(spend_m / c["leads"], digits) if spend_m and c["leads"] else None,
        "romi": ratio(won_value - spend_m, spend_m) if spend_m else None,
    }


def channel_report(
    rows: Iterable[RollupRow], by: str, spend_by_channel: Mapping[str, float], currency: str | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows per dimension value (+ channels that only have spend) and the totals row.

    Spend is per channel: for by=channel every row carries its spend and the totals' spend is
    their sum; for other dimensions rows carry null spend and the totals carry the account's.
    Amounts are rounded to the ``currency``'s minor unit.
    """
    digits = minor_units(currency)
    if by == "channel":
        spend_by_channel = rounded_shares(spend_by_channel, digits)
    grouped = group(rows)
    if by == "channel":
        for channel in spend_by_channel:
            grouped.setdefault(channel, dict.fromkeys(COUNTERS, 0))
    out = []
    for key, counters in grouped.items():
        spend = spend_by_channel.get(key, 0.0) if by == "channel" and spend_by_channel else None
        if by == "channel" and spend_by_channel and key not in spend_by_channel:
            spend = 0.0
        out.append(report_row(key, counters, spend, digits))
    out.sort(key=lambda r: (-r["calls"], r["key"]))
    total_spend: float | None = None
    if spend_by_channel and by == "channel":
        total_spend = sum(float(r["spend"]) for r in out if r["spend"] is not None)
    elif spend_by_channel:
        total_spend = sum(spend_by_channel.values())
    totals = report_row("total", sum_counters(grouped.values()), total_spend, digits)
    return out, totals


def heatmap(rows: Iterable[RollupRow], metric: str) -> list[list[Any]]:
    calls = [[0] * 24 for _ in range(7)]
    answered = [[0] * 24 for _ in range(7)]
    missed = [[0] * 24 for _ in range(7)]
    for row in rows:
        weekday, _, hour = row.key.partition("-")
        d, h = int(weekday), int(hour)
        calls[d][h] += int(row.get("calls"))
        answered[d][h] += int(row.get("answered"))
        missed[d][h] += int(row.get("missed"))
    if metric == "calls":
        return calls
    if metric == "missed":
        return missed
    return [[ratio(answered[d][h], calls[d][h]) for h in range(24)] for d in range(7)]


def agent_rows(rows: Iterable[RollupRow]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for key, c in group(rows).items():
        out.append(
            {
                "agent": key,
                "calls": int(c["calls"]),
                "answered": int(c["answered"]),
                "missed": int(c["missed"]),
                "answer_rate": ratio(c["answered"], c["calls"]),
                "talk_seconds": money(c["talk_seconds"]) or 0,
                "aht_seconds": ratio(c["talk_seconds"], c["answered"], 1),
                "leads": int(c["leads"]),
                "lead_rate": ratio(c["leads"], c["calls"]),
                "won": int(c["won"]),
                "won_value": money(c["won_value"]) or 0,
                "close_rate": ratio(c["won"], c["calls"]),
                "avg_order_value": money(c["won_value"] / c["won"]) if c["won"] else None,
            }
        )
    out.sort(key=lambda r: (-r["calls"], r["agent"]))
    return out


def summary(c: Mapping[str, Number]) -> dict[str, Any]:
    return {
        "calls": int(c["calls"]),
        "answered": int(c["answered"]),
        "missed": int(c["missed"]),
        "leads": int(c["leads"]),
        "opportunities": int(c["opportunities"]),
        "won": int(c["won"]),
        "won_value": money(c["won_value"]) or 0,
        "answer_rate": ratio(c["answered"], c["calls"]),
        "lead_rate": ratio(c["leads"], c["calls"]),
        "close_rate": ratio(c["won"], c["calls"]),
    }


def period_start(day: date, interval: str) -> date:
    return day - timedelta(days=day.weekday()) if interval == "week" else day


def trend(
    rows: Iterable[RollupRow],
    start: date,
    end: date,
    interval: str,
    change_date: date | None = None,
) -> dict[str, Any]:
    per_day: dict[date, dict[str, Number]] = {}
    for row in rows:
        day = date.fromisoformat(row.day)
        acc = per_day.setdefault(day, dict.fromkeys(COUNTERS, 0))
        for counter in COUNTERS:
            acc[counter] += row.get(counter)
    points: list[dict[str, Any]] = []
    buckets: dict[date, list[dict[str, Number]]] = {}
    day = start
    while day <= end:
        counters = per_day.get(day, dict.fromkeys(COUNTERS, 0))
        buckets.setdefault(period_start(day, interval), []).append(counters)
        day += timedelta(days=1)
    for period, days in sorted(buckets.items()):
        points.append({"period": period.isoformat(), "days": len(days), **summary(sum_counters(days))})
    out: dict[str, Any] = {"points": points}
    if change_date is not None:
        before = [c for d, c in per_day.items() if start <= d < change_date]
        after = [c for d, c in per_day.items() if change_date <= d <= end]
        before_days, after_days = (change_date - start).days, (end - change_date).days + 1
        out["before"] = {"from": start.isoformat(), "to": (change_date - timedelta(days=1)).isoformat(),
                         "days": before_days, **summary(sum_counters(before)),
                         "calls_per_day": ratio(sum(c["calls"] for c in before), before_days, 2)}
        out["after"] = {"from": change_date.isoformat(), "to": end.isoformat(), "days": after_days,
                        **summary(sum_counters(after)),
                        "calls_per_day": ratio(sum(c["calls"] for c in after), after_days, 2)}
    return out
