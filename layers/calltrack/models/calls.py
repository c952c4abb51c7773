"""Calls (owned by functions/voice_webhook; recordings, reports and CRM update them).

Key names here are also used by voice_webhook's raw-boto3 path (it avoids importing PynamoDB
for cold start): table ``calls`` hash key ``call_sid``; GSI ``by-account`` on
(``account``, ``started_at``); stream NEW_AND_OLD_IMAGES feeds the rollup consumer.
"""

from __future__ import annotations

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from calltrack.models.base import table_meta


class CallsByAccount(GlobalSecondaryIndex["Call"]):
    class Meta:
        index_name = "by-account"
        projection = AllProjection()

    account = UnicodeAttribute(hash_key=True)
    started_at = UnicodeAttribute(range_key=True)  # ISO 8601 UTC, sortable


class Call(Model):
    Meta = table_meta("calls", stream="NEW_AND_OLD_IMAGES")
    call_sid = UnicodeAttribute(hash_key=True)
    account = UnicodeAttribute()
    started_at = UnicodeAttribute()
    tracking_number = UnicodeAttribute(null=True)
    caller = UnicodeAttribute(null=True)
    status = UnicodeAttribute(default="ringing")
    ring_seconds = NumberAttribute(null=True)
    talk_seconds = NumberAttribute(null=True)
    first_time = BooleanAttribute(null=True)
    channel = UnicodeAttribute(null=True)
    campaign = UnicodeAttribute(null=True)
    keyword = UnicodeAttribute(null=True)
    confidence = NumberAttribute(null=True)
    attribution = JSONAttribute(null=True)  # gclid, utm, landing_page, referrer, session ...
    recording = JSONAttribute(null=True)
    stage = UnicodeAttribute(null=True)
    value = NumberAttribute(null=True)
    tags = ListAttribute(null=True)  # type: ignore[var-annotated]
    score = NumberAttribute(null=True)
    agent = UnicodeAttribute(null=True)
    by_account = CallsByAccount()


class Caller(Model):
    """One row per (account, caller): makes first-time vs repeat a single conditional write."""

    Meta = table_meta("callers")
    account_caller = UnicodeAttribute(hash_key=True)  # f"{account}#{e164}"
    first_call_sid = UnicodeAttribute()
    first_seen_at = UnicodeAttribute()


MODELS = [Call, Caller]
