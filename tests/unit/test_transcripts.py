"""Transcripts: Transcribe's output parsed, the StartTranscriptionJob request, call rules, the
pipeline's idempotency over fakes, and the account config's new keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from calltrack.account_config import ConfigError, parse_config
from calltrack.errors import NotFound
from tests.support.accounts import account_config
from transcripts import rules
from transcripts.engine import AwsTranscribe, JobRequest, job_ids, job_name, output_key, start_request
from transcripts.parse import capped, segments
from transcripts.pipeline import Ports, handle

FIXTURE = Path(__file__).parent / "fixtures" / "transcribe_channel_id_output.json"
CALL = "CA" + "1" * 32
REC = "RE" + "2" * 32
KEY = f"recordings/acme/2026/11/{CALL}/{REC}.mp3"


# --------------------------------------------------------------------------- Transcribe's output


def test_channel_identified_output_becomes_caller_and_staff_segments_in_time_order() -> None:
    # Given Transcribe's documented output of a dual-channel job (channel_labels ch_0 / ch_1)
    output = json.loads(FIXTURE.read_text())
    # When it is parsed
    found = segments(output, "en-US")
    # Then ch_0 is the caller (Twilio's parent leg), ch_1 the staff; sentences and pauses cut segments
    assert found == [
        ["caller", 1.02, "Hi, I'd like to book a cleaning."],
        ["staff", 3.1, "Sure, how about Saturday?"],
        ["caller", 7.4, "Saturday works."],
    ]


def test_mono_output_has_an_unknown_speaker_and_japanese_tokens_join_without_spaces() -> None:
    output = {"results": {"items": [
        word("0.5", "0.9", "予約"),
        word("0.9", "1.2", "したい"),
        {"type": "punctuation", "alternatives": [{"content": "。"}]},
    ]}}
    assert segments(output, "ja-JP") == [["unknown", 0.5, "予約したい。"]]


def test_a_long_transcript_is_capped_and_says_so() -> None:
    lines = [["caller", float(i), "あ" * 1000] for i in range(100)]  # 3 KB each in UTF-8
    kept, truncated = capped(lines)
    assert truncated and 10 < len(kept) < 100
    assert sum(len(s[2].encode()) for s in kept) <= 48 * 1024
    assert capped(lines[:3]) == (lines[:3], False)


# --------------------------------------------------------------------------- the AWS adapter


def test_the_start_request_names_the_media_language_channels_and_encrypted_output() -> None:
    job = JobRequest(job_name(CALL, REC), KEY, output_key(KEY), "ja-JP", channels=2)
    params = start_request(job, "rec-bucket", "arn:aws:kms:ap-northeast-1:1:key/k")
    assert params == {
        "TranscriptionJobName": f"calltrack-{CALL}-{REC}",
        "LanguageCode": "ja-JP",
        "MediaFormat": "mp3",
        "Media": {"MediaFileUri": f"s3://rec-bucket/{KEY}"},
        "OutputBucketName": "rec-bucket",
        "OutputKey": f"transcripts/acme/2026/11/{CALL}/{REC}.json",
        "OutputEncryptionKMSKeyId": "arn:aws:kms:ap-northeast-1:1:key/k",
        "Settings": {"ChannelIdentification": True},
    }
    mono = start_request(JobRequest(job.name, KEY, job.output_key, "en-US", channels=1), "b", "")
    assert "Settings" not in mono and "OutputEncryptionKMSKeyId" not in mono
    assert job_ids(job.name) == (CALL, REC) and job_ids("someone-elses-job") is None
    assert job_ids(job.name + "\n") is None


class ConflictError(Exception):
    response = {"Error": {"Code": "ConflictException"}}


class FakeTranscribeClient:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def start_transcription_job(self, **params: Any) -> dict[str, Any]:
        if any(r["TranscriptionJobName"] == params["TranscriptionJobName"] for r in self.requests):
            raise ConflictError()
        self.requests.append(params)
        return {}


class BadRequestError(Exception):
    response = {"Error": {"Code": "BadRequestException", "Message": "Unsupported language code"}}


def test_a_job_transcribe_refuses_for_good_is_a_failed_transcript_not_a_retry() -> None:
    class RefusingTranscribe:
        def start_transcription_job(self, **params: Any) -> dict[str, Any]:
            raise BadRequestError()

    calls, _, ports = world()
    ports.engine = AwsTranscribe(RefusingTranscribe(), s3=None, bucket="b")
    assert handle(recording_stored(), ports) == "refused"
    assert calls.call["transcript"]["status"] == "failed"
    assert calls.call["transcript"]["reason"] == "Unsupported language code"


def test_starting_the_same_job_twice_is_refused_by_transcribe_and_reported_not_raised() -> None:
    client = FakeTranscribeClient()
    engine = AwsTranscribe(client, s3=None, bucket="b")
    job = JobRequest(job_name(CALL, REC), KEY, output_key(KEY), "ja-JP", 2)
    assert engine.start(job) is True
    assert engine.start(job) is False
    assert len(client.requests) == 1


# --------------------------------------------------------------------------- config


BOOKING = {
    "name": "booking",
    "when": {"phrases_any": ["予約"], "speaker": "caller", "min_talk_seconds": 30},
    "then": {"tags_add": ["booking"], "stage": "lead", "score_add": 20},
}


def test_call_rules_transcription_and_the_pass_line_are_validated_naming_the_field() -> None:
    config = parse_config(account_config(
        "acme", transcription={"enabled": True}, call_rules=[BOOKING], review={"pass_score": 75}
    ))
    assert config.transcription.min_talk_seconds == 20 and config.review.pass_score == 75
    assert config.call_rules[0].then.stage == "lead"
    bad = [
        ({"call_rules": [BOOKING, BOOKING]}, "call_rules[1].name"),
        ({"call_rules": [{**BOOKING, "then": {"stage": "hot"}}]}, "call_rules[0].then.stage"),
        ({"call_rules": [{**BOOKING, "when": {"speaker": "caller"}}]}, "call_rules[0].when.speaker"),
        ({"call_rules": [{**BOOKING, "if": {}}]}, "call_rules[0].if"),
        ({"review": {"pass_score": 101}}, "review.pass_score"),
        ({"transcription": {"enabled": True, "min_talk_seconds": -1}}, "transcription.min_talk_seconds"),
        ({"transcription": {"enabled": True}, "language": "ja"}, "language"),
    ]
    for overrides, field in bad:
        with pytest.raises(ConfigError) as err:
            parse_config(account_config("acme", **overrides))
        assert err.value.field == field, (overrides, err.value.errors)


# --------------------------------------------------------------------------- rules


def config(**overrides: Any) -> Any:
    base = {"transcription": {"enabled": True}, "recording": {"enabled": True}, "call_rules": [BOOKING]}
    return parse_config(account_config("acme", **{**base, **overrides}))


def transcript(*lines: tuple[str, str]) -> dict[str, Any]:
    return {"status": "stored", "segments": [[s, float(i), t] for i, (s, t) in enumerate(lines)]}


def test_a_phrase_hits_only_in_what_the_named_speaker_said_normalised() -> None:
    rule = config().call_rules[0]
    said = transcript(("staff", "ご予約ですか"), ("caller", "はい、ヨヤクではなく予 約を"))
    call = {"talk_seconds": 95, "transcript": said}
    assert rules.hit(rule, call, "ja-JP") == {"phrase": "予約"}
    staff_only = {"talk_seconds": 95, "transcript": transcript(("staff", "ご予約ですか"))}
    assert rules.hit(rule, staff_only, "ja-JP") is None
    short = {**call, "talk_seconds": 12}
    assert rules.hit(rule, short, "ja-JP") is None


def test_effects_add_tags_once_raise_the_stage_never_lower_it_and_keep_the_score_in_range() -> None:
    rule = config().call_rules[0]
    call = {"tags": ["booking", "vip"], "stage": "won", "score": 90, "rule_hits": {}}
    changes = rules.effects(call, [(rule, {"phrase": "予約"})], at="2026-11-30T00:00:00Z",
                            trigger="transcript")
    assert changes == {
        "rule_hits": {"booking": {"at": "2026-11-30T00:00:00Z", "trigger": "transcript", "phrase": "予約"}},
        "score": 100,
    }
    fresh = rules.effects({}, [(rule, {})], at="t", trigger="completed")
    assert (fresh["tags"], fresh["stage"], fresh["score"]) == (["booking"], "lead", 20)
    assert rules.new_hits([rule], {"rule_hits": {"booking": {}}, "talk_seconds": 99,
                                   "transcript": transcript(("caller", "予約"))}, "ja-JP") == []


# --------------------------------------------------------------------------- the pipeline (fakes)


class FakeCalls:
    """CallItems' semantics that matter here: every write bumps version; amend_at_version is
    conditional on it."""

    def __init__(self, call: dict[str, Any]) -> None:
        self.call = {"version": 1, **call}
        self.writes: list[dict[str, Any]] = []
        self.interleave: list[dict[str, Any]] = []  # writes by someone else, one per conditional try

    def get(self, call_sid: str, *, consistent: bool = False) -> dict[str, Any] | None:
        return json.loads(json.dumps(self.call)) if call_sid == self.call["call_sid"] else None

    def amend(self, account: str, call_sid: str, changes: dict[str, Any]) -> dict[str, Any]:
        if account != self.call["account"]:
            raise NotFound("no such call")
        for k, v in changes.items():
            if v is None:
                self.call.pop(k, None)
            else:
                self.call[k] = v
        self.call["version"] += 1
        self.writes.append(dict(changes))
        return self.call

    def amend_at_version(self, account: str, call_sid: str, version: int, changes: dict[str, Any]) -> Any:
        if self.interleave:
            self.amend(account, call_sid, self.interleave.pop(0))
        if version != self.call["version"]:
            return None
        return self.amend(account, call_sid, changes)


class FailingTranscribe:
    """A Transcribe client whose every start fails with ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def start_transcription_job(self, **params: Any) -> dict[str, Any]:
        raise self.error


