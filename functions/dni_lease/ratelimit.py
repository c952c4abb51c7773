"""Per-instance token buckets for the public lease endpoint (per source IP and per visitor).

Deployed, the first line of defence is the HTTP API stage throttling (see infra); these buckets
stop one address or one visitor id from hammering a warm Lambda instance. They are per instance
(not global): a burst spread over many instances can exceed them, which is acceptable for a
browser endpoint whose worst case is a few extra conditional writes (see docs/decisions.md).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

# Offices and mobile carriers put many visitors behind one address: >= 300 leases/min per IP.
IP_PER_MINUTE = 600
IP_BURST = 600
# A page view makes one lease call and a heartbeat every few minutes while visible.
VISITOR_PER_MINUTE = 30
VISITOR_BURST = 30


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets keyed by string; least recently used keys are dropped beyond ``max_keys``."""

    def __init__(self, per_minute: float, burst: float, *, max_keys: int = 50_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, key: str, now: float) -> bool:
        with self._lock:
            bucket = self._buckets.pop(key, None)
            if bucket is None:
                bucket = _Bucket(tokens=self.burst, updated=now)
            else:
                bucket.tokens = min(self.burst, bucket.tokens + max(0.0, now - bucket.updated) * self.rate)
                bucket.updated = now
            self._buckets[key] = bucket
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return True
            return False

    def retry_after(self, key: str) -> int:
        with self._lock:
            bucket = self._buckets.get(key)
            missing = 1.0 - (bucket.tokens if bucket else 1.0)
        return max(1, int(missing / self.rate + 0.999)) if self.rate > 0 else 60
