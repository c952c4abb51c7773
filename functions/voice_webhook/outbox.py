"""The durable outbox of the voice webhook: a Twilio callback whose storage work failed is not lost.

When DynamoDB is unreachable, the webhook still answers Twilio at once (forwarding is its first
duty), and hands the callback — route, form parameters, query string and the instant it arrived —
to an SQS queue: another service than the one that failed. The ``webhook_replay`` Lambda
(``voice_webhook.replay``) runs the same route again at that instant once storage is back; every
write is idempotent and ranked (a <Dial> result outranks the status callback), so a replay never
double-counts and never downgrades a known outcome. Import-light: boto3 loads only when a
callback is handed off, never on the normal path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from calltrack.twilio_edge import TwilioRequest

VERSION = 1


class Outbox(Protocol):
    def __call__(self, req: TwilioRequest, received_at: float) -> None: ...


def message(req: TwilioRequest, received_at: float) -> str:
    """The outbox message: everything the replay needs, nothing else (no headers, no signature)."""
    body = {"v": VERSION, "path": req.path, "query": req.query, "params": req.params}
    body["received_at"] = received_at
    from calltrack.sqs_body import sqs_json

    return sqs_json(body, separators=(",", ":"))


def request_of(body: Mapping[str, Any]) -> tuple[TwilioRequest, float]:
    """The callback a message carries, as the route functions take it, and when it arrived."""
    params = body.get("params")
    if body.get("v") != VERSION or not isinstance(params, dict):
        raise ValueError("not an outbox message of this version")
    req = TwilioRequest(
        method="POST",
        path=str(body["path"]),
        query=str(body.get("query") or ""),
        headers={},
        params={str(k): str(v) for k, v in params.items()},
    )
    return req, float(body["received_at"])


class SqsOutbox:
    """SendMessage to the outbox queue (client created on first hand-off, short timeouts)."""

    def __init__(self, queue_url: str, region: str) -> None:
        self.queue_url = queue_url
        self.region = region
        self._client: Any = None

    def __call__(self, req: TwilioRequest, received_at: float) -> None:
        if not self.queue_url:
            raise RuntimeError("CALLTRACK_WEBHOOK_OUTBOX_QUEUE_URL is not set: nowhere to hand off")
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.session.Session().client(
                "sqs",
                region_name=self.region,
                config=Config(connect_timeout=1, read_timeout=2, retries={"total_max_attempts": 2}),
            )
        self._client.send_message(QueueUrl=self.queue_url, MessageBody=message(req, received_at))
