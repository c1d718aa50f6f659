"""Domain errors and the one table that maps them to HTTP statuses."""

from __future__ import annotations

import logging
import math
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

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


def error_response(status: int, code: str, message: str, detail: Any = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    # an echoed input may hold NaN/Infinity, which JSON cannot carry
    content = jsonable_encoder(error_body(code, message, detail),
                               custom_encoder={float: lambda f: f if math.isfinite(f) else str(f)})
    return JSONResponse(status_code=status, content=content, headers=headers)


def document_errors(schema: dict) -> None:
    """Put the Error schema in an OpenAPI document and point FastAPI's 422s at it."""
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)

    def swap(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("$ref") == "#/components/schemas/HTTPValidationError":
                node["$ref"] = ERROR_REF["$ref"]
            for v in node.values():
                swap(v)
        elif isinstance(node, list):
            for v in node:
                swap(v)

    swap(schema.get("paths", {}))


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (a 405's Allow header)."""
    from fastapi.routing import iter_route_contexts

    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        regex, served = getattr(route, "path_regex", None), getattr(route, "methods", None)
        if regex is not None and served and regex.match(request.scope["path"]):
            methods |= set(served)
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain_error(_: Request, exc: DomainError) -> JSONResponse:
        return error_response(status_for(exc), exc.code, exc.message, exc.context or None,
                              getattr(exc, "headers", None))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 304 or exc.status_code < 400:
            return Response(status_code=exc.status_code, headers=exc.headers)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(request))
        code = CODE_BY_STATUS.get(exc.status_code, "http_error")
        if isinstance(exc.detail, dict) and "message" in exc.detail:  # already an error_body()
            code, message, detail = exc.detail.get("code", code), exc.detail["message"], exc.detail.get("detail")
        else:
            message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
            detail = None
        return error_response(exc.status_code, code, message, detail, headers=headers or None)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        """422 with a one-line reason, then FastAPI's per-field details."""
        reasons = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"][1:]) or str(err["loc"][0])
            reasons.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
        return error_response(422, "invalid_input", "; ".join(reasons), exc.errors())

    @app.exception_handler(DBAPIError)
    async def _db_error(_: Request, exc: DBAPIError) -> JSONResponse:
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if sqlstate is None and isinstance(exc, DataError):  # refused by the driver, e.g. a NUL in text
            return error_response(422, "invalid_input", "the request has a value the database cannot "
                                  "store (e.g. a NUL character)")
        if sqlstate not in SQLSTATE_STATUS:
            raise exc
        status, code, what = SQLSTATE_STATUS[sqlstate]
        diag = getattr(exc.orig, "diag", None)
        constraint = getattr(diag, "constraint_name", None) or getattr(diag, "column_name", None)
        message = f"the request {what}" + (f" ({constraint})" if constraint else "")
        return error_response(status, code, message, {"constraint": constraint} if constraint else None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        """Anything else: logged with its trace, answered without one."""
        if isinstance(exc, OperationalError):  # the database went away mid-request
            log.warning("database unavailable during %s %s: %s", request.method, request.url.path,
                        exc.orig)
            return error_response(503, "database_unavailable", "the database is unavailable; try again shortly")
        log.error("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal_error", "internal error; it has been logged")
