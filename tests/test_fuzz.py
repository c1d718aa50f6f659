"""Fuzzing the whole API from its OpenAPI description (schemathesis, inside the suite).

Every operation gets a few generated requests, anonymous for reads and as an admin for
writes (so the write paths run, not just the 401), against a throwaway database holding
the demo data. No answer may be a 5xx, and every answer must match its documented schema.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance
from sqlalchemy import create_engine

from api_client import account_headers
from geo_api import db
from geo_api.main import create_app

EXAMPLES = 5


# The schema is read at import (schemathesis parametrizes at collection); the app is
# pointed at its throwaway database by the fixture below, before any request is made.
APP = create_app("postgresql+psycopg://tracker@127.0.0.1:1/not-yet")
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
schema.config.phases.coverage.enabled = False  # its exhaustive edge cases take minutes; keep the bound


@pytest.fixture(scope="module")
def fuzz_app(fresh_database, tmp_path_factory):
    from geo_api.demo import load_demo
    from geo_api.domain.attachments import Store
    from geo_api.routes import attachments

    url = fresh_database()
    db.upgrade(url)
    eng = create_engine(url)
    load_demo(eng)
    placeholder = APP.state.engine
    APP.state.engine = db.get_engine(url)
    store = Store(tmp_path_factory.mktemp("fuzz-attachments"))
    APP.dependency_overrides[attachments.get_store] = lambda: store
    APP.state.fuzz_admin = account_headers(eng, "admin", username="fuzz-admin")
    yield APP
    APP.state.engine = placeholder
    eng.dispose()


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_server_error_and_every_answer_as_documented(case, fuzz_app):
    headers = {} if case.method == "GET" else dict(fuzz_app.state.fuzz_admin)
    case.call_and_validate(headers=headers, checks=[not_a_server_error, response_schema_conformance])
