"""Test fixtures: a real PostGIS, a fresh database for each test session.

The project-local cluster is started unless DATABASE_URL points at a server; either way
the tests create their own database on it (``tracker_test_<random>``) and drop it at the end.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from geo_api import db
from support.api_client import account_headers
from geo_api.localdb import ensure_database_available


def _libpq_kwargs(url: str) -> dict:
    u = make_url(url)
    return {k: v for k, v in {
        "host": u.host, "port": u.port, "user": u.username, "password": u.password,
        "dbname": u.database,
    }.items() if v is not None}


def create_database(server_url: str, name: str) -> str:
    admin = {**_libpq_kwargs(server_url), "dbname": "postgres"}
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    admin = {**_libpq_kwargs(server_url), "dbname": "postgres"}
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def server_url() -> str:
    return ensure_database_available(lambda *_: None)


@pytest.fixture(scope="session")
def fresh_database(server_url):
    """A factory of empty databases, dropped when the session ends."""
    made: list[str] = []

    def make() -> str:
        name = f"tracker_test_{secrets.token_hex(4)}"
        made.append(name)
        return create_database(server_url, name)

    yield make
    for name in made:
        drop_database(server_url, name)


@pytest.fixture(scope="session")
def database_url(fresh_database) -> str:
    """The session's database, migrated to head."""
    url = fresh_database()
    db.upgrade(url)
    return url


@pytest.fixture(scope="session")
def engine(database_url) -> Iterator[Engine]:
    eng = create_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def demo_counts(engine) -> dict[str, int]:
    """The demo dataset, loaded once for the session."""
    from geo_api.demo import load_demo

    return load_demo(engine)


@pytest.fixture(scope="session")
def client(database_url, demo_counts) -> Iterator[TestClient]:
    from geo_api.main import create_app

    with TestClient(create_app(database_url)) as c:
        yield c


# ---------------------------------------------------------------------------- accounts
# Write routes need an account: see tests/support/api_client.py (`account_headers`,
# `ApiClient`, imported as `from support.api_client import ...`).

@pytest.fixture(scope="session")
def auth_headers(engine):
    """Bearer headers for the session's demo database: auth_headers("post", post_id=3)."""
    made: dict[tuple, dict[str, str]] = {}

    def make(role: str = "admin", post_id: int | None = None, donor_id: int | None = None,
             username: str | None = None) -> dict[str, str]:
        key = (role, post_id, donor_id, username)
        if key not in made:
            made[key] = account_headers(engine, role, username=username, post_id=post_id,
                                        donor_id=donor_id)
        return made[key]

    return make
