"""The one place that turns domain errors into HTTP responses for Powertools resolvers."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError

from calltrack.errors import DomainError, NotFound


def error_response(err: DomainError) -> Response:
    return Response(status_code=err.status, content_type="application/json", body=json.dumps(err.body()))


def register_error_handlers(app: Any) -> None:
    """Attach domain-error translation to a Powertools resolver (APIGatewayHttpResolver & co)."""

    @app.exception_handler(DomainError)
    def _domain(err: DomainError) -> Response:
        return error_response(err)

    @app.not_found
    def _not_found(_: NotFoundError) -> Response:
        return error_response(NotFound("no such route"))
