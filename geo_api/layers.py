"""Read access to every resource, built in SQL.

Each resource is a `Layer`: a table, the SQL expressions of its properties and geometry,
and the filters users may apply. One builder turns a layer plus a validated query into a
single SQL statement that returns the finished JSON document (a GeoJSON
FeatureCollection, or a plain page of items for tables with no geometry), so features
are never round-tripped through Python objects.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator
from sqlalchemy import Connection, text

from geo_api.errors import InvalidInput, NotFound
from geo_api.settings import get_settings

ROAD_STATUSES = (
    "proposed", "surveyed", "funded", "under_construction", "completed",
    "inaugurated", "suspended", "cancelled",
)
COORD_DECIMALS = 7  # about 1 cm


@dataclass(frozen=True)
class Privacy:
    """What a caller may not see exactly, per layer name: coordinates rounded to `decimals`
    (geometries snapped to that grid, bbox filters too, so probing cannot recover them) and
    `hidden` properties given as null. Set per request by geo_api.middleware (anonymous)."""

    decimals: dict[str, int] = field(default_factory=dict)
    hidden: dict[str, frozenset[str]] = field(default_factory=dict)


PRIVACY: ContextVar[Privacy | None] = ContextVar("layers_privacy", default=None)


def geometry_sql(layer: "Layer") -> str | None:
    """The layer's geometry expression as this caller may see it."""
    privacy = PRIVACY.get()
    decimals = privacy.decimals.get(layer.name) if privacy else None
    if layer.geometry is None or decimals is None:
        return layer.geometry
    return f"ST_SnapToGrid({layer.geometry}, 1e-{decimals})"


def opaque(condition: str) -> str:
    """SQL: `condition`, hidden from the planner's selectivity estimate. PostgreSQL has no
    statistics for a snapped geometry and guesses that almost no row passes a test on it
    (3 rows where 28,000 do), then joins the posts by a nested loop over all of them: 25 s
    instead of 0.1 s for one page of 300,000 markers. As an opaque expression it is taken
    to keep half the rows the index found, which leads to sound plans."""
    return f"(CASE WHEN {condition} THEN true ELSE false END)"


def snap_margin(layer: "Layer") -> str:
    """SQL: how far snapping may move this caller's view of the layer's geometry, with room
    to spare (snapping to a grid of 1e-d moves a vertex at most 0.5e-d per axis): a bbox
    test on the stored geometry expanded by it keeps every row whose snapped geometry meets
    the box, so the index narrows the rows down before the snapped test."""
    privacy = PRIVACY.get()
    decimals = privacy.decimals.get(layer.name) if privacy else None
    return "0" if decimals is None else f"1e-{decimals}"


@dataclass(frozen=True)
class Filter:
    """A query parameter: `sql` is a condition on bound value `:v`, `kind` its type."""

    sql: str
    kind: Any = str
    description: str = ""
    many: bool = False  # comma-separated list of values, matched with = ANY


@dataclass(frozen=True)
class Layer:
    name: str
    table: str
    title: str
    properties: dict[str, str]
    geometry: str | None = "t.geom"
    joins: str = ""
    filters: dict[str, Filter] = field(default_factory=dict)

    @property
    def spatial(self) -> bool:
        return self.geometry is not None


