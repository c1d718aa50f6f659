"""Domain errors and the one table that maps them to HTTP statuses."""

from __future__ import annotations

import math

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError


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
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    PreconditionFailed: 412,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    DatabaseUnavailable: 503,
}

# Constraint violations that slip past the domain checks: state the constraint, never a trace.
SQLSTATE_STATUS = {
    "23505": (409, "conflict", "already exists"),             # unique_violation
    "23503": (409, "conflict", "refers to or is referred to by other data"),  # foreign_key
    "23514": (422, "invalid_input", "breaks a rule of the data"),  # check_violation
    "23502": (422, "invalid_input", "misses a required value"),  # not_null
    "22P02": (422, "invalid_input", "has a value of the wrong type"),
}


def status_for(exc: DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 400


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain_error(_: Request, exc: DomainError) -> JSONResponse:
        body = {"detail": exc.message, "code": exc.code}
        if exc.context:
            body["context"] = exc.context
        return JSONResponse(status_code=status_for(exc), content=body)


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
        if sqlstate not in SQLSTATE_STATUS:
            raise exc
        status, code, what = SQLSTATE_STATUS[sqlstate]
        diag = getattr(exc.orig, "diag", None)
        constraint = getattr(diag, "constraint_name", None) or getattr(diag, "column_name", None)
        detail = f"the request {what}" + (f" ({constraint})" if constraint else "")
        return JSONResponse(status_code=status, content={"detail": detail, "code": code})
