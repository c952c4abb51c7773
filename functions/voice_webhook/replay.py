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


ERASED = "erased"  # what replay() answers for a callback of a caller erased since it arrived


def erased_since_received(req: Any, received_at: float, store: Any) -> bool:
    """The callback's caller was erased from its account after the callback arrived: replaying it
    would write the erased call back (``calltrack.erasure_marks``). Two reads, only when the
    caller has a mark; storage failing: RetryLater."""
    from calltrack.erasure_marks import erased_since

    caller = req.params.get("From") or req.params.get("Caller")
    if not caller:
        return False
    try:
        marks = store.erasure_marks(caller)
        if not any(at >= received_at for at in marks.values()):
            return False
        number_row, _, _ = store.read_routing(req.params.get("To") or "", None)
    except Exception as exc:  # noqa: BLE001 - storage still failing: the message comes back
        raise flow.RetryLater(req.path) from exc
    # a whisper's To is the agent's line, no tracking number: any erasure since drops it
    return erased_since(marks, received_at, (number_row or {}).get("account"))


def replay(body: dict[str, Any], store: Any, public_url: str) -> str:
    """Run one outbox message; returns the route replayed (``ERASED`` when the caller was erased
    since it arrived: nothing is written). Raises RetryLater while storage fails."""
    from calltrack import clock
    from voice_webhook.outbox import request_of

    req, received_at = request_of(body)
    route = REPLAYED.get(req.path)
    if route is None:
        raise ValueError(f"not a replayable route: {req.path[:40]}")
    if erased_since_received(req, received_at, store):
        return ERASED
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
        if path == ERASED:
            logger.info("callback of a caller erased since it arrived: dropped")
            continue
        logger.info("callback replayed", extra={"route": path})
    return {"batchItemFailures": failures}
