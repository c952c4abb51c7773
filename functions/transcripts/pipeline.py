"""One message of the transcripts queue in, the call's transcript and rule hits out (ports only).

The queue carries two kinds of message:
- call events from the call-changes fan-out (``{"type": "call.updated" | "call.completed" ...}``):
  a ``recording`` that became ``stored`` starts a transcription job (account opted in, talk long
  enough); one that became ``expired`` removes the transcript (retention follows the recording's);
  a completed call, a ``transcript`` that became ``stored``, or an ended call whose talk time or
  channel changed (the answer that lands after a provisional completion) applies the call rules;
- EventBridge's "Transcribe Job State Change" for one of our jobs: the output JSON is parsed,
  capped and stored on the call (``transcript``), then deleted from S3;
- ``transcript.check``, which this function sends itself for each job it starts: EventBridge
  delivers events best effort, so a job whose transcript is still in progress after 15 minutes,
  1, 3 and 6 hours is looked up (GetTranscriptionJob) and applied as its event would have been;
- ``transcript.retry`` (``POST /v1/transcripts/retry``, ``transcripts.retry``): a transcript that
  ended ``failed`` (Transcribe at its limit or unreachable through every try, a permission
  refused) is started again, as its recording's first ``stored`` event started it.

Everything is idempotent: a job's name is derived from its recording (a second start is refused
by Transcribe), a stored transcript is never stored again, and rule hits are written with the
call's version as the condition (``CallItems.amend_at_version``), so each rule hits a call once
however often events repeat.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from transcripts import rules
from transcripts.engine import JobRefused, JobRequest, TranscriptionEngine, job_ids, job_name, output_key
from transcripts.parse import capped, segments

JOB_STATE_CHANGE = "Transcribe Job State Change"
CONFLICT_RETRIES = 5
# What a rule's conditions read besides the transcript. The two callbacks that end a call land in
# either order: call.completed may carry the provisional "missed, 0 s" and the answer an update.
RULE_INPUTS = frozenset({"talk_seconds", "channel"})


class CallStore(Protocol):
    def get(self, call_sid: str, *, consistent: bool = False) -> dict[str, Any] | None: ...

    def amend(self, account: str, call_sid: str, changes: Mapping[str, Any]) -> dict[str, Any]: ...

    def amend_at_version(
        self, account: str, call_sid: str, version: int, changes: Mapping[str, Any]
    ) -> dict[str, Any] | None: ...


class CallKeptChanging(Exception):
    """Another writer kept changing the call between our read and our conditional write: retry later."""


def _until_written(call_sid: str, attempt: Callable[[], str | None]) -> str:
    """``attempt`` reads the call and writes only over the version it read, answering its outcome,
    or None when another writer came first; tried again ``CONFLICT_RETRIES`` times."""
    for _ in range(CONFLICT_RETRIES):
        outcome = attempt()
        if outcome is not None:
            return outcome
    raise CallKeptChanging(f"call {call_sid} changed under every try")


@dataclass
class Ports:
    calls: CallStore
    config_for: Callable[[str], Any]  # account -> its AccountConfig, or None
    engine: TranscriptionEngine
    now: Callable[[], datetime]
    # (call_sid, job name) -> a ``transcript.check`` message onto this function's own queue
    watch: Callable[[str, str], None] = lambda call_sid, job: None


CHECK = "transcript.check"
RETRY = "transcript.retry"


def retry_message(call_sid: str) -> dict[str, str]:
    """The message that starts a failed transcript's job again (``transcripts.retry``)."""
    return {"type": RETRY, "call_sid": call_sid}


def watch_message(call_sid: str, job: str) -> dict[str, str]:
    """The message that looks at a started job until its transcript is stored or failed."""
    return {"type": CHECK, "call_sid": call_sid, "job": job}


class JobPending(Exception):
    """The job has not finished (or it is too early to look): look again later."""


