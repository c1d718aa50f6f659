"""What the API promises, declared once for every route rather than by hand on each.

- `refuse_unknown_query`: every route outside /ogc (which answers 400, per OGC) refuses a
  query parameter it does not declare, or a single-valued one given twice, with a 422
  naming it. A route's parameters are what
  FastAPI's dependant declares (query models expanded) plus `openapi_extra["parameters"]`
  for routes that read filters themselves (exports).
- `describe`: the OpenAPI document states, per operation, the statuses its guards and
  method can answer (each with the one Error schema, errors.ERROR_SCHEMA), If-Match as a
  required header where the server answers 428 without it, the maximum page size, and the
  media types a `format` parameter selects.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import field_annotation_is_sequence
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel

from geo_api.errors import ERROR_REF
from geo_api.http_errors import document_errors

GEOJSON = "application/geo+json"
CSV = "text/csv"
HTML = "text/html"
IF_MATCH_PATTERN = r'^\s*(W/)?"?[0-9]{1,9}"?\s*$'
UNGUARDED_PREFIXES = ("/ogc",)  # OGC API answers bad parameters itself, with 400
FORMAT_MEDIA = {"json": "application/json", "geojson": GEOJSON, "csv": CSV}


class GeoJSONResponse(JSONResponse):
    """For response_class=: the route's documented model is served as GeoJSON."""

    media_type = GEOJSON


def media(*types: str, description: str = "Successful Response") -> dict[str, Any]:
    """A `responses` entry listing the media types a route can answer."""
    return {"description": description, "content": {t: {} for t in types}}


# ------------------------------------------------------------------------- route facts


def api_routes(app: FastAPI) -> Iterator[Any]:
    """Every FastAPI route as served (included routers resolved: prefixes, tags, dependencies)."""
    for ctx in iter_route_contexts(app.routes):
        if isinstance(ctx.original_route, APIRoute):
            yield ctx


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


def _names(field: Any) -> list[str]:
    """The query keys one declared field accepts (a query model: each of its fields)."""
    annotation = getattr(field.field_info, "annotation", None)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [f.alias or name for name, f in annotation.model_fields.items()]
    return [field.alias]


def model_bounds(model: type[BaseModel], name: str) -> dict[str, Any]:
    """The bounds a query model enforces on field `name` (for parameters declared by hand)."""
    prop = model.model_json_schema()["properties"].get(name, {})
    keys = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength")
    return {k: v for alt in [prop, *prop.get("anyOf", [])] for k, v in alt.items() if k in keys}


def query_names(route: APIRoute) -> set[str]:
    names = {n for d in _dependants(route.dependant) for f in d.query_params for n in _names(f)}
    extra = (route.openapi_extra or {}).get("parameters", [])
    return names | {p["name"] for p in extra if p.get("in") == "query"}


def header_names(route: APIRoute) -> set[str]:
    return {f.alias.lower() for d in _dependants(route.dependant) for f in d.header_params}


def guard_roles(route: APIRoute) -> frozenset[str] | None:
    """The roles the route lets through (None: anyone, signed in or not)."""
    sets = [frozenset(d.call.roles) for d in _dependants(route.dependant)
            if d.call is not None and hasattr(d.call, "roles")]
    return frozenset.intersection(*sets) if sets else None


def uses_bearer(route: APIRoute) -> bool:
    from geo_api.guards import optional_account

    return any(d.call is optional_account for d in _dependants(route.dependant))


def has_path_params(route: APIRoute) -> bool:
    return any(d.path_params for d in _dependants(route.dependant))


# ------------------------------------------------------------ unknown query parameters


def _allowed_query(route: APIRoute) -> tuple[frozenset[str], str, frozenset[str]]:
    """The route's query keys, as a sentence, and those that may repeat (lists)."""
    cached = route.__dict__.get("_allowed_query")
    if cached is None:
        names = frozenset(query_names(route))
        cached = route.__dict__["_allowed_query"] = (
            names, ", ".join(sorted(names)) or "none", frozenset(_list_names(route)))
    return cached


def _list_names(route: APIRoute) -> Iterator[str]:
    for d in _dependants(route.dependant):
        for f in d.query_params:
            annotation = getattr(f.field_info, "annotation", None)
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                yield from (m.alias or n for n, m in annotation.model_fields.items()
                            if field_annotation_is_sequence(m.annotation))
            elif field_annotation_is_sequence(annotation):
                yield f.alias
    for p in (route.openapi_extra or {}).get("parameters", []):
        if p.get("in") == "query" and p.get("schema", {}).get("type") == "array":
            yield p["name"]


async def refuse_unknown_query(request: Request) -> None:
    """A dependency of every route (FastAPI(dependencies=...)): 422 for an undeclared query key."""
    route = request.scope.get("route")
    if not request.scope.get("query_string") or not isinstance(route, APIRoute) \
            or route.path.startswith(UNGUARDED_PREFIXES):
        return
    allowed, takes, lists = _allowed_query(route)
    params = request.query_params
    keys = [k for k, _ in params.multi_items()]
    errors = [{"type": "extra_forbidden", "loc": ("query", k), "input": params.get(k),
               "msg": f"unknown query parameter; this endpoint takes: {takes}"}
              for k in dict.fromkeys(keys) if k not in allowed]
    errors += [{"type": "too_long", "loc": ("query", k), "input": params.getlist(k),
                "msg": "given more than once; it takes one value (a list is comma-separated)"}
               for k in dict.fromkeys(keys) if k in allowed and k not in lists and keys.count(k) > 1]
    if errors:
        raise RequestValidationError(errors)


