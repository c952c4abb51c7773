"""Start failed transcripts again: ``POST /v1/transcripts/retry`` and ``calltrack transcripts retry``.

A transcript ends ``failed`` when its job could not run through the whole ladder (Amazon
Transcribe at its limit or unreachable for about ten hours, a permission refused, S3 or DynamoDB
down): its message then waits in the dead-letter queue, and sending that message again would only
find the transcript failed. After the cause is fixed this finds an account's calls whose transcript
is ``failed`` (started on or after ``since``) and puts a ``transcript.retry`` message for each on
the transcripts queue (``transcripts.pipeline``). One request reads for at most ``BUDGET_S``; the
answer's ``next_cursor`` (the start time of the first call not read, within the same account)
says where the next request goes on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from transcripts.pipeline import retry_message

BUDGET_S = 15.0  # then the answer carries next_cursor (the API answers within its 29 s)
DEFAULT_DAYS = 30  # without ``since``: calls of the last 30 days


def failed_calls(
    calls: Iterable[Mapping[str, Any]], out_of_time: Callable[[], bool]
) -> tuple[list[str], str | None]:
    """The CallSids of ``calls`` (oldest first) whose transcript is ``failed``, and the start time
    to go on from when time ran out (None: all read). It stops only where the start time changes,
    so going on from that start time reads none of the calls again and misses none."""
    out: list[str] = []
    previous = None
    for call in calls:
        started = str(call.get("started_at") or "")
        if previous is not None and started != previous and out_of_time():
            return out, started
        previous = started
        transcript = call.get("transcript")
        if isinstance(transcript, Mapping) and transcript.get("status") == "failed":
            out.append(str(call["call_sid"]))
    return out, None


def retry_failed(
    between: Callable[[datetime, datetime], Iterable[Mapping[str, Any]]],
    send: Callable[[list[str]], None],
    *,
    since: datetime,
    until: datetime,
    budget_s: float = BUDGET_S,
) -> dict[str, Any]:
    """Queue a retry of every failed transcript of the calls ``between(since, until)`` yields;
    -> {"requeued", "next_cursor"}."""
    deadline = time.monotonic() + budget_s
    sids, cursor = failed_calls(between(since, until), lambda: time.monotonic() > deadline)
    send(sids)
    return {"requeued": len(sids), "next_cursor": cursor}


def sqs_sender(client: Any, queue_url: str) -> Callable[[list[str]], None]:
    """``transcript.retry`` messages onto the transcripts queue, ten to a SendMessageBatch; raises
    when SQS takes one not (the request answers 5xx: asking again sends again, harmlessly)."""

    def send(call_sids: list[str]) -> None:
        for start in range(0, len(call_sids), 10):
            entries = [{"Id": str(i), "MessageBody": json.dumps(retry_message(sid))}
                       for i, sid in enumerate(call_sids[start:start + 10])]
            answer = client.send_message_batch(QueueUrl=queue_url, Entries=entries)
            if answer.get("Failed"):
                raise RuntimeError(f"SQS refused {len(answer['Failed'])} transcript retry messages")

    return send


def _moment(value: str, field: str) -> datetime:
    """A date (YYYY-MM-DD: its start, UTC) or an ISO time with Z or an offset; 400 naming ``field``."""
    from calltrack.errors import BadRequest

    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):  # not a date, or one UTC cannot hold (0001-01-01+01:00)
        raise BadRequest(f"{field}: not a date (YYYY-MM-DD) or a time", field=field) from None


def window(since: str | None, cursor: str | None, now: datetime) -> tuple[datetime, datetime]:
    """The start-time range one request reads: from the cursor, else ``since`` (a date or an ISO
    time, UTC), else ``DEFAULT_DAYS`` ago; up to now (a start after now reads nothing)."""
    if cursor:
        start = _moment(cursor, "cursor")
    else:
        start = _moment(since, "since") if since else now - timedelta(days=DEFAULT_DAYS)
    return min(start, now), now


def transcript_retrier(calls: Any, sqs: Any) -> Callable[[str, str | None, str | None], dict[str, Any]]:
    """The API's port: (account, since, cursor) -> {"since", "requeued", "next_cursor"} over the
    calls table's by-account index and the transcripts queue."""
    import os

    from calltrack import clock
    from calltrack.settings import queue_env

    def run(account: str, since: str | None, cursor: str | None) -> dict[str, Any]:
        start, end = window(since, cursor, clock.now())

        def between(lo: datetime, hi: datetime) -> Iterable[Mapping[str, Any]]:
            return calls.between(account, lo, hi, fields=("call_sid", "transcript"))

        send = sqs_sender(sqs, os.environ.get(queue_env("transcripts"), ""))
        counts = retry_failed(between, send, since=start, until=end)
        return {"since": start.strftime("%Y-%m-%dT%H:%M:%SZ"), **counts}

    return run