def _iso(ports: Ports) -> str:
    return ports.now().strftime("%Y-%m-%dT%H:%M:%SZ")


def handle(message: Mapping[str, Any], ports: Ports, *, first_look: bool = False) -> str:
    """Route one queue message; returns what was done (for logs and tests). ``first_look``: the
    message is received for the first time (a job check then only waits)."""
    if message.get("source") == "aws.transcribe" and message.get("detail-type") == JOB_STATE_CHANGE:
        return job_state_changed(message.get("detail") or {}, ports)
    if message.get("type") == CHECK:
        return check_job(message, ports, first=first_look)
    if message.get("type") == RETRY:
        return start_transcription(str(message.get("call_sid")), ports, again=True)
    if not str(message.get("type", "")).startswith("call."):
        return "ignored"
    call = message.get("call") or {}
    changed = set(message.get("changed") or [])
    call_sid = str(message.get("call_sid"))
    # Most call events concern neither: decide from the event (and the cached account config)
    # before reading the call.
    account = str(message.get("account") or call.get("account") or "")
    config = ports.config_for(account) if account else None
    outcomes = []
    recording = call.get("recording") or {}
    # The stored recording starts the transcript; so does the talk time when it lands after it (the
    # <Dial> result replayed from the outbox after a storage outage: the recording's own event
    # found the call 0 s long, too short to transcribe)
    stored = recording.get("status") == "stored"
    late_talk = "talk_seconds" in changed and not call.get("transcript")
    if stored and ("recording" in changed or late_talk):
        transcribing = config is not None and config.transcription.enabled
        outcomes.append(start_transcription(call_sid, ports) if transcribing else "not-enabled")
    if "recording" in changed and recording.get("status") == "expired" and call.get("transcript"):
        outcomes.append(forget_transcript(call_sid, ports))
    transcript = call.get("transcript") or {}
    trigger = "completed" if message.get("type") == "call.completed" else (
        "transcript" if "transcript" in changed and transcript.get("status") == "stored" else
        "updated" if call.get("ended_at") and RULE_INPUTS & changed else None
    )
    if trigger is not None:
        has_rules = config is not None and bool(config.call_rules)
        outcomes.append(apply_rules(call_sid, ports, trigger=trigger) if has_rules else "no-rules")
    return ",".join(outcomes) or "ignored"


# --------------------------------------------------------------------------- transcription


def start_transcription(call_sid: str, ports: Ports, *, again: bool = False) -> str:
    """Start the job of the recording the call holds (once: a duplicate event finds it started,
    stored or failed). ``again``: a ``failed`` transcript is started once more (under the same
    job name: a job Transcribe did run is then applied by its watch, one it never started starts)."""
    call = ports.calls.get(call_sid, consistent=True)
    if call is None or not call.get("account"):
        return "unknown-call"
    config = ports.config_for(str(call["account"]))
    if config is None or not config.transcription.enabled:
        return "not-enabled"
    recording = call.get("recording") or {}
    if recording.get("status") != "stored" or not recording.get("s3_key"):
        return "no-recording"
    if float(call.get("talk_seconds") or 0) < config.transcription.min_talk_seconds:
        return "too-short"
    sid = str(recording.get("recording_sid"))
    current = call.get("transcript") or {}
    done = ("stored",) if again else ("stored", "failed")
    if current.get("recording_sid") == sid and current.get("status") in done:
        return "duplicate"
    name = job_name(call_sid, sid)
    if current.get("status") != "in_progress" or current.get("recording_sid") != sid:
        # Shown before the job starts, so a fast completion is never overwritten by it; and shown
        # for this recording when another one's job was in progress (the call keeps its last
        # stored recording: the older job's result is discarded, this job's watch looks for it).
        ports.calls.amend(str(call["account"]), call_sid, {"transcript": {
            "status": "in_progress", "job": name, "recording_sid": sid,
            "language": config.language, "requested_at": _iso(ports),
            "output_key": output_key(str(recording["s3_key"])),
        }})
    job = JobRequest(
        name=name,
        media_key=str(recording["s3_key"]),
        output_key=output_key(str(recording["s3_key"])),
        language=config.language,
        channels=int(recording.get("channels") or 1),
    )
    try:
        started = ports.engine.start(job)
        if not started and again and _spent(ports.engine, job):
            # a retry of a job Transcribe ran and failed, or finished so long ago that its output
            # is gone (7 days): that job can give nothing more, so it is deleted and run again
            ports.engine.forget(name)
            started = ports.engine.start(job)
    except JobRefused as refused:
        ports.calls.amend(str(call["account"]), call_sid, {"transcript": {
            "status": "failed", "job": name, "recording_sid": sid, "language": config.language,
            "reason": str(refused),
        }})
        return "refused"
    ports.watch(call_sid, name)  # in case the completion event never comes
    return "started" if started else "already-started"


