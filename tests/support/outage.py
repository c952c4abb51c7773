"""Outages for the stack's tests: the voice webhook without DynamoDB.

Only the webhook loses storage: the stack's other functions share the test process and keep theirs.
Changing ``AWS_ENDPOINT_URL_DYNAMODB`` for the process instead would let a background consumer (the
outbox replay picks up the webhook's hand-off within milliseconds) build its client against the
closed port and keep it for the rest of the session."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class WebhookStorageSwitch:
    """``down()`` gives the voice webhook a fresh process (a cold container: nothing cached) whose
    DynamoDB client, configured as the webhook's own, connects to a closed port; ``up()`` a fresh
    process against the emulator again. ``tries`` counts the requests it sent while down."""

    def __init__(self) -> None:
        self.tries = 0

    def down(self) -> None:
        import boto3
        from botocore.config import Config

        import voice_webhook.dynamo as dynamo
        import voice_webhook.handler as handler

        handler.reset()
        dynamo._client = boto3.session.Session().client(
            "dynamodb",
            region_name=boto3.session.Session().region_name or "us-east-1",
            endpoint_url=f"http://127.0.0.1:{closed_port()}",
            config=Config(
                connect_timeout=dynamo.CONNECT_TIMEOUT_S,
                read_timeout=dynamo.READ_TIMEOUT_S,
                retries={"total_max_attempts": dynamo.MAX_ATTEMPTS, "mode": "standard"},
            ),
        )
        dynamo._client.meta.events.register("before-send.dynamodb", self._tried)

    def _tried(self, **_: object) -> None:
        self.tries += 1

    def up(self) -> None:
        import voice_webhook.handler as handler

        handler.reset()

    def end(self) -> None:
        """Up again, and check the outage was real: the webhook did try its storage while down."""
        self.up()
        assert self.tries > 0, "the webhook never asked DynamoDB during the outage"


@contextlib.contextmanager
def webhook_without_dynamodb() -> Iterator[WebhookStorageSwitch]:
    """The voice webhook in a fresh process whose DynamoDB is a closed port, for the block; a fresh
    process against the emulator again afterwards. The routing snapshot (S3) and the outbox (SQS)
    stay up."""
    switch = WebhookStorageSwitch()
    switch.down()
    try:
        yield switch
    except BaseException:
        switch.up()
        raise
    switch.end()
