"""Rollups, spend and CRM leads (owned by functions/report)."""

from __future__ import annotations

from pynamodb.attributes import MapAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from calltrack.models.base import table_meta


class Rollup(Model):
    """Counters per account x dimension x day: pk f"{account}#{dimension}", sk f"{day}#{value}"."""

    Meta = table_meta("rollups")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    counters = MapAttribute(null=True)  # type: ignore[var-annotated]


class Spend(Model):
    Meta = table_meta("spend")
    account = UnicodeAttribute(hash_key=True)
    month_channel = UnicodeAttribute(range_key=True)  # f"{YYYY-MM}#{channel}"
    amount = NumberAttribute()
    currency = UnicodeAttribute(default="JPY")


MODELS = [Rollup, Spend]
