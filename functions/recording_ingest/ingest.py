"""The recording state machine: one queue message in, the recording stored (or a retry) out.

Pure domain logic over ports (repositories, object store, fetcher, clock) so unit tests hand it
fakes; ``recording_ingest.store`` has the real adapters (PynamoDB, S3) and ``handler`` wires
them to SQS. Idempotent by RecordingSid: a stored recording is never fetched again, a second
copy of a message that is being fetched waits (retry) instead of fetching in parallel.

Every failure raises ``RetryLater`` after writing the reason and ``next_attempt_at`` on the
recordings row (and on the call's ``recording`` view), so nothing is dropped silently: the
handler delays the SQS message by ``RetryLater.delay_s`` (recording_ingest.backoff: 1 min, 2, 4 ...
12 h); after the queue's maxReceiveCount it is a dead letter that the hourly redrive job brings
back. A recording Twilio keeps answering 404 for is ``failed`` ("gone from Twilio"), not retried;
one whose call has no row with an account after the whole ladder (~29 h: the call was erased,
its account deleted, or its webhook never reached us) is ``failed`` (``NO_CALL_ROW``), not
redriven. Both end the cycle; ``POST /v1/recordings/retry`` queues a gone one again (a row
without a call has no account to retry it under; the reconcile job queues it if its call turns up).

A caller's erasure (``privacy``) replaces the rows of the calls' recordings by ``erased`` rows
(``erased_row``: terminal, so a message still on its way ends as a duplicate instead of writing a
row back; a fetch under way cannot store over it, ``RecordingErased``), and queues an ``erased``
message for each recording Twilio may still hold when the account has Twilio's copies deleted
(``erased_message``): Twilio's copy is deleted (a failed delete is retried like any try). Without
it, a recording still in the retry ladder when its call was erased would leave the caller's voice
at Twilio.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from recording_ingest.backoff import GONE_AFTER_404S, MAX_RECEIVES, delay_s, next_redrive
from recording_ingest.fetch import NOT_READY, FetchError, recording_api_url
from recording_ingest.ids import ACCOUNT_SID, CALL_SID, RECORDING_SID

# A claim outlives the invocation that took it (the function's timeout, 540 s: a batch of 5 records,
# each with its download deadline and the S3 put after it, which no deadline bounds), so a duplicate
# message cannot fetch and store the MP3 a second time. It is shorter than the queue's visibility
# timeout (720 s), so a crashed invocation's first record finds its claim ended when its message
# comes back; a later record's claim (taken up to 540 s into the invocation) may still hold then,
# and that message waits one more visibility timeout ("in-progress"): late, never lost or doubled.
# An infra test keeps the claim between the two.
LEASE_SECONDS = 600
GONE_FROM_TWILIO = "gone from Twilio"
NO_CALL_ROW = "no call row after a day of tries"
ENDED = (GONE_FROM_TWILIO, NO_CALL_ROW)  # failed for a reason of ours: the redrive stops
MEDIA = ("duration_seconds", "channels")  # what a recording message tells of the audio
CALL_ERASED = "call-erased"  # the outcome when the call went while its recording was fetched
ERASED = "erased"  # the row (and the message) of a recording whose call was erased on request
ERASED_KEEP_DAYS = 30  # past the retry ladder (~29 h) and the DLQ's 14 days, as the erasure marks
TERMINAL = ("stored", "expired", ERASED)  # never fetched or written again
_ACCOUNT_SAFE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


class RetryLater(Exception):
    """Processing must be retried later; ``reason`` is recorded on the row and in metrics."""

    def __init__(self, reason: str, detail: str = "", *, delay_s: int | None = None) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.delay_s = delay_s  # seconds until the next try (None: the queue's visibility timeout)


class RecordingErased(Exception):
    """Raised by RecordingRepo.mark_stored when the row became the ``erased`` row meanwhile (the
    call's caller was erased while the recording was fetched): nothing is stored over it."""


class ClaimLost(Exception):
    """Raised by RecordingRepo.claim when another worker holds the recording (or it is done)."""


class RecordingRepo(Protocol):
    def get(self, recording_sid: str) -> dict[str, Any] | None: ...

    def claim(
        self, recording_sid: str, *, call_sid: str, account: str, now: datetime, lease_s: int,
        media: Mapping[str, Any] | None = None,
    ) -> None:
        """Take the row for one fetch; ``media`` (the message's ``duration_seconds`` and
        ``channels``) is kept on it, so a requeue from the row carries them too."""
        ...

    def mark(
        self,
        recording_sid: str,
        *,
        call_sid: str,
        status: str,
        reason: str | None,
        now: datetime,
        next_attempt_at: str | None = None,
    ) -> None:
        """Set status (queued/retrying/failed/absent), reason and next_attempt_at (removed when
        None) unless the row is terminal."""
        ...

    def mark_stored(self, recording_sid: str, facts: Mapping[str, Any], *, now: datetime) -> None:
        """The row says stored with ``facts``; ``RecordingErased`` when it is the erased row."""
        ...

    def mark_twilio_deleted(self, recording_sid: str) -> None: ...

    def erase(self, recording_sid: str, call_sid: str, *, now: datetime) -> None:
        """Replace the row by the ``erased`` row (its call was erased while the recording was
        fetched): terminal, so no later message of the recording writes it back."""
        ...

    def count_not_found(self, recording_sid: str) -> int:
        """One more 404 from Twilio in a row; -> how many now (``mark`` with another reason resets)."""
        ...


class CallRepo(Protocol):
    def get(self, call_sid: str) -> dict[str, Any] | None:
        """{"account", "started_at", "recording", ...} or None when the call isn't known yet."""
        ...

    def set_recording(self, call_sid: str, recording: Mapping[str, Any]) -> bool:
        """False when the call is gone (erased, expired)."""
        ...


class ObjectStore(Protocol):
    def put(self, key: str, body: bytes, *, metadata: Mapping[str, str], content_md5: str) -> None: ...

    def delete_every_version(self, key: str) -> None: ...

    def size(self, key: str) -> int | None:
        """Stored object size in bytes, or None when the object is absent."""
        ...


@dataclass
class Ports:
    recordings: RecordingRepo
    calls: CallRepo
    objects: ObjectStore
    fetch: Callable[[str], bytes]  # url -> MP3 bytes (credentials bound), raises FetchError
    delete_at_twilio: Callable[[str, str], bool]  # (account_sid, recording_sid) -> deleted
    delete_from_twilio_for: Callable[[str], bool]  # account -> recording.delete_from_twilio
    api_base_url: str
    twilio_account_sid: str
    now: Callable[[], datetime]
    on_failure: Callable[[str], None] = field(default=lambda reason: None)


def s3_key(
    account: str, started_at: str | None, call_sid: str, recording_sid: str, fallback: datetime
) -> str:
    """recordings/{account}/{yyyy}/{mm}/{CallSid}/{RecordingSid}.mp3 (month of the call)."""
    if not _ACCOUNT_SAFE.match(account):
        raise ValueError(f"account id {account!r} is not safe in an S3 key")
    stamp = started_at or ""
    if re.match(r"^\d{4}-\d{2}", stamp):
        yyyy, mm = stamp[:4], stamp[5:7]
    else:
        yyyy, mm = f"{fallback.year:04d}", f"{fallback.month:02d}"
    return f"recordings/{account}/{yyyy}/{mm}/{call_sid}/{recording_sid}.mp3"


def iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def _validate(message: Mapping[str, Any], twilio_account_sid: str) -> tuple[str, str, str]:
    sid, call_sid, account_sid = (
        str(message.get(k) or "") for k in ("recording_sid", "call_sid", "account_sid")
    )
    if not RECORDING_SID.match(sid) or not CALL_SID.match(call_sid) or not ACCOUNT_SID.match(account_sid):
        raise RetryLater("invalid-message", "ids don't match Twilio's patterns")
    if account_sid != twilio_account_sid:
        raise RetryLater("foreign-account", "AccountSid is not ours")
    return sid, call_sid, account_sid


def process(message: Mapping[str, Any], ports: Ports, receive_count: int = 1) -> str:
    """Handle one queue message (its ``receive_count``-th delivery). Returns the outcome; raises
    RetryLater to retry."""
    try:
        sid, call_sid, account_sid = _validate(message, ports.twilio_account_sid)
    except RetryLater as err:
        ports.on_failure(err.reason)
        raise
    status = str(message.get("status") or "")
    if status == ERASED:
        return _erased(message, sid, account_sid, ports)
    existing = ports.recordings.get(sid)
    if existing and existing.get("status") in TERMINAL:
        return _already_done(existing, account_sid, ports)
    if status in ("failed", "absent"):
        return _note(sid, call_sid, status, ports, max(1, receive_count))
    if status != "completed":
        return "ignored"
    return _ingest(message, sid, call_sid, account_sid, ports, max(1, receive_count))


def erased_row(recording_sid: str, call_sid: str, now_epoch: float) -> dict[str, str | int]:
    """The row that stands for a recording of an erased call: its ids and nothing of the account;
    terminal (``TERMINAL``) and gone after ERASED_KEEP_DAYS (the table's TTL, ``expires_at``)."""
    return {"recording_sid": recording_sid, "call_sid": call_sid, "status": ERASED,
            "expires_at": int(now_epoch) + ERASED_KEEP_DAYS * 86400}


def twilio_may_hold(row: Mapping[str, Any]) -> bool:
    """Whether Twilio may still hold this recording: not deleted there by us, and not one Twilio
    itself reported failed or absent (nothing was recorded) or kept answering 404 for."""
    if row.get("twilio_deleted"):
        return False
    status, reason = row.get("status"), row.get("reason")
    return not (status == "absent" or (status == "failed" and reason in (None, "", GONE_FROM_TWILIO)))


def erased_message(row: Mapping[str, Any], account: str, account_sid: str, now: datetime) -> dict[str, Any]:
    """The recording queue's message that a caller's erasure sends for a recording of an erased
    call Twilio may still hold: the consumer deletes Twilio's copy when the account asks."""
    from recording_ingest.callback import MESSAGE_VERSION

    return {
        "v": MESSAGE_VERSION,
        "recording_sid": str(row["recording_sid"]),
        "call_sid": str(row["call_sid"]),
        "account_sid": account_sid,
        "status": ERASED,
        "account": account,
        "source": "erasure",
        "received_at": iso(now),
    }


def _erased(message: Mapping[str, Any], sid: str, account_sid: str, ports: Ports) -> str:
    """The recording's call was erased on request: delete Twilio's copy when the account asks (a
    failure raises ``RetryLater``: the message comes back). The row is the erasure's to replace."""
    account = str(message.get("account") or "")
    if not _ACCOUNT_SAFE.match(account):
        ports.on_failure("invalid-message")
        return "ignored"  # not an erasure's message (a Twilio callback never names an account)
    # nothing marked on the row: the erased row is the erasure's, and a retry deletes again harmlessly
    _maybe_delete_at_twilio(account, account_sid, sid, twilio_deleted=False, ports=ports, mark=False)
    return ERASED


def retry_view(sid: str, reason: str, next_attempt_at: str) -> dict[str, Any]:
    """The call's ``recording`` while a try is pending: what failed and when it is tried next."""
    return {"status": "retrying", "recording_sid": sid, "reason": reason, "next_attempt_at": next_attempt_at}


def failed_view(sid: str, reason: str) -> dict[str, Any]:
    return {"status": "failed", "recording_sid": sid, "reason": reason}


def _show_on_call(
    ports: Ports, call: Mapping[str, Any] | None, call_sid: str, view: Mapping[str, Any]
) -> None:
    current = (call or {}).get("recording") or {}
    if call is not None and current.get("status") not in TERMINAL:
        ports.calls.set_recording(call_sid, view)


def _fail(
    ports: Ports,
    sid: str,
    call_sid: str,
    reason: str,
    detail: str = "",
    *,
    receive_count: int = 1,
    call: Mapping[str, Any] | None = None,
) -> RetryLater:
    now = ports.now()
    last = receive_count >= MAX_RECEIVES
    # After the last receive SQS dead-letters the message (at once: no delay) and the hourly
    # redrive brings it back, which is when the next try really is.
    delay = 0 if last else delay_s(receive_count)
    when = next_redrive(now) if last else now + timedelta(seconds=delay)
    ports.recordings.mark(
        sid, call_sid=call_sid, status="retrying", reason=reason, now=now, next_attempt_at=iso(when)
    )
    _show_on_call(ports, call, call_sid, retry_view(sid, reason, iso(when)))
    ports.on_failure(reason)
    return RetryLater(reason, detail, delay_s=delay)


def _gone(ports: Ports, sid: str, call_sid: str, call: Mapping[str, Any]) -> str:
    """Twilio no longer has the recording: failed, with the reason on the row and the call."""
    ports.recordings.mark(sid, call_sid=call_sid, status="failed", reason=GONE_FROM_TWILIO, now=ports.now())
    _show_on_call(ports, call, call_sid, failed_view(sid, GONE_FROM_TWILIO))
    ports.on_failure("gone")
    return "gone"


def _call_unknown(
    ports: Ports, sid: str, call_sid: str, receive_count: int, call: Mapping[str, Any] | None
) -> str:
    """No call row with an account: try later (``RetryLater``), or, on the ladder's last receive,
    stop: ``failed`` with ``NO_CALL_ROW`` (the redrive would bring it back every hour for ever)."""
    if receive_count < MAX_RECEIVES:
        raise _fail(
            ports, sid, call_sid, "call-unknown", "no call row with an account yet",
            receive_count=receive_count, call=call,
        )
    ports.recordings.mark(sid, call_sid=call_sid, status="failed", reason=NO_CALL_ROW, now=ports.now())
    _show_on_call(ports, call, call_sid, failed_view(sid, NO_CALL_ROW))
    ports.on_failure("call-unknown")
    return "call-unknown"


def media_facts(message: Mapping[str, Any]) -> dict[str, int]:
    """The recording's ``duration_seconds`` and ``channels`` the message names (Twilio's callback;
    a requeue copies them from the row)."""
    out = {}
    for name in MEDIA:
        value = message.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            out[name] = int(value)
    return out


def _ingest(
    message: Mapping[str, Any], sid: str, call_sid: str, account_sid: str, ports: Ports, receive_count: int
) -> str:
    call = ports.calls.get(call_sid)
    if call is None or not call.get("account"):
        # The recording callback overtook the call record (or the call webhook failed open and
        # its status callback hasn't rebuilt the row yet; a status callback for a number we do not
        # know leaves a row without an account). Twilio keeps the file; try later.
        return _call_unknown(ports, sid, call_sid, receive_count, call)
    account = str(call["account"])
    now = ports.now()
    try:
        ports.recordings.claim(sid, call_sid=call_sid, account=account, now=now, lease_s=LEASE_SECONDS,
                               media=media_facts(message))
    except ClaimLost:
        current = ports.recordings.get(sid)
        if current and current.get("status") in TERMINAL:
            return _already_done(current, account_sid, ports)
        ports.on_failure("in-progress")
        raise RetryLater("in-progress", "another worker is fetching this recording") from None
    url = recording_api_url(ports.api_base_url, account_sid, sid)
    try:
        body = ports.fetch(url)
    except FetchError as err:
        # gone after so many 404s *in a row*: timeouts or a late call row before them do not count
        if err.reason == NOT_READY and ports.recordings.count_not_found(sid) >= GONE_AFTER_404S:
            return _gone(ports, sid, call_sid, call)
        raise _fail(
            ports, sid, call_sid, err.reason, err.detail, receive_count=receive_count, call=call
        ) from None
    key = s3_key(account, call.get("started_at"), call_sid, sid, now)
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode("ascii")
    try:
        ports.objects.put(
            key,
            body,
            metadata={"call-sid": call_sid, "recording-sid": sid, "account": account},
            content_md5=md5,
        )
        stored_size = ports.objects.size(key)
    except Exception as err:  # noqa: BLE001 - any S3 failure is a retry, with its reason
        raise _fail(
            ports, sid, call_sid, "s3-error", repr(err), receive_count=receive_count, call=call
        ) from None
    if stored_size != len(body):
        raise _fail(
            ports, sid, call_sid, "verify-failed", f"stored {stored_size} of {len(body)} bytes",
            receive_count=receive_count, call=call,
        )
    facts = {
        "status": "stored",
        "recording_sid": sid,
        "s3_key": key,
        "duration_seconds": message.get("duration_seconds"),
        "channels": message.get("channels"),
        "size_bytes": len(body),
        "stored_at": iso(ports.now()),
    }
    try:
        ports.recordings.mark_stored(sid, {**facts, "account": account, "call_sid": call_sid},
                                     now=ports.now())
        erased = False
    except RecordingErased:
        erased = True
    if erased or not ports.calls.set_recording(call_sid, facts):
        # The call was erased (a privacy request) while this recording was fetched (its row is the
        # erased row, or the call is gone): the erasure found no object yet, and nothing could
        # find this one again. It goes too (its row becomes
        # the erased row), and Twilio's copy when the account has Twilio's deleted (a failed delete
        # is retried: the row stays until it is done, and the retry comes back through _already_done).
        ports.objects.delete_every_version(key)
        _maybe_delete_at_twilio(account, account_sid, sid, twilio_deleted=False, ports=ports)
        ports.recordings.erase(sid, call_sid, now=ports.now())
        return CALL_ERASED
    _maybe_delete_at_twilio(account, account_sid, sid, twilio_deleted=False, ports=ports)
    return "stored"


def call_recording_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """The ``recording`` object a stored row puts on its call."""
    return {
        "status": row.get("status"),
        "recording_sid": row.get("recording_sid"),
        "s3_key": row.get("s3_key"),
        "duration_seconds": row.get("duration_seconds"),
        "channels": row.get("channels"),
        "size_bytes": row.get("size_bytes"),
        "stored_at": row.get("stored_at"),
    }


def _already_done(row: Mapping[str, Any], account_sid: str, ports: Ports) -> str:
    """A duplicate (or a retry after a partial success): finish what is missing, fetch nothing."""
    if row.get("status") != "stored":
        return "duplicate"
    call = ports.calls.get(str(row["call_sid"]))
    current = (call or {}).get("recording") or {}
    if (call is None or current.get("status") not in ("stored", "expired")) and not ports.calls.set_recording(
        str(row["call_sid"]), call_recording_view(row)
    ):
        # the call is gone (the write, unlike the read, is sure of it): an erasure met this
        # recording's fetch, and the clean-up after it failed; the recording goes now, Twilio's
        # copy too when the account asks
        if row.get("s3_key"):
            ports.objects.delete_every_version(str(row["s3_key"]))
        _delete_at_twilio_from_row(row, account_sid, ports)
        ports.recordings.erase(str(row["recording_sid"]), str(row["call_sid"]), now=ports.now())
        return CALL_ERASED
    _delete_at_twilio_from_row(row, account_sid, ports)
    return "duplicate"


def _delete_at_twilio_from_row(row: Mapping[str, Any], account_sid: str, ports: Ports) -> None:
    account = row.get("account")
    if account:
        _maybe_delete_at_twilio(
            str(account),
            account_sid,
            str(row["recording_sid"]),
            twilio_deleted=bool(row.get("twilio_deleted")),
            ports=ports,
        )


def _maybe_delete_at_twilio(
    account: str, account_sid: str, sid: str, *, twilio_deleted: bool, ports: Ports, mark: bool = True
) -> None:
    """Delete Twilio's copy when the account asks and it is not gone yet (``RetryLater`` when the
    delete fails); ``mark``: note on the row that it is deleted."""
    if twilio_deleted or not ports.delete_from_twilio_for(account):
        return
    try:
        deleted = ports.delete_at_twilio(account_sid, sid)
    except FetchError as err:
        ports.on_failure(err.reason)
        raise RetryLater(err.reason, "the delete at Twilio will be retried") from None
    if deleted and mark:
        ports.recordings.mark_twilio_deleted(sid)


def _note(sid: str, call_sid: str, status: str, ports: Ports, receive_count: int) -> str:
    call = ports.calls.get(call_sid)
    if call is None:
        return _call_unknown(ports, sid, call_sid, receive_count, call)
    ports.recordings.mark(sid, call_sid=call_sid, status=status, reason=None, now=ports.now())
    current = call.get("recording") or {}
    if current.get("status") not in ("stored", "expired"):
        ports.calls.set_recording(call_sid, {"status": status, "recording_sid": sid})
    return "noted"
