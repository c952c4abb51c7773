"""The local stack's Amazon Transcribe: the emulator's jobs finished with scripted transcripts.

moto models the transcription job's lifecycle (StartTranscriptionJob, job names, ConflictException)
but transcribes nothing. ``LocalTranscribe`` is a poller that finishes each new job the way the
service does: it writes the output JSON in Transcribe's documented shape (``results.transcripts``,
``results.items`` and, with ``Settings.ChannelIdentification``, ``results.channel_labels`` with
``ch_0`` = the caller and ``ch_1`` = the staff of Twilio's dual-channel recording) to the job's
``OutputBucketName``/``OutputKey`` with its ``OutputEncryptionKMSKeyId``, marks the job COMPLETED,
and emits EventBridge's "Transcribe Job State Change" event to every wiring event rule that
matches it (onto the rule's queue, as an SQS target receives it).

What was said comes from ``script(call_sid, lines)``: the demo scenario and tests script the
conversation of a call; a job whose recording nobody scripted gets an empty transcript.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

from calltrack_cli.local.events import ACCOUNT_ID, REGION
from calltrack_cli.local.invoker import Invoker
from calltrack_cli.local.pollers import Poller
from infra.wiring import Wiring

# One scripted line: (speaker "caller" | "staff", start seconds, text).
Line = tuple[str, float, str]
CHANNELS = {"caller": "ch_0", "staff": "ch_1"}
_CALL_SID = re.compile(r"/(CA[0-9a-fA-F]{32})/")
_UNSPACED = ("ja", "zh", "th", "ko")


def _tokens(text: str, language: str) -> list[tuple[str, str]]:
    """(type, content) items of one line: words (or, for Japanese, runs between punctuation)."""
    out: list[tuple[str, str]] = []
    for part in re.findall(r"[^\s.,?!。、？！]+|[.,?!。、？！]", text):
        kind = "punctuation" if re.fullmatch(r"[.,?!。、？！]", part) else "pronunciation"
        out.append((kind, part))
    return out


def transcribe_output(
    job_name: str, lines: Sequence[Line], language: str, channels: bool
) -> dict[str, Any]:
    """A Transcribe batch output document for the scripted ``lines``."""
    items: list[dict[str, Any]] = []
    by_channel: dict[str, list[dict[str, Any]]] = {"ch_0": [], "ch_1": []}
    texts: dict[str, list[str]] = {"ch_0": [], "ch_1": []}
    for speaker, start, text in sorted(lines, key=lambda line: line[1]):
        label = CHANNELS.get(speaker, "ch_0")
        at = float(start)
        texts[label].append(text)
        for kind, content in _tokens(text, language):
            item: dict[str, Any] = {
                "alternatives": [{"confidence": "0.98", "content": content}], "type": kind
            }
            if kind == "pronunciation":
                end = at + 0.1 * max(1, len(content))
                item.update(start_time=f"{at:.2f}", end_time=f"{end:.2f}")
                at = end + 0.05
            if channels:
                item["channel_label"] = label
                by_channel[label].append(item)
            items.append(item)
    joiner = "" if language.lower().split("-")[0] in _UNSPACED else " "
    results: dict[str, Any] = {
        "transcripts": [{"transcript": joiner.join(texts["ch_0"] + texts["ch_1"])}],
        "items": items,
    }
    if channels:
        results["channel_labels"] = {
            "channels": [{"channel_label": label, "items": by_channel[label]} for label in ("ch_0", "ch_1")],
            "number_of_channels": 2,
        }
    return {"jobName": job_name, "accountId": ACCOUNT_ID, "status": "COMPLETED", "results": results}


def job_state_change(job_name: str, status: str) -> dict[str, Any]:
    """EventBridge's "Transcribe Job State Change" event for one job."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Transcribe Job State Change",
        "source": "aws.transcribe",
        "account": ACCOUNT_ID,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": REGION,
        "resources": [],
        "detail": {"TranscriptionJobName": job_name, "TranscriptionJobStatus": status},
    }


class LocalTranscribe(Poller):
    """Finishes the emulator's transcription jobs (see the module docstring)."""

    name = "transcribe"

    def __init__(
        self, invoker: Invoker, wiring: Wiring, queue_urls: dict[str, str], client_factory: Any
    ) -> None:
        super().__init__(invoker)
        self.wiring = wiring
        self.queue_urls = queue_urls
        self._client_factory = client_factory
        self._scripts: dict[str, list[Line]] = {}
        self._scripts_lock = threading.Lock()
        # name -> the job finished under it (a job deleted and started again under the same name,
        # a retry of a spent one, is another object: finished too)
        self._done: dict[str, Any] = {}
        self._lost: set[str] = set()  # call sids whose next completion event is not sent
        self._finished = 0  # jobs finished since drain last asked (pending)

    def lose_event(self, call_sid: str) -> None:
        """The completion event of ``call_sid``'s next job is lost (EventBridge delivers best
        effort): the job completes, nothing is told."""
        with self._scripts_lock:
            self._lost.add(call_sid)

    def script(self, call_sid: str, lines: Sequence[Line]) -> None:
        """What is said on ``call_sid``'s recording, line by line."""
        with self._scripts_lock:
            self._scripts[call_sid] = [(str(s), float(t), str(x)) for s, t, x in lines]

    def _jobs(self) -> list[Any]:
        from moto.transcribe.models import transcribe_backends

        backend = transcribe_backends[ACCOUNT_ID][REGION]
        return [job for name, job in list(backend.transcriptions.items()) if self._done.get(name) is not job]

    def pending(self) -> bool:
        """True while jobs wait, and once after the background loop finished one: its event went
        to a queue that ``drain`` may already have found empty in the same round."""
        with self._scripts_lock:
            finished, self._finished = self._finished, 0
        return finished > 0 or bool(self._jobs())

    def _poll(self, wait: bool) -> int:
        jobs = self._jobs()
        for job in jobs:
            self._finish(job)
            self._done[job.transcription_job_name] = job
            with self._scripts_lock:
                self._finished += 1
        return len(jobs)

    def _finish(self, job: Any) -> None:
        name = job.transcription_job_name
        media = str((job.media or {}).get("MediaFileUri", ""))
        found = _CALL_SID.search(media)
        with self._scripts_lock:
            lines = list(self._scripts.get(found.group(1), [])) if found else []
        language = str(job.language_code or "en-US")
        channels = bool((job.settings or {}).get("ChannelIdentification"))
        bucket = job._output_bucket_name
        key = job.output_key or f"{name}.json"
        if bucket:
            put: dict[str, Any] = {
                "Bucket": bucket, "Key": key, "ContentType": "application/json",
                "Body": json.dumps(
                    transcribe_output(name, lines, language, channels), ensure_ascii=False
                ).encode(),
            }
            if job._output_encryption_kms_key_id:
                put.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=job._output_encryption_kms_key_id)
            self._client_factory("s3").put_object(**put)
        job.status = "COMPLETED"
        job.transcript = {"TranscriptFileUri": f"https://s3.{REGION}.amazonaws.com/{bucket}/{key}"}
        with self._scripts_lock:
            if found and found.group(1) in self._lost:
                self._lost.discard(found.group(1))
                return
        event = job_state_change(name, "COMPLETED")
        sqs = self._client_factory("sqs")
        for rule in self.wiring.event_rules:
            if rule.matches(event) and rule.queue in self.queue_urls:
                sqs.send_message(QueueUrl=self.queue_urls[rule.queue], MessageBody=json.dumps(event))
