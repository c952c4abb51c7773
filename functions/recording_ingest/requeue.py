"""Requeue recordings that are ``failed`` (with a reason of ours, e.g. gone from Twilio) or still
``retrying``: ``calltrack recordings retry`` through POST /v1/recordings/retry.

Each becomes a fresh ``completed`` message on the recording queue, so the consumer starts its
backoff ladder again (idempotent by RecordingSid: a copy still in flight does no harm). Rows Twilio
itself reported failed (no reason) are skipped: Twilio has nothing to fetch.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
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


CURSOR_HELP = "cursor: not a cursor this API gave out (send the previous answer's next_cursor, or none)"


class CursorSeal:
    """Next cursors are sealed: a scan position may name another account's recording (the last
    row the scan read), so the cursor is encrypted (an HMAC-SHA256 keystream) and authenticated
    (HMAC-SHA256 tag) with a key derived from the operator token, and bound to the request's
    account and ``since``. A cursor that does not open, or opens for another request, is a 400."""

    def __init__(self, secret: str) -> None:
        root = hmac.new(secret.encode(), b"calltrack recordings retry cursor", hashlib.sha256).digest()
        self._enc = hmac.new(root, b"encrypt", hashlib.sha256).digest()
        self._mac = hmac.new(root, b"authenticate", hashlib.sha256).digest()

    def _stream(self, nonce: bytes, n: int) -> bytes:
        blocks = (hmac.new(self._enc, nonce + i.to_bytes(4, "big"), hashlib.sha256).digest()
                  for i in range((n + 31) // 32))
        return b"".join(blocks)[:n]

    def seal(self, key: Mapping[str, Any], account: str | None, since: str | None) -> str:
        plain = json.dumps({"k": key, "a": account, "s": since}, separators=(",", ":")).encode()
        nonce = secrets.token_bytes(12)
        body = bytes(a ^ b for a, b in zip(plain, self._stream(nonce, len(plain)), strict=True))
        tag = hmac.new(self._mac, nonce + body, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(nonce + body + tag).decode().rstrip("=")

    def open(self, cursor: str, account: str | None, since: str | None) -> dict[str, Any]:
        """The scan position: ``{"recording_sid": {"S": "RE..."}}``."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except ValueError:
            raise BadCursor(CURSOR_HELP, field="cursor") from None
        nonce, body, tag = raw[:12], raw[12:-16], raw[-16:]
        expected = hmac.new(self._mac, nonce + body, hashlib.sha256).digest()[:16]
        if len(raw) < 29 or not hmac.compare_digest(tag, expected):
            raise BadCursor(CURSOR_HELP, field="cursor")
        doc = json.loads(bytes(a ^ b for a, b in zip(body, self._stream(nonce, len(body)), strict=True)))
        if doc.get("a") != account or doc.get("s") != since:
            raise BadCursor("cursor: it belongs to another request (account or since differ)", field="cursor")
        sid = str(((doc.get("k") or {}).get("recording_sid") or {}).get("S", ""))
        if not sid:
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
) -> tuple[dict[str, int], dict[str, Any] | None]:
    """Requeue row after row, page after page, until the last, or until ``out_of_time``: then the
    scan position to go on from (the last row requeued, or the end of the page read)."""
    counts: dict[str, int] = {"requeued": 0, "skipped": 0}
    for rows, next_key in pages:
        for row in rows:
            requeue([row], send, mark, twilio_account_sid=twilio_account_sid, now=now, counts=counts)
            if out_of_time() and (row is not rows[-1] or next_key is not None):
                return counts, {"recording_sid": {"S": str(row["recording_sid"])}}
        if next_key is None:
            break
        if out_of_time():
            return counts, next_key
    return counts, None


def requeuer(settings: Any, sqs: Any) -> Callable[[str | None, str | None, str | None], dict[str, Any]]:
    """The API's port: (account, since, cursor) -> counts and ``next_cursor``, over the recordings
    table and the queue."""
    import time

    from calltrack import clock
    from recording_ingest.store import DynamoRecordings

    def run(account: str | None, since: str | None, cursor: str | None = None) -> dict[str, Any]:
        from calltrack.auth import resolve_operator_token

        seal = CursorSeal(resolve_operator_token(settings))
        start_key = seal.open(cursor, account, since) if cursor else None
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

        counts, next_key = requeue_pages(
            repo.needing_retry(account, since, start_key, page_size=PAGE_ROWS), send, mark,
            twilio_account_sid=settings.twilio_account_sid, now=now,
            out_of_time=lambda: time.monotonic() > deadline,
        )
        return {**counts, "next_cursor": seal.seal(next_key, account, since) if next_key else None}

    return run
