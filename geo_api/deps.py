"""FastAPI dependencies shared by the routes."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request, Response
from sqlalchemy import Connection, Engine

from geo_api.guards import CurrentAccountDep
from geo_api.domain.idempotency import KEY_PATTERN, IdempotentRequest, fingerprint
from geo_api.policy import Viewer
from geo_api.vocabulary import ROLES
from geo_api.settings import get_settings


def get_engine_dep(request: Request) -> Engine:
    return request.app.state.engine


def get_conn(request: Request) -> Iterator[Connection]:
    with request.app.state.engine.connect() as conn:
        yield conn


EngineDep = Annotated[Engine, Depends(get_engine_dep)]
ConnDep = Annotated[Connection, Depends(get_conn)]


async def get_viewer(request: Request) -> Viewer:
    """Who reads (geo_api.policy): the account the middleware resolved, or nobody."""
    return Viewer.of(getattr(request.state, "account", None))


ViewerDep = Annotated[Viewer, Depends(get_viewer)]


def get_tx(request: Request) -> Iterator[Connection]:
    """A connection inside one transaction: committed when the route returns, else rolled back."""
    with request.app.state.engine.begin() as conn:
        yield conn


def get_actor(account: CurrentAccountDep) -> str:
    """Who makes a write: the logged-in account's username (401 without one). The audit log
    and road events record it, and link it to the account (migration 0004's trigger)."""
    return account.username


get_actor.roles = ROLES  # any account

TxDep = Annotated[Connection, Depends(get_tx, scope="function")]  # commit before responding
ActorDep = Annotated[str, Depends(get_actor)]

IdempotencyKeyHeader = Annotated[str | None, Header(
    pattern=KEY_PATTERN, description="any unique string (e.g. a UUID) per intended change; a retry "
    "with the same key and body gets the first response back and changes nothing; the same key "
    "with another body is refused (422). Kept per account for TRACKER_IDEMPOTENCY_RETENTION_HOURS.")]


class Idempotency:
    """The Idempotency-Key of one POST: `replay` first, then `remember` the response.

    Without the header both are no-ops, so a route reads the same either way:

        if (replay := idem.replay(conn)) is not None:
            return replay
        ...
        return idem.remember(conn, response)
    """

    def __init__(self, request: IdempotentRequest | None):
        self.request = request

    def replay(self, conn: Connection) -> Response | None:
        if self.request is None:
            return None
        stored = self.request.claim(conn)
        if stored is None:
            return None
        headers = {k: v for k, v in stored.headers.items() if k != "content-type"}
        return Response(stored.body, status_code=stored.status, headers={
            **headers, "Idempotent-Replayed": "true"}, media_type=stored.headers.get("content-type"))

    def remember(self, conn: Connection, response: Response) -> Response:
        if self.request is not None:
            self.request.remember(conn, response.status_code, dict(response.headers), response.body)
        return response


def idempotent_request(account_id: int, key: str, request_hash: str) -> IdempotentRequest:
    return IdempotentRequest(account_id, key, request_hash,
                             get_settings().security.idempotency_retention_hours)


async def get_idempotency(request: Request, account: CurrentAccountDep,
                          idempotency_key: IdempotencyKeyHeader = None) -> Idempotency:
    if idempotency_key is None:
        return Idempotency(None)
    body = await request.body()  # already read (and cached) for the route's JSON body
    return Idempotency(idempotent_request(
        account.id, idempotency_key, fingerprint(request.method, request.url.path, body)))


IdempotencyDep = Annotated[Idempotency, Depends(get_idempotency)]
