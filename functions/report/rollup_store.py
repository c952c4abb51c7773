"""Read side of the rollups (and spend): what every report reads instead of the calls table.

``RollupReader.rows(account, dimension, from_day, to_day)`` is one Query on the partition
f"{account}#{dimension}" with the sort key between the two days, so its cost is
days x distinct values, independent of how many calls there were. Every reader returns the
number of items it read (``.items_read``) so reports can expose it (X-Calltrack-Items-Read).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from calltrack.models.reports import COUNTERS, DIMENSIONS

Number = int | float


@dataclass(frozen=True)
class RollupRow:
    day: str  # YYYY-MM-DD, account time zone
    key: str  # the dimension value (for hour_of_week: "weekday-HH", weekday 0 = Monday)
    counters: dict[str, Number] = field(default_factory=dict)

    def get(self, counter: str) -> Number:
        return self.counters.get(counter, 0)


class RollupRows(list[RollupRow]):
    """A list of rows that also says how many DynamoDB items were read to build it."""

    items_read: int = 0


@dataclass(frozen=True)
class SpendRow:
    month: str  # YYYY-MM
    channel: str
    amount: Number
    currency: str


class SpendRows(list[SpendRow]):
    items_read: int = 0


def _num(value: Any) -> Number:
    dec = value if isinstance(value, Decimal) else Decimal(str(value))
    return int(dec) if dec == dec.to_integral_value() else float(dec)


def _query_all(client: Any, **kwargs: Any) -> tuple[list[dict[str, Any]], int]:
    items: list[dict[str, Any]] = []
    read = 0
    while True:
        page = client.query(**kwargs)
        items.extend(page.get("Items", []))
        read += int(page.get("ScannedCount", page.get("Count", 0)))
        last = page.get("LastEvaluatedKey")
        if not last:
            return items, read
        kwargs["ExclusiveStartKey"] = last


class RollupReader:
    """The rollups and spend tables as reports read them (one client, made by the composition root)."""

    def __init__(self, client: Any, rollups_table: str, spend_table: str) -> None:
        self.client = client
        self.rollups_table = rollups_table
        self.spend_table = spend_table

    def rows(self, account: str, dimension: str, from_day: date | str, to_day: date | str) -> RollupRows:
        return read_rollups(self.client, self.rollups_table, account, dimension, from_day, to_day)

    def spend(self, account: str, from_month: str, to_month: str) -> SpendRows:
        return read_spend(self.client, self.spend_table, account, from_month, to_month)


def read_rollups(
    client: Any, table: str, account: str, dimension: str, from_day: date | str, to_day: date | str
) -> RollupRows:
    """Rollup rows of one dimension for the inclusive day range (account time zone)."""
    if dimension not in DIMENSIONS:
        raise ValueError(f"unknown rollup dimension {dimension!r}")
    lo, hi = str(from_day), str(to_day)
    items, read = _query_all(
        client,
        TableName=table,
        KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
        ExpressionAttributeValues={
            ":pk": {"S": f"{account}#{dimension}"},
            ":lo": {"S": f"{lo}#"},
            ":hi": {"S": f"{hi}$"},  # '$' sorts right after '#': every value of the last day
        },
    )
    rows = RollupRows()
    for item in items:
        day, _, key = item["sk"]["S"].partition("#")
        counters = {c: _num(item[c]["N"]) for c in COUNTERS if c in item}
        rows.append(RollupRow(day=day, key=key, counters=counters))
    rows.items_read = read
    return rows


def read_spend(client: Any, table: str, account: str, from_month: str, to_month: str) -> SpendRows:
    items, read = _query_all(
        client,
        TableName=table,
        KeyConditionExpression="account = :a AND month_channel BETWEEN :lo AND :hi",
        ExpressionAttributeValues={
            ":a": {"S": account},
            ":lo": {"S": f"{from_month}#"},
            ":hi": {"S": f"{to_month}$"},
        },
    )
    rows = SpendRows()
    for item in items:
        month, _, channel = item["month_channel"]["S"].partition("#")
        rows.append(
            SpendRow(
                month=month,
                channel=channel,
                amount=_num(item["amount"]["N"]),
                currency=item.get("currency", {}).get("S", "JPY"),
            )
        )
    rows.items_read = read
    return rows


def prorated_spend(spend: Iterable[SpendRow], from_day: date, to_day: date) -> dict[str, float]:
    """Channel -> spend for the day range: each month's amount x (its days in range / its days)."""
    out: dict[str, float] = {}
    for row in spend:
        year, month = (int(part) for part in row.month.split("-"))
        days_in_month = calendar.monthrange(year, month)[1]
        first, last = date(year, month, 1), date(year, month, days_in_month)
        lo, hi = max(first, from_day), min(last, to_day)
        if hi < lo:
            continue
        share = ((hi - lo).days + 1) / days_in_month
        out[row.channel] = out.get(row.channel, 0.0) + float(row.amount) * share
    return out
