"""What every token-protected API route shares: who is asking, for which account, in which time zone,
the documented error responses, the shared query parameters and JSON/CSV responses."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any, Protocol, cast

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from calltrack.auth import Principal, principal_from_app
from calltrack.bodies import API_MAX_BODY_BYTES

if TYPE_CHECKING:
    from calltrack.account_config import AccountConfig
    from calltrack.accounts import Accounts
    from calltrack.call_items import CallItems

ITEMS_READ_HEADER = "X-Calltrack-Items-Read"
FromParam = Annotated[
    str | None,
    Query(alias="from", description="First day, YYYY-MM-DD (account time zone); default 29 days before to"),
]
ToParam = Annotated[str | None, Query(description="Last day, inclusive, YYYY-MM-DD; default today")]
AccountParam = Annotated[str | None, Query(description="Operator token only: the account to read")]
FLAG_TRUE, FLAG_FALSE = ("1", "true", "yes"), ("0", "false", "no")


def query_flag(value: str | None, name: str) -> bool | None:
    """A yes/no query parameter: 1/true/yes is True, 0/false/no False (any case), absent or empty
    None. Anything else -- ``on``, ``1,1`` (API Gateway joins a repeated parameter with a comma),
    ``true `` -- is a 400 naming ``name``, never silently read as no."""
    if value is None or value == "":
        return None
    text = value.lower()
    if text in FLAG_TRUE:
        return True
    if text in FLAG_FALSE:
        return False
    from calltrack.errors import BadRequest

    raise BadRequest(f"{name}: expected 1/true/yes or 0/false/no, got {value[:20]!r}", field=name)


_ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {"type": "string"},
        "message": {"type": "string"},
        "field": {"type": "string"},
    },
    "required": ["error", "message"],
}


def _error(description: str) -> OpenAPIResponse:
    return cast(OpenAPIResponse, {"description": description,
                                  "content": {"application/json": {"schema": _ERROR_SCHEMA}}})


# Documented on every token-protected route (so the OpenAPI document says what we answer).
ERRORS: dict[int, OpenAPIResponse] = {
    400: _error("Bad request: the message and `field` name what is wrong"),
    401: _error("Missing or unknown token"),
    403: _error("The token's role or account may not do this"),
    404: _error("No such call / account"),
}
# ... and on a route that can refuse a write conflicting with what is stored
CONFLICT: dict[int, OpenAPIResponse] = {409: _error("Conflicts with what is stored: the message says what")}


@dataclass(frozen=True)
class Caller:
    principal: Principal
    account: str
    config: AccountConfig

    @property
    def timezone(self) -> str:
        return self.config.timezone

    @property
    def masks_callers(self) -> bool:
        return self.principal.role == "marketer"

    def today(self) -> date:
        from calltrack import clock
        from calltrack.days import local_today

        return local_today(self.timezone, clock.now())


PORTS_KEY = "ports"


class RoutePorts(Protocol):
    """What every token-protected route may read: account config and call items. Each context
    extends it with the ports of its own routes."""

    @property
    def accounts(self) -> Accounts: ...

    @property
    def calls(self) -> CallItems: ...


def route_ports(router: Any) -> Any:
    """The ports the function's composition root put into this request's routing context
    (``app.append_context(ports=...)`` in the handler); each route module types what it uses."""
    return router.context[PORTS_KEY]


def guard_body(app: Any, *, max_bytes: int = API_MAX_BODY_BYTES) -> None:
    """Auth before the body: authenticate the bearer token (401), then check the Content-Type (415),
    size (413), UTF-8, nesting and that the body is one JSON object (400 naming ``body``) -- all
    before Powertools' validation or a route parses it."""
    from calltrack.bodies import load_json_object, raw_event_body, require_json_content_type

    principal_from_app(app)
    event = app.current_event
    require_json_content_type(event.headers)
    load_json_object(raw_event_body(event.raw_event), max_bytes=max_bytes)


def bounded_json(text: str) -> Any:
    """``json_body_deserializer`` for Powertools resolvers: the body limits on every ``json_body``."""
    from calltrack.bodies import load_json

    return load_json(text, max_bytes=API_MAX_BODY_BYTES)


def guard_bodies(app: Any, *, max_bytes: int = API_MAX_BODY_BYTES) -> None:
    """Run ``guard_body`` before Powertools' request validation on every route with a body parameter.

    Powertools (3.x) always runs its OpenAPI request validation -- which parses the body -- before
    any ``app.use`` or route middleware, so a middleware cannot come first. The resolver looks its
    validation middleware up on ``app._request_validation_middleware``; this replaces it with one
    that guards first (tests/unit/test_api_bodies.py pins the order)."""
    from aws_lambda_powertools.event_handler.middlewares.openapi_validation import (
        OpenAPIRequestValidationMiddleware,
    )

    class GuardedRequestValidation(OpenAPIRequestValidationMiddleware):
        def handler(self, app: Any, next_middleware: Any) -> Any:
            route = app.context.get("_route")
            if route is not None and route.dependant.body_params:
                guard_body(app, max_bytes=max_bytes)
            return super().handler(app, next_middleware)

    app._request_validation_middleware = GuardedRequestValidation()


def current_caller(app: Any, *roles: str) -> Caller:
    """Authenticate, check the role, scope to one account and load its config."""
    principal = principal_from_app(app)
    if roles:
        principal.require_role(*roles)
    params = app.current_event.query_string_parameters or {}
    account = principal.scoped_account(params.get("account"))
    return Caller(principal=principal, account=account, config=route_ports(app).accounts.get(account))


# Lambda answers at most 6 MB of JSON, the body escaped as a string in it (\uXXXX per Japanese
# character): a larger answer is a 5xx from the platform, so it is refused here as a 400.
MAX_ANSWER_BYTES = 5_500_000


def answer_bytes(text: str) -> int:
    """At least how many bytes ``text`` takes in Lambda's answer, exact when it could be too many."""
    if len(text) * 6 <= MAX_ANSWER_BYTES:  # no character escapes to more than 6 bytes
        return len(text)
    return len(json.dumps(text))  # the body as the Lambda answer carries it


def fits(text: str) -> str:
    """``text`` when Lambda can return it as an answer, else a 400 naming ``from`` (a shorter range)."""
    escaped = answer_bytes(text)
    if escaped > MAX_ANSWER_BYTES:
        from calltrack.errors import BadRequest

        raise BadRequest(f"from: this range's answer is {escaped / 1e6:.1f} MB, more than the API can "
                         f"send ({MAX_ANSWER_BYTES / 1e6:.1f} MB); ask for a shorter range (from/to), "
                         "e.g. a month", field="from")
    return text


def json_response(body: Any, *, items_read: int | None = None, status: int = 200) -> Response:
    headers = {ITEMS_READ_HEADER: str(items_read)} if items_read is not None else None
    return Response(
        status_code=status,
        content_type="application/json",
        body=fits(json.dumps(body, ensure_ascii=False, default=str)),
        headers=headers,
    )


def csv_response(text: str, filename: str, *, items_read: int | None = None) -> Response:
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if items_read is not None:
        headers[ITEMS_READ_HEADER] = str(items_read)
    return Response(status_code=200, content_type="text/csv; charset=utf-8", body=fits(text),
                    headers=headers)
