"""When a recording that could not be stored is tried next: per-message exponential backoff.

The queue consumer sets a failed message's visibility (SQS ChangeMessageVisibility) to
``delay_s(receive_count)``: 1 min, 2, 4 ... doubling, at most ``MAX_STEP_S`` (just under SQS's
12 h visibility limit) per step. ``MAX_RECEIVES`` tries span about 29 h of media-host outage;
then SQS moves the message to the dead-letter queue, from which the hourly redrive job
(recording_ingest.redrive) brings it back until the recording is stored or Twilio no longer has
it. infra/wiring.py's recording queue uses ``MAX_RECEIVES`` as its maxReceiveCount (an infra test
compares them).
"""

from __future__ import annotations

from datetime import datetime, timedelta

BASE_S = 60
MAX_STEP_S = 12 * 3600 - 300  # SQS: visibility <= 12 h from the receive; 5 min for the function's run
MAX_RECEIVES = 12  # 1+2+4+...+512 min (~17 h) + one ~12 h step: ~29 h before the DLQ
# A recording Twilio answers 404 for this many times in a row (1 + 2 min apart: a fresh recording
# can lag its status callback for a moment) is gone from Twilio: failed, not retried.
GONE_AFTER_404S = 3
REDRIVE_MINUTE = 20  # the redrive job runs hourly at :20 UTC (infra/wiring.py SCHEDULES)


def delay_s(receive_count: int) -> int:
    """Seconds until the next try after the ``receive_count``-th try (1-based) failed."""
    step = max(1, receive_count) - 1
    return min(BASE_S * 2 ** min(step, 30), MAX_STEP_S)


def total_window_s() -> int:
    """Seconds from the first try to the last one before the dead-letter queue."""
    return sum(delay_s(n) for n in range(1, MAX_RECEIVES))


def next_redrive(now: datetime) -> datetime:
    """The next :20 past the hour: when the hourly redrive job picks up a dead letter."""
    at = now.replace(minute=REDRIVE_MINUTE, second=0, microsecond=0)
    return at if at > now else at + timedelta(hours=1)
