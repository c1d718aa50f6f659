"""Domain errors and the one table that maps them to HTTP statuses."""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, OperationalError

log = logging.getLogger("geo_api")


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


def document_errors(app: FastAPI) -> None:
    """The OpenAPI description of a 422 as it really comes: `detail` is FastAPI's list of
    invalid fields for a malformed request, or one sentence when a rule of the data is broken."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        schemas = schema.get("components", {}).get("schemas", {})
        if "HTTPValidationError" in schemas:
            schemas["HTTPValidationError"] = {
                "title": "HTTPValidationError", "type": "object",
                "description": "why the request was refused: `message` in one line, `code`, and "
                               "`detail` (the invalid fields, or the rule that was broken)",
                "properties": {
                    "detail": {"anyOf": [{"type": "string"}, {
                        "type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}}]},
                    "message": {"type": "string"}, "code": {"type": "string"},
                    "context": {"type": "object"},
                },
            }
        return schema

    app.openapi = openapi


def install_error_handlers(app: FastAPI) -> None:
    document_errors(app)

    @app.exception_handler(DomainError)
    async def _domain_error(_: Request, exc: DomainError) -> JSONResponse:
        body = {"detail": exc.message, "code": exc.code}
        if exc.context:
            body["context"] = exc.context
        return JSONResponse(status_code=status_for(exc), content=body,
                            headers=getattr(exc, "headers", None))


    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        """422 with a one-line reason first, then FastAPI's per-field details."""
        reasons = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"][1:]) or str(err["loc"][0])
            reasons.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
        body = {"message": "; ".join(reasons), "code": "invalid_input", "detail": exc.errors()}
        # the echoed input may hold NaN/Infinity, which JSON cannot carry
        return JSONResponse(status_code=422, content=jsonable_encoder(
            body, custom_encoder={float: lambda f: f if math.isfinite(f) else str(f)}))

    @app.exception_handler(DBAPIError)
    async def _db_error(_: Request, exc: DBAPIError) -> JSONResponse:
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if sqlstate is None and isinstance(exc, DataError):  # refused by the driver, e.g. a NUL in text
            return JSONResponse(status_code=422, content={
                "detail": "the request has a value the database cannot store (e.g. a NUL character)",
                "code": "invalid_input"})
        if sqlstate not in SQLSTATE_STATUS:
            raise exc
        status, code, what = SQLSTATE_STATUS[sqlstate]
        diag = getattr(exc.orig, "diag", None)
        constraint = getattr(diag, "constraint_name", None) or getattr(diag, "column_name", None)
        detail = f"the request {what}" + (f" ({constraint})" if constraint else "")
        return JSONResponse(status_code=status, content={"detail": detail, "code": code})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        """Anything else: logged with its trace, answered without one."""
        if isinstance(exc, OperationalError):  # the database went away mid-request
            log.warning("database unavailable during %s %s: %s", request.method, request.url.path,
                        exc.orig)
            return JSONResponse(status_code=503, content={
                "detail": "the database is unavailable; try again shortly", "code": "database_unavailable"})
        log.error("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse(status_code=500, content={
            "detail": "internal error; it has been logged", "code": "internal_error"})