def handler_with(monkeypatch: pytest.MonkeyPatch, transcribe: Any) -> tuple[Any, list[int], Any]:
    """The transcripts handler over ``world()`` with this Transcribe client: (calls, the delays the
    handler set, deliver(receive_count) -> the handler's answer to the recording-stored event)."""
    import calltrack.queue_retry
    import transcripts.handler as handler_module
    import transcripts.runtime
    from tests.support.events import lambda_context

    calls, _, ports = world()
    ports.engine = AwsTranscribe(transcribe, s3=None, bucket="b")
    deferred: list[int] = []
    monkeypatch.setattr(transcripts.runtime, "ports", lambda: ports)
    monkeypatch.setattr(transcripts.runtime, "sqs", lambda: None)
    monkeypatch.setattr(calltrack.queue_retry, "defer", lambda _sqs, _arn, _r, delay: deferred.append(delay))

    def deliver(receive_count: int) -> dict[str, Any]:
        record = {"messageId": "m1", "receiptHandle": "r1", "body": json.dumps(recording_stored()),
                  "attributes": {"ApproximateReceiveCount": str(receive_count)}, "messageAttributes": {},
                  "md5OfBody": "", "eventSource": "aws:sqs",
                  "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:calltrack-transcripts",
                  "awsRegion": "us-east-1"}
        return handler_module.handler({"Records": [record]}, lambda_context("transcripts"))

    return calls, deferred, deliver


