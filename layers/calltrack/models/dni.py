"""DNI leases (owned by functions/dni_lease; the voice webhook reads them).

``leases`` (hash key ``number``): one row per pool number (and per overflow number) holding its
current or LAST session lease. The row is never deleted when a lease expires, so the voice
webhook attributes any call, on time or late, with ONE GetItem of the dialled number:

- ``session_id``, ``visitor_id``, ``lease_id``, ``attribution`` (JSON: keyword, gclid, gbraid,
  wbraid, fbclid, yclid, msclkid, utm{source, medium, campaign, term, content}, landing_page,
  referrer, visitor_id, session_id) — the current or last holder;
- ``leased_at`` / ``expires_at`` / ``released_at`` (epoch seconds, may carry milliseconds):
  a lease lives while ``now <= expires_at``; ``released_at`` equals ``expires_at`` (the time the
  lease ends or ended: heartbeats push both);
- ``shared_until`` (epoch seconds, absent if never): the number was also shown, without a lease,
  to other sessions of an exhausted pool until this time. A call to the number up to
  ``shared_until`` (plus the late-call window) may come from any of them: lower its confidence
  (multiply by ``SHARED_CONFIDENCE``). ``shared_count`` counts such hand-outs.
- ``kind``: "pool" (a pool number) or "overflow" (the pool's overflow number: its attribution is
  the last exhausted session shown it, always shared).
- ``client_key`` (absent without a request address): 16 hex digits of a SHA-256 over the account,
  the pool and the client address that took the lease (IPv4 address, IPv6 /64), never the address
  itself: the pool's per-address cap (``dni.max_numbers_per_address``) counts live leases by it.
  Replaced by the next lease of the number.
- ``page_id`` (absent for a page whose script sends none): the page that took or last renewed the
  lease (dni.js, random per page load): a release ends the lease only if it comes from that page.
- ``called_session`` / ``called_at`` (absent until a call): set by the voice webhook when a call
  attributed to the row's holder ends (only while that session still holds the row): the holder
  called, so the number need not rest for them (``dni_lease.leasing.rested_since``); left on the
  row by the next lease, where it no longer names the holder and counts for nothing.

``lease_history`` (hash ``number``, range ``leased_at``; TTL ``expire_at``): every lease (``kind``
"lease") and every exhaustion hand-out (``kind`` "shared") with its session attribution, start
and end (``ended_at``, pushed by heartbeats) — for audits, late calls and the pool report; a
"shared" item of a session whose address held its cap of the pool (free numbers were left) has
``reason`` "address_cap" and is not an exhaustion. Per-pool
counter items live in the same table under ``number = stats_key(account, pool)`` and
``leased_at = UTC hour start`` with ``exhaustions`` (ADD counter, one item per pool and hour).
"""

from __future__ import annotations

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from calltrack.models.base import table_meta

SHARED_CONFIDENCE = 0.5
HISTORY_TTL_DAYS = 90
STATS_TTL_DAYS = 400
# The counters of a pool's hourly stats item: answers with a shared number (every number held), and
# answers with no number (the client's address held dni.max_numbers_per_address while some were free).
EXHAUSTIONS, ADDRESS_CAPPED = "exhaustions", "address_capped"
STATS_COUNTERS = (EXHAUSTIONS, ADDRESS_CAPPED)


def stats_key(account: str, pool: str) -> str:
    """Hash key of a pool's daily counter items in lease_history (never an E.164 number)."""
    return f"stats#{account}#{pool}"


class Lease(Model):
    Meta = table_meta("leases")
    number = UnicodeAttribute(hash_key=True)
    account = UnicodeAttribute()
    pool = UnicodeAttribute()
    kind = UnicodeAttribute(default="pool")
    lease_id = UnicodeAttribute(null=True)
    session_id = UnicodeAttribute(null=True)
    visitor_id = UnicodeAttribute(null=True)
    leased_at = NumberAttribute(null=True)  # epoch seconds
    expires_at = NumberAttribute(null=True)
    released_at = NumberAttribute(default=0)
    attribution = JSONAttribute(null=True)
    shared_until = NumberAttribute(null=True)
    shared_count = NumberAttribute(null=True)
    client_key = UnicodeAttribute(null=True)
    page_id = UnicodeAttribute(null=True)


class LeaseHistory(Model):
    Meta = table_meta("lease_history", ttl="expire_at")
    number = UnicodeAttribute(hash_key=True)
    leased_at = NumberAttribute(range_key=True)
    kind = UnicodeAttribute(default="lease")  # lease / shared / stats
    account = UnicodeAttribute(null=True)
    pool = UnicodeAttribute(null=True)
    lease_id = UnicodeAttribute(null=True)
    session_id = UnicodeAttribute(null=True)
    ended_at = NumberAttribute(null=True)
    confidence = NumberAttribute(null=True)
    attribution = JSONAttribute(null=True)
    exhaustions = NumberAttribute(null=True)
    reason = UnicodeAttribute(null=True)  # a "shared" item: "address_cap" (else an exhaustion)
    expire_at = NumberAttribute()


MODELS = [Lease, LeaseHistory]
