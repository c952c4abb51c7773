"""Conversions (owned by functions/conversions): one row per (call, rule, destination).

The row is the at-most-once claim and the record of what was sent: it is created with a
conditional put (``attribute_not_exists``), so a duplicate call event or a redelivered message
finds it and sends nothing again. ``status``: pending (claimed, or waiting for a retry after a
429/5xx) -> sent | failed (a permanent error, ``reason`` says which) | skipped (nothing to send:
no click id, no credentials, CSV only, click too old). ``value`` is what the platform was sent and
``restated_value`` the last restatement (Google conversion adjustments), so a later value change
is sent once as an adjustment. Hash key ``call_sid``, range key ``key`` = ``{rule}#{destination}``;
GSI ``by-account`` on (``account``, ``converted_at``) for the listings and the import files.
TTL ``expire_at``: the call's own, copied when the row is created, so a conversion (its click id
and value) goes when its call does (``retention.calls_days``).
"""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from calltrack.models.base import table_meta


class ConversionsByAccount(GlobalSecondaryIndex["Conversion"]):
    class Meta:
        index_name = "by-account"
        projection = AllProjection()

    account = UnicodeAttribute(hash_key=True)
    converted_at = UnicodeAttribute(range_key=True)  # ISO 8601 UTC: the call's start


class Conversion(Model):
    Meta = table_meta("conversions", ttl="expire_at")
    call_sid = UnicodeAttribute(hash_key=True)
    key = UnicodeAttribute(range_key=True)  # f"{rule}#{destination}"
    account = UnicodeAttribute()
    converted_at = UnicodeAttribute()
    rule = UnicodeAttribute()
    destination = UnicodeAttribute()  # google_ads | yahoo_ads | meta | ga4
    status = UnicodeAttribute()  # pending | sent | failed | skipped
    reason = UnicodeAttribute(null=True)  # why failed / skipped (or the last retried error while pending)
    order_id = UnicodeAttribute()  # the platform's idempotency key: f"{call_sid}:{rule}"
    click_id_type = UnicodeAttribute(null=True)  # gclid | gbraid | wbraid | yclid
    click_id = UnicodeAttribute(null=True)
    value = NumberAttribute(null=True)  # the value sent (or to send)
    currency = UnicodeAttribute(null=True)
    call_version = NumberAttribute(null=True)  # the call's version whose value was sent or restated
    restated_value = NumberAttribute(null=True)
    restated_at = UnicodeAttribute(null=True)
    note = UnicodeAttribute(null=True)  # e.g. a value change the platform cannot restate
    attempts = NumberAttribute(default=0)
    # epoch seconds: a worker is sending until then, or the platform takes the row only then
    # (Google's "too recent": the row waits, nobody reclaims it before)
    claimed_until = NumberAttribute(default=0)
    sent_at = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)
    expire_at = NumberAttribute(null=True)  # TTL: the call's (retention.calls_days); null: kept for ever
    by_account = ConversionsByAccount()


MODELS = [Conversion]
