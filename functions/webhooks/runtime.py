"""The webhooks functions' composition root: settings, the delivery store and the ports of the
queue consumer (``NEEDS``) and of the deliveries API (``API_NEEDS``), built on first use."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Mapping
from typing import Any

from calltrack.settings import Needs, Settings

NEEDS = Needs(tables=("webhook_deliveries", "accounts", "calls"), queues=("webhooks",),
              account_secrets="read")
API_NEEDS = Needs(tables=("webhook_deliveries", "accounts", "tokens", "audit"), queues=("webhooks",),
                  secrets=("admin_token",))


def ensure_started(needs: Needs) -> Settings:
    from calltrack.models import start
    from calltrack.models.webhooks import WebhookDelivery

    return start(needs, [WebhookDelivery])


@functools.cache
def sqs() -> Any:
    import boto3

    from calltrack.settings import get_settings

    return boto3.session.Session().client("sqs", region_name=get_settings().region)


def enqueue(messages: list[dict[str, Any]]) -> None:
    """Delivery messages onto the webhooks queue (batches of 10; a refused entry raises)."""
    from calltrack.settings import queue_env

    url = os.environ.get(queue_env("webhooks"), "")
    for start in range(0, len(messages), 10):
        chunk = messages[start:start + 10]
        entries = [{"Id": str(i), "MessageBody": json.dumps(m, separators=(",", ":"))}
                   for i, m in enumerate(chunk)]
        result = sqs().send_message_batch(QueueUrl=url, Entries=entries)
        if result.get("Failed"):
            raise RuntimeError(f"{len(result['Failed'])} delivery message(s) refused by the webhooks queue")


def no_calls(call: Mapping[str, Any]) -> dict[str, Any]:
    """The API plans pings only: it presents no calls (call_records is bundled with the sender)."""
    raise RuntimeError("webhook_api does not present calls")


def ports(settings: Settings, present: Callable[[Mapping[str, Any]], dict[str, Any]] = no_calls) -> Any:
    from calltrack import clock
    from calltrack.account_secrets import account_secrets
    from calltrack.accounts import account_reader
    from webhooks.deliver import Ports
    from webhooks.outgoing import request
    from webhooks.store import DynamoDeliveries

    def send(method: str, url: str, body: bytes | None, headers: Mapping[str, str]) -> Any:
        return request(method, url, body, headers, local_mode=settings.local_mode)

    def secret(account: str, name: str) -> str | None:
        return account_secrets().get(account, name)

    def call_exists(call_sid: str) -> bool:
        from calltrack.call_items import call_items

        return call_items().get(call_sid, consistent=True) is not None

    return Ports(
        store=DynamoDeliveries(), config=account_reader().get, secret=secret, send=send, enqueue=enqueue,
        present=present, now=clock.now, kintone_base_url=settings.kintone_base_url,
        hubspot_base_url=settings.hubspot_api_base_url, call_exists=call_exists,
    )


def defer(queue_arn: str, receipt_handle: str, delay: int) -> None:
    """Deliver this received message again in ``delay`` seconds (its visibility timeout)."""
    from calltrack.queue_retry import defer as set_visibility

    set_visibility(sqs(), queue_arn, receipt_handle, delay)


def reset() -> None:
    sqs.cache_clear()
