"""The CRM push: a completed call becomes a kintone record / a HubSpot call, a stage change updates it.

Both talk JSON over ``Send`` (webhooks.outgoing.request with the SSRF guard) and raise ``Failed``
with whether the answer is worth another try (408, 429, 5xx, network: yes; other 4xx: no). An
update older than the newest version already sent (a retry that arrives late) is skipped, so the
CRM does not go back to an older stage. (Two deliveries of one call sent at the same instant can
still arrive in either order: the version is claimed before the request.)

- kintone (REST API, API token auth ``X-Cybozu-API-Token``): ``POST /k/v1/record.json``
  ``{"app", "record": {FIELD_CODE: {"value": ...}}}`` answers ``{"id", "revision"}``; the id is
  kept (``Links``) with the domain and app it is valid in, and ``PUT /k/v1/record.json``
  ``{"app", "id", "record"}`` updates that record; after the account moves to another app the
  call's record is added there.
- HubSpot (CRM v3, private app token as ``Authorization: Bearer``): search the contact by phone
  (``POST /crm/v3/objects/contacts/search``, the number as E.164 or as typed nationally), create it
  when missing
  (``POST /crm/v3/objects/contacts``), log the call associated to it
  (``POST /crm/v3/objects/calls``, association type 194 = call to contact, the call's sid as
  ``hs_call_external_id``) and keep its id; a stage change updates the call
  (``PATCH /crm/v3/objects/calls/{id}``). A retried log first searches the calls by that external
  id (``POST /crm/v3/objects/calls/search``): an earlier try whose answer was lost may have logged it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from calltrack.account_config import HubspotPush, KintonePush
from webhooks.outgoing import Answer, retryable

Send = Callable[[str, str, bytes | None, Mapping[str, str]], Answer]
CALL_TO_CONTACT = 194  # HubSpot-defined association type id: call -> contact


class Failed(Exception):
    def __init__(self, reason: str, *, retry: bool, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry
        self.status = status


@dataclass(frozen=True)
class Link:
    """What a CRM made of a call: its record / call id, where that id is valid (kintone:
    ``domain/app``; None for links made before it was kept, and for HubSpot), and the newest
    version of the call sent there (None: not known)."""

    remote_id: str
    scope: str | None = None
    pushed_version: int | None = None


class Links(Protocol):
    """The calls' links, per destination."""

    def get(self, destination: str, call_sid: str) -> Link | None: ...

    def put(self, destination: str, call_sid: str, link: Link) -> None: ...

    def claim(self, destination: str, call_sid: str, version: int) -> bool:
        """Record that ``version`` goes to the CRM now; False when a newer version already went."""
        ...


def _version(payload: Mapping[str, Any]) -> int | None:
    value = payload.get("version")
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _older(version: int | None, pushed: int | None) -> bool:
    return version is not None and pushed is not None and version < pushed


def _superseded(links: Links, destination: str, sid: str, version: int | None) -> bool:
    """A newer version of the call was sent already (an older update retried late): skip this one,
    or the CRM would end on the older stage."""
    return version is not None and not links.claim(destination, sid, version)


# kintone answers some validation errors with 520 (its documented error format, code CB_VA01):
# not worth another try, unlike the 5xx of a server in trouble.
KINTONE_FINAL = frozenset({520})


def _json(send: Send, method: str, url: str, payload: Any, headers: Mapping[str, str], what: str,
          final: frozenset[int] = frozenset()) -> Any:
    answer = send(method, url, json.dumps(payload, ensure_ascii=False).encode("utf-8"),
                  {"Content-Type": "application/json", **headers})
    if not 200 <= answer.status < 300:
        retry = retryable(answer.status) and answer.status not in final
        raise Failed(f"{what}: http-{answer.status}", retry=retry, status=answer.status)
    try:
        return json.loads(answer.body or b"{}")
    except ValueError:
        raise Failed(f"{what}: the answer is not JSON", retry=True, status=answer.status) from None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


# --------------------------------------------------------------------------- kintone


