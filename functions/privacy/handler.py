"""privacy: ``GET`` / ``DELETE /v1/callers/{number}`` (admin). Routing and decorators only.

The number is E.164 in the path (``%2B81...``) or national; the account is the token's own (the
operator names one with ``?account=``). Logic: ``privacy.callers``.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths

from calltrack import audit
from calltrack.api import MAX_ANSWER_BYTES, answer_bytes
from calltrack.auth import Principal, principal_from_app
from calltrack.errors import BadRequest
from calltrack.http_errors import register_error_handlers
from calltrack.observability import make_logger, make_tracer
from calltrack.phone import mask
from privacy import callers, runtime
from privacy.runtime import NEEDS as NEEDS
from privacy.store import URL_TTL_SECONDS

logger = make_logger("privacy")
tracer = make_tracer("privacy")
app = APIGatewayHttpResolver()
register_error_handlers(app)


def _json(status: int, body: Any) -> Response:
    return _json_text(status, json.dumps(body, ensure_ascii=False, default=str))


def _json_text(status: int, text: str) -> Response:
    return Response(status_code=status, content_type="application/json", body=text)


def _account() -> tuple[Principal, str]:
    principal = principal_from_app(app)
    principal.require_role("admin")
    return principal, principal.scoped_account(app.current_event.get_query_string_value("account") or None)


def _scope(number: str) -> tuple[Principal, str, str]:
    from calltrack.accounts import account_reader

    principal, account = _account()
    region = callers.account_region(account_reader(), account)
    return principal, account, callers.caller_number(unquote(number), region)


def _caller_ref(number: str) -> str:
    from calltrack.auth import resolve_operator_token
    from calltrack.settings import get_settings

    return audit.caller_ref(number, resolve_operator_token(get_settings(NEEDS)))


@app.get("/v1/callers/<number>")
def get_caller(number: str) -> Response:
    principal, account, e164 = _scope(number)
    ref = _caller_ref(e164)
    audit.record(account, principal, "caller.export", target=ref)
    store = runtime.store()
    body = callers.export(account, e164, store)
    logger.info("caller exported", extra={"account": account, "caller": mask(e164),
                                          "calls": len(body["calls"])})
    text = json.dumps(body, ensure_ascii=False, default=str)
    if answer_bytes(text) <= MAX_ANSWER_BYTES:
        return _json_text(200, text)
    # Too large for Lambda's 6 MB answer (a frequent caller with long transcripts): the same
    # document from S3, by a presigned URL (303: clients that follow redirects get it directly)
    import uuid

    key = f"{callers.staged_prefix(account, ref)}{uuid.uuid4().hex}.json"
    url = store.stage_export(key, text.encode("utf-8"))
    note = {"url": url, "expires_in": URL_TTL_SECONDS, "size_bytes": len(text.encode("utf-8")),
            "message": "the export is too large for one answer: GET url (it expires in 5 minutes)"}
    return Response(status_code=303, content_type="application/json", headers={"Location": url},
                    body=json.dumps(note))


@app.delete("/v1/callers/<number>")
def delete_caller(number: str) -> Response:
    principal, account, e164 = _scope(number)
    target = _caller_ref(e164)
    # Audited before anything is erased (an erasure that cannot be audited does not start), and
    # again with what it erased: a failure in between leaves "started" without its "ok"
    audit.record(account, principal, "caller.erase", target=target, result="started")
    from calltrack.accounts import account_reader

    deletes_at_twilio = callers.deletes_at_twilio(account_reader(), account)
    twilio = runtime.twilio_deletions(account) if deletes_at_twilio else None
    body = callers.erase(account, e164, runtime.store(), caller_ref=target, twilio_deletions=twilio)
    audit.record(account, principal, "caller.erase", target=target, detail=body["erased"])
    logger.info("caller erased", extra={"account": account, "caller": mask(e164), **body["erased"]})
    return _json(200, body)


@app.delete("/v1/accounts/<account>")
def delete_account(account: str) -> Response:
    from calltrack.errors import Forbidden
    from privacy.account_deletion import delete_account as remove

    principal = principal_from_app(app)
    if not principal.is_operator:
        raise Forbidden("only the operator token deletes accounts")
    from calltrack.account_secrets import account_secrets

    body = remove(account, app.current_event.get_query_string_value("confirm"), runtime.store(),
                  account_secrets(), runtime.account_users(), out_of_time=_out_of_time(app.lambda_context))
    if not body["complete"]:
        body["message"] = "more of the account is left: send the same request again to go on"
        logger.info("account deletion stopped for time", extra={"account": account, **body["removed"]})
        return _json(202, body)
    logger.info("account deleted", extra={"account": account, **body["removed"]})
    return _json(200, body)


# Account deletion stops starting pages when less than this is left of the request (a page, its
# deletes and the answer fit in it; API Gateway ends the request at 29 s, the function's timeout).
STOP_WITH_MS_LEFT = 8_000


def _out_of_time(context: Any) -> Any:
    from calltrack.time_left import out_of_time

    return out_of_time(context, STOP_WITH_MS_LEFT)


@app.get("/v1/audit")
def get_audit() -> Response:
    """The account's audit items from ``from`` to ``to`` (UTC; a date ``to`` includes that day),
    oldest first, at most MAX_AUDIT_ITEMS."""
    from calltrack.settings import get_settings

    _, account = _account()
    start = _instant("from", app.current_event.get_query_string_value("from"))
    end = _instant("to", app.current_event.get_query_string_value("to"))
    if start > end:  # DynamoDB refuses a BETWEEN whose bounds are reversed (a 500 otherwise)
        raise BadRequest(f"from: {start[:20]} is after to ({end[:20]})", field="from")
    items = audit.read(runtime.store().db, get_settings(NEEDS).table_name("audit"), account, start, end,
                       limit=MAX_AUDIT_ITEMS)
    return _json(200, {"account": account, "from": start, "to": end, "items": items,
                       "truncated": len(items) >= MAX_AUDIT_ITEMS})


MAX_AUDIT_ITEMS = 1000


def _instant(field: str, raw: str | None) -> str:
    """A bound compared as text against the audit items' times: a day or a UTC time the calendar
    has (``2026-02-30`` or ``T25:99:99Z`` would read nothing and answer an empty audit), else 400."""
    import re

    from calltrack.days import parse_instant

    value = (raw or "").strip()
    if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        parse_instant(value, field)
        return value + ("T00:00:00Z" if field == "from" else "T23:59:59Z~")
    if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z", value):
        parse_instant(value, field)
        return value
    raise BadRequest(f"{field}: a date YYYY-MM-DD or a time YYYY-MM-DDTHH:MM:SSZ (UTC)", field=field)


@tracer.capture_lambda_handler
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