QUERY_GUARD = Depends(refuse_unknown_query)


# ---------------------------------------------------------------------- the description


STANDARD = {
    400: "the body cannot be read (not JSON, or a broken multipart form)",
    401: "the Authorization token is unknown or has expired (a public read answers 401 only then)",
    403: "this account's role may not do this, or the data belongs to another post or donor",
    404: "no such item",
    409: "conflicts with existing data (a duplicate, a row still referred to) or with a "
         "concurrent change",
    412: "If-Match names a version that is no longer current: read the item again",
    413: "the request body is larger than the limit",
    422: "invalid input (an unknown query parameter included); `message` names the field and "
         "the reason",
    428: "If-Match is required: send the ETag of the version you read",
    503: "the database is unavailable; try again shortly",
}
GUARDED_401 = "not logged in (send Authorization: Bearer <token>), or the token is unknown or has expired"


def statuses(route: APIRoute, method: str) -> dict[int, str]:
    """The error statuses a route can answer, from its guards, parameters and method."""
    from geo_api.vocabulary import ROLES

    out = {401: STANDARD[401], 503: STANDARD[503]}
    if not route.path.startswith(UNGUARDED_PREFIXES):
        out[422] = STANDARD[422]
    roles = guard_roles(route)
    if roles is not None:
        out[401] = GUARDED_401
        if roles != frozenset(ROLES):
            out[403] = STANDARD[403]
    if has_path_params(route):
        out[404] = STANDARD[404]
    if method != "GET":
        out[409] = STANDARD[409]
    if "if-match" in header_names(route):
        out[412], out[428] = STANDARD[412], STANDARD[428]
    if route.body_field is not None or "requestBody" in (route.openapi_extra or {}):
        out[400], out[413] = STANDARD[400], STANDARD[413]
    return out


def _error_response(existing: dict[str, Any] | None, description: str) -> dict[str, Any]:
    entry = dict(existing or {})
    entry.setdefault("description", description)
    content = dict(entry.get("content") or {})
    json_entry = content.get("application/json") or {}
    if not json_entry.get("schema"):
        content["application/json"] = {**json_entry, "schema": ERROR_REF}
    entry["content"] = content
    return entry


def _format_media(operation: dict[str, Any]) -> list[str]:
    for p in operation.get("parameters", []):
        if p["name"] == "format" and p["in"] == "query":
            return [FORMAT_MEDIA[v] for v in p.get("schema", {}).get("enum", []) if v in FORMAT_MEDIA]
    return []


def _parameters(operation: dict[str, Any], route: APIRoute) -> None:
    from geo_api.settings import get_settings

    for p in operation.get("parameters", []):
        name = p["name"].lower()
        if p["in"] == "header" and name == "if-match":
            p.update(name="If-Match", required=True, schema={
                "type": "string", "pattern": IF_MATCH_PATTERN,
                "description": 'the ETag of the version the client last read, e.g. "3"'})
            p["description"] = ('the ETag of the version the client read, e.g. "3": 428 without it, '
                                "412 when it is no longer current")
        elif p["in"] == "header" and name == "idempotency-key":
            p["name"] = "Idempotency-Key"
        elif p["in"] == "query" and p["name"] == "limit" and "maximum" not in str(p["schema"]):
            # a page's size is capped by a setting, read when the document is made
            p["schema"]["maximum"] = get_settings().api.max_page_size


def describe(app: FastAPI, schema: dict[str, Any]) -> dict[str, Any]:
    document_errors(schema)
    for route in api_routes(app):
        if not route.include_in_schema:
            continue
        for method in route.methods:
            operation = schema["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            _parameters(operation, route)
            responses = operation.setdefault("responses", {})
            for status, description in statuses(route, method).items():
                responses[str(status)] = _error_response(responses.get(str(status)), description)
            for status, entry in responses.items():  # route-declared errors get the schema too
                ogc_400 = status == "400" and route.path_format.startswith(UNGUARDED_PREFIXES)
                if status.startswith(("4", "5")) and not ogc_400:
                    responses[status] = _error_response(entry, STANDARD.get(int(status), "error"))
            if formats := _format_media(operation):
                ok = next((s for s in ("200", "201") if s in responses), "200")
                content = responses.setdefault(ok, {"description": "Successful Response"}).setdefault("content", {})
                for m in formats:
                    content.setdefault(m, {})
            if uses_bearer(route) and guard_roles(route) is None:
                operation["security"] = [{}, {"HTTPBearer": []}]  # optional: it widens what is shown
            operation["responses"] = dict(sorted(responses.items()))
    return schema


def install_api_description(app: FastAPI) -> None:
    """The custom OpenAPI document (pass QUERY_GUARD to FastAPI(dependencies=...) too)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = describe(app, get_openapi(
                title=app.title, version=app.version, openapi_version=app.openapi_version,
                summary=app.summary, description=app.description, routes=app.routes))
        return app.openapi_schema

    app.openapi = openapi