def _spent(engine: TranscriptionEngine, job: JobRequest) -> bool:
    """The job of that name can give no transcript any more: it failed, or it completed and its
    output JSON is gone."""
    status = (engine.state(job.name) or {}).get("TranscriptionJobStatus")
    return status == "FAILED" or (status == "COMPLETED" and engine.output(job.output_key) is None)


def check_job(message: Mapping[str, Any], ports: Ports, *, first: bool) -> str:
    """A started job's watch: nothing to do once the transcript is stored or failed; else ask
    Transcribe and apply a finished job as its event would have (idempotent with a late event), or
    start a job Transcribe has never heard of. ``JobPending`` asks the queue to deliver it later
    (the first look always waits: the event normally comes within minutes)."""
    call_sid, name = str(message.get("call_sid", "")), str(message.get("job", ""))
    call = ports.calls.get(call_sid, consistent=True)
    current = (call or {}).get("transcript") or {}
    if call is None or current.get("status") != "in_progress" or current.get("job") != name:
        return "settled"
    if first:
        raise JobPending("first look")
    state = ports.engine.state(name)
    if state is None:
        restarted = start_transcription(call_sid, ports)
        if restarted not in ("started", "already-started"):  # it cannot start now: say so
            gave_up = give_up_transcription(
                call_sid, ports, f"the job never reached Amazon Transcribe ({restarted})")
            return f"restarted:{restarted},{gave_up}"
        return "restarted:" + restarted
    status = state.get("TranscriptionJobStatus", "")
    if status in ("COMPLETED", "FAILED"):
        return "recovered:" + job_state_changed({"TranscriptionJobName": name, **state}, ports)
    raise JobPending(status or "unknown")


def give_up_transcription(call_sid: str, ports: Ports, reason: str, *, job: str | None = None) -> str:
    """A transcript still ``in_progress`` whose job never started (Transcribe stayed at its limit
    through every try) becomes ``failed`` with the reason, instead of in progress for ever.
    ``job``: only when the transcript in progress is that job's (a message about another job —
    an older recording's — gives up nothing)."""

    def attempt() -> str | None:
        call = ports.calls.get(call_sid, consistent=True)
        current = (call or {}).get("transcript") or {}
        if call is None or not call.get("account") or current.get("status") != "in_progress":
            return "not-in-progress"
        if job is not None and current.get("job") != job:
            return "another-job"
        # only over the call as read: a result stored meanwhile is never overwritten by a give-up
        changes = {"transcript": {**current, "status": "failed", "reason": reason[:300], "gave_up": True}}
        version = int(call.get("version") or 0)
        written = ports.calls.amend_at_version(str(call["account"]), call_sid, version, changes)
        return "failed" if written is not None else None

    return _until_written(call_sid, attempt)


