"""The API does what its description says: unknown query parameters are refused on every
route, If-Match is declared where it is required, numbers have bounds, errors have one shape."""

from __future__ import annotations

import os
import re

import jsonschema
import pytest
from sqlalchemy import text

from geo_api import layers
from geo_api.errors import ERROR_REF, ERROR_SCHEMA
from geo_api.openapi import api_routes

UNKNOWN = "zz_unknown"
BIG_ID = 2**31 - 1  # within every id's bounds, and no such row


def _first_id(engine, table: str) -> int:
    with engine.connect() as conn:
        found = conn.execute(text(f"SELECT min(id) FROM {table}")).scalar()
    assert found is not None, f"the demo data has no {table} row"
    return found


@pytest.fixture(scope="module")
def attachment_id(client, auth_headers, engine, tmp_path_factory):
    """One photo on a road (the demo data has none), stored in a throwaway folder."""
    from geo_api.domain.attachments import Store
    from geo_api.routes import attachments

    store = Store(tmp_path_factory.mktemp("description-attachments"))
    client.app.dependency_overrides[attachments.get_store] = lambda: store
    r = client.post("/api/attachments", headers=auth_headers("admin"),
                    data={"owner_kind": "road", "owner_id": str(_first_id(engine, "branch_road"))},
                    files={"file": ("a.png", b"\x89PNG\r\n\x1a\n" + os.urandom(200), "image/png")})
    assert r.status_code == 201, r.text
    yield r.json()["id"]
    client.app.dependency_overrides.pop(attachments.get_store, None)


def _fill(path: str, engine, attachment: int) -> str:
    """The path with existing demo ids (or valid values) for its parameters."""
    first = re.match(r"^/api/([a-z-]+)/\{item_id\}", path)
    values = {
        "item_id": lambda: _first_id(engine, layers.BY_NAME[first[1]].table) if first else BIG_ID,
        "pair_id": lambda: _first_id(engine, "village_pair"),
        "road_id": lambda: _first_id(engine, "branch_road"),
        "donor_id": lambda: _first_id(engine, "donor"),
        "attachment_id": lambda: attachment,
        "z": lambda: 0, "x": lambda: 0, "y": lambda: 0,
        "layer": lambda: "markers", "fmt": lambda: "csv", "path": lambda: "app.css",
    }
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: str(values[m[1]]()), path)


def _get_routes(app) -> list[str]:
    return sorted({r.path_format for r in api_routes(app)
                   if "GET" in r.methods and not r.path_format.startswith("/ogc")})


def test_every_get_route_outside_ogc_refuses_an_unknown_query_parameter(
        client, engine, auth_headers, attachment_id):
    admin = auth_headers("admin")
    paths = _get_routes(client.app)
    # the pages, reports, exports, tiles and attachments are all among them
    for expected in ("/", "/planner/plan", "/api/reports/provinces", "/api/export/{layer}.{fmt}",
                     "/tiles/roads/{z}/{x}/{y}.pbf", "/api/attachments/{attachment_id}/content",
                     "/static/{path}", "/api/markers"):
        assert expected in paths
    checked = []
    for path in paths:
        url = _fill(path, engine, attachment_id)
        if path != "/planner/plan":  # computes a whole plan: the refusal alone is checked
            plain = client.get(url, headers=admin)
            assert plain.status_code < 500 and plain.status_code != 422, (url, plain.status_code, plain.text[:300])
        r = client.get(url, params={UNKNOWN: "1"}, headers=admin)
        assert r.status_code == 422, (url, r.status_code, r.text[:300])
        body = r.json()
        assert UNKNOWN in body["message"], (url, body)
        assert body["code"] == "invalid_input" and body["detail"][0]["loc"] == ["query", UNKNOWN]
        checked.append(path)
    assert len(checked) >= 60


def test_ogc_keeps_its_own_400_for_unknown_parameters(client):
    r = client.get("/ogc/collections/markers/items", params={UNKNOWN: "1"})
    assert r.status_code == 400


