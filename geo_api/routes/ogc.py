"""OGC API – Features under /ogc: landing page, conformance, collections, items, item,
queryables (Part 3) and schema (Part 5, also as a GML application schema for GDAL).

JSON (GeoJSON for features) by default; HTML with `?f=html` or when a browser asks for it.
Invalid query parameters are answered with 400 and an OGC exception document
({"code", "description"}), as Part 1 requires, rather than the /api 422.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from geo_api.deps import ConnDep, ViewerDep
from geo_api.domain import ogc
from geo_api.errors import InvalidInput

router = APIRouter(prefix="/ogc", tags=["OGC API Features"])

ITEM_PARAMS_DOC = (
    "`limit` (1..10000, default 10; larger values are clamped), `offset`, `bbox` "
    "(minLon,minLat,maxLon,maxLat in CRS84), `datetime` (instant or interval, on collections "
    "with dates), `f` (json or html), the collection's property filters and its date property "
    "(one day), as listed in /collections/{collection_id}/queryables."
)


def _base(request: Request) -> tuple[str, str]:
    root = str(request.base_url).rstrip("/")
    return f"{root}/ogc", root


def _wants_html(request: Request) -> bool:
    f = request.query_params.get("f")
    if f is not None:
        return f == "html"
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "json" not in accept


def _check_f(request: Request) -> None:
    f = request.query_params.get("f")
    if f is not None and f not in ("json", "geojson", "html"):
        raise InvalidInput(f"f must be json, geojson or html, got {f!r}", field="f")


def _bad_request(exc: InvalidInput) -> JSONResponse:
    return JSONResponse({"code": "InvalidParameterValue", "description": exc.message}, status_code=400)


def _json(doc: Any, media_type: str = ogc.JSON) -> Response:
    return Response(json.dumps(doc, ensure_ascii=False), media_type=media_type)


# ---------------------------------------------------------------------------- HTML


def _page(title: str, body: str, links: list[dict[str, str]]) -> HTMLResponse:
    alt = "".join(f'<a href="{escape(x["href"])}">{escape(x.get("title") or x["rel"])}</a> · '
                  for x in links if x["type"] != ogc.HTML)
    return HTMLResponse(f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:1.5rem;max-width:70rem}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.2rem .5rem;text-align:left;vertical-align:top}}nav{{margin:.5rem 0}}</style>
</head><body><nav><a href="/ogc?f=html">OGC API</a> · <a href="/ogc/collections?f=html">collections</a></nav>
<h1>{escape(title)}</h1><p>{alt}</p>{body}</body></html>""")


def _table(rows: list[dict[str, Any]], hrefs: list[str] | None = None) -> str:
    """An HTML table of `rows`; with `hrefs`, the first column links to each row's page."""
    if not rows:
        return "<p>(none)</p>"
    cols = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{escape(c)}</th>" for c in cols)

    def cell(v: Any) -> str:
        return "" if v is None else escape(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))

    lines = []
    for i, r in enumerate(rows):
        cells = [cell(r.get(c)) for c in cols]
        if hrefs:
            cells[0] = f'<a href="{escape(hrefs[i])}">{cells[0]}</a>'
        lines.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(lines)}</table>"


def _html_features(title: str, features: list[dict], items_url: str, links: list[dict]) -> HTMLResponse:
    rows = [{"id": f["id"], **f["properties"]} for f in features]
    hrefs = [f"{items_url}/{f['id']}?f=html" for f in features]
    nav = " ".join(f'<a href="{escape(x["href"])}&f=html">{escape(x["rel"])}</a>'
                   for x in links if x["rel"] in ("prev", "next"))
    return _page(title, f"<p>{nav}</p>{_table(rows, hrefs)}", links)


# ---------------------------------------------------------------------------- routes


@router.get("", summary="OGC API landing page", responses={200: {"content": {ogc.JSON: {}, ogc.HTML: {}}}})
@router.get("/", include_in_schema=False)
def landing_page(request: Request) -> Response:
    try:
        _check_f(request)
    except InvalidInput as exc:
        return _bad_request(exc)
    base, root = _base(request)
    doc = ogc.landing(base, root)
    if _wants_html(request):
        items = "".join(f'<li><a href="{escape(x["href"])}">{escape(x["title"])}</a> ({escape(x["rel"])})</li>'
                        for x in doc["links"])
        return _page(doc["title"], f"<p>{escape(doc['description'])}</p><ul>{items}</ul>", [])
    return _json(doc)


@router.get("/conformance", summary="Conformance classes")
def conformance(request: Request) -> Response:
    try:
        _check_f(request)
    except InvalidInput as exc:
        return _bad_request(exc)
    doc = ogc.conformance()
    if _wants_html(request):
        return _page("Conformance", "<ul>" + "".join(f"<li>{escape(c)}</li>" for c in doc["conformsTo"])
                     + "</ul>", [])
    return _json(doc)


@router.get("/collections", summary="Feature collections")
def collections(request: Request, conn: ConnDep, viewer: ViewerDep) -> Response:
    try:
        _check_f(request)
    except InvalidInput as exc:
        return _bad_request(exc)
    base, _ = _base(request)
    doc = ogc.collections(conn, base, viewer)
    if _wants_html(request):
        rows = [{"id": c["id"], "title": c["title"], "description": c["description"]}
                for c in doc["collections"]]
        hrefs = [f"{base}/collections/{c['id']}?f=html" for c in doc["collections"]]
        return _page("Collections", _table(rows, hrefs), doc["links"])
    return _json(doc)


