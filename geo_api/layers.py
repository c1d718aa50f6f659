"""Read access to every resource, built in SQL.

Each resource is a `Layer`: a table, the SQL expressions of its properties and geometry,
and the filters users may apply. One builder turns a layer plus a validated query into a
single SQL statement that returns the finished JSON document (a GeoJSON
FeatureCollection, or a plain page of items for tables with no geometry), so features
are never round-tripped through Python objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator
from sqlalchemy import Connection, text

from geo_api import policy
from geo_api.errors import NotFound
from geo_api.policy import Viewer
from geo_api.settings import get_settings
from geo_api.vocabulary import (
    COUNTRIES, DONOR_KINDS, FUNDING_KINDS, MARKER_ACCESS, MARKER_KINDS, NEIGHBOURS, ROAD_STATUSES,
)

COORD_DECIMALS = 7  # about 1 cm

# Field types, as JSON Schema names them; MONEY is whole VND that needs 64 bits
# (`integer` with format int64), so GIS clients never squeeze it into 32.
STRING, INTEGER, MONEY, NUMBER, BOOLEAN, DATE, ARRAY, OBJECT = (
    "string", "integer", "int64", "number", "boolean", "date", "array", "object")
FIELD_TYPES = (STRING, INTEGER, MONEY, NUMBER, BOOLEAN, DATE, ARRAY, OBJECT)


@dataclass(frozen=True)
class Prop:
    """A property of a layer: its SQL expression (over the layer's table `t` and joins), its
    type, the allowed values of an enum, the type of an array's items, and a description."""

    sql: str
    type: str = STRING
    enum: tuple[str, ...] | None = None
    items: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        assert self.type in FIELD_TYPES, self.type


@dataclass(frozen=True)
class Anonymous:
    """What a caller who is not signed in may see of a layer (the read policy, see
    geo_api.policy): another `geometry` expression (e.g. one kept clear of the markers),
    coordinates snapped to `snap_decimals` (3 ≈ 100 m), `hidden` properties given as null."""

    geometry: str | None = None
    snap_decimals: int | None = None
    hidden: frozenset[str] = frozenset()


PUBLIC = Anonymous()


@dataclass(frozen=True)
class Tiles:
    """How a layer is served as Mapbox Vector Tiles (geo_api.domain.tiles): the tile
    attributes (tile name -> catalogue property), which of the layer's filters tiles take,
    the zoom below which features are gathered into grid cells with the most common
    `category`, a lighter FROM (alias t) than the layer's joins when the attributes need
    less, and the indexed geometry columns its geometry is built from (a COALESCE of two)."""

    title: str
    attributes: dict[str, str]
    filters: tuple[str, ...] = ()
    aggregate_below: int = 0
    category: str | None = None
    source: str | None = None
    indexed: tuple[str, ...] = ()


def geometry_sql(layer: "Layer", viewer: Viewer) -> str | None:
    """The layer's geometry expression as `viewer` may see it (geo_api.policy)."""
    return policy.geometry_sql(layer, viewer)


def opaque(condition: str) -> str:
    """SQL: `condition`, hidden from the planner's selectivity estimate. PostgreSQL has no
    statistics for a snapped geometry and guesses that almost no row passes a test on it
    (3 rows where 28,000 do), then joins the posts by a nested loop over all of them: 25 s
    instead of 0.1 s for one page of 300,000 markers. As an opaque expression it is taken
    to keep half the rows the index found, which leads to sound plans."""
    return f"(CASE WHEN {condition} THEN true ELSE false END)"


@dataclass(frozen=True)
class Filter:
    """A query parameter: `sql` is a condition on bound value `:v`, `kind` its type."""

    sql: str
    kind: Any = str
    description: str = ""
    many: bool = False  # comma-separated list of values, matched with = ANY


@dataclass(frozen=True)
class Layer:
    """One layer of the catalogue: everything every output needs to know about it.

    - `properties`: typed fields (REST, OGC items, queryables and schemas, exports);
    - `geometry` / `geometry_type`: the SQL expression and its GeoJSON type (None: a table);
    - `filters`: query parameters (REST, OGC property filters, OpenAPI);
    - `temporal`: the date property OGC `datetime` filters on;
    - `anonymous`: the read rule for callers who are not signed in; None refuses them
      the layer altogether (deny by default);
    - `owner_post`: SQL giving the post responsible for row `:id` (post accounts may write
      only their own post's rows; None: not a post's row);
    - `versioned`: rows carry a version (ETag on GET, If-Match on updates);
    - `exchange`: columns that exports add, so a file can be imported into another database;
    - `tiles`: how the layer is served as vector tiles (None: it is not).
    """

    name: str
    table: str
    title: str
    properties: dict[str, Prop]
    geometry: str | None = "t.geom"
    geometry_type: str | None = "Point"
    joins: str = ""
    filters: dict[str, Filter] = field(default_factory=dict)
    description: str = ""
    temporal: str | None = None
    anonymous: Anonymous | None = PUBLIC
    owner_post: str | None = None
    versioned: bool = False
    exchange: dict[str, Prop] = field(default_factory=dict)
    tiles: Tiles | None = None

    @property
    def spatial(self) -> bool:
        return self.geometry is not None

    def sql(self, prop: str) -> str:
        return self.properties[prop].sql


class PageQuery(BaseModel):
    """Paging and bbox, common to every list endpoint; unknown parameters are refused."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(
        default=100, ge=1, description="page size (at most TRACKER_MAX_PAGE_SIZE, 1000 by default)"
    )
    after: int | None = Field(default=None, ge=0, le=2**63 - 1,
                              description="keyset cursor: return ids greater than this")

    @field_validator("limit")
    @classmethod
    def _cap(cls, v: int) -> int:
        cap = get_settings().api.max_page_size
        if v > cap:
            raise ValueError(f"limit must be at most {cap}")
        return v


class SpatialPageQuery(PageQuery):
    bbox: str | None = Field(
        default=None,
        description="minLon,minLat,maxLon,maxLat in EPSG:4326, e.g. 106.3,22.2,106.8,22.6",
    )

    @field_validator("bbox")
    @classmethod
    def _bbox(cls, v: str | None) -> str | None:
        if v is not None:
            parse_bbox(v)
        return v


def parse_bbox(value: str) -> tuple[float, float, float, float]:
    parts = value.split(",")
    if len(parts) != 4:
        raise ValueError("bbox needs four comma-separated numbers: minLon,minLat,maxLon,maxLat")
    try:
        x1, y1, x2, y2 = (float(p) for p in parts)
    except ValueError:
        raise ValueError(f"bbox values must be numbers, got {value!r}") from None
    if not (-180 <= x1 <= 180 and -180 <= x2 <= 180):
        raise ValueError("bbox longitudes must be between -180 and 180")
    if not (-90 <= y1 <= 90 and -90 <= y2 <= 90):
        raise ValueError("bbox latitudes must be between -90 and 90")
    if x1 > x2 or y1 > y2:
        raise ValueError("bbox minimum must not exceed maximum (minLon,minLat,maxLon,maxLat)")
    return x1, y1, x2, y2


def many_validator(name: str, allowed: tuple[str, ...]):
    """A pydantic validator for a comma-separated list of allowed values (blanks dropped;
    the value comes back normalised, e.g. "a,b")."""
    def check(cls, v):
        if v is None:
            return v
        values = [s.strip() for s in v.split(",") if s.strip()]
        bad = [s for s in values if s not in allowed]
        if bad or not values:
            raise ValueError(f"unknown {name} {', '.join(map(repr, bad)) or '(empty)'}; "
                             f"expected one or more of: {', '.join(allowed)}")
        return ",".join(values)
    return field_validator(name)(check)


_query_models: dict[int, tuple[Layer, type[PageQuery]]] = {}


def query_model(layer: Layer) -> type[PageQuery]:
    """The pydantic model of a layer's query parameters (paging, bbox, its filters); made
    once per layer (building a pydantic model costs about a millisecond)."""
    made = _query_models.get(id(layer))
    if made is None or made[0] is not layer:
        made = _query_models[id(layer)] = (layer, _make_query_model(layer))
    return made[1]


def _make_query_model(layer: Layer) -> type[PageQuery]:
    fields: dict[str, Any] = {}
    validators: dict[str, Any] = {}
    for name, flt in layer.filters.items():
        if flt.many:
            fields[name] = (str | None, Field(default=None, description=flt.description))
            validators[f"_check_{name}"] = many_validator(name, flt.kind)
        else:
            bound = {"le": 2**31 - 1} if flt.kind is int else {}  # int filters are int4 columns
            fields[name] = (flt.kind | None, Field(default=None, description=flt.description, **bound))
    base = SpatialPageQuery if layer.spatial else PageQuery
    return create_model(
        f"{layer.name.title().replace('-', '')}Query", __base__=base, __validators__=validators, **fields
    )


def _props_sql(layer: Layer, viewer: Viewer) -> str:
    hidden = policy.hidden(layer, viewer)
    return "json_build_object(" + ", ".join(
        f"'{k}', {'NULL' if k in hidden else v.sql}" for k, v in layer.properties.items()) + ")"


def _select(layer: Layer, viewer: Viewer) -> str:
    geom = f"{geometry_sql(layer, viewer)} AS _geom, " if layer.spatial else ""
    return f"SELECT t.id AS _id, {geom}{_props_sql(layer, viewer)} AS _props FROM {layer.table} t {layer.joins}"


def _feature_sql(layer: Layer, row: str = "p") -> str:
    if layer.spatial:
        return (
            f"json_build_object('type', 'Feature', 'id', {row}._id, "
            f"'geometry', ST_AsGeoJSON({row}._geom, {COORD_DECIMALS})::json, "
            f"'properties', {row}._props)"
        )
    return f"(json_build_object('id', {row}._id)::jsonb || {row}._props::jsonb)::json"


def bbox_condition(layer: Layer, viewer: Viewer, env: str, test: str = "&&") -> str:
    """SQL: the geometry `viewer` sees meets envelope `env` (`test`: && or ST_Intersects).
    When that is not the stored geometry, the stored one (widened by the snapping margin)
    narrows the rows down by its index first."""
    seen = geometry_sql(layer, viewer)
    cond = f"{seen} && {env}" if test == "&&" else f"{test}({seen}, {env})"
    if seen == layer.geometry:
        return cond
    return f"{layer.geometry} && ST_Expand({env}, {policy.snap_margin(layer, viewer)}) AND {opaque(cond)}"


def _conditions(layer: Layer, query: PageQuery, viewer: Viewer) -> tuple[list[str], dict[str, Any]]:
    conds: list[str] = []
    params: dict[str, Any] = {}
    for i, (name, flt) in enumerate(layer.filters.items()):
        value = getattr(query, name)
        if value is None:
            continue
        key = f"f{i}"
        if flt.many:
            value = [s.strip() for s in value.split(",") if s.strip()]
        conds.append("(" + flt.sql.replace(":v", f":{key}") + ")")
        params[key] = value
    bbox = getattr(query, "bbox", None)
    if bbox:
        x1, y1, x2, y2 = parse_bbox(bbox)
        conds.append(bbox_condition(layer, viewer, "ST_MakeEnvelope(:x1, :y1, :x2, :y2, 4326)"))
        params.update(x1=x1, y1=y1, x2=x2, y2=y2)
    if query.after is not None:
        conds.append("t.id > :after")
        params["after"] = query.after
    return conds, params


def collection(conn: Connection, layer: Layer, query: PageQuery, next_href: str, viewer: Viewer) -> str:
    """One page of a layer as JSON text; `next_href` gets the last id appended."""
    conds, params = _conditions(layer, query, viewer)
    where = f"WHERE {' AND '.join(conds)}" if conds else ""
    key = "features" if layer.spatial else "items"
    head = "'type', 'FeatureCollection', " if layer.spatial else ""
    sql = f"""
        WITH p AS ({_select(layer, viewer)} {where} ORDER BY t.id LIMIT :limit)
        SELECT json_build_object({head}
            '{key}', COALESCE(json_agg({_feature_sql(layer)} ORDER BY p._id), '[]'::json),
            'numberReturned', count(*),
            'links', CASE WHEN count(*) = :limit
                THEN json_build_array(json_build_object(
                    'rel', 'next', 'type', CAST(:media AS text), 'href', CAST(:next AS text) || max(p._id)))
                ELSE '[]'::json END
        )::text FROM p
    """
    params.update(limit=query.limit, next=next_href,
                  media="application/geo+json" if layer.spatial else "application/json")
    return conn.execute(text(sql), params).scalar_one()


def item_sql(layer: Layer, viewer: Viewer) -> str:
    """SQL: the JSON text of the item with id `:id` (no row when there is none)."""
    return f"SELECT {_feature_sql(layer)}::text FROM ({_select(layer, viewer)} WHERE t.id = :id) p"


def item(conn: Connection, layer: Layer, item_id: int, viewer: Viewer) -> str:
    found = conn.execute(text(item_sql(layer, viewer)), {"id": item_id}).scalar_one_or_none()
    if found is None:
        raise NotFound(f"{layer.title} {item_id} not found")
    return found


def matching(layer: Layer, query: PageQuery, viewer: Viewer,
             extra: tuple[str, ...] = ()) -> tuple[str, dict[str, Any]]:
    """SELECT `_id`, `_geom`, `_props` of the rows matching `query` (its filters, bbox and
    cursor) and the `extra` SQL conditions, unordered and unpaged, with its bound parameters:
    for callers that page by offset, count matches, stream or export (OGC API, files)."""
    conds, params = _conditions(layer, query, viewer)
    conds += [f"({c})" for c in extra]
    where = f" WHERE {' AND '.join(conds)}" if conds else ""
    return _select(layer, viewer) + where, params


def feature_json(layer: Layer, row: str = "p") -> str:
    """SQL: the Feature (or plain item) of a `matching` row aliased `row`."""
    return _feature_sql(layer, row)


def require_exists(conn: Connection, layer: Layer, item_id: int) -> None:
    if conn.execute(text(f"SELECT 1 FROM {layer.table} WHERE id = :id"), {"id": item_id}).first() is None:
        raise NotFound(f"{layer.title} {item_id} not found")


def _text(column: str, description: str) -> Filter:
    return Filter(f"{column} = :v", str, description)


def _id(column: str, description: str) -> Filter:
    return Filter(f"{column} = :v", int, description)


def _enum(column: str, values: tuple[str, ...], description: str) -> Filter:
    return Filter(f"{column}::text = :v", Literal[values], description)  # type: ignore[valid-type]


def owned_by_post(table: str) -> str:
    """SQL: the post responsible for row :id of a table with a post_id (locked, so the row
    cannot move to another post meanwhile)."""
    return f"SELECT post_id FROM {table} WHERE id = :id FOR UPDATE"


S, I, M, N, B, D = STRING, INTEGER, MONEY, NUMBER, BOOLEAN, DATE
GENERATED = Prop("t.is_generated", B, description="generated demo data, not a real record")
PROVINCE = _text("t.province", "province, e.g. Lạng Sơn")

SEGMENTS = Layer(
    name="border-segments", table="border_segment", title="border segment",
    geometry_type="MultiLineString",
    description="Viet Nam's land borders (VN-CN, VN-LA, VN-KH) as lines, from OpenStreetMap.",
    properties={
        "code": Prop("t.code"), "neighbour_iso3": Prop("t.neighbour_iso3", enum=NEIGHBOURS),
        "name_vi": Prop("t.name_vi"), "name_en": Prop("t.name_en"),
        "length_km": Prop("t.length_km", N, description="length along the line, km"),
    },
    filters={"code": _text("t.code", "VN-CN, VN-LA or VN-KH")},
)

MARKERS = Layer(
    name="markers", table="marker", title="marker",
    description="National boundary markers (cột mốc quốc giới); demo positions are generated "
                "along the border line, not official coordinates.",
    joins="JOIN border_segment s ON s.id = t.segment_id LEFT JOIN border_post bp ON bp.id = t.post_id",
    properties={
        "number": Prop("t.number", description="marker number, e.g. 1033 or 1033/1"),
        "kind": Prop("t.kind", enum=MARKER_KINDS), "segment": Prop("s.code"),
        "chainage_km": Prop("t.chainage_km", N, description="distance along the border segment, km"),
        "province": Prop("t.province"), "district": Prop("t.district"), "commune": Prop("t.commune"),
        "post_id": Prop("t.post_id", I), "post_name": Prop("bp.name"),
        "access": Prop("t.access", enum=MARKER_ACCESS, description="how the marker is reached today"),
        "terrain_difficulty": Prop("t.terrain_difficulty", I, description="1 (easy) to 5 (hardest)"),
        "requested_by_post": Prop("t.requested_by_post", B), "last_inspected_on": Prop("t.last_inspected_on", D),
        "is_generated": GENERATED,
    },
    filters={
        "segment": _text("s.code", "border segment code, e.g. VN-CN"),
        "province": PROVINCE,
        "post_id": _id("t.post_id", "responsible post"),
        "number": _text("t.number", "marker number, e.g. 1033 or 1033/1"),
        "kind": _enum("t.kind", MARKER_KINDS, "main, sub or paired"),
        "access": Filter("t.access::text = ANY(:v)", MARKER_ACCESS,
                         "how the marker is reached today: one or more, comma-separated", many=True),
        "requested_by_post": Filter("t.requested_by_post = :v", bool, "the post has asked for a road"),
    },
    temporal="last_inspected_on",
    anonymous=Anonymous(snap_decimals=3, hidden=frozenset({"chainage_km"})),
    owner_post=owned_by_post("marker"), versioned=True,
    exchange={"post_code": Prop("bp.code"), "notes": Prop("t.notes")},
    tiles=Tiles("Boundary markers", {"number": "number", "kind": "kind", "access": "access", "province": "province",
                                     "post_id": "post_id", "post": "post_name"},
                ("province", "post_id", "access"), aggregate_below=11, category="access",
                source="marker t LEFT JOIN border_post bp ON bp.id = t.post_id"),
)

POSTS = Layer(
    name="posts", table="border_post", title="post",
    description="Border-guard posts (đồn biên phòng).",
    joins="LEFT JOIN border_segment s ON s.id = t.segment_id",
    properties={
        "code": Prop("t.code"), "name": Prop("t.name"), "province": Prop("t.province"),
        "district": Prop("t.district"), "commune": Prop("t.commune"), "segment": Prop("s.code"),
        "markers": Prop("(SELECT count(*) FROM marker m WHERE m.post_id = t.id)", I,
                        description="markers in the post's care"),
        "roads": Prop("(SELECT count(*) FROM branch_road r WHERE r.post_id = t.id)", I,
                      description="branch roads of the post"),
        "is_generated": GENERATED,
    },
    filters={
        "province": PROVINCE,
        "segment": _text("s.code", "border segment code"),
        "code": _text("t.code", "post code"),
    },
    versioned=True,
    exchange={"notes": Prop("t.notes")},
    tiles=Tiles("Border-guard posts", {"code": "code", "name": "name", "province": "province"}, ("province",),
                aggregate_below=7, source="border_post t"),
)

ROADS = Layer(
    name="roads", table="branch_road", title="branch road",
    description="Concrete branch roads (đường nhánh) to border markers; the as-built line when "
                "recorded, else the planned line.",
    geometry="COALESCE(t.as_built_geom, t.geom)", geometry_type="LineString",
    joins="JOIN border_post bp ON bp.id = t.post_id",
    properties={
        "code": Prop("t.code"), "name": Prop("t.name"), "status": Prop("t.status", enum=ROAD_STATUSES),
        "post_id": Prop("t.post_id", I), "post_name": Prop("bp.name"), "province": Prop("t.province"),
        "district": Prop("t.district"), "commune": Prop("t.commune"),
        "length_m": Prop("t.length_m", N, description="length of the line shown, metres"),
        "as_built": Prop("t.as_built_geom IS NOT NULL", B, description="the line is the as-built one"),
        "estimated_cost": Prop("t.estimated_cost", M, description="VND"),
        "actual_cost": Prop("t.actual_cost", M, description="VND"),
        "progress_pct": Prop("t.progress_pct", I, description="physical progress, 0–100"),
        "completed_on": Prop("t.completed_on", D),
        "markers": Prop("(SELECT COALESCE(json_agg(m.number ORDER BY m.number), '[]') FROM road_marker rm "
                        "JOIN marker m ON m.id = rm.marker_id WHERE rm.road_id = t.id)", ARRAY, items=S,
                        description="numbers of the markers the road serves"),
        "inaugurated_on": Prop("(SELECT i.held_on FROM inauguration_road ir JOIN inauguration i "
                               "ON i.id = ir.inauguration_id WHERE ir.road_id = t.id)", D),
        "version": Prop("t.version", I), "is_generated": GENERATED,
    },
    filters={
        "status": Filter("t.status::text = ANY(:v)", ROAD_STATUSES,
                         "one or more statuses, comma-separated", many=True),
        "province": PROVINCE,
        "post_id": _id("t.post_id", "the post that requested and uses the road"),
        "marker": Filter("EXISTS (SELECT 1 FROM road_marker rm JOIN marker m ON m.id = rm.marker_id "
                         "WHERE rm.road_id = t.id AND m.number = :v)", str, "serves this marker number"),
        "donor_id": Filter("EXISTS (SELECT 1 FROM funding_tx f WHERE f.road_id = t.id AND f.donor_id IN ("
                           "WITH RECURSIVE g(id) AS (SELECT CAST(:v AS integer) UNION "
                           "SELECT dm.member_id FROM donor_member dm JOIN g ON dm.group_id = g.id) "
                           "SELECT id FROM g))",
                           int, "funded by this donor or, for a group, by its members at any depth"),
        "campaign_id": Filter("EXISTS (SELECT 1 FROM funding_tx f WHERE f.road_id = t.id AND f.campaign_id = :v)",
                              int, "funded under this campaign"),
    },
    temporal="completed_on",
    anonymous=Anonymous(geometry="t.public_geom"),
    owner_post=owned_by_post("branch_road"), versioned=True,
    exchange={"post_code": Prop("bp.code"), "surface": Prop("t.surface"), "width_m": Prop("t.width_m", N),
              "planned_start": Prop("t.planned_start", D), "planned_end": Prop("t.planned_end", D),
              "contractor": Prop("t.contractor"), "notes": Prop("t.notes")},
    tiles=Tiles("Branch roads", {"code": "code", "name": "name", "status": "status", "progress_pct": "progress_pct",
                                 "province": "province", "post_id": "post_id"},
                ("status", "province", "post_id", "donor_id", "campaign_id"), aggregate_below=8, category="status",
                source="branch_road t", indexed=("t.geom", "t.as_built_geom")),
)

VILLAGES = Layer(
    name="villages", table="village", title="village",
    description="Villages on both sides of the border.",
    properties={
        "code": Prop("t.code"), "name": Prop("t.name"), "country": Prop("t.country", enum=COUNTRIES),
        "admin1": Prop("t.admin1"), "admin2": Prop("t.admin2"), "admin3": Prop("t.admin3"),
        "population": Prop("t.population", I), "households": Prop("t.households", I),
        "is_generated": GENERATED,
    },
    filters={
        "country": Filter("t.country = :v", Literal[COUNTRIES], "ISO 3166 alpha-3"),  # type: ignore[valid-type]
        "admin1": _text("t.admin1", "province (Viet Nam) or first-level division"),
        # IN over both columns is one hashed subplan; EXISTS (... OR ...) is a scan per village.
        "paired": Filter("(t.id IN (SELECT vn_village_id FROM village_pair UNION ALL "
                         "SELECT foreign_village_id FROM village_pair)) = :v", bool, "in a twinned village pair"),
    },
    versioned=True,
    tiles=Tiles("Villages (twinned pairs)", {"name": "name", "country": "country", "admin1": "admin1"},
                ("country", "paired"), aggregate_below=8, category="country", source="village t"),
)

def last_completed_quarter_sql(ref: str) -> str:
    """SQL: the first day of the last quarter completed before date `ref`."""
    return f"(date_trunc('quarter', CAST({ref} AS timestamp)) - interval '3 months')::date"


def pair_overdue_sql(ref: str = "current_date") -> str:
    """SQL: pair `t` has no meeting *for* the last quarter completed before date `ref`.

    A pair twinned after that quarter began is not expected to have met for it yet.
    """
    q = last_completed_quarter_sql(ref)
    return (
        f"(NOT EXISTS (SELECT 1 FROM pair_meeting pm WHERE pm.pair_id = t.id "
        f"AND pm.year = extract(year FROM {q}) AND pm.quarter = extract(quarter FROM {q})) "
        f"AND (t.twinned_on IS NULL OR t.twinned_on <= {q}))"
    )


VILLAGE_PAIRS = Layer(
    name="village-pairs", table="village_pair", title="village pair",
    description="Twinned village pairs (cặp bản kết nghĩa) as a line between the two villages.",
    geometry="ST_MakeLine(vn.geom, fv.geom)", geometry_type="LineString",
    joins="JOIN village vn ON vn.id = t.vn_village_id JOIN village fv ON fv.id = t.foreign_village_id "
          "LEFT JOIN border_post bp ON bp.id = t.post_id",
    properties={
        "vn_village_id": Prop("t.vn_village_id", I), "vn_village": Prop("vn.name"),
        "vn_province": Prop("vn.admin1"),
        "foreign_village_id": Prop("t.foreign_village_id", I), "foreign_village": Prop("fv.name"),
        "foreign_country": Prop("fv.country", enum=NEIGHBOURS), "foreign_admin1": Prop("fv.admin1"),
        "post_id": Prop("t.post_id", I), "post_name": Prop("bp.name"), "twinned_on": Prop("t.twinned_on", D),
        "meetings": Prop("(SELECT count(*) FROM pair_meeting pm WHERE pm.pair_id = t.id)", I),
        "last_meeting_on": Prop("(SELECT max(pm.held_on) FROM pair_meeting pm WHERE pm.pair_id = t.id)", D),
        "last_meeting_quarter": Prop("(SELECT pm.year || '-Q' || pm.quarter FROM pair_meeting pm "
                                     "WHERE pm.pair_id = t.id ORDER BY pm.year DESC, pm.quarter DESC LIMIT 1)",
                                     description="year and quarter of the last meeting, e.g. 2023-Q2"),
        "overdue": Prop(pair_overdue_sql(), B, description="no meeting for the last completed quarter"),
    },
    filters={
        "overdue": Filter(f"{pair_overdue_sql()} = :v", bool,
                          "no meeting for the last completed quarter"),
        "post_id": _id("t.post_id", "the post that supports the pair"),
        "foreign_country": Filter("fv.country = :v", Literal[NEIGHBOURS], "CHN, LAO or KHM"),  # type: ignore[valid-type]
        "province": _text("vn.admin1", "Vietnamese province of the pair"),
    },
    temporal="twinned_on",
    owner_post=owned_by_post("village_pair"), versioned=True,
    tiles=Tiles("Twinned village pairs", {"vn_village": "vn_village", "foreign_village": "foreign_village",
                                          "foreign_country": "foreign_country", "overdue": "overdue"},
                ("overdue", "province"), aggregate_below=7, category="overdue",
                source="village_pair t JOIN village vn ON vn.id = t.vn_village_id "
                       "JOIN village fv ON fv.id = t.foreign_village_id"),
)

MEETINGS = Layer(
    name="meetings", table="pair_meeting", title="meeting", geometry=None, geometry_type=None,
    properties={
        "pair_id": Prop("t.pair_id", I), "held_on": Prop("t.held_on", D), "year": Prop("t.year", I),
        "quarter": Prop("t.quarter", I), "place": Prop("t.place"), "attendance": Prop("t.attendance", I),
        "topics": Prop("t.topics"), "agreements": Prop("t.agreements"), "notes": Prop("t.notes"),
    },
    filters={
        "pair_id": _id("t.pair_id", "village pair"),
        "year": _id("t.year", "year of the meeting"),
    },
    owner_post="SELECT p.post_id FROM pair_meeting m JOIN village_pair p ON p.id = m.pair_id "
               "WHERE m.id = :id FOR UPDATE",
    versioned=True,
)

INAUGURATIONS = Layer(
    name="inaugurations", table="inauguration", title="inauguration",
    description="Inauguration ceremonies (lễ khánh thành) of branch roads; some have no location.",
    properties={
        "title": Prop("t.title"), "held_on": Prop("t.held_on", D), "place": Prop("t.place"),
        "commune": Prop("t.commune"), "district": Prop("t.district"), "province": Prop("t.province"),
        "officials": Prop("t.officials"), "notes": Prop("t.notes"),
        "road_ids": Prop("(SELECT COALESCE(json_agg(ir.road_id ORDER BY ir.road_id), '[]') "
                         "FROM inauguration_road ir WHERE ir.inauguration_id = t.id)", ARRAY, items=I),
        "donors": Prop("(SELECT COALESCE(json_agg(json_build_object('id', d.id, 'name', d.name) ORDER BY d.id), "
                       "'[]') FROM inauguration_donor idn JOIN donor d ON d.id = idn.donor_id "
                       "WHERE idn.inauguration_id = t.id)", ARRAY, items=OBJECT,
                       description="donors credited: id and name"),
    },
    filters={
        "province": PROVINCE,
        "year": _id("extract(year FROM t.held_on)", "year of the ceremony"),
    },
    temporal="held_on", versioned=True,
)

DONORS = Layer(
    name="donors", table="donor", title="donor", geometry=None, geometry_type=None,
    properties={
        "code": Prop("t.code"), "name": Prop("t.name"), "name_en": Prop("t.name_en"),
        "kind": Prop("t.kind", enum=DONOR_KINDS), "is_group": Prop("t.is_group", B),
        "province": Prop("t.province"),
        "members": Prop("(SELECT COALESCE(json_agg(json_build_object('id', dm.member_id, 'role', dm.role) "
                        "ORDER BY dm.member_id), '[]') FROM donor_member dm WHERE dm.group_id = t.id)",
                        ARRAY, items=OBJECT, description="members of a group: id and role"),
        "groups": Prop("(SELECT COALESCE(json_agg(dm.group_id ORDER BY dm.group_id), '[]') "
                       "FROM donor_member dm WHERE dm.member_id = t.id)", ARRAY, items=I),
        "is_generated": GENERATED,
    },
    filters={
        "kind": _enum("t.kind", DONOR_KINDS, "donor kind"),
        "is_group": Filter("t.is_group = :v", bool, "groups (clusters) of member donors"),
        "province": PROVINCE,
    },
    versioned=True,
)

CAMPAIGNS = Layer(
    name="campaigns", table="campaign", title="campaign", geometry=None, geometry_type=None,
    properties={
        "code": Prop("t.code"), "name": Prop("t.name"), "organiser_id": Prop("t.organiser_id", I),
        "province": Prop("t.province"), "plan_date": Prop("t.plan_date", D),
        "starts_on": Prop("t.starts_on", D), "ends_on": Prop("t.ends_on", D),
        "target_amount": Prop("t.target_amount", M, description="VND"), "is_generated": GENERATED,
    },
    filters={"province": PROVINCE, "organiser_id": _id("t.organiser_id", "organising donor")},
    versioned=True,
)

FUNDING = Layer(
    name="funding", table="funding_tx", title="funding transaction", geometry=None, geometry_type=None,
    properties={
        "donor_id": Prop("t.donor_id", I), "road_id": Prop("t.road_id", I),
        "campaign_id": Prop("t.campaign_id", I), "kind": Prop("t.kind", enum=FUNDING_KINDS),
        "amount": Prop("t.amount", M, description="VND"), "tx_date": Prop("t.tx_date", D),
        "reference": Prop("t.reference"), "note": Prop("t.note"),
    },
    filters={
        "donor_id": _id("t.donor_id", "donor"),
        "road_id": _id("t.road_id", "branch road"),
        "campaign_id": _id("t.campaign_id", "campaign"),
        "kind": _enum("t.kind", FUNDING_KINDS, "ledger kind"),
    },
)

LAYERS: tuple[Layer, ...] = (
    SEGMENTS, MARKERS, POSTS, ROADS, VILLAGES, VILLAGE_PAIRS, MEETINGS, INAUGURATIONS, DONORS,
    CAMPAIGNS, FUNDING,
)
BY_NAME: dict[str, Layer] = {layer.name: layer for layer in LAYERS}
