"""webhook_api: list failed deliveries, show one, send one again, send a test ping. Routing only.

Admin tokens of the account (or the operator with ``?account=``). A delivery is shown without its
body (it may carry a caller's number): id, destination, event, status, attempts, last answer.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths

from calltrack import audit
from calltrack.auth import principal_from_app
from calltrack.errors import BadRequest, NotFound
from calltrack.http_errors import register_error_handlers
from calltrack.observability import make_logger, make_tracer
from webhooks import runtime
from webhooks.runtime import API_NEEDS as NEEDS

logger = make_logger("webhook_api")
tracer = make_tracer("webhook_api")
app = APIGatewayHttpResolver()
register_error_handlers(app)

STATUSES = ("pending", "retrying", "delivered", "failed")
MAX_LIMIT = 200


def _json(status: int, body: Any) -> Response:
    return Response(status_code=status, content_type="application/json",
                    body=json.dumps(body, ensure_ascii=False, default=str))


def _account() -> str:
    principal = principal_from_app(app)
    principal.require_role("admin")
    requested = app.current_event.get_query_string_value("account") or None
    return principal.scoped_account(requested)


def _ports() -> Any:
    return runtime.ports(runtime.ensure_started(NEEDS))


@app.get("/v1/webhooks/deliveries")
def list_deliveries() -> Response:
    from webhooks.store import public

    account = _account()
    status = (app.current_event.get_query_string_value("status") or "failed").strip().lower()
    if status not in STATUSES:
        raise BadRequest(f"status: one of {', '.join(STATUSES)}", field="status")
    raw_limit = app.current_event.get_query_string_value("limit") or "50"
    if not (raw_limit.isascii() and raw_limit.isdecimal()) or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise BadRequest(f"limit: an integer from 1 to {MAX_LIMIT}", field="limit")
    rows = _ports().store.with_status(account, status, int(raw_limit))
    return _json(200, {"items": [public(r) for r in rows]})


def _delivery_id(delivery: str) -> str:
    if not delivery.startswith("dlv_") or len(delivery) > 64:
        raise BadRequest("delivery: not a delivery id (dlv_...)", field="delivery")
    return delivery


@app.get("/v1/webhooks/deliveries/<delivery>")
def get_delivery(delivery: str) -> Response:
    """One delivery as it stands (``calltrack webhooks test`` waits on it for the ping's answer)."""
    from webhooks.store import public

    account = _account()
    row = _ports().store.get(account, _delivery_id(delivery))
    if row is None or row.get("kind") == "link":
        raise NotFound(f"delivery: no delivery {delivery!r} in this account", field="delivery")
    return _json(200, public(row))


@app.post("/v1/webhooks/deliveries/<delivery>/retry")
def retry_delivery(delivery: str) -> Response:
    from webhooks.deliver import reopen
    from webhooks.store import public

    account = _account()
    row = reopen(account, _delivery_id(delivery), _ports())
    if row is None:
        raise NotFound(f"delivery: no delivery {delivery!r} in this account", field="delivery")
    audit.record(account, principal_from_app(app), "webhook.retry", target=delivery)
    logger.info("delivery queued again", extra={"account": account, "delivery": delivery})
    return _json(202, public(row))


@app.post("/v1/webhooks/<hook>/test")
def test_webhook(hook: str) -> Response:
    from calltrack import clock
    from webhooks.deliver import accept
    from webhooks.plan import plan_ping
    from webhooks.store import iso, public

    account = _account()
    ports = _ports()
    config = ports.config(account)
    if not any(h.id == hook for h in config.webhooks):
        raise NotFound(f"webhook: no webhook {hook[:64]!r} in this account's config", field="webhook")
    ping = plan_ping(config, hook, secrets.token_hex(8), iso(clock.now()))
    accept([ping], account, ports)
    audit.record(account, principal_from_app(app), "webhook.test", target=hook)
    return _json(202, public(ports.store.get(account, ping.delivery_id) or {}))


@tracer.capture_lambda_handler
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