def job_state_changed(detail: Mapping[str, Any], ports: Ports) -> str:
    ids = job_ids(str(detail.get("TranscriptionJobName", "")))
    if ids is None:
        return "not-ours"
    call_sid, recording_sid = ids
    return _until_written(call_sid, lambda: _apply_job_state(call_sid, recording_sid, detail, ports))


def _apply_job_state(
    call_sid: str, recording_sid: str, detail: Mapping[str, Any], ports: Ports
) -> str | None:
    """One try of ``job_state_changed``; None when the call changed between the read and the write
    (the transcript's result is written only over the call read, so the event and the job's watch
    cannot both store it)."""
    call = ports.calls.get(call_sid, consistent=True)
    if call is None or not call.get("account"):
        return "unknown-call"
    account = str(call["account"])
    version = int(call.get("version") or 0)
    current = call.get("transcript") or {}
    recording = call.get("recording") or {}
    settled = current.get("status") == "stored" or (
        current.get("status") == "failed" and not current.get("gave_up")  # a give-up yields to a result
    )
    if current.get("recording_sid") == recording_sid and settled:
        # A repeat, or the first try stored the transcript and failed to delete the output: a
        # caller's words must not outlive the call's retention in S3 (deleting twice is harmless).
        if recording.get("recording_sid") == recording_sid and recording.get("s3_key"):
            ports.engine.discard(output_key(str(recording["s3_key"])))
        return "duplicate"
    if recording.get("recording_sid") != recording_sid or not recording.get("s3_key"):
        if current.get("recording_sid") == recording_sid and current.get("output_key"):
            ports.engine.discard(str(current["output_key"]))  # the job's own output, named at its start
        return "recording-gone"
    language = str(current.get("language") or "ja-JP")
    base = {"job": str(detail["TranscriptionJobName"]), "recording_sid": recording_sid, "language": language}
    status = str(detail.get("TranscriptionJobStatus", ""))
    if status == "FAILED":
        reason = str(detail.get("FailureReason") or "transcription failed")[:300]
        changes: dict[str, Any] = {"transcript": {**base, "status": "failed", "reason": reason}}
        written = ports.calls.amend_at_version(account, call_sid, version, changes)
        return "failed" if written is not None else None
    if status != "COMPLETED":
        return "ignored"
    key = output_key(str(recording["s3_key"]))
    output = ports.engine.output(key)
    if output is None:
        raise RuntimeError(f"transcript output {key} not found")  # retried: S3 may lag the event
    kept, truncated = capped(segments(output, language))
    changes = {"transcript": {
        **base, "status": "stored", "segments": kept, "truncated": truncated, "stored_at": _iso(ports),
    }}
    if ports.calls.amend_at_version(account, call_sid, version, changes) is None:
        return None
    ports.engine.discard(key)
    return "stored"


def forget_transcript(call_sid: str, ports: Ports) -> str:
    call = ports.calls.get(call_sid, consistent=True)
    if call is None or not call.get("transcript"):
        return "nothing-to-forget"
    ports.calls.amend(str(call["account"]), call_sid, {"transcript": None})
    return "transcript-expired"


# --------------------------------------------------------------------------- call rules


def apply_rules(call_sid: str, ports: Ports, *, trigger: str) -> str:
    """Record every rule that hits the call now and has not hit it before, with its effects."""

    def attempt() -> str | None:
        call = ports.calls.get(call_sid, consistent=True)
        if call is None or not call.get("account"):
            return "unknown-call"
        config = ports.config_for(str(call["account"]))
        if config is None or not config.call_rules:
            return "no-rules"
        hits = rules.new_hits(config.call_rules, call, config.language)
        if not hits:
            return "no-hits"
        changes = rules.effects(call, hits, at=_iso(ports), trigger=trigger)
        version = int(call.get("version") or 0)
        if ports.calls.amend_at_version(str(call["account"]), call_sid, version, changes) is None:
            return None
        return "hit:" + "+".join(rule.name for rule, _ in hits)

    return _until_written(call_sid, attempt)
