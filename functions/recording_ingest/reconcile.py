"""The "recording-reconcile" scheduled job: recover recordings whose callback never got queued.

``/twilio/recording`` answers 503 when it cannot hand a recording to the queue (e.g. during an
outage), and Twilio does not retry a recording status callback, so that recording would never be
fetched. Every 15 minutes this job looks for calls whose recording should exist but is unknown —
``answered`` calls of accounts with ``recording.enabled`` ended between ``SETTLE`` (10 min: the
callback may still be on its way) and ``WINDOW`` (2 days) before the run, and calls offered a
voicemail (any account: many callers hang up at the prompt, so asked about a few times only)
ended within ``VOICEMAIL_WINDOW`` (1 hour) of that, or 6 or 24 hours before (one run each, for
a longer outage), without a ``recording`` on the call — asks Twilio's Recordings API for each one
(``GET {TWILIO_API_BASE_URL}/2010-04-01/Accounts/{AccountSid}/Recordings.json?CallSid=…``) and
queues every ``completed`` recording it lists exactly as the callback would have
(``callback.queue_body``); the queue consumer stores it, idempotent by RecordingSid.

Bounded: at most ``MAX_CALLS_PER_ACCOUNT`` calls asked about per account per run (newest first; the
rest on the next run), and the run stops after ``MAX_CONSECUTIVE_ERRORS`` Twilio errors in a row
(Twilio down or credentials wrong: no point in timing out on every call). Nothing is written to a
call, so a call Twilio could not be asked about is simply asked about again on the next run. The
summary holds counts only, never a caller number.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from calltrack.accounts import BrokenAccount
from calltrack.observability import make_tracer
from calltrack.schedule import parse_instant
from recording_ingest.callback import queue_body, refusal
from recording_ingest.fetch import FetchError
from recording_ingest.ingest import iso
from recording_ingest.runtime import RECONCILE_NEEDS as NEEDS

if TYPE_CHECKING:
    from calltrack.account_config import AccountConfig

__all__ = ["NEEDS", "JOB_NAME", "ReconcilePorts", "reconcile", "handler"]

JOB_NAME = "recording-reconcile"
SETTLE = timedelta(minutes=10)  # a recording callback normally arrives within a minute of the call's end
WINDOW = timedelta(days=2)  # older calls are not looked for any more
VOICEMAIL_WINDOW = timedelta(hours=1)  # calls offered a voicemail: every run of the first hour,
VOICEMAIL_LATER = (timedelta(hours=6), timedelta(hours=24))  # then one run each (a longer outage)
RUN_EVERY = timedelta(minutes=15)  # the job's schedule (infra/wiring.py)
LONGEST_CALL = timedelta(hours=4)  # Twilio's maximum call length: calls are read by started_at
MAX_CALLS_PER_ACCOUNT = 500
MAX_CONSECUTIVE_ERRORS = 5

tracer = make_tracer("recording_reconcile")


@dataclass
class ReconcilePorts:
    accounts: Callable[[], Iterable[AccountConfig | BrokenAccount]]
    calls_between: Callable[[str, datetime, datetime], Iterable[Mapping[str, Any]]]
    list_recordings: Callable[[str], list[dict[str, Any]]]  # CallSid -> Twilio's list; raises FetchError
    send: Callable[[str], None]  # message body -> the recording queue
    twilio_account_sid: str


@dataclass(frozen=True)
class _Ours:
    twilio_account_sid: str  # what callback.refusal reads of the settings


def recording_on(config: AccountConfig | BrokenAccount) -> bool:
    return not isinstance(config, BrokenAccount) and config.recording.enabled


def _ended(call: Mapping[str, Any]) -> datetime | None:
    raw = call.get("ended_at") or call.get("started_at")
    try:
        return parse_instant(str(raw)) if raw else None
    except ValueError:
        return None


def due(call: Mapping[str, Any], at: datetime, recording: bool = True) -> bool:
    """Its recording unknown, and either answered in an account that records calls and ended
    SETTLE..WINDOW before ``at``, or offered a voicemail (in any account: a voicemail is recorded
    whatever ``recording.enabled`` says) and ended SETTLE..VOICEMAIL_WINDOW before ``at``, or in
    the run-long slot 6 or 24 hours before (``VOICEMAIL_LATER``): many callers hang up at the
    prompt, leaving nothing to find, so those are asked about a few times only."""
    if call.get("recording"):
        return False
    ended = _ended(call)
    if ended is None or ended > at - SETTLE:
        return False
    if recording and call.get("status") == "answered":
        return ended >= at - WINDOW
    if not call.get("voicemail"):
        return False
    age = at - ended
    return age <= VOICEMAIL_WINDOW or any(late <= age < late + RUN_EVERY for late in VOICEMAIL_LATER)


def candidates(
    calls: Iterable[Mapping[str, Any]], at: datetime, recording: bool = True
) -> list[Mapping[str, Any]]:
    """The calls to ask Twilio about, most recently ended first."""
    found = [call for call in calls if due(call, at, recording)]
    return sorted(found, key=lambda call: str(call.get("ended_at") or call.get("started_at")), reverse=True)


def callback_form(recording: Mapping[str, Any]) -> dict[str, str]:
    """A recording of Twilio's list as the recording status callback would have posted it."""

    def text(key: str) -> str:
        value = recording.get(key)
        return "" if value is None else str(value)

    return {
        "AccountSid": text("account_sid"),
        "CallSid": text("call_sid"),
        "RecordingSid": text("sid"),
        "RecordingStatus": text("status").lower(),
        "RecordingDuration": text("duration"),
        "RecordingChannels": text("channels"),
        "RecordingSource": text("source"),
    }


