"""webhook_replay: the outbox queue's consumer. Each message is a Twilio callback whose storage work
failed while the webhook answered Twilio; it runs the same route again, at the instant the callback
arrived, with storage. Still failing -> the message comes back (batchItemFailures) until storage
is back or it reaches the dead-letter queue, whose depth alarms ops.

Replays are safe to repeat: the origin is written once (condition on ``account``), each outcome
once (its marker attribute), and a status only by a higher rank, so a <Dial> result replayed after
the status callback still turns a "missed" call into the answered one it was.
"""

from __future__ import annotations

import json
import time
from typing import Any

from calltrack.observability import make_logger, make_tracer
from calltrack.settings import Needs
from voice_webhook import flow

logger = make_logger("webhook_replay")
tracer = make_tracer("webhook_replay")  # no caller waits on a replay

NEEDS = Needs(tables=("calls", "callers", "numbers", "leases", "lease_history"))

# The routes whose record a replay can rebuild (the recording hand-off writes nothing here; the
# whisper records the answering agent).
REPLAYED = {
    "/twilio/voice": flow.voice,
    "/twilio/whisper": flow.whisper,
    "/twilio/dial-status": flow.dial_status,
    # a ring group member's <Dial> that was answered (or the caller gone) is a dial-status
    "/twilio/ring-next": flow.dial_status,
    "/twilio/call-status": flow.call_status,
    # the menu choice (target, key) and the round-robin counter it moves
    "/twilio/menu": flow.menu,
}

_storage: Any = None


def _retry_later(req: Any, received_at: float) -> None:
    raise flow.RetryLater(req.path)


def storage() -> Any:
    """The replay's storage (its own client, standard timeouts: nobody waits on a replay)."""
    global _storage
    if _storage is None:
        from calltrack.clients import dynamodb
        from calltrack.settings import get_settings
        from voice_webhook.store import STORAGE_TABLES, DynamoStorage

        settings = get_settings(NEEDS)
        tables = {name: settings.table_name(name) for name in STORAGE_TABLES}
        _storage = DynamoStorage(dynamodb(), tables)
    return _storage


def replay(body: dict[str, Any], store: Any, public_url: str) -> str:
    """Run one outbox message; returns the route replayed. Raises RetryLater while storage fails."""
    from calltrack import clock
    from voice_webhook.outbox import request_of

    req, received_at = request_of(body)
    route = REPLAYED.get(req.path)
    if route is None:
        raise ValueError(f"not a replayable route: {req.path[:40]}")
    deps = flow.Deps(
        public_url=public_url,
        storage=store,
        metrics=flow.MetricSink(),
        log=logger,
        cache=flow.RoutingCache(),
        now=lambda: received_at,
        outbox=_retry_later,
        replaying=True,
        written_at=time.time,  # not frozen: the row is written now, later than the callback
    )
    with clock.frozen(received_at):
        route(req, deps)
    return req.path


@tracer.capture_lambda_handler
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from calltrack.settings import get_settings

    public_url = get_settings(NEEDS).public_url
    failures = []
    for record in event.get("Records") or []:
        try:
            path = replay(json.loads(record["body"]), storage(), public_url)
        except flow.RetryLater:
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        except (ValueError, KeyError, TypeError) as exc:  # not a message we can ever replay
            logger.error("outbox message dropped", extra={"error": f"{type(exc).__name__}: {exc}"[:200]})
            continue
        logger.info("callback replayed", extra={"route": path})
    return {"batchItemFailures": failures}
