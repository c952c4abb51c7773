"""conversions_redrive: the hourly job that moves conversions dead letters back to the queue.

A call event is dead-lettered when every try of the consumer's ladder (``conversions.runtime``: 10
tries, ~3.5 h) met a 429/5xx or a network error: a platform outage longer than that. Its rows stay
``pending`` and, without this job, the conversion would never reach the platform. Each run receives
every dead letter and sends it back to the conversions queue (then deletes it here), where the
consumer starts its ladder again. That is safe to repeat: a row is sent at most once (one row per
call, rule and destination, claimed by a conditional write), a row whose platform window has passed
ends ``skipped``, and an erased call ends the message. The job stops bringing a message back when:
- it is not a call event (not JSON, no ``call_sid`` / ``account``): the consumer would fail it again;
- it has been redriven ``MAX_REDRIVES`` times (message attribute ``redrives``): about ten days of
  tries, past Meta's 7-day and GA4's 72-hour windows, so something other than an outage is wrong.
Both stay in the DLQ for an operator (its depth alarm; 14 days). Sending before deleting: a crash
in between leaves a duplicate, which the consumer's rows make harmless. The mechanics are shared with
the webhook outbox's redrive (``calltrack.dead_letters``).
"""

from __future__ import annotations

import json
from typing import Any

from calltrack.dead_letters import RedrivePorts, redrive
from calltrack.observability import make_logger, make_tracer
from calltrack.settings import Needs

logger = make_logger("conversions_redrive")
tracer = make_tracer("conversions_redrive")
NEEDS = Needs(queues=("conversions",), dead_letter_queues=("conversions",))
MAX_REDRIVES = 48  # hourly, after a ~3.5 h ladder each: about ten days
KEYS = ("call_sid", "account")  # what the consumer needs of a call event


def call_event(body: str) -> dict[str, Any] | None:
    """The dead letter's call event, or None when it is not one the consumer could take."""
    try:
        event = json.loads(body)
    except ValueError:
        return None
    if not isinstance(event, dict) or not all(event.get(k) and isinstance(event[k], str) for k in KEYS):
        return None
    return event


def refuse(body: str) -> str | None:
    return None if call_event(body) is not None else "not a call event"


def redrive_conversions(ports: RedrivePorts) -> dict[str, int]:
    return redrive(ports, refuse, MAX_REDRIVES, logger)


@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from calltrack.dead_letters import sqs_ports
    from calltrack.settings import get_settings

    counts = redrive_conversions(sqs_ports("conversions", get_settings(NEEDS).region))
    logger.info("conversions dead letters redriven", extra=counts)
    return {"job": str((event or {}).get("job") or "conversions-dlq-redrive"), **counts}
