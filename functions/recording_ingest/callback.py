"""POST /twilio/recording, after the voice webhook checked the Twilio signature.

``accept(form, settings)`` validates the ids, hands the work to the recording queue and answers
at once; the queue consumer (recording_ingest.handler) does the fetching. Import-light on
purpose (it runs inside the voice webhook): no PynamoDB, boto3 only when a message is sent.
Nothing is ever fetched from the posted ``RecordingUrl``; it is not even forwarded.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from calltrack import clock
from recording_ingest.ids import ACCOUNT_SID, CALL_SID, RECORDING_SID

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
NOTED_STATUSES = ("failed", "absent")
MESSAGE_VERSION = 1

# Port: (queue_url, message_body) -> None. Default: boto3 SQS SendMessage.
Sender = Callable[[str, str], None]

_log = logging.getLogger(__name__)
_sqs: Any = None


def _send_with_boto3(queue_url: str, body: str) -> None:
    global _sqs
    if _sqs is None:
        import boto3  # lazily: the voice webhook's cold start shouldn't pay for it

        _sqs = boto3.client("sqs")
    _sqs.send_message(QueueUrl=queue_url, MessageBody=body)


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def build_message(form: Mapping[str, str], *, received_at: str) -> dict[str, Any]:
    """The queue message: validated ids and the facts we keep; never RecordingUrl."""
    return {
        "v": MESSAGE_VERSION,
        "recording_sid": form["RecordingSid"],
        "call_sid": form["CallSid"],
        "account_sid": form["AccountSid"],
        "status": (form.get("RecordingStatus") or "").lower(),
        "duration_seconds": _int(form.get("RecordingDuration")),
        "channels": _int(form.get("RecordingChannels")),
        "source": form.get("RecordingSource") or None,
        "received_at": received_at,
    }


def queue_body(form: Mapping[str, str], *, received_at: str) -> str:
    """The recording queue's message body for this (validated) form: the callback's, and the
    reconciliation's for a recording Twilio's Recordings API lists (recording_ingest.reconcile)."""
    return json.dumps(build_message(form, received_at=received_at), separators=(",", ":"))


def refusal(form: Mapping[str, str], settings: Any) -> str | None:
    """Why this callback must be refused, or None. Only checks, no side effects."""
    if not RECORDING_SID.match(form.get("RecordingSid") or ""):
        return "RecordingSid must match ^RE[0-9a-f]{32}$"
    if not CALL_SID.match(form.get("CallSid") or ""):
        return "CallSid must match ^CA[0-9a-f]{32}$"
    account_sid = form.get("AccountSid") or ""
    if not ACCOUNT_SID.match(account_sid) or account_sid != settings.twilio_account_sid:
        return "AccountSid is not this deployment's Twilio account"
    return None


def accept(
    form: Mapping[str, str],
    settings: Any,
    *,
    send: Sender | None = None,
    now: Callable[[], datetime] | None = None,
) -> tuple[int, str]:
    """Validate and enqueue a recording-status callback. Returns (HTTP status, TwiML body).

    400: ids malformed or AccountSid not ours (nothing enqueued, so nothing is fetched).
    200: queued (``completed``, ``failed``, ``absent``) or ignored (``in-progress``).
    503: the queue is unavailable; Twilio's error log shows it (Twilio does not retry it), and the
    recording-reconcile job (recording_ingest.reconcile) finds the recording at Twilio later.
    """
    why = refusal(form, settings)
    if why:
        _log.warning("recording callback refused: %s", why)
        return 400, EMPTY_TWIML
    status = (form.get("RecordingStatus") or "").lower()
    if status != "completed" and status not in NOTED_STATUSES:
        return 200, EMPTY_TWIML  # in-progress and unknown statuses: nothing to do yet
    if not settings.recording_queue_url:
        _log.error("recording callback not queued: CALLTRACK_RECORDING_QUEUE_URL is not set")
        return 503, EMPTY_TWIML
    received_at = (now() if now else clock.now()).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = queue_body(form, received_at=received_at)
    try:
        (send or _send_with_boto3)(settings.recording_queue_url, body)
    except Exception:  # noqa: BLE001 - any queue failure: tell Twilio, don't pretend it's done
        _log.exception("recording callback could not be queued")
        return 503, EMPTY_TWIML
    return 200, EMPTY_TWIML
