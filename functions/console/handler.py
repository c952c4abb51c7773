"""console: ``POST|GET|DELETE /v1/session`` and ``/v1/accounts/{account}/users``. Routing only.

Logic: ``console.sessions`` (the cookie) and ``console.users``; the user pool: ``console.directory``.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.shared.cookies import Cookie

from calltrack import audit
from calltrack.auth import principal_from_app, revoke_console_user
from calltrack.errors import BadRequest
from calltrack.http_errors import register_error_handlers
from calltrack.observability import make_logger, make_tracer
from console import runtime, sessions, users
from console.runtime import NEEDS as NEEDS

MAX_BODY_BYTES = 10_000

logger = make_logger("console")
tracer = make_tracer("console")
app = APIGatewayHttpResolver()
register_error_handlers(app)


def _body() -> Any:
    from calltrack.bodies import request_json_object

    return request_json_object(
        app.current_event.raw_event, max_bytes=MAX_BODY_BYTES, empty="empty body: send a JSON object"
    )


def _json(status: int, body: Any, cookies: list[Cookie] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type="application/json",
        cookies=cookies,
        headers={"Cache-Control": "no-store"},
        body=json.dumps(body, ensure_ascii=False),
    )


def _pool() -> Any:
    from calltrack.cognito import CognitoPool
    from calltrack.settings import get_settings

    pool = CognitoPool.from_settings(get_settings(NEEDS))
    assert pool is not None  # runtime.directory() refused to start without it
    return pool


def _secure() -> bool:
    from calltrack.settings import get_settings

    return not get_settings(NEEDS).local_mode


def _accounts() -> Any:
    from calltrack.accounts import account_reader

    return account_reader()


@app.post("/v1/session")
def post_session() -> Response:
    from calltrack.auth import cognito_principal

    body = users.model(sessions.SignInBody, _body())
    token = sessions.sign_in(body, runtime.directory())
    principal = cognito_principal(token, _pool())
    answer = sessions.session_body(principal, _accounts())
    assert principal.expires_at is not None and principal.account is not None
    audit.record(principal.account, principal, "session.create", target=principal.token_id)
    logger.info("console sign-in", extra={"account": principal.account, "role": principal.role})
    return _json(200, answer, cookies=[sessions.cookie(token, principal.expires_at, secure=_secure())])


@app.get("/v1/session")
def get_session() -> Response:
    runtime.directory()  # the pool must be configured (a clear 500 at start-up otherwise)
    principal = principal_from_app(app)
    if principal.account is None or not (principal.token_id or "").startswith("user:"):
        raise BadRequest("GET /v1/session describes a console sign-in; this is an API token", field="token")
    return _json(200, sessions.session_body(principal, _accounts()))


@app.delete("/v1/session")
def delete_session() -> Response:
    """Sign out: the cookie is cleared, and the session's ID token is refused from now on (a copy
    of it elsewhere ends too); an expired or unknown session is just cleared."""
    from calltrack.auth import sign_out_console_session
    from calltrack.errors import Forbidden, Unauthorized

    try:
        principal = principal_from_app(app)
    except (Unauthorized, Forbidden):
        principal = None
    user = (principal.token_id or "") if principal is not None else ""
    if principal is not None and principal.session and user.startswith("user:"):
        sign_out_console_session(user.removeprefix("user:"), principal.session, principal.label or "")
        if principal.account is not None:
            audit.record(principal.account, principal, "session.delete", target=principal.token_id)
    return Response(
        status_code=204,
        cookies=[sessions.cleared_cookie(secure=_secure())],
        headers={"Cache-Control": "no-store"},
        body="",
    )


@app.get("/v1/accounts/<account>/users")
def get_users(account: str) -> Response:
    principal = principal_from_app(app)
    return _json(200, users.list_users(principal, account, runtime.directory(), _accounts()))


@app.post("/v1/accounts/<account>/users")
def post_user(account: str) -> Response:
    principal = principal_from_app(app)
    result = users.create(principal, account, _body(), runtime.directory(), _accounts())
    audit.record(
        account, principal, "user.create", target=f"user:{result['email']}", detail={"role": result["role"]}
    )
    logger.info("console user created", extra={"account": account, "role": result["role"]})
    return _json(201, result)


@app.post("/v1/accounts/<account>/users/<email>/disable")
def post_disable(account: str, email: str) -> Response:
    principal = principal_from_app(app)
    result = users.disable(
        principal, account, unquote(email), runtime.directory(), _accounts(), revoke_console_user
    )
    audit.record(account, principal, "user.disable", target=f"user:{result['email']}")
    logger.info("console user disabled", extra={"account": account})
    return _json(200, result)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
