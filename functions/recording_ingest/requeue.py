"""Requeue recordings that are ``failed`` (with a reason of ours, e.g. gone from Twilio) or still
``retrying``: ``calltrack recordings retry`` through POST /v1/recordings/retry.

Each becomes a fresh ``completed`` message on the recording queue, so the consumer starts its
backoff ladder again (idempotent by RecordingSid: a copy still in flight does no harm). Rows Twilio
itself reported failed (no reason) are skipped: Twilio has nothing to fetch.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from calltrack.errors import BadRequest
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
    counts: dict[str, int] | None = None,
) -> dict[str, int]:
    counts = counts if counts is not None else {"requeued": 0, "skipped": 0}
    for row in rows:
        if row.get("status") == "failed" and not row.get("reason"):
            counts["skipped"] += 1
            continue
        send(json.dumps(requeue_message(row, twilio_account_sid, now), separators=(",", ":")))
        mark(row, iso(now))
        counts["requeued"] += 1
    return counts


BUDGET_S = 15.0  # no new page after this: the API answers within its 29 s with a cursor to go on
PAGE_ROWS = 200  # rows read per page of the scan (matching or not)


class BadCursor(BadRequest):
    """The cursor is not one this API gave out (400 naming ``cursor``)."""


def encode_cursor(key: Mapping[str, Any] | None) -> str | None:
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


CURSOR_HELP = "cursor: not a cursor this API gave out (send the previous answer's next_cursor, or none)"


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    """The scan position in a cursor: ``{"recording_sid": {"S": "RE..."}}``."""
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        sid = key["recording_sid"]["S"]
    except (ValueError, KeyError, TypeError):
        raise BadCursor(CURSOR_HELP, field="cursor") from None
    if set(key) != {"recording_sid"} or not isinstance(sid, str) or not sid:
        raise BadCursor(CURSOR_HELP, field="cursor")
    return {"recording_sid": {"S": sid}}


def requeue_pages(
    pages: Iterable[tuple[list[dict[str, Any]], dict[str, Any] | None]],
    send: Callable[[str], None],
    mark: Callable[[Mapping[str, Any], str], None],
    *,
    twilio_account_sid: str,
    now: datetime,
    out_of_time: Callable[[], bool],
) -> dict[str, Any]:
    """Requeue page after page until the last, or until ``out_of_time`` after a page: then
    ``next_cursor`` says where the next request goes on."""
    counts: dict[str, int] = {"requeued": 0, "skipped": 0}
    for rows, next_key in pages:
        requeue(rows, send, mark, twilio_account_sid=twilio_account_sid, now=now, counts=counts)
        if next_key is None:
            break
        if out_of_time():
            return {**counts, "next_cursor": encode_cursor(next_key)}
    return {**counts, "next_cursor": None}


def requeuer(settings: Any, sqs: Any) -> Callable[[str | None, str | None, str | None], dict[str, Any]]:
    """The API's port: (account, since, cursor) -> counts and ``next_cursor``, over the recordings
    table and the queue."""
    import time

    from calltrack import clock
    from recording_ingest.store import DynamoRecordings

    def run(account: str | None, since: str | None, cursor: str | None = None) -> dict[str, Any]:
        start_key = decode_cursor(cursor)
        repo = DynamoRecordings()
        now = clock.now()
        deadline = time.monotonic() + BUDGET_S

        def send(body: str) -> None:
            sqs.send_message(QueueUrl=settings.recording_queue_url, MessageBody=body)

        def mark(row: Mapping[str, Any], at: str) -> None:
            repo.mark(
                str(row["recording_sid"]), call_sid=str(row["call_sid"]), status="retrying",
                reason="requeued", now=now, next_attempt_at=at,
            )

        return requeue_pages(
            repo.needing_retry(account, since, start_key, page_size=PAGE_ROWS), send, mark,
            twilio_account_sid=settings.twilio_account_sid, now=now,
            out_of_time=lambda: time.monotonic() > deadline,
        )

    return run
