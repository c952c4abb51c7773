"""admin: accounts, tokens and config as code. Routing and Powertools decorators only."""

from __future__ import annotations

import json
import re
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths

from admin import accounts, secrets, tokens
from admin.runtime import NEEDS as NEEDS
from admin.runtime import account_secrets, stack_public_url, store
from calltrack import audit, clock
from calltrack.api import query_flag
from calltrack.auth import principal_from_app
from calltrack.http_errors import register_error_handlers
from calltrack.observability import make_logger

MAX_BODY_BYTES = 1_000_000

logger = make_logger("admin")
app = APIGatewayHttpResolver()
register_error_handlers(app)


def _json_body() -> Any:
    """The request's JSON object, called by each route after it authenticated the caller."""
    from calltrack.bodies import request_json_object

    return request_json_object(app.current_event.raw_event, max_bytes=MAX_BODY_BYTES,
                               empty="empty body: send the account config as JSON")


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(status_code=status, content_type="application/json",
                    body=json.dumps(body, ensure_ascii=False))


@app.get("/v1/stack")
def get_stack() -> Response:
    """What a tool needs to know about this deployment: the public URL its Twilio webhooks check
    signatures against (``numbers sync`` points numbers there; any token may ask)."""
    principal_from_app(app)
    return _json(200, {"public_url": stack_public_url()})


@app.get("/v1/accounts")
def list_accounts() -> Response:
    principal = principal_from_app(app)
    return _json(200, accounts.list_accounts(principal, store()))


@app.get("/v1/accounts/<account>")
def get_account(account: str) -> Response:
    principal = principal_from_app(app)
    return _json(200, accounts.get_account(principal, account, store()))


@app.put("/v1/accounts/<account>")
def put_account(account: str) -> Response:
    principal = principal_from_app(app)
    # strictly yes or no: ``?dry_run=on`` read as "no" would apply what the caller meant to preview
    dry_run = bool(query_flag(app.current_event.get_query_string_value("dry_run"), "dry_run"))
    expected = app.current_event.get_query_string_value("expected_version")
    if expected is not None and not re.fullmatch(r"[0-9]{1,12}", expected):
        from calltrack.errors import BadRequest

        raise BadRequest("expected_version: a version number (0 for an account that must not exist yet)",
                         field="expected_version")
    principal.require_account(account)
    principal.require_role("admin")
    result = accounts.apply_account(principal, account, _json_body(), store(), now=clock.now(),
                                    dry_run=dry_run, expected_version=int(expected) if expected else None)
    logger.info("account applied", extra={"account": account, "changed": result["changed"],
                                          "version": result["version"], "dry_run": dry_run})
    if not dry_run:
        audit.record(account, principal, "account.apply",
                     detail={"changed": result["changed"], "version": result["version"]})
    return _json(200, result)


@app.post("/v1/accounts/<account>/tokens")
def post_token(account: str) -> Response:
    principal = principal_from_app(app)
    principal.require_account(account)
    principal.require_role("admin")
    result = tokens.create_token(principal, account, _json_body(), store(), now=clock.now())
    logger.info("token created", extra={"account": account, "role": result["role"]})
    audit.record(account, principal, "token.create", target=result["id"], detail={"role": result["role"]})
    return _json(201, result)


@app.get("/v1/accounts/<account>/tokens")
def get_tokens(account: str) -> Response:
    principal = principal_from_app(app)
    return _json(200, tokens.list_tokens(principal, account, store()))


@app.delete("/v1/accounts/<account>/tokens/<token_id>")
def delete_token(account: str, token_id: str) -> Response:
    principal = principal_from_app(app)
    result = tokens.revoke_token(principal, account, token_id, store())
    logger.info("token revoked", extra={"account": account, "token": token_id})
    audit.record(account, principal, "token.revoke", target=token_id)
    return _json(200, result)


@app.put("/v1/accounts/<account>/secrets/<name>")
def put_secret(account: str, name: str) -> Response:
    principal = principal_from_app(app)
    principal.require_account(account)
    principal.require_role("admin")
    result = secrets.set_secret(principal, account, name, _json_body(), store(), account_secrets())
    logger.info("secret set", extra={"account": account, "secret": name, "version": result["version"]})
    audit.record(account, principal, "secret.set", target=name)
    return _json(200, result)


@app.get("/v1/accounts/<account>/secrets")
def get_secrets(account: str) -> Response:
    principal = principal_from_app(app)
    return _json(200, secrets.list_secrets(principal, account, store(), account_secrets()))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
