"""OGC API – Features, Part 1 (Core + GeoJSON + HTML) over the layers of `geo_api.layers`.

The collections are the spatial layers declared in `layers.LAYERS`: their tables, property
expressions, joins and filters are reused as they are, so `/ogc/collections/roads/items` and
`/api/roads` show the same features. Pages are offset-paged (the OGC convention: `limit`,
default 10, at most 10,000; larger values are clamped, as Part 1 allows) with
`numberMatched` from a count of the same query. Each feature's GeoJSON is built in SQL and
the page is streamed from a server-side cursor: features are never parsed in Python.

Query parameters follow Part 1: `bbox` (CRS84, 4 or 6 numbers; features whose geometry
intersects it), `datetime` (an instant or an interval, open ends as `..`, on the layer's
date property named in its collection description), and the layer's own filters (the same
names and values as `/api/{layer}`) as property filters. Anything else is a 400, as the
standard asks.

Part 3 queryables (`/collections/{id}/queryables`: the filters and the date property, each
also a query parameter) and Part 5 schemas (`/collections/{id}/schema`, and the same as a
GML application schema, `schema.xsd`, for GDAL) are built from the catalogue's typed
properties.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, get_args
from xml.sax.saxutils import escape as xml_escape

from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, Engine, text

from geo_api import db, layers, policy
from geo_api.errors import InvalidInput, NotFound
from geo_api.layers import Layer
from geo_api.policy import Viewer

DEFAULT_LIMIT = 10
MAX_LIMIT = 10_000
STREAM_BATCH = 500

GEOJSON = "application/geo+json"
JSON = "application/json"
HTML = "text/html"
OPENAPI = "application/vnd.oai.openapi+json;version=3.1"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
TRS = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"

SCHEMA_JSON = "application/schema+json"
XML = "application/xml"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
REL_QUERYABLES = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
REL_SCHEMA = "http://www.opengis.net/def/rel/ogc/1.0/schema"

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    # Part 3: /queryables, each simple queryable usable as a query parameter of /items
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    # Part 5: /schema, with the id, primary-geometry and primary-instant roles
    "http://www.opengis.net/spec/ogcapi-features-5/1.0/conf/schemas",
    "http://www.opengis.net/spec/ogcapi-features-5/1.0/conf/core-roles-features",
]

# The spatial layers, in the order of layers.LAYERS.
COLLECTIONS: dict[str, Layer] = {layer.name: layer for layer in layers.LAYERS if layer.spatial}

TEMPORAL = [name for name, layer in COLLECTIONS.items() if layer.temporal]


def temporal_sql(layer: Layer) -> str | None:
    """SQL of the date property that `datetime` filters on (None: the layer has none)."""
    return layer.sql(layer.temporal) if layer.temporal else None


COMMON_PARAMS = ("limit", "offset", "bbox", "datetime", "f")


def readable(layer: Layer, viewer: Viewer) -> bool:
    """Whether `viewer` may read the collection at all (geo_api.policy: deny by default)."""
    return not viewer.anonymous or layer.anonymous is not None


def get_collection(collection_id: str, viewer: Viewer) -> Layer:
    """The collection, when `viewer` may read it (else 401, as geo_api.policy says)."""
    try:
        layer = COLLECTIONS[collection_id]
    except KeyError:
        raise NotFound(f"no collection {collection_id!r}; collections: {', '.join(COLLECTIONS)}") from None
    policy.rule(layer, viewer)
    return layer


# ---------------------------------------------------------------------------- documents


def link(href: str, rel: str, type_: str, title: str | None = None) -> dict[str, str]:
    out = {"href": href, "rel": rel, "type": type_}
    if title:
        out["title"] = title
    return out


def landing(base: str, api_root: str) -> dict[str, Any]:
    """The landing page; `base` is the absolute URL of /ogc, `api_root` of the service."""
    return {
        "title": "Border roads tracker – OGC API Features",
        "description": "Branch roads to Viet Nam's border markers, the markers, border-guard posts, "
                       "villages and ceremonies, as OGC API – Features collections (GeoJSON, CRS84).",
        "links": [
            link(base, "self", JSON, "this document"),
            link(f"{base}?f=html", "alternate", HTML, "this document as HTML"),
            link(f"{api_root}/openapi.json", "service-desc", OPENAPI, "the API definition"),
            link(f"{api_root}/docs", "service-doc", HTML, "the API documentation"),
            link(f"{base}/conformance", "conformance", JSON, "conformance classes"),
            link(f"{base}/collections", "data", JSON, "the collections"),
        ],
    }


def conformance() -> dict[str, list[str]]:
    return {"conformsTo": CONFORMANCE}


def _extent_sql(layer: Layer, viewer: Viewer) -> str:
    temporal = temporal_sql(layer) or "NULL::date"
    return f"""
        SELECT CAST(:name_{layer.table} AS text) AS name,
               ST_XMin(e) AS x1, ST_YMin(e) AS y1, ST_XMax(e) AS x2, ST_YMax(e) AS y2, d1, d2
        FROM (SELECT ST_Extent({layers.geometry_sql(layer, viewer)}) AS e, min({temporal}) AS d1, max({temporal}) AS d2
              FROM {layer.table} t {layer.joins}) x
    """


def extents(conn: Connection, names: Sequence[str], viewer: Viewer) -> dict[str, Any]:
    """Bounding box and date range of each named collection, in one statement."""
    sql = " UNION ALL ".join(_extent_sql(COLLECTIONS[n], viewer) for n in names)
    rows = conn.execute(text(sql), {f"name_{COLLECTIONS[n].table}": n for n in names}).all()
    return {r.name: r for r in rows}


def collection_doc(layer: Layer, extent: Any, base: str) -> dict[str, Any]:
    href = f"{base}/collections/{layer.name}"
    description = layer.description or layer.title
    filters = ", ".join(layer.filters)
    if filters:
        description += f" Property filters: {filters}."
    doc: dict[str, Any] = {
        "id": layer.name,
        "title": layer.title[0].upper() + layer.title[1:] + "s",
        "description": description,
        "itemType": "feature",
        "crs": [CRS84],
        "storageCrs": CRS84,
        "links": [
            link(href, "self", JSON, "this collection"),
            link(f"{href}?f=html", "alternate", HTML, "this collection as HTML"),
            link(f"{href}/items", "items", GEOJSON, f"{layer.title}s as GeoJSON"),
            link(f"{href}/items?f=html", "items", HTML, f"{layer.title}s as HTML"),
            *schema_links(href),
        ],
    }
    ext: dict[str, Any] = {}
    if extent is not None and extent.x1 is not None:
        ext["spatial"] = {"bbox": [[round(extent.x1, 7), round(extent.y1, 7),
                                    round(extent.x2, 7), round(extent.y2, 7)]], "crs": CRS84}
    if layer.temporal:
        doc["description"] += f" datetime filters on {layer.temporal}."
        interval = [f"{d.isoformat()}T00:00:00Z" if d else None
                    for d in ((extent.d1, extent.d2) if extent is not None else (None, None))]
        ext["temporal"] = {"interval": [interval], "trs": TRS}
    if ext:
        doc["extent"] = ext
    return doc


def collections(conn: Connection, base: str, viewer: Viewer) -> dict[str, Any]:
    ext = extents(conn, [n for n, layer in COLLECTIONS.items() if readable(layer, viewer)], viewer)
    return {
        "links": [
            link(f"{base}/collections", "self", JSON, "this document"),
            link(f"{base}/collections?f=html", "alternate", HTML, "this document as HTML"),
        ],
        "collections": [collection_doc(layer, ext.get(name), base) for name, layer in COLLECTIONS.items()
                        if readable(layer, viewer)],
    }


def collection(conn: Connection, layer: Layer, base: str, viewer: Viewer) -> dict[str, Any]:
    return collection_doc(layer, extents(conn, [layer.name], viewer).get(layer.name), base)


# ---------------------------------------------------------------------------- queryables, schemas
# Built from the catalogue's typed properties (layers.Prop), never from a list of their own.

# Catalogue type -> JSON Schema (money is whole VND: a 64-bit integer, never a float).
JSON_TYPES: dict[str, dict[str, str]] = {
    layers.STRING: {"type": "string"},
    layers.INTEGER: {"type": "integer"},
    layers.MONEY: {"type": "integer", "format": "int64"},
    layers.NUMBER: {"type": "number"},
    layers.BOOLEAN: {"type": "boolean"},
    layers.DATE: {"type": "string", "format": "date"},
    layers.ARRAY: {"type": "array"},
    layers.OBJECT: {"type": "object"},
}

# Catalogue type -> XML Schema type of a GML application schema (what GDAL reads, see
# `schema_links`); arrays of scalars repeat their element, other arrays are JSON text.
XSD_TYPES: dict[str, str] = {
    layers.STRING: "xs:string", layers.INTEGER: "xs:int", layers.MONEY: "xs:long",
    layers.NUMBER: "xs:double", layers.BOOLEAN: "xs:boolean", layers.DATE: "xs:date",
    layers.ARRAY: "xs:string", layers.OBJECT: "xs:string",
}
SIMPLE = (layers.STRING, layers.INTEGER, layers.MONEY, layers.NUMBER, layers.BOOLEAN, layers.DATE)


def schema_links(href: str) -> list[dict[str, str]]:
    """Links from a collection to its queryables and schemas.

    GDAL's OAPIF driver types its fields from a `describedby` link of the collection: a GML
    application schema (application/xml) if there is one, else a JSON Schema shaped like a
    GeoJSON feature (not Part 5's), whose integers it takes as 32-bit whatever their format
    (GDAL 3.6 to 3.12). So money needs the XSD (xs:long -> Integer64, xs:date -> Date).
    GDAL 3.6 matches the relation as "describedBy" only; relation types are case-insensitive
    (RFC 8288), so that spelling is the same relation for everyone else. QGIS 3.44+ reads the
    Part 5 schema (`REL_SCHEMA`)."""
    return [
        link(f"{href}/queryables", REL_QUERYABLES, SCHEMA_JSON, "queryable properties (JSON Schema)"),
        link(f"{href}/schema", REL_SCHEMA, SCHEMA_JSON, "schema of the features (JSON Schema)"),
        link(f"{href}/schema", "describedby", SCHEMA_JSON, "schema of the features (JSON Schema)"),
        link(f"{href}/schema.xsd", "describedBy", XML, "schema of the features (GML application schema)"),
    ]


def prop_schema(prop: layers.Prop) -> dict[str, Any]:
    """JSON Schema of one catalogue property."""
    out: dict[str, Any] = dict(JSON_TYPES[prop.type])
    if prop.type == layers.ARRAY and prop.items:
        out["items"] = dict(JSON_TYPES[prop.items])
    if prop.enum:
        out["enum"] = list(prop.enum)
    if prop.description:
        out["description"] = prop.description
    return out


def geometry_type(layer: Layer, viewer: Viewer) -> str | None:
    """GeoJSON type of the geometry `viewer` sees; None (any type) where the read policy
    shows another geometry (a road cut back near markers may come in several parts)."""
    rule = policy.rule(layer, viewer)
    return None if rule is not None and rule.geometry else layer.geometry_type


def _geometry_schema(layer: Layer, viewer: Viewer) -> dict[str, Any]:
    kind = geometry_type(layer, viewer) or "any"
    return {"x-ogc-role": "primary-geometry", "format": f"geometry-{kind.lower()}"}


def _schema_doc(layer: Layer, url: str, title: str, properties: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {"$schema": JSON_SCHEMA_DIALECT, "$id": url, "type": "object", "title": title}
    if layer.description:
        doc["description"] = layer.description
    doc["properties"] = properties
    return doc


def feature_schema(layer: Layer, base: str, viewer: Viewer) -> dict[str, Any]:
    """Part 5: the JSON Schema of a feature of the collection (id, geometry, properties)."""
    props: dict[str, Any] = {
        "id": {"x-ogc-role": "id", "type": "integer", "readOnly": True,
               "description": f"id of the {layer.title}: /items/{{id}}"},
        "geometry": _geometry_schema(layer, viewer),
    }
    for name, prop in layer.properties.items():
        props[name] = prop_schema(prop)
        if name == layer.temporal:
            props[name]["x-ogc-role"] = "primary-instant"
    for seq, schema in enumerate(props.values(), start=1):
        schema["x-ogc-propertySeq"] = seq
    url = f"{base}/collections/{layer.name}/schema"
    return _schema_doc(layer, url, f"{layer.title[0].upper()}{layer.title[1:]}s", props)


def filter_schema(layer: Layer, name: str, flt: layers.Filter) -> dict[str, Any]:
    """JSON Schema of a filter's value: its property's when it filters one, else its kind's."""
    prop = layer.properties.get(name)
    if prop is not None and prop.type in SIMPLE:
        out = prop_schema(prop)
    elif flt.many:
        out = {"type": "string", "enum": list(flt.kind)}
    elif flt.kind is bool:
        out = {"type": "boolean"}
    elif flt.kind is int:
        out = {"type": "integer"}
    elif get_args(flt.kind):  # Literal[...]
        out = {"type": "string", "enum": list(get_args(flt.kind))}
    else:
        out = {"type": "string"}
    if flt.description:
        out["description"] = flt.description
    return out


def temporal_param(layer: Layer) -> tuple[str, ...]:
    """The layer's date property as an /items query parameter (a Part 3 queryable)."""
    return (layer.temporal,) if layer.temporal and layer.temporal not in layer.filters else ()


def queryables(layer: Layer, base: str, viewer: Viewer) -> dict[str, Any]:
    """Part 3: what /items filters on. Each simple queryable is a query parameter of the
    same name: the layer's filters and its date property; the geometry is queried by bbox."""
    props = {name: filter_schema(layer, name, flt) for name, flt in layer.filters.items()}
    for name in temporal_param(layer):
        props[name] = {**prop_schema(layer.properties[name]), "x-ogc-role": "primary-instant"}
        props[name]["description"] = f"{name}: one day, e.g. 2022-11-16 (intervals: datetime)"
    props["geometry"] = {**_geometry_schema(layer, viewer), "description": "queried with bbox"}
    doc = _schema_doc(layer, f"{base}/collections/{layer.name}/queryables",
                      f"Queryables of {layer.title}s", props)
    doc["additionalProperties"] = False
    return doc


def gml_schema(layer: Layer, base: str, viewer: Viewer) -> str:
    """The same schema as a GML 3.2 application schema (XSD), for GDAL: one feature type,
    its geometry and its properties in catalogue order."""
    name, ns = layer.name, f"{base}/collections/{layer.name}"
    geom = geometry_type(layer, viewer) or "Geometry"
    rows = [f'<xs:element name="geometry" type="gml:{geom}PropertyType" minOccurs="0"/>']
    for prop_name, prop in layer.properties.items():
        scalar_list = prop.type == layers.ARRAY and prop.items in SIMPLE
        xsd = XSD_TYPES[prop.items if scalar_list else prop.type]
        many = ' maxOccurs="unbounded"' if scalar_list else ""
        doc = (f"<xs:annotation><xs:documentation>{xml_escape(prop.description)}</xs:documentation>"
               f"</xs:annotation>" if prop.description else "")
        rows.append(f'<xs:element name="{prop_name}" type="{xsd}" minOccurs="0"{many}>{doc}</xs:element>'
                    if doc else f'<xs:element name="{prop_name}" type="{xsd}" minOccurs="0"{many}/>')
    body = "\n        ".join(rows)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:gml="http://www.opengis.net/gml/3.2"
    xmlns:t="{xml_escape(ns)}" targetNamespace="{xml_escape(ns)}"
    elementFormDefault="qualified" version="1.0">
  <xs:import namespace="http://www.opengis.net/gml/3.2"
      schemaLocation="http://schemas.opengis.net/gml/3.2.1/gml.xsd"/>
  <xs:element name="{name}" type="t:{name}Type" substitutionGroup="gml:AbstractFeature"/>
  <xs:complexType name="{name}Type">
    <xs:complexContent>
      <xs:extension base="gml:AbstractFeatureType">
        <xs:sequence>
        {body}
        </xs:sequence>
      </xs:extension>
    </xs:complexContent>
  </xs:complexType>
</xs:schema>
"""


# ---------------------------------------------------------------------------- items query


@dataclass(frozen=True)
class ItemsQuery:
    limit: int
    offset: int
    bbox: tuple[float, float, float, float] | None
    dates: tuple[dt.date | None, dt.date | None] | None
    filters: BaseModel  # the layer's /api query model, holding the property filters
    viewer: Viewer


def _int(name: str, value: str, minimum: int) -> int:
    try:
        n = int(value)
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number, got {value!r}", field=name) from None
    if n < minimum:
        raise InvalidInput(f"{name} must be at least {minimum}, got {n}", field=name)
    return n


def parse_bbox(value: str) -> tuple[float, float, float, float]:
    """4 numbers (minLon,minLat,maxLon,maxLat) or 6 (with heights, which are ignored)."""
    parts = value.split(",")
    if len(parts) == 6:
        parts = [parts[0], parts[1], parts[3], parts[4]]
    try:
        return layers.parse_bbox(",".join(parts))
    except ValueError as exc:
        raise InvalidInput(f"bbox: {exc}", field="bbox") from None


def _date_bound(text_: str, side: str) -> dt.date | None:
    if text_ in ("", ".."):
        return None
    try:
        if "T" in text_ or "t" in text_:
            when = dt.datetime.fromisoformat(text_.replace("z", "Z"))
            if when.tzinfo is not None:
                when = when.astimezone(dt.UTC)
            return when.date()
        return dt.date.fromisoformat(text_)
    except ValueError:
        raise InvalidInput(
            f"datetime: {side} {text_!r} is not an RFC 3339 date or date-time, e.g. 2022-11-16 or "
            f"2022-11-16T08:00:00Z", field="datetime",
        ) from None


def parse_datetime(value: str) -> tuple[dt.date | None, dt.date | None]:
    """An instant or a closed/half-open interval as (first day, last day), inclusive.

    The temporal properties are dates, so a date-time counts as its (UTC) day."""
    if "/" in value:
        start_text, _, end_text = value.partition("/")
        if "/" in end_text:
            raise InvalidInput("datetime: an interval has exactly one '/'", field="datetime")
        start, end = _date_bound(start_text, "start"), _date_bound(end_text, "end")
        if start is None and end is None:
            raise InvalidInput("datetime: an interval needs at least one bound ('../..' is not one)",
                               field="datetime")
        if start is not None and end is not None and end < start:
            raise InvalidInput(f"datetime: the interval ends ({end}) before it starts ({start})",
                               field="datetime")
        return start, end
    if value in ("", ".."):
        raise InvalidInput("datetime: give an instant or an interval, e.g. 2022-01-01/2022-12-31",
                           field="datetime")
    day = _date_bound(value, "instant")
    return day, day


def _validation_message(exc: ValidationError) -> str:
    reasons = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "query"
        reasons.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(reasons)


def parse_items_query(layer: Layer, params: Sequence[tuple[str, str]], viewer: Viewer) -> ItemsQuery:
    """Validate the query string of /collections/{id}/items; raises InvalidInput."""
    allowed = (*COMMON_PARAMS, *layer.filters, *temporal_param(layer))
    seen: dict[str, str] = {}
    for key, value in params:
        if key not in allowed:
            raise InvalidInput(
                f"unknown query parameter {key!r}; collection {layer.name} accepts: {', '.join(allowed)}",
                field=key,
            )
        if key in seen:
            raise InvalidInput(f"query parameter {key!r} is given more than once", field=key)
        seen[key] = value
    if seen.get("f", "json") not in ("json", "geojson", "html"):
        raise InvalidInput(f"f must be json, geojson or html, got {seen['f']!r}", field="f")
    limit = min(_int("limit", seen["limit"], 1), MAX_LIMIT) if "limit" in seen else DEFAULT_LIMIT
    offset = _int("offset", seen["offset"], 0) if "offset" in seen else 0
    bbox = parse_bbox(seen["bbox"]) if "bbox" in seen else None
    dates = None
    if "datetime" in seen:
        if not layer.temporal:
            raise InvalidInput(
                f"datetime: collection {layer.name} has no dates; collections with dates: "
                f"{', '.join(TEMPORAL)}", field="datetime",
            )
        dates = parse_datetime(seen["datetime"])
    for name in temporal_param(layer):  # the date queryable: that day, within any datetime
        if name in seen:
            try:
                day = dt.date.fromisoformat(seen[name])
            except ValueError:
                raise InvalidInput(f"{name} must be a date, e.g. 2022-11-16, got {seen[name]!r}",
                                   field=name) from None
            start, end = dates or (None, None)
            dates = (max(day, start or day), min(day, end or day))
    try:
        filters = layers.query_model(layer).model_validate(
            {k: v for k, v in seen.items() if k in layer.filters})
    except ValidationError as exc:
        raise InvalidInput(_validation_message(exc)) from None
    return ItemsQuery(limit, offset, bbox, dates, filters, viewer)


def _matching(layer: Layer, q: ItemsQuery) -> tuple[str, dict[str, Any]]:
    extra: list[str] = []
    params: dict[str, Any] = {}
    if q.bbox is not None:
        extra.append(layers.bbox_condition(layer, q.viewer, "ST_MakeEnvelope(:bx1, :by1, :bx2, :by2, 4326)",
                                           "ST_Intersects"))
        params.update(zip(("bx1", "by1", "bx2", "by2"), q.bbox))
    if q.dates is not None:
        column = temporal_sql(layer)
        start, end = q.dates
        if start is not None:
            extra.append(f"{column} >= :d_start")
            params["d_start"] = start
        if end is not None:
            extra.append(f"{column} <= :d_end")
            params["d_end"] = end
    sql, bound = layers.matching(layer, q.filters, q.viewer, tuple(extra))
    return sql, {**bound, **params}


# numberMatched of recent queries, by (SQL, bound values): (snapshot, count). See `count`.
COUNT_CACHE_SIZE = 1024
_counts: OrderedDict[tuple, tuple[str, int]] = OrderedDict()
_counts_lock = threading.Lock()


def _known_count(sql: str, params: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
    key = db.statement_key(sql, params)
    with _counts_lock:
        known = _counts.get(key)
    return key, {"known_snap": known[0] if known else None, "known_count": known[1] if known else None}


def _remember_count(key: tuple, snap: str, writing: bool, matched: int) -> None:
    if writing:  # a transaction's own uncommitted rows are not everyone's
        return
    with _counts_lock:
        _counts[key] = (snap, matched)
        _counts.move_to_end(key)
        while len(_counts) > COUNT_CACHE_SIZE:
            _counts.popitem(last=False)


SNAPSHOT = db.SNAPSHOT


def _counted(sql: str) -> str:
    """SQL columns snap, writing, matched (FROM `SNAPSHOT`): the count of `sql`'s rows, or
    the known count when the snapshot is the one it was taken in (see `count`)."""
    return f"""x.snap, x.writing,
               CASE WHEN x.snap = CAST(:known_snap AS text) AND NOT x.writing
                    THEN CAST(:known_count AS bigint)
                    ELSE (SELECT count(*) FROM ({sql}) m) END AS matched"""


def count(conn: Connection, layer: Layer, q: ItemsQuery) -> int:
    """numberMatched, exact. Counting a large collection costs far more than a page of it
    (all 300,000 markers vs 10), so a count is kept with the database snapshot it was taken
    in (``pg_current_snapshot()``: the next transaction id and those in progress) and reused
    while a read-only transaction sees the very same snapshot: no transaction has started
    writing since, and none has committed, so the same rows are visible and the count is
    the same. Any write anywhere in the database moves the snapshot on and the next request
    counts again, in the same statement (the count runs only when the snapshot differs)."""
    sql, params = _matching(layer, q)
    key, known = _known_count(sql, params)
    snap, writing, matched = conn.execute(text(f"SELECT {_counted(sql)} FROM {SNAPSHOT}"), {**params, **known}).one()
    _remember_count(key, snap, writing, matched)
    return matched


@dataclass(frozen=True)
class Page:
    matched: int
    returned: int
    features: str  # the page's Features as JSON text, comma-separated (no brackets)


def page(engine: Engine, layer: Layer, q: ItemsQuery) -> Page:
    """numberMatched and the page's features in one statement (one round trip, one
    snapshot) on the read pool; each Feature's JSON is built by PostgreSQL and passed on
    as text, never parsed here."""
    sql, params = _matching(layer, q)
    key, known = _known_count(sql, params)
    statement = f"""
        WITH page AS (
            SELECT {layers.feature_json(layer)}::text AS f, p._id
            FROM ({sql} ORDER BY t.id LIMIT :limit OFFSET :offset) p
        )
        SELECT {_counted(sql)},
               (SELECT count(*) FROM page) AS returned,
               (SELECT COALESCE(string_agg(f, ',' ORDER BY _id), '') FROM page) AS features
        FROM {SNAPSHOT}
    """
    snap, writing, matched, returned, features = db.read_pool(engine).fetchone(
        db.psycopg_sql(statement), {**params, **known, "limit": q.limit, "offset": q.offset})
    _remember_count(key, snap, writing, matched)
    return Page(matched, returned, features)


def feature_collection(members: dict[str, Any], page_: Page) -> bytes:
    """The FeatureCollection document: `members`, the features, numberReturned."""
    head = json.dumps({"type": "FeatureCollection", **members}, ensure_ascii=False)[:-1]
    return f'{head}, "features": [{page_.features}], "numberReturned": {page_.returned}}}'.encode()


def page_sql(layer: Layer, q: ItemsQuery) -> tuple[str, dict[str, Any]]:
    """SQL yielding one Feature (JSON text) per row of the requested page, in id order."""
    sql, params = _matching(layer, q)
    page = f"SELECT {layers.feature_json(layer)}::text FROM ({sql} ORDER BY t.id LIMIT :limit OFFSET :offset) p " \
           f"ORDER BY p._id"
    return page, {**params, "limit": q.limit, "offset": q.offset}


def page_links(items_url: str, params: Sequence[tuple[str, str]], q: ItemsQuery,
               matched: int) -> list[dict[str, str]]:
    """self / alternate / next / prev / collection links of one page."""
    from urllib.parse import urlencode

    kept = [(k, v) for k, v in params if k not in ("offset", "f")]

    def href(offset: int, fmt: str | None = None) -> str:
        query = kept + ([("offset", str(offset))] if offset else []) + ([("f", fmt)] if fmt else [])
        return f"{items_url}?{urlencode(query)}" if query else items_url

    out = [
        link(href(q.offset), "self", GEOJSON, "this page"),
        link(href(q.offset, "html"), "alternate", HTML, "this page as HTML"),
    ]
    if "limit" not in dict(kept):  # next/prev must keep the page size
        kept.append(("limit", str(q.limit)))
    if q.offset + q.limit < matched:
        out.append(link(href(q.offset + q.limit), "next", GEOJSON, "next page"))
    if q.offset > 0:
        out.append(link(href(max(0, q.offset - q.limit)), "prev", GEOJSON, "previous page"))
    out.append(link(items_url.rsplit("/items", 1)[0], "collection", JSON, "the collection"))
    return out


def now_stamp() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def stream_feature_collection(engine: Engine, sql: str, params: dict[str, Any],
                              members: dict[str, Any]) -> Iterator[bytes]:
    """A FeatureCollection written as it is read: `members` first, then the features from a
    server-side cursor (each row one Feature as JSON text), then `numberReturned`."""
    head = json.dumps({"type": "FeatureCollection", **members}, ensure_ascii=False)[:-1]
    yield (head + ', "features": [').encode()
    returned = 0
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=STREAM_BATCH).execute(
            text(sql), params)
        for batch in result.scalars().partitions():
            chunk = ",".join(batch)
            yield ((", " if returned else "") + chunk).encode()
            returned += len(batch)
    yield f'], "numberReturned": {returned}}}'.encode()


def feature_links(layer: Layer, feature_id: str, base: str) -> list[dict[str, str]]:
    href = f"{base}/collections/{layer.name}"
    return [
        link(f"{href}/items/{feature_id}", "self", GEOJSON, f"this {layer.title}"),
        link(f"{href}/items/{feature_id}?f=html", "alternate", HTML, f"this {layer.title} as HTML"),
        link(href, "collection", JSON, "the collection"),
    ]


def _feature_id(layer: Layer, feature_id: str) -> int:
    if not feature_id.isdigit() or not 0 < int(feature_id) < 2**31:
        raise NotFound(f"{layer.title} {feature_id!r} not found: feature ids are whole numbers")
    return int(feature_id)


def feature(conn: Connection, layer: Layer, feature_id: str, base: str, viewer: Viewer) -> dict[str, Any]:
    """One feature with its self and collection links; ids are the layer's integer ids."""
    doc = json.loads(layers.item(conn, layer, _feature_id(layer, feature_id), viewer))
    doc["links"] = feature_links(layer, feature_id, base)
    return doc


def feature_json(engine: Engine, layer: Layer, feature_id: str, base: str, viewer: Viewer) -> bytes:
    """`feature` as JSON bytes, read on the read pool; the Feature's JSON text from PostgreSQL
    gets its links appended without being parsed."""
    row = db.read_pool(engine).fetchone(db.psycopg_sql(layers.item_sql(layer, viewer)),
                                        {"id": _feature_id(layer, feature_id)})
    if row is None:
        raise NotFound(f"{layer.title} {feature_id} not found")
    links = json.dumps(feature_links(layer, feature_id, base), ensure_ascii=False)
    return f'{row[0][:-1]}, "links": {links}}}'.encode()
