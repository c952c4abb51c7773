"""Domain errors. One place (calltrack.http_errors) turns them into HTTP responses."""

from __future__ import annotations


class DomainError(Exception):
    """A failure the caller can act on, answered with HTTP ``status`` and error ``code``: a subclass
    declares both as class arguments, ``class NotFound(DomainError, status=404, code="not_found")``
    (or in its body); it inherits them otherwise."""

    status = 400
    code = "bad_request"

    def __init_subclass__(cls, *, status: int | None = None, code: str | None = None) -> None:
        super().__init_subclass__()
        if status is not None:
            cls.status = status
        if code is not None:
            cls.code = code

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def body(self) -> dict[str, object]:
        out: dict[str, object] = {"error": self.code, "message": self.message}
        if self.field:
            out["field"] = self.field
        return out


# One line each (callers raise and catch them by name).
class BadRequest(DomainError): ...  # 400 bad_request, DomainError's own
class Unauthorized(DomainError, status=401, code="unauthorized"): ...
class Forbidden(DomainError, status=403, code="forbidden"): ...
class NotFound(DomainError, status=404, code="not_found"): ...
class Conflict(DomainError, status=409, code="conflict"): ...
class PayloadTooLarge(DomainError, status=413, code="payload_too_large"): ...
class UnsupportedMediaType(DomainError, status=415, code="unsupported_media_type"): ...
class TooManyRequests(DomainError, status=429, code="too_many_requests"): ...
class Unavailable(DomainError, status=503, code="unavailable"): ...