def test_the_refusal_names_what_the_route_takes_and_changes_nothing(client, engine, auth_headers):
    road = _first_id(engine, "branch_road")
    with engine.connect() as conn:
        before = conn.execute(text("SELECT version FROM branch_road WHERE id = :id"), {"id": road}).scalar()
    r = client.patch(f"/api/roads/{road}", params={"nmae": "x"}, json={"name": "renamed"},
                     headers={**auth_headers("admin"), "If-Match": f'"{before}"'})
    assert r.status_code == 422 and "nmae" in r.json()["message"]
    with engine.connect() as conn:
        after = conn.execute(text("SELECT version FROM branch_road WHERE id = :id"), {"id": road}).scalar()
    assert after == before
    r = client.get("/api/reports/provinces", params={"fromat": "csv"})
    assert r.status_code == 422 and "fromat" in r.json()["message"] and "format" in r.json()["message"]


def _operations(schema):
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            yield path, method.upper(), op


def _if_match(op) -> dict | None:
    return next((p for p in op.get("parameters", [])
                 if p["in"] == "header" and p["name"].lower() == "if-match"), None)


def _some_body(schema: dict, op: dict) -> dict:
    """A valid PATCH body: one plain text field set (the checks of If-Match come after the body's)."""
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    props = schema["components"]["schemas"][ref]["properties"]
    for name in sorted(props, key=lambda n: n not in ("notes", "note", "name", "display_name")):
        prop = props[name]
        for alt in [prop, *prop.get("anyOf", [])]:
            if alt.get("type") == "string" and not {"enum", "format", "const"} & set(alt) \
                    and re.search(alt.get("pattern", ""), "x") and name != "crs":  # a CRS needs a geometry
                return {name: "x"}
    raise AssertionError(f"no plain text field in {ref}")


def test_every_patch_and_delete_that_needs_if_match_declares_it_required(client, auth_headers):
    schema = client.get("/openapi.json").json()
    admin = auth_headers("admin")
    needing = []
    for path, method, op in _operations(schema):
        if method not in ("PATCH", "DELETE") or path.startswith("/ogc"):
            continue
        url = re.sub(r"\{\w+\}", str(BIG_ID), path)  # no such item: nothing can change
        r = client.request(method, url, headers=admin, json=_some_body(schema, op) if method == "PATCH" else None)
        declared = _if_match(op)
        if r.status_code == 428:
            needing.append((method, path))
            assert declared is not None and declared["required"] is True, (method, path)
            assert "428" in op["responses"] and "412" in op["responses"]
        else:
            assert declared is None, (method, path, r.status_code, r.text[:300])
    assert sum(m == "PATCH" for m, _ in needing) >= 8 and sum(m == "DELETE" for m, _ in needing) >= 8


def test_every_route_answering_428_declares_if_match_and_no_other_does(client):
    schema = client.get("/openapi.json").json()
    with_428 = {(m, p) for p, m, op in _operations(schema) if "428" in op["responses"]}
    required = {(m, p) for p, m, op in _operations(schema) if (_if_match(op) or {}).get("required")}
    assert with_428 == required
    assert ("POST", "/api/roads/{road_id}/transitions") in required
    assert ("POST", "/api/roads/{road_id}/progress") in required


def _types(schema: dict) -> set[str]:
    found = {schema["type"]} if isinstance(schema.get("type"), str) else set(schema.get("type") or [])
    for alt in schema.get("anyOf", []) + schema.get("oneOf", []):
        found |= _types(alt)
    return found


def _bounded(schema: dict, key: str) -> bool:
    return key in schema or any(key in alt for alt in schema.get("anyOf", []) if alt.get("type") == "integer")


def test_every_integer_query_parameter_has_a_maximum(client):
    schema = client.get("/openapi.json").json()
    integers = [(path, p["name"], p["schema"]) for path, _, op in _operations(schema)
                for p in op.get("parameters", []) if p["in"] == "query" and "integer" in _types(p["schema"])]
    assert len(integers) > 50
    unbounded = [(path, name) for path, name, s in integers if not _bounded(s, "maximum")]
    assert unbounded == []
    limit = next(s for path, name, s in integers if path == "/api/markers" and name == "limit")
    assert limit["maximum"] == 1000


