"""Fuzzing the whole API from its OpenAPI description (schemathesis, inside the suite).

Every operation gets generated requests (its examples and fuzzed data, valid and invalid),
then a stateful phase chains operations along the links schemathesis infers (create, then
read, change, delete what was made), against a throwaway database holding the demo data.
Every answer goes through all of schemathesis' checks: no 5xx, status, media type, headers
and body as documented, invalid data refused, required headers enforced, auth enforced.

The size is bounded for `make test`; `make fuzz` runs the full size:
FUZZ_EXAMPLES (examples per operation, 5 by default) and FUZZ_SCENARIOS (stateful
scenarios, 10 by default); FUZZ_COVERAGE=1 adds schemathesis' coverage phase (its
exhaustive edge cases of every parameter).

Two checks are set to what this API documents, with the reason:
- `missing_required_header`: If-Match missing is answered 428 Precondition Required, the
  status RFC 6585 made for exactly that; 428 is added to the statuses it expects.
- `positive_data_acceptance` is replaced by `valid_request_not_refused_by_validation`:
  schema-valid data may still break a rule the schema cannot state (a marker 8 km from its
  border, a stale If-Match version → 412, a photo that is not an image → 415, a funded
  road without commitments); those answers carry the rule in `message`. What must never
  happen is the request validator refusing schema-valid data for a declarative reason
  (a type, bound, length, pattern or enum the description should have stated), or a
  status outside what the API documents for such rules.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from sqlalchemy import create_engine

from support.api_client import account_headers
from geo_api import db
from geo_api.main import create_app

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "5"))
SCENARIOS = int(os.environ.get("FUZZ_SCENARIOS", "10"))
COVERAGE = os.environ.get("FUZZ_COVERAGE", "") == "1"

# Statuses a schema-valid request may get, each for a rule the schema cannot state.
RULE_STATUSES = {412, 415, 422}
# pydantic's error types for a value a rule checked in code (the `message` says which rule),
# and the decimal places of a Decimal, which JSON Schema cannot state for binary numbers
# (multipleOf 0.01 fails on floats); every other type is a declarative constraint, which the
# description must state.
RULE_ERROR_TYPES = {"value_error", "assertion_error", "decimal_max_places", "decimal_max_digits"}


# The schema is read at import (schemathesis parametrizes at collection); the app is
# pointed at its throwaway database by the fixture below, before any request is made.
APP = create_app("postgresql+psycopg://tracker@127.0.0.1:1/not-yet")
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
schema.config.phases.coverage.enabled = COVERAGE
schema.config.checks.missing_required_header.expected_statuses = [
    *schema.config.checks.missing_required_header.expected_statuses, "428"]
schema.config.checks.positive_data_acceptance.enabled = False


@schemathesis.check
def valid_request_not_refused_by_validation(ctx, response, case):
    """Schema-valid data: 2xx/3xx, or 401/403/404/409/429, or a rule's 412/415/422 (see above)."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    status = response.status_code
    if status < 400 or status in (401, 403, 404, 409, 429) or status >= 500:
        return None  # 5xx is not_a_server_error's to report
    body = response.json() if "json" in response.headers.get("content-type", [""])[0] else None
    detail = body.get("detail") if isinstance(body, dict) else None
    declarative = sorted({e.get("type") for e in detail if isinstance(e, dict)} - RULE_ERROR_TYPES) \
        if isinstance(detail, list) else []
    if status not in RULE_STATUSES or declarative:
        raise AssertionError(f"schema-valid request refused with {status}"
                             + (f" by the validator ({', '.join(declarative)})" if declarative else "")
                             + f": {response.text[:300]}")
    return None


def _guarded(case) -> bool:
    """The operation needs an account (its security names no anonymous alternative)."""
    security = case.operation.definition.raw.get("security") or []
    return bool(security) and {} not in security


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
    # a fresh token per request: a fuzzed logout or account change cannot lock the run out
    APP.state.fuzz_admin = lambda: account_headers(eng, "admin", username="fuzz-admin")
    yield APP
    APP.dependency_overrides.pop(attachments.get_store, None)
    APP.state.engine = placeholder
    eng.dispose()


def _headers(app, case) -> dict[str, str]:
    """A real admin token in place of the generated credentials of a guarded operation; none
    when the case leaves Authorization out on purpose (a negative case: it must get 401)."""
    if not _guarded(case) or "authorization" not in {k.lower() for k in case.headers or {}}:
        return {}
    return dict(app.state.fuzz_admin())


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case, fuzz_app):
    case.call_and_validate(headers=_headers(fuzz_app, case),
                           additional_checks=[valid_request_not_refused_by_validation])


@pytest.mark.skipif(SCENARIOS == 0, reason="FUZZ_SCENARIOS=0")
def test_chained_operations_answer_as_documented(fuzz_app):
    class Workflow(schema.as_state_machine()):
        def get_call_kwargs(self, case):
            return {"headers": _headers(fuzz_app, case)}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            super().validate_response(response, case, [valid_request_not_refused_by_validation], **kwargs)

    Workflow.run(settings=settings(max_examples=SCENARIOS, stateful_step_count=8, deadline=None,
                                   derandomize=True, database=None, suppress_health_check=list(HealthCheck)))
