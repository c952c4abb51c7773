"""Fake kintone and HubSpot servers for the local stack and the tests (127.0.0.1 only).

Each validates authentication and payloads the way its public documentation describes (see
docs/decisions.md, 2026-11-30, "CRM push"), and keeps what it was sent so tests can read it back.

kintone (REST API, https://cybozu.dev/ja/kintone/docs/rest-api/records/add-record/ and
.../update-record/):
- ``POST /k/v1/record.json`` ``{"app", "record": {CODE: {"value": ...}}}`` -> ``{"id", "revision"}``;
  ``PUT /k/v1/record.json`` ``{"app", "id", "record"}`` -> ``{"revision"}``.
- ``GET /k/v1/records.json`` with a JSON body ``{"app", "query", "fields"}``
  (.../records/get-records/; a GET may carry its parameters as JSON): the query here is
  ``CODE = "value"`` with an optional ``limit N``; an unknown field code is 400 ``GAIA_IQ11``;
  -> ``{"records": [{"$id": {"type": "__ID__", "value": ...}, ...}], "totalCount": null}``.
- ``X-Cybozu-API-Token`` must be a token of that app (else 401 ``GAIA_IA02``); ``Content-Type:
  application/json``; a field value is a string, a number or a list of strings (else 400
  ``CB_VA01``); unknown field codes are ignored, as documented; an unknown app 404 ``GAIA_AP01``,
  an unknown record 404 ``GAIA_RE01``.

HubSpot (CRM v3, https://developers.hubspot.com/docs/api/crm/contacts, .../crm/search,
.../crm/calls):
- ``Authorization: Bearer <private app token>`` (else 401 ``INVALID_AUTHENTICATION``).
- ``POST /crm/v3/objects/contacts/search`` and ``.../calls/search`` (``filterGroups`` of
  ``{propertyName, operator, value}``, ``EQ`` only here) -> ``{"total", "results"}``;
  ``POST /crm/v3/objects/contacts`` -> 201;
  ``POST /crm/v3/objects/calls`` needs ``hs_timestamp``; ``hs_call_duration`` in milliseconds
  (digits), ``hs_call_direction`` and ``hs_call_status`` from the documented values;
  ``associations[].to.id`` must be an existing contact with ``HUBSPOT_DEFINED`` type 194 (call to
  contact) -> 201; ``PATCH /crm/v3/objects/calls/{id}`` -> 200 (404 when unknown). Validation
  errors are 400 ``VALIDATION_ERROR``.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CALL_DIRECTIONS = {"INBOUND", "OUTBOUND"}
CALL_STATUSES = {"BUSY", "CALLING_CRM_USER", "CANCELED", "COMPLETED", "CONNECTING", "FAILED", "IN_PROGRESS",
                 "NO_ANSWER", "QUEUED", "RINGING"}


class _Refused(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body


class _JsonServer:
    """A ThreadingHTTPServer on 127.0.0.1 that routes JSON requests to ``handle``."""

    def __init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def handle(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        raise NotImplementedError

    def start(self) -> _JsonServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    if not headers.get("content-type", "").startswith("application/json"):
                        raise _Refused(415 if fake.kind == "hubspot" else 400,
                                       {"code": "CB_IJ01", "message": "Content-Type: application/json"})
                    try:
                        body = json.loads(raw or b"null")
                    except ValueError:
                        raise _Refused(400, {"code": "CB_IJ01", "message": "invalid JSON"}) from None
                    with fake.lock:
                        fake.requests.append({"method": self.command, "path": self.path, "body": body})
                        status, out = fake.handle(self.command, self.path, headers, body)
                except _Refused as refused:
                    status, out = refused.status, refused.body
                data = json.dumps(out, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = _any  # noqa: N815 - http.server's naming

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    kind = ""


# --------------------------------------------------------------------------- kintone


@dataclass
class KintoneApp:
    token: str
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> record (values only)
    revisions: dict[str, int] = field(default_factory=dict)


def _kintone_values(record: Any) -> dict[str, Any]:
    if record is None:
        return {}
    if not isinstance(record, dict):
        raise _Refused(400, {"code": "CB_VA01", "message": "入力内容が正しくありません。", "errors": {
            "record": {"messages": ["オブジェクトを指定してください。"]}}})
    out: dict[str, Any] = {}
    for code, cell in record.items():
        value = cell.get("value") if isinstance(cell, dict) else None
        ok = isinstance(cell, dict) and "value" in cell and (
            isinstance(value, str | int | float)
            or (isinstance(value, list) and all(isinstance(v, str) for v in value)))
        if not ok:
            raise _Refused(400, {"code": "CB_VA01", "message": "入力内容が正しくありません。", "errors": {
                f"record.{code}.value": {"messages": ["値の形式が正しくありません。"]}}})
        out[code] = value
    return out


class FakeKintone(_JsonServer):
    kind = "kintone"

    def __init__(self) -> None:
        super().__init__()
        self.apps: dict[int, KintoneApp] = {}
        self.fields: dict[int, set[str]] = {}
        self.add_replies: list[int] = []  # tests: answer the next adds with these statuses

    def _app(self, headers: dict[str, str], body: Any) -> tuple[int, KintoneApp]:
        if not isinstance(body, dict):
            raise _Refused(400, {"code": "CB_IJ01", "message": "invalid JSON"})
        try:
            app_id = int(str(body.get("app")))  # a number or a numeric string
        except (TypeError, ValueError):
            raise _Refused(400, {"code": "CB_VA01", "message": "入力内容が正しくありません。",
                                 "errors": {"app": {"messages": ["必須です。"]}}}) from None
        app = self.apps.get(app_id)
        if app is None:
            raise _Refused(404, {"code": "GAIA_AP01", "message": "指定したアプリが存在しません。"})
        if headers.get("x-cybozu-api-token", "") != app.token:
            raise _Refused(401, {"code": "GAIA_IA02", "message": "APIトークンが不正です。"})
        return app_id, app

    def _query(self, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        app_id, app = self._app(headers, body)
        pattern = r'\s*(\S+)\s*=\s*"([^"]*)"\s*(?:limit\s+(\d+))?\s*'
        match = re.fullmatch(pattern, str(body.get("query") or ""))
        if match is None:
            raise _Refused(400, {"code": "GAIA_IQ03", "message": "クエリの形式が正しくありません。"})
        code, value, limit = match.group(1), match.group(2), int(match.group(3) or 100)
        if code not in self.fields[app_id]:
            message = f"指定されたフィールド（{code}）が見つかりません。"
            raise _Refused(400, {"code": "GAIA_IQ11", "message": message})
        found = [rid for rid, rec in sorted(app.records.items(), key=lambda r: int(r[0]))
                 if str(rec.get(code, "")) == value][:limit]
        records = [{"$id": {"type": "__ID__", "value": rid}} for rid in found]
        return 200, {"records": records, "totalCount": None}

    def add_app(self, app: int, token: str, fields: set[str]) -> None:
        self.apps[app] = KintoneApp(token)
        self.fields[app] = set(fields)

    def records(self, app: int) -> dict[str, dict[str, Any]]:
        with self.lock:
            return {k: dict(v) for k, v in self.apps[app].records.items()}

    def handle(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        route = path.split("?")[0]
        if route == "/k/v1/records.json" and method == "GET":
            return self._query(headers, body)
        if route != "/k/v1/record.json" or method not in ("POST", "PUT"):
            return 404, {"code": "CB_NO01", "message": "not found"}
        app_id, app = self._app(headers, body)
        values = {k: v for k, v in _kintone_values(body.get("record")).items() if k in self.fields[app_id]}
        if method == "POST":
            record_id = str(len(app.records) + 1)
            app.records[record_id] = values
            app.revisions[record_id] = 1
            if self.add_replies:  # tests: the record is added, but the answer is this error
                status = self.add_replies.pop(0)
                return status, {"code": "GAIA_TM12", "message": "一時的なエラーが発生しました。"}
            return 200, {"id": record_id, "revision": "1"}
        record_id = str(body.get("id") or "")
        if record_id not in app.records:
            raise _Refused(404, {"code": "GAIA_RE01", "message": "指定したレコードが見つかりません。"})
        app.records[record_id].update(values)
        app.revisions[record_id] += 1
        return 200, {"revision": str(app.revisions[record_id])}


# --------------------------------------------------------------------------- HubSpot

_CALL_PATH = re.compile(r"^/crm/v3/objects/calls/(?P<id>\d+)$")


def _validation(message: str) -> _Refused:
    return _Refused(400, {"status": "error", "category": "VALIDATION_ERROR", "message": message})


class FakeHubspot(_JsonServer):
    kind = "hubspot"

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self.contacts: dict[str, dict[str, Any]] = {}  # id -> properties
        self.calls: dict[str, dict[str, Any]] = {}  # id -> {"properties", "contacts"}
        self.call_replies: list[int] = []  # tests: log the next calls, but answer with these statuses
        self._next = 100

    def _id(self) -> str:
        self._next += 1
        return str(self._next)

    def handle(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        if headers.get("authorization", "") != f"Bearer {self.token}":
            raise _Refused(401, {"status": "error", "category": "INVALID_AUTHENTICATION",
                                 "message": "Authentication credentials not found."})
        if not isinstance(body, dict):
            raise _validation("the body must be a JSON object")
        route = path.split("?")[0]
        if method == "POST" and route == "/crm/v3/objects/contacts/search":
            return 200, self._search(body, self.contacts)
        if method == "POST" and route == "/crm/v3/objects/calls/search":
            return 200, self._search(body, {k: v["properties"] for k, v in self.calls.items()})
        if method == "POST" and route == "/crm/v3/objects/contacts":
            properties = body.get("properties")
            if not isinstance(properties, dict):
                raise _validation("properties: required")
            contact = self._id()
            self.contacts[contact] = {k: str(v) for k, v in properties.items()}
            return 201, {"id": contact, "properties": self.contacts[contact]}
        if method == "POST" and route == "/crm/v3/objects/calls":
            properties = self._call_properties(body.get("properties"), creating=True)
            contacts = self._associations(body.get("associations") or [])
            call = self._id()
            self.calls[call] = {"properties": properties, "contacts": contacts}
            if self.call_replies:  # tests: the call is logged, but the answer is this error
                return self.call_replies.pop(0), {"status": "error", "category": "BAD_GATEWAY",
                                                  "message": "upstream error"}
            return 201, {"id": call, "properties": properties}
        match = _CALL_PATH.match(route)
        if method == "PATCH" and match:
            call = match.group("id")
            if call not in self.calls:
                raise _Refused(404, {"status": "error", "category": "OBJECT_NOT_FOUND",
                                     "message": "not found"})
            changed = self._call_properties(body.get("properties"), creating=False)
            self.calls[call]["properties"].update(changed)
            return 200, {"id": call, "properties": self.calls[call]["properties"]}
        return 404, {"status": "error", "category": "OBJECT_NOT_FOUND", "message": f"{method} {route}"}

    def _search(self, body: dict[str, Any], objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
        groups = body.get("filterGroups")
        if not isinstance(groups, list) or not groups:
            raise _validation("filterGroups: required")
        found = []
        for object_id, properties in objects.items():
            for group in groups:
                filters = group.get("filters") if isinstance(group, dict) else None
                if not isinstance(filters, list) or not filters:
                    raise _validation("filterGroups[].filters: required")
                for f in filters:
                    if not isinstance(f, dict) or f.get("operator") != "EQ" or "propertyName" not in f:
                        raise _validation("filters: propertyName, operator EQ and value")
                if all(properties.get(f["propertyName"]) == str(f.get("value")) for f in filters):
                    found.append({"id": object_id, "properties": properties})
                    break
        return {"total": len(found), "results": found[: int(body.get("limit") or 10)]}

    def _call_properties(self, properties: Any, *, creating: bool) -> dict[str, str]:
        if not isinstance(properties, dict):
            raise _validation("properties: required")
        out = {k: str(v) for k, v in properties.items()}
        if creating and not out.get("hs_timestamp"):
            raise _validation("hs_timestamp: required")
        if "hs_call_duration" in out and not out["hs_call_duration"].isdigit():
            raise _validation("hs_call_duration: milliseconds")
        if "hs_call_direction" in out and out["hs_call_direction"] not in CALL_DIRECTIONS:
            raise _validation(f"hs_call_direction: one of {sorted(CALL_DIRECTIONS)}")
        if "hs_call_status" in out and out["hs_call_status"] not in CALL_STATUSES:
            raise _validation(f"hs_call_status: one of {sorted(CALL_STATUSES)}")
        return out

    def _associations(self, associations: Any) -> list[str]:
        if not isinstance(associations, list):
            raise _validation("associations: a list")
        contacts = []
        for a in associations:
            to = (a or {}).get("to") or {}
            types = (a or {}).get("types") or []
            if str(to.get("id")) not in self.contacts:
                raise _validation(f"associations: no contact {to.get('id')!r}")
            if not any(t.get("associationCategory") == "HUBSPOT_DEFINED" and t.get("associationTypeId") == 194
                       for t in types):
                raise _validation("associations: a call to a contact is HUBSPOT_DEFINED type 194")
            contacts.append(str(to["id"]))
        return contacts
