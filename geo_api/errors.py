"""Domain errors, the one table that maps them to HTTP statuses, and the one error body.

Plain Python: domain modules raise these without importing a web framework; the FastAPI
handlers that turn them into responses are in `geo_api.http_errors`."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base for errors a user can act on; the message is shown to them as is."""

    code = "domain_error"

    def __init__(self, message: str, **context):
        super().__init__(message)
        self.message = message
        self.context = context


class NotFound(DomainError):
    code = "not_found"


class InvalidInput(DomainError):
    code = "invalid_input"


class Conflict(DomainError):
    code = "conflict"


class Forbidden(DomainError):
    code = "forbidden"


class Unauthorized(DomainError):
    """No account, or a token that is unknown or expired: log in (again)."""

    code = "unauthorized"
    headers = {"WWW-Authenticate": "Bearer"}


class PreconditionRequired(DomainError):
    """An update or transition sent without If-Match: the client must say which version it read."""

    code = "precondition_required"


class TooManyRequests(DomainError):
    """Throttled; `retry_after` seconds until the next attempt may succeed."""

    code = "too_many_requests"

    def __init__(self, message: str, retry_after: int, **context):
        super().__init__(message, retry_after=retry_after, **context)
        self.headers = {"Retry-After": str(retry_after)}


class PreconditionFailed(DomainError):
    """The resource changed since the client read it (stale version / ETag)."""

    code = "precondition_failed"


class PayloadTooLarge(DomainError):
    code = "payload_too_large"


class UnsupportedMediaType(DomainError):
    code = "unsupported_media_type"


class DatabaseUnavailable(DomainError):
    code = "database_unavailable"


STATUS_BY_ERROR: dict[type[DomainError], int] = {
    InvalidInput: 422,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    PreconditionFailed: 412,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    PreconditionRequired: 428,
    TooManyRequests: 429,
    DatabaseUnavailable: 503,
}

# Constraint violations that slip past the domain checks: state the constraint, never a trace.
SQLSTATE_STATUS = {
    "23505": (409, "conflict", "already exists"),             # unique_violation
    "23503": (409, "conflict", "refers to or is referred to by other data"),  # foreign_key
    "23514": (422, "invalid_input", "breaks a rule of the data"),  # check_violation
    "23502": (422, "invalid_input", "misses a required value"),  # not_null
    "22P02": (422, "invalid_input", "has a value of the wrong type"),
    "22001": (422, "invalid_input", "has a value that is too long"),
    "22003": (422, "invalid_input", "has a number out of range"),
    "22007": (422, "invalid_input", "has an invalid date or time"),
    "22008": (422, "invalid_input", "has a date or time out of range"),
    "22021": (422, "invalid_input", "has text with a character the database cannot store"),
    "22P05": (422, "invalid_input", "has text with a character the database cannot store"),
    "40001": (409, "conflict", "collided with a concurrent change; try again"),  # serialization
    "40P01": (409, "conflict", "collided with a concurrent change; try again"),  # deadlock
}


def status_for(exc: DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 400


# The one shape of every error outside /ogc (documented once, as components.schemas.Error).
ERROR_SCHEMA = {
    "title": "Error", "type": "object", "required": ["code", "message"], "additionalProperties": False,
    "description": "why the request was refused or failed",
    "properties": {
        "code": {"type": "string", "description": "what kind of error, e.g. invalid_input, not_found, "
                                                  "precondition_required"},
        "message": {"type": "string", "description": "the reason in one line, for people"},
        "detail": {"description": "optional: the invalid fields (a list, for a malformed request) or "
                                  "data about the error (an object, e.g. {\"field\": \"If-Match\"})"},
    },
}
ERROR_REF = {"$ref": "#/components/schemas/Error"}

CODE_BY_STATUS = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                  405: "method_not_allowed", 409: "conflict", 412: "precondition_failed",
                  413: "payload_too_large", 415: "unsupported_media_type", 422: "invalid_input",
                  428: "precondition_required", 429: "too_many_requests", 500: "internal_error",
                  503: "database_unavailable"}


def error_body(code: str, message: str, detail: Any = None) -> dict[str, Any]:
    """{"code", "message" (one line), "detail" (only when there is one)}."""
    body: dict[str, Any] = {"code": code, "message": " ".join(str(message).split())}
    if detail is not None and detail != {}:
        body["detail"] = detail
    return body
