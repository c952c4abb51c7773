"""The call_changes function's composition root: its subscribers' queues and its SQS client.

``SUBSCRIBERS`` names the queues that receive call events; it equals
``infra.wiring.CALL_CHANGE_SUBSCRIBERS`` (an infra test compares NEEDS with the wiring's grants).
To subscribe a context: declare its queue in the wiring and add its name to both.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from calltrack.settings import Needs

SUBSCRIBERS: tuple[str, ...] = ("conversions", "webhooks", "transcripts")

NEEDS = Needs(queues=SUBSCRIBERS, stream_failures="call_changes")


@functools.cache
def subscriber_queues() -> dict[str, str]:
    """Subscriber name -> its queue URL (settings checked on first use: a missing URL fails naming it)."""
    from calltrack.settings import get_settings, queue_env

    get_settings(NEEDS)
    return {name: os.environ.get(queue_env(name), "") for name in SUBSCRIBERS}


@functools.cache
def sqs() -> Any:
    import boto3

    from calltrack.settings import get_settings

    return boto3.session.Session().client("sqs", region_name=get_settings(NEEDS).region)


def reset() -> None:
    subscriber_queues.cache_clear()
    sqs.cache_clear()
