"""Logging in and out, the caller's own account, accounts (admin) and the audit log.

No `from __future__ import annotations`: FastAPI must see the body models.
"""

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import text

from geo_api import auth
from geo_api.auth import ACCOUNT_COLUMNS, AccountPublic
from geo_api.guards import AdminDep, CurrentAccountDep, PlannerDep
from geo_api.deps import ConnDep, EngineDep, TxDep
from geo_api.errors import InvalidInput, NotFound
from geo_api.routes.writes import AUTH_ERRORS
from geo_api.middleware import SESSION_COOKIE
from geo_api.vocabulary import ROLES
from geo_api.settings import get_settings

router = APIRouter(prefix="/api", tags=["accounts"])

Username = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Password = Annotated[str, StringConstraints(min_length=1, max_length=auth.MAX_PASSWORD)]


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Username
    password: Password


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"]
    expires_at: dt.datetime
    account: AccountPublic


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True,
                                               pattern=auth.USERNAME_PATTERN)]
    display_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] | None = None
    role: Literal[ROLES]  # type: ignore[valid-type]
    post: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        default=None, description="code (or id) of the post of a post account")
    donor: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        default=None, description="code (or id) of the donor of a donor account")
    password: Password


class AccountUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] | None = None
    is_active: bool | None = Field(default=None, description="false: the account can no longer log "
                                                             "in and its tokens end")
    password: Password | None = None


class AuditEntry(BaseModel):
    id: int
    at: dt.datetime
    account_id: int | None
    actor: str
    action: str
    target_table: str
    target_id: str | None
    before: dict | None
    after: dict | None


class AuditPage(BaseModel):
    items: list[AuditEntry]
    numberReturned: int


def _account(conn, account_id: int) -> dict:
    row = conn.execute(text(f"SELECT {ACCOUNT_COLUMNS}, a.is_active FROM account a WHERE a.id = :id"),
                       {"id": account_id}).mappings().first()
    if row is None:
        raise NotFound(f"account {account_id} not found")
    return dict(row)


@router.post("/auth/login", response_model=TokenOut, tags=["auth"],
             summary="Log in: a bearer token for the Authorization header",
             responses={401: {"description": "wrong username or password, or the account is disabled"},
                        429: {"description": "too many failed attempts; see Retry-After"}})
def login(body: LoginIn, request: Request, engine: EngineDep) -> JSONResponse:
    client_ip = request.client.host if request.client else "unknown"
    token, expires_at, account = auth.login(engine, body.username, body.password, client_ip)
    response = JSONResponse(jsonable_encoder({
        "access_token": token, "token_type": "bearer", "expires_at": expires_at,
        "account": auth.account_json(account)}), headers={"Cache-Control": "no-store"})
    # The pages are read by navigation, which sends no Authorization header: the same token
    # as a cookie, honoured only for page reads (geo_api.middleware.SESSION_COOKIE).
    response.set_cookie(SESSION_COOKIE, token, max_age=int(get_settings().security.token_ttl_hours * 3600),
                        httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return response


@router.post("/auth/logout", status_code=204, tags=["auth"], summary="End this token's session",
             responses=AUTH_ERRORS)
def logout(request: Request, conn: TxDep, account: CurrentAccountDep) -> Response:
    token = request.headers.get("authorization", "").partition(" ")[2].strip()
    auth.revoke_token(conn, token)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="strict")
    return response


@router.get("/auth/me", response_model=AccountPublic, tags=["auth"], summary="The logged-in account",
            responses=AUTH_ERRORS)
def me(conn: ConnDep, account: CurrentAccountDep) -> dict:
    return _account(conn, account.id)


@router.get("/accounts", response_model=list[AccountPublic], summary="Every account (admin)",
            responses=AUTH_ERRORS)
def list_accounts(conn: ConnDep, account: AdminDep) -> list[dict]:
    rows = conn.execute(text(f"SELECT {ACCOUNT_COLUMNS}, a.is_active FROM account a ORDER BY a.id"))
    return [dict(r) for r in rows.mappings()]


@router.post("/accounts", status_code=201, response_model=AccountPublic,
             summary="Create an account (admin)",
             responses={**AUTH_ERRORS, 409: {"description": "username taken"},
                        422: {"description": "bad username, password, or scope for the role"}})
def create_account(body: AccountCreate, conn: TxDep, account: AdminDep) -> JSONResponse:
    new = auth.create_account(conn, username=body.username, role=body.role, password=body.password,
                              display_name=body.display_name, post=body.post, donor=body.donor,
                              actor=account.username)
    return JSONResponse(_account(conn, new.id), status_code=201,
                        headers={"Location": f"/api/accounts/{new.id}"})


@router.patch("/accounts/{account_id}", response_model=AccountPublic,
              summary="Rename, disable/enable or set the password of an account (admin)",
              responses={**AUTH_ERRORS, 404: {"description": "no such account"},
                         422: {"description": "bad password"}})
def update_account(body: AccountUpdate, conn: TxDep, account: AdminDep,
                   account_id: Annotated[int, Path(ge=1, le=2**31 - 1)]) -> dict:
    current = _account(conn, account_id)
    changes = body.model_dump(exclude_unset=True, exclude={"password"})
    if None in changes.values():
        raise InvalidInput("display_name and is_active cannot be null")
    if changes:
        sets = ", ".join(f"{k} = :{k}" for k in changes)  # names from the schema
        conn.execute(text(f"UPDATE account SET {sets} WHERE id = :id"), {**changes, "id": account_id})
    if body.password is not None:
        auth.set_password(conn, current["username"], body.password, actor=account.username)
    if changes.get("is_active") is False:
        auth.revoke_all(conn, account_id)
    if changes:
        auth.audit_account(conn, account.username, "update", account_id)
    return _account(conn, account_id)


@router.get("/audit-log", response_model=AuditPage, tags=["audit"],
            summary="Who changed what, newest first (planners and admins)", responses=AUTH_ERRORS)
def audit_log(conn: ConnDep, account: PlannerDep,
              target_table: Annotated[str | None, Query(max_length=64)] = None,
              target_id: Annotated[str | None, Query(max_length=64)] = None,
              actor: Annotated[str | None, Query(max_length=200)] = None,
              before_id: Annotated[int | None, Query(ge=1, le=2**62, description="keyset cursor")] = None,
              limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Response:
    body = conn.execute(text("""
        WITH p AS (
            SELECT id, json_build_object('id', id, 'at', at, 'account_id', account_id, 'actor', actor,
                                         'action', action, 'target_table', target_table,
                                         'target_id', target_id, 'before', before, 'after', after) AS j
            FROM audit_log
            WHERE (CAST(:tt AS text) IS NULL OR target_table = :tt)
              AND (CAST(:tid AS text) IS NULL OR target_id = :tid)
              AND (CAST(:actor AS text) IS NULL OR actor = :actor)
              AND id < COALESCE(CAST(:before AS bigint), 9223372036854775807)
            ORDER BY id DESC LIMIT :limit)
        SELECT json_build_object('items', COALESCE(json_agg(p.j ORDER BY p.id DESC), '[]'),
                                 'numberReturned', count(*))::text FROM p
    """), {"tt": target_table, "tid": target_id, "actor": actor, "before": before_id,
           "limit": limit}).scalar_one()
    return Response(body, media_type="application/json")
