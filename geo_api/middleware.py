"""Request-level security: who is calling, how large a body may be, CORS.

- `AuthenticationMiddleware` resolves an ``Authorization: Bearer`` token to its account
  once per request (``request.state.account``; the guards in `geo_api.auth` and the
  read policy's viewer, `geo_api.deps.get_viewer`, read it). A token that is unknown,
  expired or malformed is answered 401 at once, even on public reads, so a client learns
  its session ended.
- `BodyLimitMiddleware` answers 413 before reading a body whose Content-Length is over
  TRACKER_MAX_BODY_BYTES, and stops a body without one as soon as it passes the limit.
  Routes that stream and limit their own bodies (attachments) are registered with
  `allow_large_body`.
- CORS is closed unless TRACKER_CORS_ORIGINS lists origins.
"""

from __future__ import annotations

import json

from fastapi import FastAPI, HTTPException
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from geo_api import auth
from geo_api.errors import error_body
from geo_api.settings import get_settings

# (method, path) -> largest body, or None when the route enforces its own limit while
# streaming. A path ending in "/" matches every path under it.
_BODY_LIMITS: dict[tuple[str, str], int | None] = {("POST", "/api/attachments"): None}


def _upload_limit() -> int:
    return get_settings().files.max_upload_bytes + 64 * 1024  # the file plus the multipart around it


_BODY_LIMITS[("POST", "/api/import/")] = _upload_limit()  # file imports (routes/files.py)


def allow_large_body(method: str, path: str, limit: int | None) -> None:
    """Give a route its own body limit (None: it streams and limits the body itself)."""
    _BODY_LIMITS[(method.upper(), path)] = limit


def body_limit(method: str, path: str, default: int) -> int | None:
    if (method, path) in _BODY_LIMITS:
        return _BODY_LIMITS[(method, path)]
    for (m, prefix), limit in _BODY_LIMITS.items():
        if m == method and prefix.endswith("/") and path.startswith(prefix):
            return limit
    return default


async def _json(send: Send, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
    raw = json.dumps(body, ensure_ascii=False).encode()
    extra = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode()), *extra]})
    await send({"type": "http.response.body", "body": raw})


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, default_limit: int):
        self.app = app
        self.default_limit = default_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = body_limit(scope["method"], scope["path"], self.default_limit)
        if limit is None:
            return await self.app(scope, receive, send)
        message = (f"the request body is larger than the limit of {limit:,} bytes "
                   f"(TRACKER_MAX_BODY_BYTES); send less at a time")
        length = Headers(scope=scope).get("content-length")
        if length is not None and length.strip().isdigit() and int(length) > limit:
            return await _json(send, 413, error_body("payload_too_large", message, {"limit_bytes": limit}),
                               {"Connection": "close"})
        received = 0

        async def limited() -> Message:
            nonlocal received
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > limit:
                    raise HTTPException(413, error_body("payload_too_large", message, {"limit_bytes": limit}))
            return msg

        await self.app(scope, limited, send)


def _lookup(engine, token: str) -> auth.Account | None:
    with engine.connect() as conn:
        return auth.account_for_token(conn, token)


SESSION_COOKIE = "tracker_session"
# Paths where the session cookie does not count: the API, OGC and tiles take a bearer token
# (so a cross-site form can never write with a reader's cookie, and public caches stay public).
NO_COOKIE_PREFIXES = ("/api/", "/ogc", "/tiles")


def cookie_token(scope: Scope) -> str | None:
    """The session cookie's token, for page reads (GET/HEAD outside the API) only."""
    if scope["method"] not in ("GET", "HEAD") or scope["path"].startswith(NO_COOKIE_PREFIXES):
        return None
    cookie = Headers(scope=scope).get("cookie")
    if not cookie:
        return None
    for part in cookie.split(";"):
        name, _, value = part.strip().partition("=")
        if name == SESSION_COOKIE and value:
            return value
    return None


class AuthenticationMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        header = Headers(scope=scope).get("authorization")
        account = None
        if header is None and (token := cookie_token(scope)) is not None:
            # an expired page session reads as anonymous (the page offers to sign in again)
            account = await run_in_threadpool(_lookup, scope["app"].state.engine, token)
        elif header is not None:
            scheme, _, token = header.strip().partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or not token:
                return await _json(send, 401, error_body(
                    "unauthorized", "Authorization must be 'Bearer <token>' with a token from POST /api/auth/login"),
                    {"WWW-Authenticate": 'Bearer error="invalid_request"'})
            account = await run_in_threadpool(_lookup, scope["app"].state.engine, token)
            if account is None:
                return await _json(send, 401, error_body(
                    "unauthorized", "the token is unknown or has expired; log in again (POST /api/auth/login)"),
                    {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        scope.setdefault("state", {})["account"] = account
        await self.app(scope, receive, send)


def install_security(app: FastAPI) -> None:
    """Authentication, body limits and CORS (outermost last)."""
    settings = get_settings().security
    app.add_middleware(AuthenticationMiddleware)
    app.add_middleware(BodyLimitMiddleware, default_limit=settings.max_body_bytes)
    origins = settings.cors_origin_list()
    if origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=origins, allow_credentials=False,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-Match", "If-None-Match", "Idempotency-Key"],
            expose_headers=["ETag", "Location", "Retry-After", "Idempotent-Replayed"], max_age=600,
        )
