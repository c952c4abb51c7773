"""Rollups, rollup markers, spend and CRM leads (owned by functions/report).

Rollup counters are top-level number attributes (not a map) so the rollup consumer can
``ADD calls :d, answered :d ...`` on an item that does not exist yet.
"""

from __future__ import annotations

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute, UnicodeSetAttribute
from pynamodb.models import Model

from calltrack.models.base import table_meta

# Counters kept per rollup row (and per call contribution), in report order.
COUNTERS = (
    "calls",
    "answered",
    "missed",
    "first_time",
    "talk_seconds",
    "leads",
    "opportunities",
    "won",
    "won_value",
)
# Dimensions a call is counted under (one rollup row per day x dimension value).
DIMENSIONS = (
    "channel",
    "campaign",
    "keyword",
    "landing_page",
    "tracking_number",
    "agent",
    "hour_of_week",
)
# The dimension value of a call without one (no channel, campaign, keyword...): part of the row's key.
NONE_VALUE = "(none)"


class Rollup(Model):
    """Counters per account x dimension x day: pk f"{account}#{dimension}", sk f"{day}#{value}".

    ``day`` is YYYY-MM-DD in the account's time zone; for ``hour_of_week`` the value is
    f"{weekday}-{hour:02d}" (weekday 0 = Monday) in that time zone.
    """

    Meta = table_meta("rollups")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    calls = NumberAttribute(default=0)
    answered = NumberAttribute(default=0)
    missed = NumberAttribute(default=0)
    first_time = NumberAttribute(default=0)
    talk_seconds = NumberAttribute(default=0)
    leads = NumberAttribute(default=0)
    opportunities = NumberAttribute(default=0)
    won = NumberAttribute(default=0)
    won_value = NumberAttribute(default=0)


class RollupMarker(Model):
    """The rollup consumer's exactly-once bookkeeping (table ``rollup_markers``).

    Since issue 24 (2026-12-01) its items are *idempotency items*, one per rollup transaction:
    ``call_sid`` = f"seq#{first sequence number}", ``seqs`` = every stream sequence number the
    transaction covered, ``expire_at`` = the TTL (days beyond the stream's 24-hour retention). Items
    written before that are per-call markers (``call_sid`` a CallSid, ``account``, ``seq``,
    ``call_version``, ``contribution``): no longer read, deleted with their calls by erasure and
    account deletion. The key keeps its name: renaming it would replace the table.
    """

    Meta = table_meta("rollup_markers", ttl="expire_at")
    call_sid = UnicodeAttribute(hash_key=True)
    seqs = UnicodeSetAttribute(null=True)
    expire_at = NumberAttribute(null=True)
    account = UnicodeAttribute(null=True)
    seq = NumberAttribute(null=True)
    call_version = NumberAttribute(null=True)
    contribution = JSONAttribute(null=True)


class Spend(Model):
    Meta = table_meta("spend")
    account = UnicodeAttribute(hash_key=True)
    month_channel = UnicodeAttribute(range_key=True)  # f"{YYYY-MM}#{channel}"
    amount = NumberAttribute()
    currency = UnicodeAttribute(default="JPY")


class CrmLead(Model):
    """A lead posted by a CRM, keyed by its external id (re-posting updates the same row)."""

    Meta = table_meta("crm_leads")
    account = UnicodeAttribute(hash_key=True)
    external_id = UnicodeAttribute(range_key=True)
    phone = UnicodeAttribute()  # E.164
    created_at = UnicodeAttribute()  # ISO 8601 UTC
    stage = UnicodeAttribute(null=True)
    value = NumberAttribute(null=True)
    call_sid = UnicodeAttribute(null=True)
    channel = UnicodeAttribute(null=True)
    campaign = UnicodeAttribute(null=True)
    keyword = UnicodeAttribute(null=True)
    confidence = NumberAttribute(null=True)
    updated_at = UnicodeAttribute()


MODELS = [Rollup, RollupMarker, Spend, CrmLead]