class _Stop(Exception):
    """Too many Twilio errors in a row: the rest waits for the next run."""

    def __init__(self, counts: dict[str, int] | None = None) -> None:
        super().__init__("too many Twilio errors in a row")
        self.counts = counts or {}


class _Run:
    def __init__(self, at: datetime, ports: ReconcilePorts) -> None:
        self.at, self.ports = at, ports
        self.received_at = iso(at)
        self.ours = _Ours(ports.twilio_account_sid)
        self.consecutive_errors = 0
        self.reasons: dict[str, int] = {}

    def error(self, reason: str, counts: dict[str, int]) -> None:
        counts["errors"] += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1

    def check(self, call_sid: str, counts: dict[str, int]) -> None:
        counts["calls_checked"] += 1
        try:
            listed = self.ports.list_recordings(call_sid)
        except (FetchError, ValueError) as exc:
            self.error(exc.reason if isinstance(exc, FetchError) else "bad-call-sid", counts)
            self.consecutive_errors += 1
            if self.consecutive_errors >= MAX_CONSECUTIVE_ERRORS:
                raise _Stop from None
            return
        self.consecutive_errors = 0
        for recording in listed:
            form = callback_form(recording)
            if form["CallSid"] != call_sid or refusal(form, self.ours):
                counts["refused"] += 1  # another call's, another account's, or a malformed id
                continue
            if form["RecordingStatus"] != "completed":
                counts["not_completed"] += 1  # processing: asked again next run; absent/failed: none
                continue
            try:
                self.ports.send(queue_body(form, received_at=self.received_at))
            except Exception:  # noqa: BLE001 - the queue is down: the call stays due, next run
                self.error("queue", counts)
                continue
            counts["recordings_queued"] += 1

    def account(self, account: str, recording: bool = True) -> dict[str, int]:
        counts = {"calls_checked": 0, "recordings_queued": 0, "not_completed": 0, "refused": 0,
                  "errors": 0, "left_for_next_run": 0}
        window = WINDOW if recording else VOICEMAIL_LATER[-1] + RUN_EVERY  # voicemails only: a day
        calls = self.ports.calls_between(account, self.at - window - LONGEST_CALL, self.at - SETTLE)
        due_calls = candidates(calls, self.at, recording)
        counts["left_for_next_run"] = max(0, len(due_calls) - MAX_CALLS_PER_ACCOUNT)
        this_run = due_calls[:MAX_CALLS_PER_ACCOUNT]
        for call in this_run:
            try:
                self.check(str(call.get("call_sid") or ""), counts)
            except _Stop:
                counts["left_for_next_run"] += len(this_run) - counts["calls_checked"]
                raise _Stop(counts) from None
        return counts


def reconcile(at: datetime, ports: ReconcilePorts) -> dict[str, Any]:
    """Ask Twilio about every due call (bounded) and queue what it lists. Returns the summary."""
    run = _Run(at, ports)
    by_account: dict[str, dict[str, int]] = {}
    stopped: str | None = None
    for config in ports.accounts():
        if isinstance(config, BrokenAccount):
            continue
        try:
            by_account[config.account] = run.account(config.account, recording_on(config))
        except _Stop as stop:
            by_account[config.account] = stop.counts
            stopped = "twilio-unavailable"
            break
    keys = ("calls_checked", "recordings_queued", "not_completed", "refused", "errors", "left_for_next_run")
    return {
        "job": JOB_NAME,
        "time": iso(at),
        "accounts_checked": len(by_account),
        **{key: sum(counts[key] for counts in by_account.values()) for key in keys},
        "error_reasons": dict(run.reasons),
        "stopped": stopped,
        "by_account": by_account,
    }


def _ports() -> ReconcilePorts:
    from calltrack.accounts import account_reader
    from calltrack.call_items import call_items
    from recording_ingest import runtime
    from recording_ingest.fetch import TwilioApi

    settings = runtime.ensure_started(NEEDS)
    creds = runtime.credentials(settings)
    allow_http = settings.local_mode  # settings already refuse an http base outside local mode
    timeout = min(settings.recording_fetch_timeout_s, 10.0)
    calls = call_items()
    queue = settings.recording_queue_url

    api = TwilioApi(settings.twilio_api_base_url, creds, allow_http=allow_http, timeout_s=timeout)

    def listed(call_sid: str) -> list[dict[str, Any]]:
        return api.list_recordings(settings.twilio_account_sid, call_sid)

    return ReconcilePorts(
        accounts=account_reader().all,
        calls_between=calls.between,
        list_recordings=listed,
        send=lambda body: runtime.sqs_client().send_message(QueueUrl=queue, MessageBody=body),
        twilio_account_sid=settings.twilio_account_sid,
    )


@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from calltrack.observability import make_logger
    from calltrack.schedule import job_event
    from recording_ingest import runtime

    at = job_event(event or {}, now=runtime.now()).at
    summary = reconcile(at, _ports())
    make_logger("recording_reconcile").info("recording reconciliation", extra={"summary": summary})
    return summary
