"""The one place that turns domain errors into HTTP responses for Powertools resolvers."""

from __future__ import annotations

import json
import sys
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError

from calltrack.errors import DomainError, NotFound, Unavailable

RETRY_AFTER_S = 5
# AWS error codes that mean "try again shortly", not "you asked for something wrong"
_TRANSIENT_CODES = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "Throttling", "RequestLimitExceeded",
    "TooManyRequestsException", "ServiceUnavailable", "ServiceUnavailableException", "InternalServerError",
    "InternalFailure", "SlowDown", "RequestThrottled", "TransactionInProgressException",
})


def error_response(err: DomainError) -> Response:
    headers = {"Retry-After": str(RETRY_AFTER_S)} if err.status == 503 else None
    return Response(status_code=err.status, content_type="application/json", body=json.dumps(err.body()),
                    headers=headers)


def storage_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it: PynamoDB wraps botocore) says AWS could not be reached
    or throttled us. Looks only at modules already imported (no import cost on the error path)."""
    botocore = sys.modules.get("botocore.exceptions")
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if botocore is not None:
            if isinstance(current, (botocore.ConnectionError, botocore.HTTPClientError)):
                return True
            if isinstance(current, botocore.ClientError):
                code = str(current.response.get("Error", {}).get("Code", ""))
                return code in _TRANSIENT_CODES
        cause = getattr(current, "cause", None)
        if isinstance(cause, BaseException) and cause is not current:
            current = cause
        else:
            current = current.__cause__ or current.__context__
    return False


def register_error_handlers(app: Any) -> None:
    """Attach domain-error translation to a Powertools resolver (APIGatewayHttpResolver & co)."""

    @app.exception_handler(DomainError)
    def _domain(err: DomainError) -> Response:
        return error_response(err)

    @app.exception_handler(Exception)
    def _unexpected(err: Exception) -> Response:
        """Storage unreachable or throttling: 503 with Retry-After (the client may retry; it is not
        our bug). Anything else is re-raised: a real 500, logged and alarmed."""
        if storage_unavailable(err):
            return error_response(Unavailable("storage is unavailable right now; retry shortly"))
        raise err

    @app.not_found
    def _not_found(_: NotFoundError) -> Response:
        return error_response(NotFound("no such route"))
