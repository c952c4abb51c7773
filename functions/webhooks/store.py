"""Delivery rows in DynamoDB (``calltrack.models.webhooks.WebhookDelivery``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import PutError, UpdateError

from calltrack.models.webhooks import RETENTION_DAYS, WebhookDelivery
from webhooks.plan import Planned

OPEN = ("pending", "retrying")
# One send's claim: longer than a send (kintone / HubSpot: up to 3 requests of 10 s), shorter than
# the queue's visibility timeout (a crashed sender's message comes back after its lease ended).
LEASE_S = 150
PUBLIC_FIELDS = ("delivery_id", "kind", "destination", "event_id", "event_type", "call_sid", "status",
                 "attempts", "response_status", "reason", "next_attempt_at", "created_at", "updated_at",
                 "delivered_at")


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def public(row: dict[str, Any]) -> dict[str, Any]:
    """A delivery as the API shows it (never the payload: it may hold a caller's number)."""
    return {name: row.get(name) for name in PUBLIC_FIELDS}


def _link_id(destination: str, call_sid: str) -> str:
    return f"link#{destination}#{call_sid}"


class DynamoDeliveries:
    def create(self, account: str, planned: Planned, now: datetime) -> str:
        """Store a new pending delivery; -> its status ("pending" when new, else the stored one)."""
        row = WebhookDelivery(
            account, planned.delivery_id, kind=planned.kind, destination=planned.destination,
            event_id=planned.event_id, event_type=planned.event_type, call_sid=planned.call_sid,
            status="pending", status_key=f"{account}#pending", payload=planned.payload_text(), attempts=0,
            created_at=iso(now),
            updated_at=iso(now), expires_at=int((now + timedelta(days=RETENTION_DAYS)).timestamp()),
        )
        try:
            row.save(condition=WebhookDelivery.delivery_id.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
            existing = self.get(account, planned.delivery_id)
            return str((existing or {}).get("status") or "pending")
        return "pending"

    def get(self, account: str, delivery: str) -> dict[str, Any] | None:
        try:
            item = WebhookDelivery.get(account, delivery, consistent_read=True)
        except WebhookDelivery.DoesNotExist:
            return None
        return dict(item.attribute_values)

    def update(self, account: str, delivery: str, *, condition: Any = None, **fields: Any) -> bool:
        """Set (None: remove) these attributes; a new ``status`` moves the row in the by-status index.
        Only on a row that is there (and, with a ``condition``, if it holds): False otherwise. A send
        that outlives its row (the caller erased meanwhile: the row held the call) must not write it
        back as a row with no payload and no expiry."""
        if fields.get("status"):
            fields["status_key"] = f"{account}#{fields['status']}"
            fields["lease_until"] = None  # a new status ends the sender's claim
        actions = []
        for name, value in fields.items():
            attribute = getattr(WebhookDelivery, name)
            actions.append(attribute.set(value) if value is not None else attribute.remove())
        there = WebhookDelivery.delivery_id.exists()
        try:
            WebhookDelivery(account, delivery).update(
                actions=actions, condition=there if condition is None else there & condition)
        except UpdateError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def claim(self, account: str, delivery: str, now: datetime) -> bool:
        """Take the row for one send (open, and no other sender's lease running); False if taken."""
        at = int(now.timestamp())
        condition = WebhookDelivery.status.is_in(*OPEN) & (
            WebhookDelivery.lease_until.does_not_exist() | (WebhookDelivery.lease_until < at))
        try:
            WebhookDelivery(account, delivery).update(
                actions=[WebhookDelivery.lease_until.set(at + LEASE_S)], condition=condition)
        except UpdateError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def fail_if_unchanged(self, account: str, delivery: str, seen: dict[str, Any], reason: str,
                          now: datetime) -> bool:
        """Fail the row as ``seen`` (open, same status, same ``updated_at``, same round) unless a
        sender holds it now; False when it changed since (a try, a retry through the API), is being
        sent, or is gone."""
        d = WebhookDelivery
        condition = d.status.is_in(*OPEN) & (d.status == seen.get("status"))
        condition &= d.lease_until.does_not_exist() | (d.lease_until < int(now.timestamp()))
        updated, requeues = seen.get("updated_at"), seen.get("requeues")
        condition &= (d.updated_at == updated) if updated else d.updated_at.does_not_exist()
        condition &= (d.requeues == requeues) if requeues is not None else d.requeues.does_not_exist()
        return self.update(account, delivery, condition=condition, status="failed", reason=reason,
                           next_attempt_at=None, updated_at=iso(now))

    def with_status(self, account: str, status: str, limit: int) -> Iterator[dict[str, Any]]:
        """The account's deliveries in this status, most recently updated first (GSI by-status)."""
        query = WebhookDelivery.by_status.query(f"{account}#{status}", scan_index_forward=False, limit=limit)
        for found, item in enumerate(query, start=1):
            yield dict(item.attribute_values)
            if found >= limit:
                return

    def link(self, account: str, destination: str, call_sid: str) -> dict[str, Any] | None:
        """The link row of the call at a CRM ({"remote_id", "remote_scope", "pushed_version"})."""
        row = self.get(account, _link_id(destination, call_sid))
        return row if row and row.get("remote_id") else None

    def set_link(self, account: str, destination: str, call_sid: str, remote_id: str, now: datetime, *,
                 scope: str | None = None, version: int | None = None, delivery: str) -> bool:
        """Keep the CRM's id of the call, in one transaction with a check that ``delivery`` (the
        push that made the record) is still there: False when it is gone — the caller was erased
        while the push ran, and the erasure's last sweep may already have passed."""
        from pynamodb.connection import Connection
        from pynamodb.exceptions import TransactWriteError
        from pynamodb.transactions import TransactWrite

        link = WebhookDelivery(
            account, _link_id(destination, call_sid), kind="link", destination=destination, call_sid=call_sid,
            remote_id=remote_id, remote_scope=scope, pushed_version=version, created_at=iso(now),
            updated_at=iso(now), expires_at=int((now + timedelta(days=365)).timestamp()),
        )
        try:
            with TransactWrite(connection=Connection(region=WebhookDelivery.Meta.region)) as tx:
                tx.condition_check(WebhookDelivery, account, range_key=delivery,
                                   condition=WebhookDelivery.delivery_id.exists())
                tx.save(link)
        except TransactWriteError as exc:
            reasons = exc.cancellation_reasons or []
            if any(r is not None and r.code == "ConditionalCheckFailed" for r in reasons):
                return False
            raise
        return True

    def claim_link_version(self, account: str, destination: str, call_sid: str, version: int) -> bool:
        """Record that ``version`` of the call goes to the CRM now, unless a newer one went; False then."""
        pushed = WebhookDelivery.pushed_version
        not_newer = pushed.does_not_exist() | (pushed <= version)
        try:
            WebhookDelivery(account, _link_id(destination, call_sid)).update(
                actions=[pushed.set(version)], condition=WebhookDelivery.remote_id.exists() & not_newer
            )
        except UpdateError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
            return False
        return True
