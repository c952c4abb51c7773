"""DNI leases (owned by functions/dni_lease; the voice webhook reads them).

``leases``: pool number -> its current (or last) session lease with the session attribution.
``lease_history``: every lease ever given for a number (TTL), for late-call attribution.
"""

from __future__ import annotations

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from calltrack.models.base import table_meta


class Lease(Model):
    Meta = table_meta("leases")
    number = UnicodeAttribute(hash_key=True)
    account = UnicodeAttribute()
    pool = UnicodeAttribute()
    lease_id = UnicodeAttribute(null=True)
    session_id = UnicodeAttribute(null=True)
    visitor_id = UnicodeAttribute(null=True)
    leased_at = NumberAttribute(null=True)  # epoch seconds
    expires_at = NumberAttribute(null=True)
    released_at = NumberAttribute(default=0)
    attribution = JSONAttribute(null=True)


class LeaseHistory(Model):
    Meta = table_meta("lease_history", ttl="expire_at")
    number = UnicodeAttribute(hash_key=True)
    leased_at = NumberAttribute(range_key=True)
    lease_id = UnicodeAttribute()
    session_id = UnicodeAttribute()
    ended_at = NumberAttribute()
    attribution = JSONAttribute(null=True)
    expire_at = NumberAttribute()


MODELS = [Lease, LeaseHistory]
