"""The transcription engine port and its Amazon Transcribe adapter.

``AwsTranscribe.start`` is StartTranscriptionJob (https://docs.aws.amazon.com/transcribe/latest/
APIReference/API_StartTranscriptionJob.html): the stored MP3 in the recordings bucket as
``Media.MediaFileUri``, the account's language as ``LanguageCode``, ``Settings.ChannelIdentification``
on a dual-channel recording, the output JSON to the same bucket under ``transcripts/`` (``OutputKey``)
encrypted with the stack's data key (``OutputEncryptionKMSKeyId``). The job's name is derived from
the call and recording (``job_name``), so a second start of the same recording is Transcribe's
ConflictException, not a second (billed) job. Completion arrives as the EventBridge event
"Transcribe Job State Change" (infra/wiring.py EVENT_RULES); ``output`` reads the JSON it wrote;
``state`` asks for a job whose event has not come (EventBridge delivers best effort).

Locally the same adapter talks to the emulator, where the local stack's Transcribe stand-in
(calltrack_cli.local.transcribe) completes jobs with the transcript the scenario scripted.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Protocol

JOB_PREFIX = "calltrack-"
_JOB = re.compile(r"calltrack-(CA[0-9a-f]{32})-(RE[0-9a-f]{32})")


@dataclass(frozen=True)
class JobRequest:
    name: str
    media_key: str  # the recording's key in the recordings bucket
    output_key: str
    language: str
    channels: int


class JobBusy(Exception):
    """Transcribe is at one of its quotas (LimitExceededException: too many jobs at once, or
    throttled): the same request may succeed later."""


BUSY_CODES = frozenset({"LimitExceededException", "ThrottlingException"})


class JobRefused(Exception):
    """Transcribe refused the job for good (BadRequestException: an unsupported language, a
    media file it cannot read): shown on the call as a failed transcript, not retried."""


class TranscriptionEngine(Protocol):
    def start(self, job: JobRequest) -> bool:
        """Start the job; False when a job of that name already exists (started before);
        JobRefused when it can never start."""
        ...

    def output(self, key: str) -> dict[str, Any] | None:
        """The finished job's output JSON, or None when it is not there."""
        ...

    def discard(self, key: str) -> None:
        """Delete the output JSON once its compact form is on the call."""
        ...

    def state(self, name: str) -> dict[str, str] | None:
        """The job's ``TranscriptionJobStatus`` (and ``FailureReason``), or None when Transcribe
        has no job of that name."""
        ...

    def forget(self, name: str) -> None:
        """Delete the job (its name can then start a new one: a retry of a failed transcript)."""
        ...


def job_name(call_sid: str, recording_sid: str) -> str:
    return f"{JOB_PREFIX}{call_sid}-{recording_sid}"


def job_ids(name: str) -> tuple[str, str] | None:
    """(call_sid, recording_sid) of one of our job names, or None for any other job."""
    match = _JOB.fullmatch(name or "")
    return (match.group(1), match.group(2)) if match else None


def output_key(media_key: str) -> str:
    """recordings/{account}/{yyyy}/{mm}/{CallSid}/{RecordingSid}.mp3 -> transcripts/.../{RecordingSid}.json"""
    stem = media_key.rsplit(".", 1)[0]
    return "transcripts/" + stem.split("/", 1)[1] + ".json"


def start_request(job: JobRequest, bucket: str, kms_key_id: str) -> dict[str, Any]:
    """StartTranscriptionJob's parameters for ``job``."""
    params: dict[str, Any] = {
        "TranscriptionJobName": job.name,
        "LanguageCode": job.language,
        "MediaFormat": "mp3",
        "Media": {"MediaFileUri": f"s3://{bucket}/{job.media_key}"},
        "OutputBucketName": bucket,
        "OutputKey": job.output_key,
    }
    if kms_key_id:
        params["OutputEncryptionKMSKeyId"] = kms_key_id
    if job.channels == 2:
        params["Settings"] = {"ChannelIdentification": True}
    return params


def _code(exc: Exception) -> str:
    return str(((getattr(exc, "response", None) or {}).get("Error") or {}).get("Code", ""))


class AwsTranscribe:
    """Amazon Transcribe (batch) with its output in the recordings bucket."""

    def __init__(self, transcribe: Any, s3: Any, bucket: str, kms_key_id: str = "") -> None:
        self.transcribe = transcribe
        self.s3 = s3
        self.bucket = bucket
        self.kms_key_id = kms_key_id

    def start(self, job: JobRequest) -> bool:
        try:
            self.transcribe.start_transcription_job(**start_request(job, self.bucket, self.kms_key_id))
        except Exception as exc:
            if _code(exc) == "ConflictException":
                return False
            if _code(exc) in BUSY_CODES:
                raise JobBusy(_code(exc)) from None
            if _code(exc) == "BadRequestException":
                message = str(((getattr(exc, "response", None) or {}).get("Error") or {}).get("Message", ""))
                raise JobRefused(message[:300] or "Transcribe refused the job") from None
            raise
        return True

    def output(self, key: str) -> dict[str, Any] | None:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except Exception as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return None
            raise
        data = json.loads(body)
        return data if isinstance(data, dict) else None

    def discard(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=key)

    def state(self, name: str) -> dict[str, str] | None:
        """GetTranscriptionJob (https://docs.aws.amazon.com/transcribe/latest/APIReference/
        API_GetTranscriptionJob.html); an unknown name is BadRequestException ("The requested job
        couldn't be found") or NotFoundException."""
        try:
            job = self.transcribe.get_transcription_job(TranscriptionJobName=name)["TranscriptionJob"]
        except Exception as exc:
            if _code(exc) == "NotFoundException" or (
                _code(exc) == "BadRequestException" and "couldn't be found" in str(exc)
            ):
                return None
            if _code(exc) in BUSY_CODES:
                raise JobBusy(_code(exc)) from None
            raise
        out = {"TranscriptionJobStatus": str(job.get("TranscriptionJobStatus", ""))}
        if job.get("FailureReason"):
            out["FailureReason"] = str(job["FailureReason"])
        return out

    def forget(self, name: str) -> None:
        """DeleteTranscriptionJob (https://docs.aws.amazon.com/transcribe/latest/APIReference/
        API_DeleteTranscriptionJob.html); a job already gone is no error."""
        try:
            self.transcribe.delete_transcription_job(TranscriptionJobName=name)
        except Exception as exc:
            if _code(exc) not in ("NotFoundException", "BadRequestException"):
                raise
