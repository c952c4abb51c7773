"""Requeue recordings that are ``failed`` (with a reason of ours, e.g. gone from Twilio) or still
``retrying``: ``calltrack recordings retry`` through POST /v1/recordings/retry.

Each becomes a fresh ``completed`` message on the recording queue, so the consumer starts its
backoff ladder again (idempotent by RecordingSid: a copy still in flight does no harm). Rows Twilio
itself reported failed (no reason) are skipped: Twilio has nothing to fetch.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from recording_ingest.callback import MESSAGE_VERSION
from recording_ingest.ingest import iso


def requeue_message(row: Mapping[str, Any], twilio_account_sid: str, now: datetime) -> dict[str, Any]:
    return {
        "v": MESSAGE_VERSION,
        "recording_sid": row["recording_sid"],
        "call_sid": row["call_sid"],
        "account_sid": twilio_account_sid,
        "status": "completed",
        "duration_seconds": row.get("duration_seconds"),
        "channels": row.get("channels"),
        "source": "requeue",
        "received_at": iso(now),
    }


def requeue(
    rows: Iterable[Mapping[str, Any]],
    send: Callable[[str], None],
    mark: Callable[[Mapping[str, Any], str], None],
    *,
    twilio_account_sid: str,
    now: datetime,
) -> dict[str, int]:
    counts = {"requeued": 0, "skipped": 0}
    for row in rows:
        if row.get("status") == "failed" and not row.get("reason"):
            counts["skipped"] += 1
            continue
        send(json.dumps(requeue_message(row, twilio_account_sid, now), separators=(",", ":")))
        mark(row, iso(now))
        counts["requeued"] += 1
    return counts


def requeuer(settings: Any, sqs: Any) -> Callable[[str | None, str | None], dict[str, int]]:
    """The API's port: (account, since) -> counts, over the recordings table and the queue."""
    from calltrack import clock
    from recording_ingest.store import DynamoRecordings

    def run(account: str | None, since: str | None) -> dict[str, int]:
        repo = DynamoRecordings()
        now = clock.now()

        def send(body: str) -> None:
            sqs.send_message(QueueUrl=settings.recording_queue_url, MessageBody=body)

        def mark(row: Mapping[str, Any], at: str) -> None:
            repo.mark(
                str(row["recording_sid"]), call_sid=str(row["call_sid"]), status="retrying",
                reason="requeued", now=now, next_attempt_at=at,
            )

        return requeue(
            repo.needing_retry(account, since), send, mark,
            twilio_account_sid=settings.twilio_account_sid, now=now,
        )

    return run
