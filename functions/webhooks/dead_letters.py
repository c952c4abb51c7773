"""webhook_dead_letters: the hourly sweep that makes a dead-lettered delivery's row say ``failed``.

A delivery message reaches the webhooks dead-letter queue in one of two ways:
- its last try failed: the sender has already marked the row ``failed`` (nothing to do here);
- SQS moved it before its last try ran: the answer to the last receive was lost, or the sender
  crashed, timed out or was throttled on it. The row still says ``retrying`` (or ``pending``)
  with a next try that never comes, and ``GET /v1/webhooks/deliveries?status=failed`` does not
  list it, so nobody retries it.
Each run reads every dead letter and fails such a row when it is the same round as the dead letter
(``requeues``: a retry through the API starts a new round with a new message), still open, and
quiet for ``QUIET_S``: untouched for longer than the longest wait between two tries
(``backoff.MAX_STEP_S``) plus an hour, so no other copy of its message is still on its way (a call
event planned twice queues a second copy; each copy's tries write the row). The write is
conditional on the row as read and on no sender holding it, so a try or a retry that lands
meanwhile wins. The dead letters stay in the queue, visible again at the end of the run: the DLQ
is the operator's (its depth alarm, 14 days' retention), and a failed row is sent again by
``POST /v1/webhooks/deliveries/{id}/retry``. Other messages (call events and ops messages whose
planning ran out of tries) are left for the operator as well.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from calltrack.observability import make_logger, make_tracer
from calltrack.schedule import parse_instant
from calltrack.settings import Needs
from webhooks.backoff import MAX_STEP_S
from webhooks.store import OPEN

logger = make_logger("webhook_dead_letters")
tracer = make_tracer("webhook_dead_letters")
NEEDS = Needs(tables=("webhook_deliveries",), dead_letter_queues=("webhooks",))
MAX_MESSAGES_PER_RUN = 10_000
QUIET_S = MAX_STEP_S + 3600  # a row untouched this long has no copy of its message on its way
HIDE_S = 300  # a received dead letter stays hidden this long if the run dies before showing it again


@dataclass
class SweepPorts:
    receive: Callable[[], list[tuple[str, str]]]  # -> [(receipt handle, body)], hidden; [] when drained
    show: Callable[[list[str]], None]  # receipt handles: visible again (the operator's queue)
    rows: Any  # webhooks.store.DynamoDeliveries: get() and fail_if_unchanged()
    now: Callable[[], datetime]


def delivery_of(body: str) -> tuple[str, str, int] | None:
    """(account, delivery id, round) of a delivery message; None for any other message."""
    try:
        message = json.loads(body)
    except ValueError:
        return None
    if not isinstance(message, dict):
        return None
    account, delivery, requeues = message.get("account"), message.get("delivery"), message.get("requeues", 0)
    if not (isinstance(account, str) and account and isinstance(delivery, str)):
        return None
    if not delivery.startswith("dlv_"):
        return None
    if not isinstance(requeues, int) or isinstance(requeues, bool) or requeues < 0:
        return None
    return account, delivery, requeues


def quiet(row: Mapping[str, Any], now: datetime) -> bool:
    """Untouched for ``QUIET_S``: every copy of its message would have tried (and written it) since
    (its own next try, at most ``MAX_STEP_S`` after that change, is then an hour past too)."""
    try:
        changed = parse_instant(str(row.get("updated_at") or ""))
    except ValueError:
        return False
    return changed <= parse_instant(now) - timedelta(seconds=QUIET_S)


def reason_for(row: Mapping[str, Any]) -> str:
    last = row.get("reason")
    if last:
        return f"gave up: dead-lettered before its last try ran (last failure: {last})"
    return "gave up: dead-lettered before any try finished"


def sweep(ports: SweepPorts) -> dict[str, int]:
    """Fail the open rows of dead-lettered deliveries; -> counts by what each dead letter was."""
    counts = {"failed": 0, "ended": 0, "on_its_way": 0, "other": 0}
    received: list[str] = []
    try:
        while len(received) < MAX_MESSAGES_PER_RUN:
            batch = ports.receive()
            if not batch:
                break
            received.extend(receipt for receipt, _ in batch)
            for _, body in batch:
                counts[_one(body, ports)] += 1
    finally:
        ports.show(received)
    return counts


def _one(body: str, ports: SweepPorts) -> str:
    found = delivery_of(body)
    if found is None:
        return "other"
    account, delivery, requeues = found
    row = ports.rows.get(account, delivery)
    if not row or row.get("kind") == "link" or row.get("status") not in OPEN:
        return "ended"  # failed or delivered already, or gone (TTL, account deleted)
    now = ports.now()
    if int(row.get("requeues") or 0) != requeues or not quiet(row, now):
        return "on_its_way"  # a later round's message, or a copy still being tried
    if not ports.rows.fail_if_unchanged(account, delivery, row, reason_for(row), now):
        return "on_its_way"  # a try or a retry changed the row since it was read
    logger.info("dead-lettered delivery failed", extra={"account": account, "delivery": delivery})
    return "failed"


def _ports() -> SweepPorts:
    import boto3  # type: ignore[import-untyped,unused-ignore]

    from calltrack import clock
    from calltrack.models import start
    from calltrack.models.webhooks import WebhookDelivery
    from webhooks.store import DynamoDeliveries

    settings = start(NEEDS, [WebhookDelivery])
    sqs = boto3.client("sqs", region_name=settings.region)
    dlq = settings.webhooks_dlq_url

    def receive() -> list[tuple[str, str]]:
        # Hidden for the run, so each dead letter is read once; a long poll asks every SQS server
        # (a short one samples some and may answer empty while dead letters wait).
        resp = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=2,
                                   VisibilityTimeout=HIDE_S)
        return [(m["ReceiptHandle"], m["Body"]) for m in resp.get("Messages", [])]

    def show(receipts: list[str]) -> None:
        for start_at in range(0, len(receipts), 10):
            entries = [{"Id": str(i), "ReceiptHandle": r, "VisibilityTimeout": 0}
                       for i, r in enumerate(receipts[start_at:start_at + 10])]
            sqs.change_message_visibility_batch(QueueUrl=dlq, Entries=entries)

    return SweepPorts(receive=receive, show=show, rows=DynamoDeliveries(), now=clock.now)


@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    counts = sweep(_ports())
    logger.info("webhook dead letters swept", extra=counts)
    return {"job": str((event or {}).get("job") or "webhook-dlq-sweep"), **counts}
