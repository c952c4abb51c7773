"""Which deliveries an event makes (pure): call events, ops alerts and pings -> ``Planned`` rows.

Ids are derived, not random: the event id from (account, type, call and its version / the alert's
message id), the delivery id from (event id, destination). Call events arrive at least once; a
duplicate plans the same ids and the store keeps the first row.

Event body (what a webhook receives, byte for byte the same on every retry):
``{"id", "type", "created_at", "account", "data"}`` where ``data`` is the call as
``GET /v1/calls/{sid}`` shows it (``call_records.calls.call_to_json``, unmasked) for call events,
the alert for ``alert.*`` / ``review.monthly``. ``include_caller: false`` removes the caller's
number and name from it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from calltrack.account_config import CRM_CALL_FIELDS, AccountConfig

STARTED, COMPLETED, UPDATED = "call.started", "call.completed", "call.updated"
RECORDING_READY = "recording.ready"
PING = "ping"
CALLER_FIELDS = ("caller", "caller_name")
# A call.updated that changes one of these updates the CRM's record of the call.
CRM_UPDATE_FIELDS = frozenset({"stage", "value", "tags", "score", "agent"})
# ... and, once the call has ended, one of these: what the CRM record shows of the call. The two
# Twilio callbacks that end a call can land in either order, so call.completed may carry the
# provisional "missed, 0 s" and the answer arrive as an update.
CRM_ENDED_FIELDS = (frozenset(CRM_CALL_FIELDS) | {"attribution", "outcome_reason"}) - {"call_sid"}
KINTONE, HUBSPOT = "kintone", "hubspot"


@dataclass(frozen=True)
class Planned:
    delivery_id: str
    kind: str  # webhook / kintone / hubspot
    destination: str  # webhook id, "kintone", "hubspot"
    event_id: str
    event_type: str
    call_sid: str | None
    payload: dict[str, Any]

    def payload_text(self) -> str:
        return json.dumps(self.payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _digest(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()[:32]


def event_id(account: str, event_type: str, key: str) -> str:
    return "evt_" + _digest(account, event_type, key)


def delivery_id(event: str, destination: str) -> str:
    return "dlv_" + _digest(event, destination)


def without_caller(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (None if k in CALLER_FIELDS else v) for k, v in data.items()}


def body(event: str, event_type: str, created_at: str, account: str,
         data: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": event, "type": event_type, "created_at": created_at, "account": account, "data": dict(data)}


def call_event_types(event: Mapping[str, Any]) -> list[str]:
    """The webhook event types of one call event: its own, plus ``recording.ready`` when this change
    stored the call's recording."""
    types = [str(event["type"])]
    recording = (event.get("call") or {}).get("recording")
    if (event["type"] == UPDATED and "recording" in (event.get("changed") or [])
            and isinstance(recording, Mapping) and recording.get("status") == "stored"):
        types.append(RECORDING_READY)
    return types


def _webhooks(config: AccountConfig, event_type: str, event: str, created_at: str, data: Mapping[str, Any],
              call_sid: str | None) -> list[Planned]:
    out = []
    for hook in config.webhooks:
        if event_type in hook.events:
            shown = data if hook.include_caller else without_caller(data)
            out.append(Planned(delivery_id(event, hook.id), "webhook", hook.id, event, event_type, call_sid,
                               body(event, event_type, created_at, config.account, shown)))
    return out


def plan_call_event(event: Mapping[str, Any], config: AccountConfig,
                    present: Callable[[Mapping[str, Any]], dict[str, Any]], now: str) -> list[Planned]:
    """Deliveries for one call event from the call_changes fan-out."""
    call = event.get("call") or {}
    sid = str(event["call_sid"])
    data = present(call)
    created_at = str(call.get("updated_at") or now)
    out: list[Planned] = []
    for event_type in call_event_types(event):
        evt = event_id(config.account, event_type, f"{sid}:{event.get('version')}")
        out += _webhooks(config, event_type, evt, created_at, data, sid)
    evt = event_id(config.account, str(event["type"]), f"{sid}:{event.get('version')}")
    action = None
    if event["type"] == COMPLETED:
        action = "add"
    elif event["type"] == UPDATED:
        changed = set(event.get("changed") or [])
        if CRM_UPDATE_FIELDS & changed or (call.get("ended_at") and CRM_ENDED_FIELDS & changed):
            action = "update"
    if action:
        for kind, configured in ((KINTONE, config.crm_push.kintone), (HUBSPOT, config.crm_push.hubspot)):
            if configured is not None:
                payload = {"action": action, "call": data, "version": event.get("version")}
                # A webhook id cannot hold ":", so a webhook named "hubspot" keeps its own delivery.
                crm = delivery_id(evt, f"crm:{kind}")
                out.append(Planned(crm, kind, kind, evt, str(event["type"]), sid, payload))
    return out


def plan_alert(message: Mapping[str, Any], config: AccountConfig, now: str) -> list[Planned]:
    """Deliveries for one ops message (``{"type", "account", "id", "data"}`` from ops_jobs)."""
    event_type = str(message["type"])
    evt = event_id(config.account, event_type, str(message.get("id") or ""))
    return _webhooks(config, event_type, evt, str(message.get("created_at") or now),
                     message.get("data") or {}, None)


def plan_ping(config: AccountConfig, hook_id: str, nonce: str, now: str) -> Planned:
    """A ``ping`` for one webhook (POST /v1/webhooks/{id}/test)."""
    evt = event_id(config.account, PING, nonce)
    data = {"webhook": hook_id, "message": "calltrack test delivery"}
    return Planned(delivery_id(evt, hook_id), "webhook", hook_id, evt, PING, None,
                   body(evt, PING, now, config.account, data))