@router.get("/collections/{collection_id}", summary="One feature collection")
def collection(request: Request, conn: ConnDep, viewer: ViewerDep, collection_id: str) -> Response:
    layer = ogc.get_collection(collection_id, viewer)
    try:
        _check_f(request)
    except InvalidInput as exc:
        return _bad_request(exc)
    base, _ = _base(request)
    doc = ogc.collection(conn, layer, base, viewer)
    if _wants_html(request):
        extent = doc.get("extent", {})
        body = (f"<p>{escape(doc['description'])}</p><p>Extent: {escape(json.dumps(extent))}</p>"
                f'<p><a href="{base}/collections/{layer.name}/items?f=html">Browse the features</a></p>')
        return _page(doc["title"], body, doc["links"])
    return _json(doc)


@router.get(
    "/collections/{collection_id}/items", summary="Features of a collection (GeoJSON, paged)",
    description=ITEM_PARAMS_DOC,
    responses={200: {"content": {ogc.GEOJSON: {}, ogc.HTML: {}}}, 400: {"description": "invalid parameter"}},
)
def items(request: Request, viewer: ViewerDep, collection_id: str) -> Response:
    layer = ogc.get_collection(collection_id, viewer)
    params = list(request.query_params.multi_items())
    try:
        q = ogc.parse_items_query(layer, params, viewer)
    except InvalidInput as exc:
        return _bad_request(exc)
    base, _ = _base(request)
    items_url = f"{base}/collections/{layer.name}/items"
    page = ogc.page(request.app.state.engine, layer, q)
    links = ogc.page_links(items_url, params, q, page.matched)
    if _wants_html(request):
        features = json.loads(f"[{page.features}]")
        title = f"{layer.title[0].upper()}{layer.title[1:]}s {q.offset + 1}–{q.offset + len(features)} of {page.matched}"
        return _html_features(title, features, items_url, links)
    members = {"timeStamp": ogc.now_stamp(), "numberMatched": page.matched, "links": links}
    return Response(ogc.feature_collection(members, page), media_type=ogc.GEOJSON)


@router.get("/collections/{collection_id}/items/{feature_id}", summary="One feature (GeoJSON)",
            responses={200: {"content": {ogc.GEOJSON: {}, ogc.HTML: {}}}, 404: {"description": "no such feature"}})
def item(request: Request, viewer: ViewerDep, collection_id: str, feature_id: str) -> Response:
    layer = ogc.get_collection(collection_id, viewer)
    try:
        _check_f(request)
    except InvalidInput as exc:
        return _bad_request(exc)
    base, _ = _base(request)
    body = ogc.feature_json(request.app.state.engine, layer, feature_id, base, viewer)
    if _wants_html(request):
        doc = json.loads(body)
        rows = [{"property": k, "value": v} for k, v in doc["properties"].items()]
        rows.append({"property": "geometry", "value": doc["geometry"]})
        return _page(f"{layer.title} {feature_id}", _table(rows), doc["links"])
    return Response(body, media_type=ogc.GEOJSON)


# ---------------------------------------------------------------------------- queryables, schemas


def _schema_response(request: Request, doc: dict[str, Any]) -> Response:
    if _wants_html(request):
        rows = [{"property": name, "type": s.get("type", ""), "format": s.get("format", ""),
                 "role": s.get("x-ogc-role", ""), "values": ", ".join(map(str, s.get("enum", []))),
                 "description": s.get("description", "")} for name, s in doc["properties"].items()]
        return _page(doc["title"], f"<p>{escape(doc.get('description', ''))}</p>{_table(rows)}", [])
    return _json(doc, ogc.SCHEMA_JSON)


SCHEMA_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {ogc.SCHEMA_JSON: {}, ogc.HTML: {}}},
    400: {"description": "invalid f"}, 404: {"description": "no such collection"},
}


@router.get("/collections/{collection_id}/queryables", responses=SCHEMA_RESPONSES,
            summary="Queryable properties of a collection (JSON Schema, OGC API Features Part 3)")
def collection_queryables(request: Request, viewer: ViewerDep, collection_id: str) -> Response:
    return _collection_schema(request, viewer, collection_id, ogc.queryables)


@router.get("/collections/{collection_id}/schema", responses=SCHEMA_RESPONSES,
            summary="Schema of a collection's features (JSON Schema, OGC API Features Part 5)")
def collection_schema(request: Request, viewer: ViewerDep, collection_id: str) -> Response:
    return _collection_schema(request, viewer, collection_id, ogc.feature_schema)


def _collection_schema(request: Request, viewer, collection_id: str, build) -> Response:
    """A schema document of the collection (`build(layer, base, viewer)`), JSON or HTML."""
    layer = ogc.get_collection(collection_id, viewer)
    try:
        _check_f(request)
    except InvalidInput as exc:
        return _bad_request(exc)
    return _schema_response(request, build(layer, _base(request)[0], viewer))


@router.get("/collections/{collection_id}/schema.xsd",
            responses={200: {"content": {ogc.XML: {}}}, 404: {"description": "no such collection"}},
            summary="The same schema as a GML application schema (XSD), which GDAL reads for field types")
def collection_gml_schema(request: Request, viewer: ViewerDep, collection_id: str) -> Response:
    layer = ogc.get_collection(collection_id, viewer)
    return Response(ogc.gml_schema(layer, _base(request)[0], viewer), media_type=ogc.XML)
