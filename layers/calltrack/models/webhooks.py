"""Webhook deliveries (owned by functions/webhooks): one row per (event, destination).

A delivery is one event for one destination (a webhook, kintone or HubSpot), with the exact body
it sends on every try, so a retry sends the same thing and the same ``X-Calltrack-Delivery`` id.
Its id is derived from the event and the destination, which makes planning idempotent (the call
events come at least once):

    pending -> delivered
       |  ^
       v  |
    retrying (``reason``, ``next_attempt_at``: SQS delivers it again, backoff 1 min .. 24 h)
    failed   (a permanent answer such as 400/401/404 or a redirect, or the 24 h ran out: the message
              is then in the dead-letter queue; ``POST /v1/webhooks/deliveries/{id}/retry`` sends
              it again; a message SQS dead-lettered before its last try ran leaves its row open, and
              the hourly ``webhook-dlq-sweep`` (``webhooks.dead_letters``) fails it then)

GSI ``by-status`` (``status_key`` = account#status, ``updated_at``) lists one status newest first.
A sender claims a row (``lease_until``) before sending, so two copies of one delivery message
(duplicated call events, a retry while the first try is in flight) never post at the same time.
Rows with ``kind`` "link" remember what a CRM made of a call (the kintone record id, the HubSpot
call id), so a later change updates that record instead of adding another. Rows expire
(``expires_at``, DynamoDB TTL) after ``RETENTION_DAYS``.
"""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from calltrack.models.base import table_meta

RETENTION_DAYS = 30


class DeliveriesByStatus(GlobalSecondaryIndex["WebhookDelivery"]):
    """``GET /v1/webhooks/deliveries?status=failed``: one account's deliveries in one status, newest
    first, without reading its delivered ones (link rows have no ``status_key``: sparse)."""

    class Meta:
        index_name = "by-status"
        projection = AllProjection()

    status_key = UnicodeAttribute(hash_key=True)  # "{account}#{status}"
    updated_at = UnicodeAttribute(range_key=True)


class WebhookDelivery(Model):
    Meta = table_meta("webhook_deliveries", ttl="expires_at")
    account = UnicodeAttribute(hash_key=True)
    delivery_id = UnicodeAttribute(range_key=True)  # dlv_<hex>, or link#<destination>#<call_sid>
    kind = UnicodeAttribute()  # webhook / kintone / hubspot / link
    destination = UnicodeAttribute()  # the webhook id, "kintone" or "hubspot"
    event_id = UnicodeAttribute(null=True)
    event_type = UnicodeAttribute(null=True)  # call.completed, alert.weekly, ping ...
    call_sid = UnicodeAttribute(null=True)
    status = UnicodeAttribute(null=True)  # pending / retrying / delivered / failed
    payload = UnicodeAttribute(null=True)  # the event as JSON text (webhooks: the body sent)
    attempts = NumberAttribute(default=0)
    response_status = NumberAttribute(null=True)  # the last HTTP status answered
    reason = UnicodeAttribute(null=True)  # the last failure (http-503, timeout, refused: ...)
    next_attempt_at = UnicodeAttribute(null=True)  # ISO 8601 UTC while retrying
    remote_id = UnicodeAttribute(null=True)  # link rows: the CRM's record / call id
    remote_scope = UnicodeAttribute(null=True)  # link rows: where that id is valid (kintone: domain/app)
    pushed_version = NumberAttribute(null=True)  # link rows: the newest call version sent to the CRM
    created_at = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)
    delivered_at = UnicodeAttribute(null=True)
    expires_at = NumberAttribute(null=True)  # epoch seconds (TTL)
    status_key = UnicodeAttribute(null=True)  # "{account}#{status}", kept with status (by_status)
    lease_until = NumberAttribute(null=True)  # epoch seconds: one sender at a time (claim)
    # Times the retry route queued the delivery again; its queue message carries the same count, so
    # a dead letter of an earlier round is told from the row's current message (webhooks.dead_letters).
    requeues = NumberAttribute(null=True)
    by_status = DeliveriesByStatus()


MODELS = [WebhookDelivery]
