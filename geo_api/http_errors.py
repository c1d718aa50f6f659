"""The FastAPI side of `geo_api.errors`: exception handlers that answer every error with
the one body shape, and the Error schema in the OpenAPI document."""

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

from geo_api.errors import (
    CODE_BY_STATUS, ERROR_REF, ERROR_SCHEMA, SQLSTATE_STATUS, DomainError, error_body, status_for,
)

log = logging.getLogger("geo_api")


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