class InternalFailureError(Exception):
    response = {"Error": {"Code": "InternalFailureException", "Message": "service trouble"}}


def test_a_transcription_failing_for_any_other_reason_ends_failed_not_in_progress_for_ever(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    import transcripts.handler as handler_module

    # Given Transcribe failing with an error that is neither "busy" nor a refusal of the job
    calls, deferred, deliver = handler_with(monkeypatch, FailingTranscribe(InternalFailureError()))
    # When the recording-stored event fails on every receive
    for receive in range(1, handler_module.MAX_RECEIVES + 1):
        with pytest.raises(BatchProcessingError):
            deliver(receive)
        if receive < handler_module.MAX_RECEIVES:
            assert calls.call["transcript"]["status"] == "in_progress"
    # Then it came back later and later (about 10 hours, not 30 minutes at the queue's default),
    # and after the last receive the transcript is failed with the reason
    assert deferred == list(handler_module.BUSY_DELAYS_S)
    assert calls.call["transcript"]["status"] == "failed"
    assert "InternalFailure" in calls.call["transcript"]["reason"]


@pytest.mark.parametrize(("message", "call"), [
    ({"type": "call.updated", "call_sid": CALL}, CALL),
    ({"detail-type": "Transcribe Job State Change", "detail": {"TranscriptionJobName": "ours"}}, CALL),
    ({"detail-type": "Transcribe Job State Change", "detail": {"TranscriptionJobName": "other"}}, None),
])
def test_every_transcripts_message_names_its_call(message: dict[str, Any], call: str | None) -> None:
    from transcripts.engine import job_name
    from transcripts.handler import call_of

    if "detail" in message and call:
        message["detail"]["TranscriptionJobName"] = job_name(CALL, REC)
    assert call_of(message) == call


class FakeEngine:
    def __init__(self, output: dict[str, Any] | None) -> None:
        self.started: list[JobRequest] = []  # every job started, in order
        self.jobs: set[str] = set()  # the names Transcribe holds a job of
        self.forgotten: list[str] = []
        self.out = output
        self.discarded: list[str] = []

    def start(self, job: JobRequest) -> bool:
        if job.name in self.jobs:
            return False
        self.jobs.add(job.name)
        self.started.append(job)
        return True

    def forget(self, name: str) -> None:
        self.jobs.discard(name)
        self.forgotten.append(name)

    def output(self, key: str) -> dict[str, Any] | None:
        return self.out

    def discard(self, key: str) -> None:
        self.discarded.append(key)

    def state(self, name: str) -> dict[str, str] | None:
        if name not in self.jobs:
            return None
        return {"TranscriptionJobStatus": self.status}

    status = "COMPLETED"


def word(start: str, end: str, content: str) -> dict[str, Any]:
    alternatives = [{"content": content}]
    return {"type": "pronunciation", "start_time": start, "end_time": end, "alternatives": alternatives}


def world(**call: Any) -> tuple[FakeCalls, FakeEngine, Ports]:
    calls = FakeCalls({"call_sid": CALL, "account": "acme", "talk_seconds": 95, "channel": "flyer",
                       "recording": {"status": "stored", "recording_sid": REC, "s3_key": KEY, "channels": 2},
                       **call})
    engine = FakeEngine({"results": {"channel_labels": {"channels": [
        {"channel_label": "ch_0", "items": [
            word("2.0", "2.5", "予約"),
            word("2.5", "2.9", "したい"),
        ]},
    ]}}})
    watched: list[tuple[str, str]] = []
    ports = Ports(calls=calls, config_for=lambda a: config() if a == "acme" else None, engine=engine,
                  now=lambda: datetime(2026, 11, 30, 9, tzinfo=UTC),
                  watch=lambda call_sid, job: watched.append((call_sid, job)))
    ports.watched = watched  # type: ignore[attr-defined]
    return calls, engine, ports


def recording_stored() -> dict[str, Any]:
    return {"type": "call.updated", "account": "acme", "call_sid": CALL, "changed": ["recording"],
            "call": {"recording": {"status": "stored"}}}


def job_done(status: str = "COMPLETED") -> dict[str, Any]:
    return {"source": "aws.transcribe", "detail-type": "Transcribe Job State Change",
            "detail": {"TranscriptionJobName": job_name(CALL, REC), "TranscriptionJobStatus": status}}


def test_the_pipeline_starts_one_job_stores_the_transcript_once_and_hits_each_rule_once() -> None:
    calls, engine, ports = world()
    # When the recording-stored event arrives twice, then one job, shown in progress once
    assert handle(recording_stored(), ports) == "started"
    assert handle(recording_stored(), ports) == "already-started"
    assert len(engine.started) == 1 and calls.call["transcript"]["status"] == "in_progress"
    # When Transcribe's completion arrives twice, the transcript is stored once and the output deleted
    assert handle(job_done(), ports) == "stored"
    assert handle(job_done(), ports) == "duplicate"
    assert calls.call["transcript"]["segments"] == [["caller", 2.0, "予約したい"]]
    assert set(engine.discarded) == {output_key(KEY)}  # deleted (and again by the repeat: harmless)
    # When the transcript's update event arrives (twice), the rule hits once
    transcript_event = {"type": "call.updated", "account": "acme", "call_sid": CALL,
                        "changed": ["transcript"], "call": {"transcript": {"status": "stored"}}}
    assert handle(transcript_event, ports) == "hit:booking"
    assert handle(transcript_event, ports) == "no-hits"
    completed = {"type": "call.completed", "account": "acme", "call_sid": CALL, "changed": ["ended_at"],
                 "call": {}}
    assert handle(completed, ports) == "no-hits"
    assert (calls.call["stage"], calls.call["score"], calls.call["tags"]) == ("lead", 20, ["booking"])


def test_a_talk_time_that_lands_after_a_provisional_completion_is_checked_against_the_rules() -> None:
    # Given a rule on talk time only, and a call whose status callback ended it first: missed, 0 s
    long_call = {"name": "long-call", "when": {"min_talk_seconds": 60}, "then": {"stage": "lead"}}
    calls, _, ports = world(talk_seconds=0, status="missed", ended_at="2026-11-30T00:06:00Z")
    ports.config_for = lambda a: config(call_rules=[long_call])
    completed = {"type": "call.completed", "account": "acme", "call_sid": CALL, "changed": ["ended_at"],
                 "call": {"ended_at": "2026-11-30T00:06:00Z"}}
    assert handle(completed, ports) == "no-hits"
    # When the <Dial> action's answer lands as an update: answered, 300 s
    calls.amend("acme", CALL, {"talk_seconds": 300, "status": "answered"})
    answer = {"type": "call.updated", "account": "acme", "call_sid": CALL,
              "changed": ["status", "talk_seconds"],
              "call": {"ended_at": "2026-11-30T00:06:00Z", "talk_seconds": 300}}
    # Then the rule hits (once, however often the update repeats)
    assert handle(answer, ports) == "hit:long-call"
    assert handle(answer, ports) == "no-hits"
    assert calls.call["stage"] == "lead" and calls.call["rule_hits"]["long-call"]["trigger"] == "updated"
    # And a call still ringing is not judged on its talk time yet
    ringing = {**answer, "call": {"talk_seconds": 300}}
    assert handle(ringing, ports) == "ignored"


def test_a_talk_time_that_lands_after_the_stored_recording_starts_its_transcript() -> None:
    # Given a call whose recording was stored while its <Dial> result waited in the outbox: 0 s
    calls, engine, ports = world(talk_seconds=0)
    assert handle(recording_stored(), ports) == "too-short" and not engine.started
    # When the replayed <Dial> result lands: answered, 180 s
    calls.amend("acme", CALL, {"talk_seconds": 180, "status": "answered"})
    answer = {"type": "call.updated", "account": "acme", "call_sid": CALL,
              "changed": ["status", "talk_seconds"],
              "call": {"talk_seconds": 180, "recording": {"status": "stored"}}}
    # Then the transcript is started, once however often the update repeats
    assert handle(answer, ports) == "started"
    assert len(engine.started) == 1 and calls.call["transcript"]["status"] == "in_progress"
    answer["call"]["transcript"] = {"status": "in_progress"}
    assert handle(answer, ports) == "ignored" and len(engine.started) == 1
    # And a talk time that changes on a call without a stored recording starts nothing
    calls, engine, ports = world(talk_seconds=180, recording={"status": "retrying"})
    assert handle({**answer, "call": {"talk_seconds": 180, "recording": {"status": "retrying"}}},
                  ports) == "ignored" and not engine.started


def test_a_transcribe_output_the_first_try_failed_to_delete_is_deleted_by_the_retry() -> None:
    # Given the transcript was stored but deleting Transcribe's output JSON failed (S3 slowdown)
    calls, engine, ports = world()
    assert handle(recording_stored(), ports) == "started"
    fail = [RuntimeError("SlowDown")]

    def discard_once(key: str) -> None:
        if fail:
            raise fail.pop()
        engine.discarded.append(key)

    engine.discard = discard_once  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        handle(job_done(), ports)
    assert calls.call["transcript"]["status"] == "stored" and engine.discarded == []
    # When SQS delivers the event again
    assert handle(job_done(), ports) == "duplicate"
    # Then the output JSON (the caller's words) is deleted, not kept past the call's retention
    assert engine.discarded == [output_key(KEY)]


def test_the_output_of_a_job_whose_recording_changed_meanwhile_is_deleted() -> None:
    # Given a job started on one recording, and the call's recording gone (expired) before it ended
    calls, engine, ports = world()
    assert handle(recording_stored(), ports) == "started"
    calls.amend("acme", CALL, {"recording": {"status": "expired", "recording_sid": REC}})
    # When the job's completion arrives
    assert handle(job_done(), ports) == "recording-gone"
    # Then its output, named when the job started, is deleted
    assert engine.discarded == [output_key(KEY)]


def test_a_concurrent_write_between_read_and_hit_is_retried_on_the_new_version() -> None:
    calls, _, ports = world(transcript=transcript(("caller", "予約したい")), score=10)
    calls.interleave = [{"score": 50}]  # a manager's PATCH lands between our read and our write
    event = {"type": "call.updated", "account": "acme", "call_sid": CALL, "changed": ["transcript"],
             "call": {"transcript": {"status": "stored"}}}
    assert handle(event, ports) == "hit:booking"
    assert calls.call["score"] == 70  # 50 (the PATCH) + 20, not 10 + 20


def test_off_short_failed_and_expired() -> None:
    _, engine, ports = world(talk_seconds=5)
    assert handle(recording_stored(), ports) == "too-short" and not engine.started
    calls, _, ports = world()
    ports.config_for = lambda a: parse_config(account_config("acme"))
    assert handle(recording_stored(), ports) == "not-enabled"
    calls, _, ports = world()
    assert handle(job_done("FAILED"), ports) == "failed"
    assert calls.call["transcript"]["status"] == "failed"
    calls, _, ports = world(transcript=transcript(("caller", "予約")))
    expired = {"type": "call.updated", "account": "acme", "call_sid": CALL, "changed": ["recording"],
               "call": {"recording": {"status": "expired"}, "transcript": {"status": "stored"}}}
    assert handle(expired, ports) == "transcript-expired" and "transcript" not in calls.call
    assert handle({**job_done(), "detail": {"TranscriptionJobName": "other"}}, ports) == "not-ours"


def test_a_transcript_written_in_another_shape_is_ignored_not_retried_into_the_dlq() -> None:
    # Given a call whose transcript was set to a bare list (a shape the product never writes: by
    # hand, or by a tool)
    from call_changes.events import call_events
    from calltrack.call_items import call_from_item

    image = {"call_sid": {"S": CALL}, "account": {"S": "acme"}, "version": {"N": "3"}}
    listed = {**image, "version": {"N": "4"}, "transcript": {"S": '[["caller", 1.0, "予約したい"]]'}}
    record = {"eventName": "MODIFY", "dynamodb": {"OldImage": image, "NewImage": listed}}
    _, engine, ports = world()
    # When the fan-out reads the stream record, and the consumer gets an event naming the field
    events = call_events(record)
    named = {"type": "call.updated", "account": "acme", "call_sid": CALL, "changed": ["transcript"],
             "call": call_from_item(listed)}
    outcome = handle(json.loads(json.dumps(named)), ports)
    # Then the transcript reads as absent: no event, nothing to do, nothing raises into a retry
    assert events == []
    assert outcome == "ignored" and engine.started == []


@pytest.mark.parametrize("segments", [7, "text", [7, ["caller", 1.0, "予約"]], {"a": 1}])
def test_a_transcript_item_edited_by_hand_into_another_shape_is_shown_not_a_500(segments: Any) -> None:
    from call_records.calls import transcript_summary
    from transcripts.api import transcript_json

    # Given a call whose stored transcript segments are not the list of triples we write
    call = {"call_sid": CALL, "transcript": {"status": "stored", "segments": segments}}
    # Then the transcript route and the call's summary show what is readable
    readable = isinstance(segments, list)
    shown = transcript_json(call)["segments"]
    assert shown == ([{"speaker": "caller", "start": 1.0, "text": "予約"}] if readable else [])
    assert transcript_summary(call["transcript"])["segments"] == (len(segments) if readable else 0)


class LimitExceededError(Exception):
    response = {"Error": {"Code": "LimitExceededException", "Message": "too many jobs"}}


def test_transcribe_at_its_limit_is_tried_later_and_in_the_end_shown_failed_not_in_progress(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import transcripts.handler as handler_module
    from infra.wiring import WIRING

    # Given Transcribe answers LimitExceededException (its quota of jobs at once is reached)
    calls, deferred, deliver = handler_with(monkeypatch, FailingTranscribe(LimitExceededError()))

    # When the recording-stored event is received the first four times, it fails (a batch of one
    # that failed whole: Lambda reports the invocation failed, and SQS keeps the message)
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    for receive in range(1, handler_module.MAX_RECEIVES):
        with pytest.raises(BatchProcessingError):
            deliver(receive)
    # Then each time it comes back later and later (15 min .. 6 h), the transcript shown in progress
    assert deferred == list(handler_module.BUSY_DELAYS_S)
    assert calls.call["transcript"]["status"] == "in_progress"
    # When the queue's last receive finds Transcribe still busy
    assert deliver(handler_module.MAX_RECEIVES) == {"batchItemFailures": []}
    # Then the transcript is failed with the reason (not in progress for ever in the DLQ)
    assert calls.call["transcript"]["status"] == "failed"
    assert "LimitExceededException" in calls.call["transcript"]["reason"]
    # And the handler's last receive is the queue's (infra/wiring.py)
    [queue] = [q for q in WIRING.queues if q.name == "transcripts"]
    assert queue.max_receive_count == handler_module.MAX_RECEIVES


def test_a_job_whose_completion_event_is_lost_is_found_by_its_watch() -> None:
    from transcripts.pipeline import JobPending, watch_message

    # Given a started job, watched by a message to the function's own queue
    calls, engine, ports = world()
    assert handle(recording_stored(), ports) == "started"
    assert ports.watched == [(CALL, job_name(CALL, REC))]  # type: ignore[attr-defined]
    check = watch_message(CALL, job_name(CALL, REC))
    # When the watch is received the first time, it only waits (the event normally comes first)
    with pytest.raises(JobPending):
        handle(check, ports, first_look=True)
    # When it comes back while Transcribe is still working, it waits again
    engine.status = "IN_PROGRESS"
    with pytest.raises(JobPending, match="IN_PROGRESS"):
        handle(check, ports)
    # When the job has completed but its event never came, the watch stores the transcript
    engine.status = "COMPLETED"
    assert handle(check, ports) == "recovered:stored"
    assert calls.call["transcript"]["segments"] == [["caller", 2.0, "予約したい"]]
    # And a late event, or the watch again, changes nothing
    assert handle(job_done(), ports) == "duplicate"
    assert handle(check, ports) == "settled"


def test_a_watched_job_transcribe_never_heard_of_is_started_again() -> None:
    from transcripts.pipeline import watch_message

    # Given a transcript shown in progress whose job never reached Transcribe
    calls, engine, ports = world(transcript={"status": "in_progress", "job": job_name(CALL, REC),
                                             "recording_sid": REC, "language": "ja-JP"})
    # When its watch looks, the job is started (and watched anew)
    assert handle(watch_message(CALL, job_name(CALL, REC)), ports) == "restarted:started"
    assert [j.name for j in engine.started] == [job_name(CALL, REC)]
    assert ports.watched == [(CALL, job_name(CALL, REC))]  # type: ignore[attr-defined]


def test_the_event_and_the_watch_cannot_both_store_the_transcript() -> None:
    # Given a started job, and the watch storing its result between the event's read and write
    calls, engine, ports = world()
    handle(recording_stored(), ports)
    stored_by_watch = {"transcript": {**calls.call["transcript"], "status": "stored", "segments": [],
                                      "truncated": False, "stored_at": "2026-11-30T09:00:00Z"}}
    calls.interleave.append(stored_by_watch)
    writes = len(calls.writes)
    # When the completion event is applied
    outcome = handle(job_done(), ports)
    # Then it finds the transcript stored on its second try and writes nothing (one call.updated)
    assert outcome == "duplicate"
    assert len(calls.writes) == writes + 1  # the watch's write only


def test_a_completion_after_the_watch_gave_up_replaces_the_failure() -> None:
    from transcripts.pipeline import give_up_transcription

    # Given a job the watch gave up on after about ten hours
    calls, engine, ports = world()
    handle(recording_stored(), ports)
    assert give_up_transcription(CALL, ports, "had not finished") == "failed"
    # When Transcribe's completion still comes
    assert handle(job_done(), ports) == "stored"
    # Then the transcript is stored (not discarded as a duplicate of the failure)
    assert calls.call["transcript"]["status"] == "stored" and "gave_up" not in calls.call["transcript"]


def test_a_watched_job_that_cannot_be_started_again_is_shown_failed() -> None:
    from transcripts.pipeline import watch_message

    # Given a transcript in progress whose job never reached Transcribe, and a recording now gone
    calls, engine, ports = world(transcript={"status": "in_progress", "job": job_name(CALL, REC),
                                             "recording_sid": REC, "language": "ja-JP"},
                                 recording={"status": "expired", "recording_sid": REC})
    # When its watch looks, the transcript is failed with the reason (not in progress for ever)
    assert handle(watch_message(CALL, job_name(CALL, REC)), ports) == "restarted:no-recording,failed"
    assert calls.call["transcript"]["status"] == "failed"
    assert "never reached Amazon Transcribe" in calls.call["transcript"]["reason"]


def test_a_second_recording_stored_while_the_first_is_transcribed_is_the_one_shown_and_watched() -> None:
    from transcripts.pipeline import watch_message

    # Given a call whose first recording's job is in progress, and its second recording stored now
    first = "RE" + "3" * 32
    calls, engine, ports = world(transcript={"status": "in_progress", "job": job_name(CALL, first),
                                             "recording_sid": first, "language": "ja-JP"})
    # When the second recording's event starts its job
    assert handle(recording_stored(), ports) == "started"
    # Then the transcript in progress names the second job, so that job's watch finds it (even if
    # its completion event is lost) rather than calling it settled while the first is shown
    assert (calls.call["transcript"]["job"], calls.call["transcript"]["recording_sid"]) == (
        job_name(CALL, REC), REC)
    assert handle(watch_message(CALL, job_name(CALL, REC)), ports, first_look=False).startswith("recovered:")
    assert calls.call["transcript"]["status"] == "stored"


def test_a_give_up_never_overwrites_a_transcript_stored_meanwhile() -> None:
    from transcripts.pipeline import give_up_transcription

    # Given a job whose completion is stored between the give-up's read and its write
    calls, engine, ports = world()
    handle(recording_stored(), ports)
    calls.interleave.append({"transcript": {**calls.call["transcript"], "status": "stored", "segments": []}})
    # When the watch gives up
    outcome = give_up_transcription(CALL, ports, "had not finished")
    # Then the stored transcript stays
    assert outcome == "not-in-progress" and calls.call["transcript"]["status"] == "stored"


def test_a_message_about_another_job_gives_up_nothing() -> None:
    from transcripts.handler import job_of
    from transcripts.pipeline import give_up_transcription, watch_message

    # Given a transcript in progress for the call's recording
    calls, engine, ports = world()
    handle(recording_stored(), ports)
    older = job_name(CALL, "RE" + "4" * 32)
    # When a message about an older recording's job fails for good, Then the transcript stays
    assert job_of(watch_message(CALL, older)) == older
    assert give_up_transcription(CALL, ports, "failed", job=older) == "another-job"
    assert calls.call["transcript"]["status"] == "in_progress"
    # while one about its own job (or a call event, which starts it) shows it failed
    assert give_up_transcription(CALL, ports, "failed", job=job_name(CALL, REC)) == "failed"


# --------------------------------------------------------------------------- retrying failed ones


def test_a_failed_transcript_is_started_again_by_a_retry_and_only_by_a_retry() -> None:
    from transcripts.pipeline import retry_message

    # Given a transcript that ended failed: Transcribe stayed at its limit through every try
    calls, engine, ports = world(transcript={"status": "failed", "recording_sid": REC, "gave_up": True,
                                             "reason": "Amazon Transcribe stayed at its limit"})
    # When the recording's event comes again (a duplicate), Then nothing starts
    assert handle(recording_stored(), ports) == "duplicate"
    assert engine.started == []
    # When its retry message comes, Then the job starts, shown in progress and watched
    assert handle(retry_message(CALL), ports) == "started"
    assert [j.name for j in engine.started] == [job_name(CALL, REC)]
    assert calls.call["transcript"]["status"] == "in_progress" and "reason" not in calls.call["transcript"]
    assert ports.watched == [(CALL, job_name(CALL, REC))]  # type: ignore[attr-defined]
    # and its completion is stored as a first one would be
    assert handle(job_done(), ports) == "stored"
    assert calls.call["transcript"]["segments"] == [["caller", 2.0, "予約したい"]]
    # When a retry comes for a stored transcript, Then it is a duplicate
    assert handle(retry_message(CALL), ports) == "duplicate"


@pytest.mark.parametrize(("status", "output", "run_again"), [
    ("FAILED", True, True),  # Transcribe failed the job: it is deleted and run again
    ("COMPLETED", False, True),  # finished so long ago its output is gone: likewise
    ("COMPLETED", True, False),  # finished, output there: its watch applies it, nothing billed twice
    ("IN_PROGRESS", True, False),  # running: its watch waits for it
])
def test_a_retry_runs_a_spent_job_again_and_leaves_a_useful_one_to_its_watch(
    status: str, output: bool, run_again: bool
) -> None:
    from transcripts.pipeline import retry_message

    # Given a failed transcript whose job Transcribe still holds, in this state
    calls, engine, ports = world(transcript={"status": "failed", "recording_sid": REC, "gave_up": True})
    engine.jobs.add(job_name(CALL, REC))
    engine.status = status
    if not output:
        engine.out = None
    # When it is retried
    outcome = handle(retry_message(CALL), ports)
    # Then a spent job is deleted and started again; any other is watched as it is
    assert outcome == ("started" if run_again else "already-started")
    assert engine.forgotten == ([job_name(CALL, REC)] if run_again else [])
    assert len(engine.started) == (1 if run_again else 0)
    assert calls.call["transcript"]["status"] == "in_progress"
    assert ports.watched == [(CALL, job_name(CALL, REC))]  # type: ignore[attr-defined]


def test_retry_reads_the_calls_in_order_and_stops_only_where_the_start_time_changes() -> None:
    from transcripts.retry import failed_calls

    calls = [
        {"call_sid": "CA1", "started_at": "2026-11-01T00:00:00Z", "transcript": {"status": "failed"}},
        {"call_sid": "CA2", "started_at": "2026-11-01T00:00:00Z", "transcript": {"status": "stored"}},
        {"call_sid": "CA3", "started_at": "2026-11-01T00:00:00Z", "transcript": {"status": "failed"}},
        {"call_sid": "CA4", "started_at": "2026-11-02T00:00:00Z", "transcript": {"status": "failed"}},
        {"call_sid": "CA5", "started_at": "2026-11-03T00:00:00Z"},
    ]
    # Given all the time in the world, every failed one
    assert failed_calls(calls, lambda: False) == (["CA1", "CA3", "CA4"], None)
    # Out of time after the first call: the calls of the same start time are still read, and the
    # cursor is the next start time (going on from it reads none again, misses none)
    assert failed_calls(calls, lambda: True) == (["CA1", "CA3"], "2026-11-02T00:00:00Z")


@pytest.mark.parametrize(("since", "cursor", "start"), [
    (None, None, datetime(2026, 10, 31, 9, tzinfo=UTC)),
    ("2026-11-20", None, datetime(2026, 11, 20, tzinfo=UTC)),
    ("2026-11-20", "2026-11-25T10:00:00Z", datetime(2026, 11, 25, 10, tzinfo=UTC)),
    ("2027-01-01", None, datetime(2026, 11, 30, 9, tzinfo=UTC)),  # after now: reads nothing, no error
])
def test_retry_reads_from_the_cursor_else_since_else_thirty_days_ago(
    since: str | None, cursor: str | None, start: datetime
) -> None:
    from transcripts.retry import window

    now = datetime(2026, 11, 30, 9, tzinfo=UTC)
    assert window(since, cursor, now) == (start, now)


@pytest.mark.parametrize(("since", "cursor", "field"), [
    (None, "not-a-time", "cursor"), (None, "0001-01-01T00:00:00+01:00", "cursor"),
    ("2026-13-45", None, "since"),
])
def test_a_since_or_cursor_that_is_no_time_is_a_400_naming_it(since: str | None, cursor: str | None,
                                                              field: str) -> None:
    from calltrack.errors import BadRequest
    from transcripts.retry import window

    with pytest.raises(BadRequest) as err:
        window(since, cursor, datetime(2026, 11, 30, tzinfo=UTC))
    assert err.value.field == field
