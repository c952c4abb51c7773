"""webhook_outbox_redrive: the hourly job that moves the outbox's dead letters back to the outbox.

A Twilio callback whose storage work failed waits in the outbox (``voice_webhook.outbox``), and the
replay (``voice_webhook.replay``) tries it every 2 minutes for about 2 hours; a DynamoDB outage
longer than that (AWS's us-east-1 DynamoDB outage of October 2025 lasted about three hours) left
the call's record — its origin, its outcome, its visitor — in the dead-letter queue until an
operator acted on the alarm, and lost after the DLQ's 14 days. Each run sends the dead letters back
(``calltrack.dead_letters``), where the replay starts again; that is safe to repeat, as the replay
is (the origin written once, each outcome once, a status only by a higher rank). A message that is
not an outbox callback of this version stays for the operator, and so does one redriven
``MAX_REDRIVES`` times: about six days of tries, so something other than an outage is wrong.
"""

from __future__ import annotations

import json
from typing import Any

from calltrack.dead_letters import RedrivePorts, redrive
from calltrack.observability import make_logger, make_tracer
from calltrack.settings import Needs

logger = make_logger("webhook_outbox_redrive")
tracer = make_tracer("webhook_outbox_redrive")
NEEDS = Needs(queues=("webhook_outbox",), dead_letter_queues=("webhook_outbox",))
MAX_REDRIVES = 48  # hourly, after a ~2 h ladder each: about six days


def refuse(body: str) -> str | None:
    """Why the replay could never take this message, or None."""
    from voice_webhook.outbox import request_of

    try:
        message = json.loads(body)
        if not isinstance(message, dict):
            return "not an outbox message"
        request_of(message)
    except (ValueError, KeyError, TypeError):
        return "not an outbox message of this version"
    return None


def redrive_outbox(ports: RedrivePorts) -> dict[str, int]:
    return redrive(ports, refuse, MAX_REDRIVES, logger)


@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from calltrack.dead_letters import sqs_ports
    from calltrack.settings import get_settings

    counts = redrive_outbox(sqs_ports("webhook_outbox", get_settings(NEEDS).region))
    logger.info("outbox dead letters redriven", extra=counts)
    return {"job": str((event or {}).get("job") or "webhook-outbox-dlq-redrive"), **counts}
