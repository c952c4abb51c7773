"""The delivery state machine: plan an incoming event into delivery rows, then send each delivery.

The webhooks queue carries three kinds of messages:
- a call event from the call_changes fan-out (``{"type": "call.*", "account", "call_sid", ...}``),
- an ops message from ops_jobs (``{"type": "alert.*" | "review.monthly", "account", "id", "data"}``),
- one delivery (``{"delivery": id, "account": a}``), sent by the planning step and the API.

Planning stores each planned row (idempotent ids) and queues one delivery message per open row, so
every destination fails, backs off and dead-letters alone. Sending signs the stored body, posts it
through the SSRF guard and records the answer: 2xx delivered; 408, 429, 5xx and network errors
``RetryLater`` (backoff 1 min .. 24 h, then failed and the dead-letter queue); any other answer, a
redirect (never followed) or a refused address: failed at once.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from calltrack.account_config import AccountConfig
from calltrack.accounts import UnknownAccount
from calltrack.outbound import RefusedDestination
from webhooks import plan
from webhooks.backoff import MAX_RECEIVES, delay_s
from webhooks.crm import Failed, Link, Send, push_hubspot, push_kintone
from webhooks.outgoing import retryable
from webhooks.store import OPEN, iso

USER_AGENT = "calltrack-webhooks/1"


class RetryLater(Exception):
    def __init__(self, reason: str, delay_s: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay_s = delay_s


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``X-Calltrack-Signature``: ``t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


@dataclass
class Ports:
    store: Any  # webhooks.store.DynamoDeliveries
    config: Callable[[str], AccountConfig]
    secret: Callable[[str, str], str | None]  # (account, name) -> value
    send: Send  # (method, url, body, headers) -> Answer, through the SSRF guard
    enqueue: Callable[[list[dict[str, Any]]], None]  # delivery messages onto the webhooks queue
    present: Callable[[Mapping[str, Any]], dict[str, Any]]  # call item -> GET /v1/calls/{sid}
    now: Callable[[], datetime]
    kintone_base_url: str = ""  # "" = https://{domain}
    hubspot_base_url: str = "https://api.hubapi.com"
    # the call is still stored (not erased, not expired): an event queued before a privacy erasure
    # must not make delivery rows (and payloads with the caller) after it
    call_exists: Callable[[str], bool] = lambda call_sid: True


def delivery_message(account: str, delivery: str, requeues: int = 0) -> dict[str, Any]:
    """One delivery's queue message; ``requeues``: the row's round (the retry route's count), so the
    dead-letter sweep tells this message's dead letter from an earlier round's."""
    message: dict[str, Any] = {"delivery": delivery, "account": account}
    if requeues:
        message["requeues"] = requeues
    return message


def accept(planned: list[plan.Planned], account: str, ports: Ports) -> int:
    """Store the planned rows and queue a delivery message for each still open; -> how many queued."""
    messages = []
    for row in planned:
        if ports.store.create(account, row, ports.now()) in OPEN:
            messages.append(delivery_message(account, row.delivery_id))
    if messages:
        ports.enqueue(messages)
    return len(messages)


def plan_message(message: Mapping[str, Any], ports: Ports) -> int:
    """A call event or an ops message -> its deliveries stored and queued."""
    account = str(message["account"])
    try:
        config = ports.config(account)
    except UnknownAccount:
        return 0  # deleted after the event was queued: nobody to tell, and retrying cannot change that
    now = iso(ports.now())
    if str(message.get("type", "")).startswith("call."):
        if not ports.call_exists(str(message["call_sid"])):
            return 0  # erased (or expired) since the event: nothing of it goes out any more
        planned = plan.plan_call_event(message, config, ports.present, now)
    else:
        planned = plan.plan_alert(message, config, now)
    return accept(planned, account, ports)


def _webhook(row: Mapping[str, Any], config: AccountConfig, ports: Ports) -> int:
    hook = next((h for h in config.webhooks if h.id == row["destination"]), None)
    if hook is None:
        raise Failed(f"webhook {row['destination']!r} is no longer in the account config", retry=False)
    secret = ports.secret(config.account, hook.secret)
    if not secret:
        raise Failed(f"secret {hook.secret!r} is not set (calltrack secret set --account {config.account} "
                     f"{hook.secret})", retry=True)
    body = str(row["payload"]).encode("utf-8")
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "X-Calltrack-Event": str(row["event_type"]),
        "X-Calltrack-Delivery": str(row["delivery_id"]),
        "X-Calltrack-Signature": signature(secret, int(ports.now().timestamp()), body),
    }
    answer = ports.send("POST", hook.url, body, headers)
    if 300 <= answer.status < 400:
        raise Failed(f"redirect not followed (http-{answer.status})", retry=False, status=answer.status)
    if not 200 <= answer.status < 300:
        raise Failed(f"http-{answer.status}", retry=retryable(answer.status), status=answer.status)
    return answer.status


class _Links:
    def __init__(self, store: Any, account: str, delivery: str, now: Callable[[], datetime]) -> None:
        self.store, self.account, self.delivery, self.now = store, account, delivery, now

    def get(self, destination: str, call_sid: str) -> Link | None:
        row = self.store.link(self.account, destination, call_sid)
        if row is None:
            return None
        version = row.get("pushed_version")
        return Link(str(row["remote_id"]), row.get("remote_scope"), None if version is None else int(version))

    def put(self, destination: str, call_sid: str, link: Link) -> None:
        # not kept when the push's delivery row is gone (the caller erased meanwhile): the record
        # at the CRM is a copy sent out, which the erasure cannot reach
        self.store.set_link(self.account, destination, call_sid, link.remote_id, self.now(), scope=link.scope,
                            version=link.pushed_version, delivery=self.delivery)

    def claim(self, destination: str, call_sid: str, version: int) -> bool:
        return bool(self.store.claim_link_version(self.account, destination, call_sid, version))


def _crm(row: Mapping[str, Any], config: AccountConfig, ports: Ports) -> int:
    import json

    kind = str(row["kind"])
    push_config = getattr(config.crm_push, kind)
    if push_config is None:
        raise Failed(f"crm_push.{kind} is no longer in the account config", retry=False)
    token = (ports.secret(config.account, push_config.token_secret) or "").strip()
    if not token:
        raise Failed(f"secret {push_config.token_secret!r} is not set", retry=True)
    if any(ord(c) < 32 or ord(c) == 127 for c in token):
        raise Failed(f"secret {push_config.token_secret!r} holds a line break or control character: "
                     "set it again as one line", retry=True)
    payload = json.loads(str(row["payload"]))
    links = _Links(ports.store, config.account, str(row["delivery_id"]), ports.now)
    retrying = int(row.get("attempts") or 0) > 0  # an earlier try may have added the record / call
    if kind == plan.KINTONE:
        base = ports.kintone_base_url or f"https://{push_config.domain}"
        push_kintone(payload, push_config, token, base, ports.send, links, retrying=retrying)
    else:
        push_hubspot(payload, push_config, token, ports.hubspot_base_url, ports.send, links,
                     retrying=retrying)
    return 200


# The outcome when the row went while it was sent: its caller was erased (or its account deleted);
# the send's result is not written (it would bring back a row with the call's id and no expiry).
GONE = "gone"


def send_delivery(message: Mapping[str, Any], ports: Ports, receive_count: int) -> str:
    """Try one delivery; -> "delivered" / "failed" / "skipped" / "gone". Raises RetryLater to be
    tried again."""
    account, delivery = str(message["account"]), str(message["delivery"])
    row = ports.store.get(account, delivery)
    if row is None or row.get("status") not in OPEN:
        return "skipped"  # unknown, delivered, or failed (the retry route reopens it first)
    if not ports.store.claim(account, delivery, ports.now()):
        return "skipped"  # another copy of this message is being sent right now
    attempts = int(row.get("attempts") or 0) + 1
    now = ports.now()
    try:
        config = ports.config(account)
        if row["kind"] == "webhook":
            status: int | None = _webhook(row, config, ports)
        else:
            status = _crm(row, config, ports)
    except UnknownAccount:
        failure = Failed("the account no longer exists", retry=False)
    except RefusedDestination as exc:
        failure = Failed(f"refused: {exc}", retry=False)
    except Failed as exc:
        failure = exc
    except (OSError, http.client.HTTPException) as exc:
        failure = Failed(f"network: {type(exc).__name__}", retry=True)
    except Exception as exc:  # noqa: BLE001 - an answer or value we did not foresee
        # Recorded and retried with backoff like any failure, named by its type only: its text
        # may hold what was being sent (http.client quotes a header's value, the token).
        failure = Failed(f"error: {type(exc).__name__}", retry=True)
    else:
        if not ports.store.update(account, delivery, status="delivered", attempts=attempts,
                                  response_status=status, reason=None, next_attempt_at=None,
                                  delivered_at=iso(now), updated_at=iso(now)):
            return GONE
        return "delivered"
    common = {"attempts": attempts, "response_status": failure.status, "updated_at": iso(now)}
    last = receive_count >= MAX_RECEIVES
    if failure.retry and not last:
        delay = delay_s(receive_count)
        if not ports.store.update(account, delivery, status="retrying", reason=failure.reason,
                                  next_attempt_at=iso(now + timedelta(seconds=delay)), **common):
            return GONE
        raise RetryLater(failure.reason, delay)
    reason = f"gave up after 24 h: {failure.reason}" if failure.retry else failure.reason
    if not ports.store.update(account, delivery, status="failed", reason=reason, next_attempt_at=None,
                              **common):
        return GONE
    if failure.retry:
        raise RetryLater(reason, 0)  # the last try: SQS moves the message to the dead-letter queue now
    return "failed"


def reopen(account: str, delivery: str, ports: Ports) -> dict[str, Any] | None:
    """POST /v1/webhooks/deliveries/{id}/retry: the delivery (failed, or any) queued again now, with its
    original body and id; the backoff starts over."""
    row = ports.store.get(account, delivery)
    if row is None or row.get("kind") == "link":
        return None
    requeues = int(row.get("requeues") or 0) + 1
    if not ports.store.update(account, delivery, status="pending", next_attempt_at=None, requeues=requeues,
                              updated_at=iso(ports.now())):
        return None  # erased since it was read
    ports.enqueue([delivery_message(account, delivery, requeues)])
    return ports.store.get(account, delivery)
