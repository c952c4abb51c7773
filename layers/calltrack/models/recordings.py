"""Recordings (owned by functions/recording_ingest): one row per RecordingSid.

The row is the idempotency key and the state machine of one recording:

    queued -> fetching -> stored -> expired          (retention sweep)
                 |  ^
                 v  |
               retrying  (last failure ``reason``; ``next_attempt_at``: when SQS delivers it
                          again (backoff 1 min .. 12 h), or the hourly DLQ redrive after the last)
    failed / absent      (Twilio said so, or Twilio answers 404: ``reason`` "gone from Twilio")
    erased               (its call was erased on request: ``recording_ingest.ingest.erased_row``)

A ``stored`` row is never fetched again. ``fetching`` carries a short lease (``lease_until``,
epoch seconds) so two copies of the same message can't fetch at the same time.
GSI ``by-account`` (account, stored_at) is sparse (only stored rows have ``stored_at``: the
sweep removes it when a recording expires) and drives the retention sweep.

``erased`` is terminal like ``stored``: a caller's erasure (``privacy``) and a fetch that finds its
call erased replace the row by ``recording_ingest.ingest.erased_row`` (the two ids, no account,
``expires_at`` for the table's TTL), so a message of the recording still on its way (the retry
ladder, the DLQ and its redrive) ends there instead of writing a row back for the erased call.
"""

from __future__ import annotations

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from calltrack.models.base import table_meta


class RecordingsByAccount(GlobalSecondaryIndex["Recording"]):
    class Meta:
        index_name = "by-account"
        projection = AllProjection()

    account = UnicodeAttribute(hash_key=True)
    stored_at = UnicodeAttribute(range_key=True)  # ISO 8601 UTC, sortable


class Recording(Model):
    Meta = table_meta("recordings", ttl="expires_at")
    recording_sid = UnicodeAttribute(hash_key=True)
    call_sid = UnicodeAttribute()
    account = UnicodeAttribute(null=True)  # known once the call is known
    status = UnicodeAttribute()  # queued / fetching / retrying / stored / failed / absent / expired
    s3_key = UnicodeAttribute(null=True)
    size_bytes = NumberAttribute(null=True)
    duration_seconds = NumberAttribute(null=True)
    channels = NumberAttribute(null=True)
    stored_at = UnicodeAttribute(null=True)
    expired_at = UnicodeAttribute(null=True)
    attempts = NumberAttribute(default=0)
    reason = UnicodeAttribute(null=True)  # last failure reason (timeout, http-500, truncated ...)
    next_attempt_at = UnicodeAttribute(null=True)  # ISO 8601 UTC, while status is retrying
    lease_until = NumberAttribute(null=True)
    twilio_deleted = BooleanAttribute(null=True)
    not_found = NumberAttribute(null=True)  # Twilio's 404s in a row (ingest's GONE_AFTER_404S)
    updated_at = UnicodeAttribute(null=True)
    expires_at = NumberAttribute(null=True)  # TTL: only an ``erased`` row has it
    by_account = RecordingsByAccount()


MODELS = [Recording]