class PageQuery(BaseModel):
    """Paging and bbox, common to every list endpoint; unknown parameters are refused."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(
        default=100, ge=1, description="page size (at most TRACKER_MAX_PAGE_SIZE, 1000 by default)"
    )
    after: int | None = Field(default=None, ge=0, description="keyset cursor: return ids greater than this")

    @field_validator("limit")
    @classmethod
    def _cap(cls, v: int) -> int:
        cap = get_settings().max_page_size
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
            fields[name] = (flt.kind | None, Field(default=None, description=flt.description))
    base = SpatialPageQuery if layer.spatial else PageQuery
    return create_model(
        f"{layer.name.title().replace('-', '')}Query", __base__=base, __validators__=validators, **fields
    )


def _props_sql(layer: Layer) -> str:
    privacy = PRIVACY.get()
    hidden = privacy.hidden.get(layer.name, frozenset()) if privacy else frozenset()
    return "json_build_object(" + ", ".join(
        f"'{k}', {'NULL' if k in hidden else v}" for k, v in layer.properties.items()) + ")"


def _select(layer: Layer) -> str:
    geom = f"{geometry_sql(layer)} AS _geom, " if layer.spatial else ""
    return f"SELECT t.id AS _id, {geom}{_props_sql(layer)} AS _props FROM {layer.table} t {layer.joins}"


def _feature_sql(layer: Layer, row: str = "p") -> str:
    if layer.spatial:
        return (
            f"json_build_object('type', 'Feature', 'id', {row}._id, "
            f"'geometry', ST_AsGeoJSON({row}._geom, {COORD_DECIMALS})::json, "
            f"'properties', {row}._props)"
        )
    return f"(json_build_object('id', {row}._id)::jsonb || {row}._props::jsonb)::json"


def _conditions(layer: Layer, query: PageQuery) -> tuple[list[str], dict[str, Any]]:
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
        env, seen = "ST_MakeEnvelope(:x1, :y1, :x2, :y2, 4326)", geometry_sql(layer)
        if seen == layer.geometry:
            conds.append(f"{layer.geometry} && {env}")
        else:  # private: filter on what the caller sees (the index still narrows it down)
            conds.append(f"{layer.geometry} && ST_Expand({env}, {snap_margin(layer)}) AND {opaque(f'{seen} && {env}')}")
        params.update(x1=x1, y1=y1, x2=x2, y2=y2)
    if query.after is not None:
        conds.append("t.id > :after")
        params["after"] = query.after
    return conds, params


def collection(conn: Connection, layer: Layer, query: PageQuery, next_href: str) -> str:
    """One page of a layer as JSON text; `next_href` gets the last id appended."""
    conds, params = _conditions(layer, query)
    where = f"WHERE {' AND '.join(conds)}" if conds else ""
    key = "features" if layer.spatial else "items"
    head = "'type', 'FeatureCollection', " if layer.spatial else ""
    sql = f"""
        WITH p AS ({_select(layer)} {where} ORDER BY t.id LIMIT :limit)
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


def item_sql(layer: Layer) -> str:
    """SQL: the JSON text of the item with id `:id` (no row when there is none)."""
    return f"SELECT {_feature_sql(layer)}::text FROM ({_select(layer)} WHERE t.id = :id) p"


def item(conn: Connection, layer: Layer, item_id: int) -> str:
    found = conn.execute(text(item_sql(layer)), {"id": item_id}).scalar_one_or_none()
    if found is None:
        raise NotFound(f"{layer.title} {item_id} not found")
    return found


def matching(layer: Layer, query: PageQuery, extra: tuple[str, ...] = ()) -> tuple[str, dict[str, Any]]:
    """SELECT `_id`, `_geom`, `_props` of the rows matching `query` (its filters, bbox and
    cursor) and the `extra` SQL conditions, unordered and unpaged, with its bound parameters:
    for callers that page by offset, count matches, stream or export (OGC API, files)."""
    conds, params = _conditions(layer, query)
    conds += [f"({c})" for c in extra]
    where = f" WHERE {' AND '.join(conds)}" if conds else ""
    return _select(layer) + where, params


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


PROVINCE = _text("t.province", "province, e.g. Lạng Sơn")

SEGMENTS = Layer(
    name="border-segments", table="border_segment", title="border segment",
    properties={
        "code": "t.code", "neighbour_iso3": "t.neighbour_iso3", "name_vi": "t.name_vi",
        "name_en": "t.name_en", "length_km": "t.length_km",
    },
    filters={"code": _text("t.code", "VN-CN, VN-LA or VN-KH")},
)

MARKERS = Layer(
    name="markers", table="marker", title="marker",
    joins="JOIN border_segment s ON s.id = t.segment_id LEFT JOIN border_post bp ON bp.id = t.post_id",
    properties={
        "number": "t.number", "kind": "t.kind", "segment": "s.code", "chainage_km": "t.chainage_km",
        "province": "t.province", "district": "t.district", "commune": "t.commune",
        "post_id": "t.post_id", "post_name": "bp.name", "access": "t.access",
        "terrain_difficulty": "t.terrain_difficulty", "requested_by_post": "t.requested_by_post",
        "last_inspected_on": "t.last_inspected_on", "is_generated": "t.is_generated",
    },
    filters={
        "segment": _text("s.code", "border segment code, e.g. VN-CN"),
        "province": PROVINCE,
        "post_id": _id("t.post_id", "responsible post"),
        "number": _text("t.number", "marker number, e.g. 1033 or 1033/1"),
        "kind": Filter("t.kind::text = :v", Literal["main", "sub", "paired"], "main, sub or paired"),
        "access": Filter("t.access::text = :v", Literal["none", "footpath", "earth", "concrete"],
                         "how the marker is reached today"),
        "requested_by_post": Filter("t.requested_by_post = :v", bool, "the post has asked for a road"),
    },
)

