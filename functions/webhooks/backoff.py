"""When a failed delivery is tried next: per-message exponential backoff over 24 hours.

The queue consumer sets a failed message's visibility (SQS ChangeMessageVisibility) to
``delay_s(receive_count)``: 1 min, 2, 4 ... 512 min, then what is left of ``WINDOW_S``, so the
``MAX_RECEIVES``-th try happens 24 h after the first. After it the row is failed and SQS moves the
message to the dead-letter queue at once (visibility 0). infra/wiring.py's webhooks queue uses
``MAX_RECEIVES`` as its maxReceiveCount (an infra test compares them). Locally the poller
compresses these delays by ``CALLTRACK_RETRY_TIME_SCALE``.
"""

from __future__ import annotations

from calltrack.queue_retry import LONGEST_DELAY_S

BASE_S = 60
WINDOW_S = 24 * 3600
MAX_STEP_S = LONGEST_DELAY_S  # SQS: visibility <= 12 h from the receive
MAX_RECEIVES = 12  # 11 waits: 1+2+...+512 min (~17 h) and ~7 h: 24 h from the first try to the last


def _step(receive_count: int) -> int:
    return min(BASE_S * 2 ** min(max(1, receive_count) - 1, 30), MAX_STEP_S)


def delay_s(receive_count: int) -> int:
    """Seconds until the next try after the ``receive_count``-th try (1-based) failed; 0 after the
    last one (the message goes to the dead-letter queue)."""
    if receive_count >= MAX_RECEIVES:
        return 0
    waited = sum(_step(n) for n in range(1, receive_count))
    return max(1, min(_step(receive_count), WINDOW_S - waited))


def total_window_s() -> int:
    """Seconds from the first try to the last one."""
    return sum(delay_s(n) for n in range(1, MAX_RECEIVES))