def test_a_limit_above_the_maximum_is_refused(client):
    r = client.get("/api/markers", params={"post_id": 2**31})
    assert r.status_code == 422 and "post_id" in r.json()["message"]
    r = client.get("/api/markers", params={"limit": 1001})
    assert r.status_code == 422 and "limit" in r.json()["message"]


def test_media_types_are_declared(client):
    paths = client.get("/openapi.json").json()["paths"]

    def ok(path, method="get", status="200"):
        return set(paths[path][method]["responses"][status]["content"])

    assert ok("/api/markers") == {"application/geo+json"}
    assert ok("/api/donors") == {"application/json"}
    assert ok("/api/reports/provinces") == {"application/json", "text/csv"}
    assert ok("/api/plan/candidates") >= {"application/json", "application/geo+json", "text/csv"}
    assert ok("/api/markers/{item_id}", "patch") == {"application/geo+json"}
    assert ok("/api/attachments/{attachment_id}/content") >= {"image/png", "image/jpeg", "application/pdf"}
    assert ok("/api/export/roads.{fmt}") >= {"application/zip", "application/geopackage+sqlite3",
                                               "application/vnd.google-earth.kml+xml"}
    assert "text/html" in ok("/api/reports/donors/{donor_id}.html")
    assert "application/vnd.mapbox-vector-tile" in ok("/tiles/roads/{z}/{x}/{y}.pbf")


def test_every_error_response_is_documented_with_the_error_schema(client):
    schema = client.get("/openapi.json").json()
    assert schema["components"]["schemas"]["Error"]["required"] == ["code", "message"]
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for path, method, op in _operations(schema):
        responses = op["responses"]
        assert "401" in responses and "503" in responses, (method, path)
        if not path.startswith("/ogc"):
            assert "422" in responses, (method, path)
        for status, entry in responses.items():
            if status[0] in "45" and status != "400":
                documented = entry["content"]["application/json"]["schema"]
                assert ERROR_REF in [documented, *documented.get("anyOf", [])], (method, path, status)


def test_errors_have_one_shape(client, auth_headers):
    answers = {
        "middleware 401": client.get("/api/markers", headers={"Authorization": "Bearer nope"}),
        "guard 401": client.get("/api/accounts"),
        "domain 404": client.get(f"/api/roads/{BIG_ID}"),
        "validation 422": client.get("/api/markers", params={"limit": 0}),
        "428": client.delete(f"/api/roads/{BIG_ID}", headers=auth_headers("admin")),
        "413": client.post("/api/roads", content=b"{" + b" " * (3 << 20) + b"}",
                           headers={**auth_headers("admin"), "Content-Type": "application/json"}),
        "no route 404": client.get("/api/no-such-thing"),
        "405": client.put("/api/markers"),
    }
    for what, r in answers.items():
        assert r.status_code >= 400, what
        body = r.json()
        jsonschema.validate(body, ERROR_SCHEMA)
        assert "\n" not in body["message"] and body["message"], what
    assert answers["validation 422"].json()["detail"][0]["loc"] == ["query", "limit"]
    assert answers["428"].json()["detail"] == {"field": "If-Match"}
    assert "limit_bytes" in answers["413"].json()["detail"]
    assert answers["405"].headers["allow"] == "GET, POST"  # every method of the path, not one route's


def test_a_single_valued_parameter_given_twice_is_refused_and_a_list_is_not(client):
    r = client.get("/api/markers", params=[("limit", "1"), ("limit", "2")])
    assert r.status_code == 422 and "limit" in r.json()["message"] and "more than once" in r.json()["message"]
    page = client.get("/", params=[("status", "funded"), ("status", "completed")])
    assert page.status_code == 200  # the donor map's status filter is a list