POSTS = Layer(
    name="posts", table="border_post", title="post",
    joins="LEFT JOIN border_segment s ON s.id = t.segment_id",
    properties={
        "code": "t.code", "name": "t.name", "province": "t.province", "district": "t.district",
        "commune": "t.commune", "segment": "s.code",
        "markers": "(SELECT count(*) FROM marker m WHERE m.post_id = t.id)",
        "roads": "(SELECT count(*) FROM branch_road r WHERE r.post_id = t.id)",
        "is_generated": "t.is_generated",
    },
    filters={
        "province": PROVINCE,
        "segment": _text("s.code", "border segment code"),
        "code": _text("t.code", "post code"),
    },
)

ROADS = Layer(
    name="roads", table="branch_road", title="branch road",
    geometry="COALESCE(t.as_built_geom, t.geom)",
    joins="JOIN border_post bp ON bp.id = t.post_id",
    properties={
        "code": "t.code", "name": "t.name", "status": "t.status", "post_id": "t.post_id",
        "post_name": "bp.name", "province": "t.province", "district": "t.district",
        "commune": "t.commune", "length_m": "t.length_m", "as_built": "t.as_built_geom IS NOT NULL",
        "estimated_cost": "t.estimated_cost", "actual_cost": "t.actual_cost",
        "progress_pct": "t.progress_pct", "completed_on": "t.completed_on",
        "markers": "(SELECT COALESCE(json_agg(m.number ORDER BY m.number), '[]') FROM road_marker rm "
                   "JOIN marker m ON m.id = rm.marker_id WHERE rm.road_id = t.id)",
        "inaugurated_on": "(SELECT i.held_on FROM inauguration_road ir JOIN inauguration i "
                          "ON i.id = ir.inauguration_id WHERE ir.road_id = t.id)",
        "version": "t.version", "is_generated": "t.is_generated",
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
    },
)

VILLAGES = Layer(
    name="villages", table="village", title="village",
    properties={
        "code": "t.code", "name": "t.name", "country": "t.country", "admin1": "t.admin1",
        "admin2": "t.admin2", "admin3": "t.admin3", "population": "t.population",
        "households": "t.households", "is_generated": "t.is_generated",
    },
    filters={
        "country": Filter("t.country = :v", Literal["VNM", "CHN", "LAO", "KHM"], "ISO 3166 alpha-3"),
        "admin1": _text("t.admin1", "province (Viet Nam) or first-level division"),
    },
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
    geometry="ST_MakeLine(vn.geom, fv.geom)",
    joins="JOIN village vn ON vn.id = t.vn_village_id JOIN village fv ON fv.id = t.foreign_village_id "
          "LEFT JOIN border_post bp ON bp.id = t.post_id",
    properties={
        "vn_village_id": "t.vn_village_id", "vn_village": "vn.name", "vn_province": "vn.admin1",
        "foreign_village_id": "t.foreign_village_id", "foreign_village": "fv.name",
        "foreign_country": "fv.country", "foreign_admin1": "fv.admin1",
        "post_id": "t.post_id", "post_name": "bp.name", "twinned_on": "t.twinned_on",
        "meetings": "(SELECT count(*) FROM pair_meeting pm WHERE pm.pair_id = t.id)",
        "last_meeting_on": "(SELECT max(pm.held_on) FROM pair_meeting pm WHERE pm.pair_id = t.id)",
        "last_meeting_quarter": "(SELECT pm.year || '-Q' || pm.quarter FROM pair_meeting pm "
                                "WHERE pm.pair_id = t.id ORDER BY pm.year DESC, pm.quarter DESC LIMIT 1)",
        "overdue": pair_overdue_sql(),
    },
    filters={
        "overdue": Filter(f"{pair_overdue_sql()} = :v", bool,
                          "no meeting for the last completed quarter"),
        "post_id": _id("t.post_id", "the post that supports the pair"),
        "foreign_country": Filter("fv.country = :v", Literal["CHN", "LAO", "KHM"], "CHN, LAO or KHM"),
        "province": _text("vn.admin1", "Vietnamese province of the pair"),
    },
)

