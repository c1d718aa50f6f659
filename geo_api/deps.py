"""FastAPI dependencies shared by the routes."""

from collections.abc import Iterator
from urllib.parse import unquote
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy import Connection, Engine


def get_engine_dep(request: Request) -> Engine:
    return request.app.state.engine


def get_conn(request: Request) -> Iterator[Connection]:
    with request.app.state.engine.connect() as conn:
        yield conn


EngineDep = Annotated[Engine, Depends(get_engine_dep)]
ConnDep = Annotated[Connection, Depends(get_conn)]


def get_tx(request: Request) -> Iterator[Connection]:
    """A connection inside one transaction: committed when the route returns, else rolled back."""
    with request.app.state.engine.begin() as conn:
        yield conn


def get_actor(x_actor: Annotated[str | None, Header(max_length=200)] = None) -> str:
    """Who makes a write. Until accounts exist it is the free-text `X-Actor` header."""
    # Headers are ASCII: Vietnamese names arrive percent-encoded (UTF-8).
    return unquote(x_actor or "").strip() or "anonymous"


TxDep = Annotated[Connection, Depends(get_tx, scope="function")]  # commit before responding
ActorDep = Annotated[str, Depends(get_actor)]
