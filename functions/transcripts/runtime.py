"""The transcripts function's composition root: its settings, the calls, the account configs and
the Amazon Transcribe adapter, built on the first invocation.

``NEEDS`` equals its wiring's grants (tests/infra compares them).
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from calltrack.settings import Needs, Settings

NEEDS = Needs(tables=("calls", "accounts"), buckets=("recordings",), queues=("transcripts",))

_lock = threading.Lock()
_built: tuple[Settings, Any] | None = None


def ports() -> Any:
    """Built on the first invocation, again only after a settings reset (tests)."""
    global _built
    from calltrack.settings import get_settings

    settings = get_settings(NEEDS)
    with _lock:
        if _built is None or _built[0] is not settings:
            _built = (settings, _build(settings))
        return _built[1]


def _build(settings: Settings) -> Any:
    import boto3

    from calltrack import clock
    from calltrack.accounts import account_reader
    from calltrack.call_items import call_items
    from transcripts.engine import AwsTranscribe
    from transcripts.pipeline import Ports, watch_message

    session = boto3.session.Session()
    engine = AwsTranscribe(
        session.client("transcribe", region_name=settings.region),
        session.client("s3", region_name=settings.region),
        settings.recordings_bucket,
        settings.recordings_kms_key_id,
    )
    from calltrack.settings import queue_env

    queue_url = os.environ.get(queue_env("transcripts"), "")

    def watch(call_sid: str, job: str) -> None:
        body = json.dumps(watch_message(call_sid, job))
        sqs().send_message(QueueUrl=queue_url, MessageBody=body)

    return Ports(calls=call_items(), config_for=account_reader().find, engine=engine, now=clock.now,
                 watch=watch)


_sqs: Any = None


def sqs() -> Any:
    """The SQS client that delays a message (calltrack.queue_retry.defer)."""
    global _sqs
    if _sqs is None:
        import boto3

        from calltrack.settings import get_settings

        _sqs = boto3.session.Session().client("sqs", region_name=get_settings(NEEDS).region)
    return _sqs


def reset() -> None:
    global _built, _sqs
    _built = _sqs = None
