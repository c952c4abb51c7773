"""Recordings (owned by functions/recording_ingest): one row per RecordingSid, idempotency key."""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from calltrack.models.base import table_meta


class Recording(Model):
    Meta = table_meta("recordings")
    recording_sid = UnicodeAttribute(hash_key=True)
    call_sid = UnicodeAttribute()
    account = UnicodeAttribute()
    status = UnicodeAttribute()  # queued / stored / failed / absent / expired
    s3_key = UnicodeAttribute(null=True)
    size_bytes = NumberAttribute(null=True)


MODELS = [Recording]