MEETINGS = Layer(
    name="meetings", table="pair_meeting", title="meeting", geometry=None,
    properties={
        "pair_id": "t.pair_id", "held_on": "t.held_on", "year": "t.year", "quarter": "t.quarter",
        "place": "t.place", "attendance": "t.attendance", "topics": "t.topics",
        "agreements": "t.agreements", "notes": "t.notes",
    },
    filters={
        "pair_id": _id("t.pair_id", "village pair"),
        "year": _id("t.year", "year of the meeting"),
    },
)

INAUGURATIONS = Layer(
    name="inaugurations", table="inauguration", title="inauguration",
    properties={
        "title": "t.title", "held_on": "t.held_on", "place": "t.place", "commune": "t.commune",
        "district": "t.district", "province": "t.province", "officials": "t.officials", "notes": "t.notes",
        "road_ids": "(SELECT COALESCE(json_agg(ir.road_id ORDER BY ir.road_id), '[]') "
                    "FROM inauguration_road ir WHERE ir.inauguration_id = t.id)",
        "donors": "(SELECT COALESCE(json_agg(json_build_object('id', d.id, 'name', d.name) ORDER BY d.id), "
                  "'[]') FROM inauguration_donor idn JOIN donor d ON d.id = idn.donor_id "
                  "WHERE idn.inauguration_id = t.id)",
    },
    filters={
        "province": PROVINCE,
        "year": _id("extract(year FROM t.held_on)", "year of the ceremony"),
    },
)

DONORS = Layer(
    name="donors", table="donor", title="donor", geometry=None,
    properties={
        "code": "t.code", "name": "t.name", "name_en": "t.name_en", "kind": "t.kind",
        "is_group": "t.is_group", "province": "t.province",
        "members": "(SELECT COALESCE(json_agg(json_build_object('id', dm.member_id, 'role', dm.role) "
                   "ORDER BY dm.member_id), '[]') FROM donor_member dm WHERE dm.group_id = t.id)",
        "groups": "(SELECT COALESCE(json_agg(dm.group_id ORDER BY dm.group_id), '[]') "
                  "FROM donor_member dm WHERE dm.member_id = t.id)",
        "is_generated": "t.is_generated",
    },
    filters={
        "kind": Filter("t.kind::text = :v",
                       Literal["agency", "cluster", "company", "person", "organisation"], "donor kind"),
        "is_group": Filter("t.is_group = :v", bool, "groups (clusters) of member donors"),
        "province": PROVINCE,
    },
)

CAMPAIGNS = Layer(
    name="campaigns", table="campaign", title="campaign", geometry=None,
    properties={
        "code": "t.code", "name": "t.name", "organiser_id": "t.organiser_id", "province": "t.province",
        "plan_date": "t.plan_date", "starts_on": "t.starts_on", "ends_on": "t.ends_on",
        "target_amount": "t.target_amount", "is_generated": "t.is_generated",
    },
    filters={"province": PROVINCE, "organiser_id": _id("t.organiser_id", "organising donor")},
)

FUNDING = Layer(
    name="funding", table="funding_tx", title="funding transaction", geometry=None,
    properties={
        "donor_id": "t.donor_id", "road_id": "t.road_id", "campaign_id": "t.campaign_id",
        "kind": "t.kind", "amount": "t.amount", "tx_date": "t.tx_date", "reference": "t.reference",
        "note": "t.note",
    },
    filters={
        "donor_id": _id("t.donor_id", "donor"),
        "road_id": _id("t.road_id", "branch road"),
        "campaign_id": _id("t.campaign_id", "campaign"),
        "kind": Filter("t.kind::text = :v",
                       Literal["pledge", "commitment", "disbursement", "expenditure"], "ledger kind"),
    },
)

LAYERS: tuple[Layer, ...] = (
    SEGMENTS, MARKERS, POSTS, ROADS, VILLAGES, VILLAGE_PAIRS, MEETINGS, INAUGURATIONS, DONORS,
    CAMPAIGNS, FUNDING,
)