def kintone_record(call: Mapping[str, Any], fields: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """The call's mapped fields in kintone's record format (every value as text)."""
    return {code: {"value": _text(call.get(name))} for name, code in fields.items()}


def _kintone_record_of(call_sid: str, cfg: KintonePush, url: str, headers: Mapping[str, str],
                       send: Send) -> str | None:
    """The id of the app's record holding ``call_sid`` in the field mapped from ``call_sid``, or
    None (``GET /k/v1/records.json`` with a query, https://cybozu.dev/ja/kintone/docs/rest-api/records/get-records/)."""
    code = cfg.fields.get("call_sid")
    if not code:
        return None
    # field codes are letters, digits, _ and some symbols; a call sid is CA + 32 hex digits
    query = {"app": cfg.app, "query": f'{code} = "{call_sid}" limit 1', "fields": ["$id"]}
    try:
        found = _json(send, "GET", url.replace("/record.json", "/records.json"), query, headers,
                      "kintone lookup", KINTONE_FINAL)
    except Failed as refused:
        if refused.retry:
            raise
        return None  # a token without record view, a field that cannot be queried: add as before
    records = found.get("records") or []
    return str(records[0]["$id"]["value"]) if records else None


def push_kintone(payload: Mapping[str, Any], cfg: KintonePush, token: str, base_url: str, send: Send,
                 links: Links, *, retrying: bool = False) -> str:
    """Add the call's record (or update it when it was added before); -> the record id. A retry
    of an add first looks for the record by the call's id (when ``call_sid`` is mapped to a
    field): an earlier try whose answer was lost may have added it."""
    call = payload["call"]
    sid = str(call["call_sid"])
    url = f"{base_url.rstrip('/')}/k/v1/record.json"
    headers = {"X-Cybozu-API-Token": token}
    record = kintone_record(call, cfg.fields)
    version = _version(payload)
    # kintone numbers records per app: an id made in another app (or domain) names another record
    # here. A link from before the scope was kept is taken to be in the app configured now.
    scope = f"{cfg.domain}/{cfg.app}"
    link = links.get("kintone", sid)
    moved = link is not None and link.scope not in (None, scope)
    if link is None and payload.get("action") == "update":
        raise Failed("kintone: the call's record is not added yet", retry=True)
    if moved and link is not None and _older(version, link.pushed_version):
        return link.remote_id  # a late retry: the next change of the call adds it to the new app
    if link is None or moved:  # not added yet, or added to the app the account used before
        # a retry looks first, moved or not: the lost answer may be of an add to this very app
        added = _kintone_record_of(sid, cfg, url, headers, send) if retrying else None
        if added is not None:
            _json(send, "PUT", url, {"app": cfg.app, "id": added, "record": record}, headers,
                  "kintone update", KINTONE_FINAL)
            links.put("kintone", sid, Link(added, scope, version))
            return added
        out = _json(send, "POST", url, {"app": cfg.app, "record": record}, headers, "kintone add",
                    KINTONE_FINAL)
        record_id = str(out.get("id") or "")
        if not record_id:
            raise Failed("kintone add: no record id in the answer", retry=True)
        links.put("kintone", sid, Link(record_id, scope, version))
        return record_id
    if _superseded(links, "kintone", sid, version):
        return link.remote_id
    _json(send, "PUT", url, {"app": cfg.app, "id": link.remote_id, "record": record}, headers,
          "kintone update", KINTONE_FINAL)
    return link.remote_id


# --------------------------------------------------------------------------- HubSpot

HUBSPOT_STATUS = {"answered": "COMPLETED", "missed": "NO_ANSWER", "busy": "BUSY", "failed": "FAILED",
                  "canceled": "CANCELED"}


def hubspot_call_properties(call: Mapping[str, Any]) -> dict[str, str]:
    """The call engagement's properties: source (channel / campaign / keyword), duration, stage."""
    source = " / ".join(str(call[k]) for k in ("channel", "campaign", "keyword") if call.get(k))
    lines = [f"Source: {source or 'unknown'}", f"Stage: {call.get('stage') or '-'}"]
    if call.get("value") is not None:
        lines.append(f"Value: {call['value']}")
    return {
        "hs_timestamp": str(call.get("started_at") or ""),
        "hs_call_title": f"calltrack: {source or 'call'}",
        "hs_call_body": "\n".join(lines),
        "hs_call_direction": "INBOUND",
        "hs_call_duration": str(int(call.get("talk_seconds") or 0) * 1000),  # milliseconds
        "hs_call_from_number": _text(call.get("caller")),
        "hs_call_to_number": _text(call.get("tracking_number")),
        "hs_call_status": HUBSPOT_STATUS.get(str(call.get("status")), "COMPLETED"),
        "hs_call_external_id": str(call.get("call_sid") or ""),  # what a retry searches for
    }


def phone_spellings(e164: str) -> list[str]:
    """The caller's number as people type it into a CRM: E.164, national with its usual separators
    (090-1234-5678) and national digits; a HubSpot search matches the stored text exactly."""
    import re

    import phonenumbers

    try:
        parsed = phonenumbers.parse(e164)
        national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    except phonenumbers.NumberParseException:
        return [e164]
    return list(dict.fromkeys([e164, national, re.sub(r"\D", "", national)]))


def _contact_id(phone: str, base: str, headers: Mapping[str, str], send: Send) -> str:
    # One filter group per spelling: HubSpot ORs the groups (at most 5), ANDs a group's filters.
    spellings = phone_spellings(phone)
    groups = [{"filters": [{"propertyName": "phone", "operator": "EQ", "value": v}]} for v in spellings]
    search = {"filterGroups": groups, "properties": ["phone"], "limit": 1}
    found = _json(send, "POST", f"{base}/crm/v3/objects/contacts/search", search, headers, "hubspot search")
    results = found.get("results") or []
    if results:
        return str(results[0]["id"])
    created = _json(send, "POST", f"{base}/crm/v3/objects/contacts", {"properties": {"phone": phone}},
                    headers, "hubspot contact")
    return str(created["id"])


def _hubspot_call_of(call_sid: str, base: str, headers: Mapping[str, str], send: Send) -> str | None:
    """The id of the HubSpot call logged with ``call_sid`` as its external id, or None
    (https://developers.hubspot.com/docs/api/crm/search; the index lags a write by seconds, and a
    retry comes a minute or more after the try it repeats)."""
    search = {"filterGroups": [{"filters": [
        {"propertyName": "hs_call_external_id", "operator": "EQ", "value": call_sid}]}],
        "properties": ["hs_call_external_id"], "limit": 1}
    try:
        found = _json(send, "POST", f"{base}/crm/v3/objects/calls/search", search, headers,
                      "hubspot call lookup")
    except Failed as refused:
        if refused.retry:
            raise
        return None  # a token that may log calls but not search them: log as before
    results = found.get("results") or []
    return str(results[0]["id"]) if results else None


def push_hubspot(payload: Mapping[str, Any], cfg: HubspotPush, token: str, base_url: str, send: Send,
                 links: Links, *, retrying: bool = False) -> str:
    """Log the call on the caller's contact (or update the logged call); -> the call's id. A retry
    of a log first looks for the call by its external id: an earlier try whose answer was lost may
    have logged it."""
    call = payload["call"]
    sid = str(call["call_sid"])
    base = base_url.rstrip("/")
    headers = {"Authorization": f"Bearer {token}"}
    properties = hubspot_call_properties(call)
    version = _version(payload)
    link = links.get("hubspot", sid)
    if link is None and payload.get("action") == "update":
        raise Failed("hubspot: the call is not logged yet", retry=True)
    if link is not None:
        if _superseded(links, "hubspot", sid, version):
            return link.remote_id
        _json(send, "PATCH", f"{base}/crm/v3/objects/calls/{link.remote_id}", {"properties": properties},
              headers, "hubspot update")
        return link.remote_id
    logged = _hubspot_call_of(sid, base, headers, send) if retrying else None
    if logged is not None:
        _json(send, "PATCH", f"{base}/crm/v3/objects/calls/{logged}", {"properties": properties},
              headers, "hubspot update")
        links.put("hubspot", sid, Link(logged, None, version))
        return logged
    body: dict[str, Any] = {"properties": properties}
    if call.get("caller"):
        contact = _contact_id(str(call["caller"]), base, headers, send)
        body["associations"] = [{"to": {"id": contact}, "types": [
            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": CALL_TO_CONTACT}]}]
    created = _json(send, "POST", f"{base}/crm/v3/objects/calls", body, headers, "hubspot call")
    call_id = str(created.get("id") or "")
    if not call_id:
        raise Failed("hubspot call: no id in the answer", retry=True)
    links.put("hubspot", sid, Link(call_id, None, version))
    return call_id
