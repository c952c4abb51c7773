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

from calltrack.auth import principal_from_app
from calltrack.http_errors import register_error_handlers
from calltrack.observability import make_logger, make_tracer
from calltrack.phone import mask
from privacy import callers, runtime
from privacy.runtime import NEEDS as NEEDS

logger = make_logger("privacy")
tracer = make_tracer("privacy")
app = APIGatewayHttpResolver()
register_error_handlers(app)


def _json(status: int, body: Any) -> Response:
    return Response(status_code=status, content_type="application/json",
                    body=json.dumps(body, ensure_ascii=False, default=str))


def _scope(number: str) -> tuple[str, str]:
    principal = principal_from_app(app)
    principal.require_role("admin")
    account = principal.scoped_account(app.current_event.get_query_string_value("account") or None)
    return account, callers.caller_number(unquote(number))


@app.get("/v1/callers/<number>")
def get_caller(number: str) -> Response:
    account, e164 = _scope(number)
    body = callers.export(account, e164, runtime.store())
    logger.info("caller exported", extra={"account": account, "caller": mask(e164),
                                          "calls": len(body["calls"])})
    return _json(200, body)


@app.delete("/v1/callers/<number>")
def delete_caller(number: str) -> Response:
    account, e164 = _scope(number)
    body = callers.erase(account, e164, runtime.store())
    logger.info("caller erased", extra={"account": account, "caller": mask(e164), **body["erased"]})
    return _json(200, body)


@tracer.capture_lambda_handler
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
