"""What the pages show, read from PostGIS: each function is one SQL statement (or a few).

GeoJSON for the maps is built in SQL with coordinates rounded to 5 decimals (about 1 m:
enough to draw, a third lighter than the API's 7), and with only the properties the
popups need. Summaries are computed in SQL.

Road filters (donor or donor group, campaign, province, status) are the same ones the
vector tiles accept (`geo_api.domain.tiles`), so a filtered page and its tiles agree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import shapely
from sqlalchemy import Connection, text

from geo_api import DATA_DIR
from geo_api.domain import lifecycle, reports
from geo_api.domain.ledger import sums
from geo_api.domain.tiles import TILE_LAYERS, conditions
from geo_api.errors import NotFound
from geo_api.layers import (
    MARKERS, POSTS, ROAD_STATUSES, ROADS, VILLAGE_PAIRS, VILLAGES, Layer, geometry_sql,
    last_completed_quarter_sql, pair_overdue_sql,
)
from geo_api.policy import Viewer

DECIMALS = 5
OUTLINES_FILE = DATA_DIR / "borders" / "countries_near_vn.geojson"
OUTLINE_TOLERANCE = 0.01  # degrees (~1 km): an outline to find one's way without a basemap
OUTLINE_MIN_AREA = 0.005  # square degrees (~50 km²)


def _fc(conn: Connection, sql: str, params: dict[str, Any] | None = None, decimals: int = DECIMALS) -> dict:
    """Run `sql` (rows with `id`, `geom`, `props`) and return a GeoJSON FeatureCollection."""
    body = conn.execute(text(f"""
        SELECT json_build_object('type', 'FeatureCollection', 'features', COALESCE(json_agg(
            json_build_object('type', 'Feature', 'id', q.id,
                              'geometry', ST_AsGeoJSON(q.geom, {decimals})::json,
                              'properties', q.props) ORDER BY q.id), '[]'::json))::text
        FROM ({sql}) q
    """), params or {}).scalar_one()
    return json.loads(body)


# ------------------------------------------------------------------------------- counts


@dataclass(frozen=True)
class Counts:
    markers: int
    roads: int
    posts: int
    villages: int
    pairs: int


def counts(conn: Connection) -> Counts:
    row = conn.execute(text("""
        SELECT (SELECT count(*) FROM marker), (SELECT count(*) FROM branch_road),
               (SELECT count(*) FROM border_post), (SELECT count(*) FROM village),
               (SELECT count(*) FROM village_pair)
    """)).one()
    return Counts(*row)


# ------------------------------------------------------------------------------ filters


def road_conditions(filters: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A WHERE clause on `branch_road t` for the donor map's filters (shared with the tiles)."""
    conds, params = conditions(TILE_LAYERS["roads"], filters)
    return (" AND ".join(conds) or "true"), params


def money_conditions(filters: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Ledger rows counted in the summary: those of the donor (or its members) and of the
    campaign filtered on, so a donor sees what *they* gave to the roads shown."""
    conds, params = [], {}
    if filters.get("donor_id"):
        conds.append("(f.donor_id = :m_donor OR f.donor_id IN "
                     "(SELECT member_id FROM donor_member WHERE group_id = :m_donor))")
        params["m_donor"] = filters["donor_id"]
    if filters.get("campaign_id"):
        conds.append("f.campaign_id = :m_campaign")
        params["m_campaign"] = filters["campaign_id"]
    return (" AND ".join(conds) or "true"), params


def filter_options(conn: Connection) -> dict[str, list[dict]]:
    """Choices of the donor map's filters: donors (groups first), campaigns, provinces."""
    rows = conn.execute(text("""
        SELECT json_build_object(
            'donors', (SELECT COALESCE(json_agg(json_build_object('id', d.id, 'name', d.name,
                           'name_en', d.name_en, 'is_group', d.is_group)
                           ORDER BY NOT d.is_group, d.name, d.id), '[]') FROM donor d),
            'campaigns', (SELECT COALESCE(json_agg(json_build_object('id', c.id, 'code', c.code,
                              'name', c.name) ORDER BY c.starts_on, c.id), '[]') FROM campaign c),
            'provinces', (SELECT COALESCE(json_agg(p ORDER BY p), '[]')
                          FROM (SELECT DISTINCT province AS p FROM branch_road) x)
        )::text
    """)).scalar_one()
    return json.loads(rows)


def require_filter_targets(conn: Connection, filters: dict[str, Any]) -> None:
    for key, table, title in (("donor_id", "donor", "donor"), ("campaign_id", "campaign", "campaign"),
                              ("post_id", "border_post", "post")):
        if filters.get(key) and conn.execute(text(f"SELECT 1 FROM {table} WHERE id = :id"),
                                             {"id": filters[key]}).first() is None:
            raise NotFound(f"{title} {filters[key]} not found")


# -------------------------------------------------------------------------------- roads

# Per road: each donor with its four ledger totals, and the groups it belongs to.
ROAD_DONORS = f"""(SELECT COALESCE(json_agg(json_build_object(
        'name', d.name, 'name_en', d.name_en, 'groups', (SELECT json_agg(json_build_object(
                'name', g.name, 'name_en', g.name_en) ORDER BY g.id)
            FROM donor_member dm JOIN donor g ON g.id = dm.group_id WHERE dm.member_id = d.id),
        'pledged', x.pledged, 'committed', x.committed, 'disbursed', x.disbursed, 'spent', x.spent)
        ORDER BY x.pledged DESC, d.name), '[]')
    FROM (SELECT f.donor_id, {sums()} FROM funding_tx f WHERE f.road_id = t.id GROUP BY f.donor_id) x
    JOIN donor d ON d.id = x.donor_id)"""

# The same, compact for pages that embed every road: [donor id, pledged, disbursed], the
# names coming once per page from `lookups`.
ROAD_DONORS_COMPACT = f"""(SELECT COALESCE(json_agg(json_build_array(x.donor_id, x.pledged, x.disbursed)
        ORDER BY x.pledged DESC, x.donor_id), '[]')
    FROM (SELECT f.donor_id, {sums()} FROM funding_tx f WHERE f.road_id = t.id GROUP BY f.donor_id) x)"""

ROAD_PHOTO = """(SELECT a.id FROM attachment a WHERE a.kind = 'photo' AND (a.road_id = t.id
        OR a.road_event_id IN (SELECT e.id FROM road_event e WHERE e.road_id = t.id)
        OR a.inauguration_id = ir.inauguration_id) ORDER BY a.id DESC LIMIT 1)"""


def road_props_sql(donors: str | None = "compact") -> str:
    """Popup properties of road `t`; donors "full" (objects with names), "compact" or None."""
    extra = ""
    if donors:
        extra = f", 'donors', {ROAD_DONORS if donors == 'full' else ROAD_DONORS_COMPACT}, 'photo', {ROAD_PHOTO}"
    if donors == "full":
        extra += ", 'post', bp.name"
    return f"""json_build_object(
        'code', t.code, 'name', t.name, 'status', t.status, 'progress', t.progress_pct,
        'post_id', t.post_id, 'province', t.province, 'district', t.district,
        'commune', t.commune, 'length_m', t.length_m, 'estimated_cost', t.estimated_cost,
        'version', t.version,
        'markers', (SELECT COALESCE(json_agg(m.number ORDER BY m.number), '[]')
                    FROM road_marker rm JOIN marker m ON m.id = rm.marker_id WHERE rm.road_id = t.id),
        'inaugurated_on', i.held_on, 'inauguration', i.title{extra})"""


ROAD_FROM = """branch_road t JOIN border_post bp ON bp.id = t.post_id
    LEFT JOIN inauguration_road ir ON ir.road_id = t.id
    LEFT JOIN inauguration i ON i.id = ir.inauguration_id"""


def road_features(conn: Connection, viewer: Viewer, filters: dict[str, Any] | None = None,
                  donors: str | None = "compact") -> dict:
    where, params = road_conditions(filters or {})
    return _fc(conn, f"SELECT t.id, {geometry_sql(ROADS, viewer)} AS geom, {road_props_sql(donors)} "
                     f"AS props FROM {ROAD_FROM} WHERE {where}", params)


def road_popup(conn: Connection, road_id: int) -> dict:
    """One road's popup properties, self-contained (maps drawn from tiles fetch them)."""
    row = conn.execute(text(f"SELECT {road_props_sql('full')}::text FROM {ROAD_FROM} WHERE t.id = :id"),
                       {"id": road_id}).scalar()
    if row is None:
        raise NotFound(f"branch road {road_id} not found")
    return {"id": road_id, **json.loads(row)}


def lookups(conn: Connection, post_ids: list[int] | None = None, donors: bool = True) -> dict[str, dict]:
    """Names that compact features refer to by id: posts [name, province] (all, or those
    listed) and donors [name, name_en, id of the first group it belongs to]."""
    return json.loads(conn.execute(text("""
        SELECT json_build_object(
            'posts', (SELECT COALESCE(json_object_agg(p.id, json_build_array(p.name, p.province)), '{}')
                      FROM border_post p WHERE CAST(:posts AS integer[]) IS NULL OR p.id = ANY(:posts)),
            'donors', (SELECT COALESCE(json_object_agg(d.id, json_build_array(d.name, d.name_en,
                          (SELECT min(dm.group_id) FROM donor_member dm WHERE dm.member_id = d.id))), '{}')
                       FROM donor d WHERE :donors))::text
    """), {"posts": post_ids, "donors": donors}).scalar_one())


def road_summary(conn: Connection, filters: dict[str, Any] | None = None) -> dict:
    """Roads and km by status, and the VND pledged/committed/disbursed/spent on them."""
    filters = filters or {}
    where, params = road_conditions(filters)
    mwhere, mparams = money_conditions(filters)
    row = conn.execute(text(f"""
        WITH r AS (SELECT t.id, t.status::text AS status, t.length_m FROM branch_road t WHERE {where}),
        by_status AS (
            SELECT s.status, count(r.id) AS roads, round(COALESCE(sum(r.length_m), 0) / 1000, 1) AS km
            FROM unnest(CAST(:statuses AS text[])) WITH ORDINALITY s(status, n)
            LEFT JOIN r ON r.status = s.status GROUP BY s.status, s.n ORDER BY s.n
        ), money AS (
            SELECT {sums()} FROM funding_tx f WHERE f.road_id IN (SELECT id FROM r) AND {mwhere}
        )
        SELECT json_build_object(
            'by_status', (SELECT json_agg(json_build_object('status', status, 'roads', roads, 'km', km))
                          FROM by_status),
            'roads', (SELECT count(*) FROM r),
            'km', (SELECT round(COALESCE(sum(length_m), 0) / 1000, 1) FROM r),
            'money', (SELECT row_to_json(money) FROM money))::text
    """), {**params, **mparams, "statuses": list(ROAD_STATUSES)}).scalar_one()
    return json.loads(row)


# ------------------------------------------------------------------- markers, posts, etc.


@dataclass(frozen=True)
class Points:
    """Point features as rows [lon, lat, id, *columns]: a quarter of GeoJSON's weight,
    for layers with thousands of points (drawn by BR.addPoints)."""

    columns: list[str]
    rows: list[list]

    def __len__(self) -> int:
        return len(self.rows)


def _points(conn: Connection, layer: Layer, viewer: Viewer, columns: dict[str, str], source: str,
            params: dict | None = None) -> Points:
    cols = ", ".join(columns.values())
    body = conn.execute(text(f"""
        SELECT COALESCE(json_agg(json_build_array(round(ST_X(g)::numeric, {DECIMALS}),
            round(ST_Y(g)::numeric, {DECIMALS}), t.id, {cols}) ORDER BY t.id), '[]')::text
        FROM (SELECT t.*, {geometry_sql(layer, viewer)} AS g FROM {source}) t
    """), params or {}).scalar_one()
    return Points(list(columns), json.loads(body))


def marker_points(conn: Connection, viewer: Viewer, post_id: int | None = None) -> Points:
    where = "WHERE t.post_id = :post" if post_id else ""
    return _points(conn, MARKERS, viewer, {"number": "t.number", "kind": "t.kind", "access": "t.access",
                                   "post_id": "t.post_id"}, f"marker t {where}", {"post": post_id})


def post_points(conn: Connection, viewer: Viewer) -> Points:
    return _points(conn, POSTS, viewer, {
        "code": "t.code", "name": "t.name", "province": "t.province", "district": "t.district",
        "roads": "(SELECT count(*) FROM branch_road r WHERE r.post_id = t.id)",
        "markers": "(SELECT count(*) FROM marker m WHERE m.post_id = t.id)"}, "border_post t")


def inauguration_features(conn: Connection) -> dict:
    """Ceremonies with a place: where they were held, else the middle of the first road."""
    return _fc(conn, """
        SELECT t.id, COALESCE(t.geom, (SELECT ST_LineInterpolatePoint(COALESCE(r.as_built_geom, r.geom), 0.5)
            FROM inauguration_road ir JOIN branch_road r ON r.id = ir.road_id
            WHERE ir.inauguration_id = t.id ORDER BY r.id LIMIT 1)) AS geom,
            json_build_object('title', t.title, 'held_on', t.held_on, 'place', t.place,
                'province', t.province, 'officials', t.officials,
                'roads', (SELECT COALESCE(json_agg(r.name ORDER BY r.code), '[]')
                          FROM inauguration_road ir JOIN branch_road r ON r.id = ir.road_id
                          WHERE ir.inauguration_id = t.id),
                'donors', (SELECT COALESCE(json_agg(d.name ORDER BY d.id), '[]')
                           FROM inauguration_donor idn JOIN donor d ON d.id = idn.donor_id
                           WHERE idn.inauguration_id = t.id),
                'photo', (SELECT a.id FROM attachment a WHERE a.kind = 'photo'
                          AND a.inauguration_id = t.id ORDER BY a.id DESC LIMIT 1)) AS props
        FROM inauguration t
    """)


def border_lines(conn: Connection) -> dict:
    return _fc(conn, """
        SELECT t.id, ST_Simplify(t.geom, 0.002) AS geom,
               json_build_object('code', t.code, 'name_vi', t.name_vi, 'name_en', t.name_en) AS props
        FROM border_segment t
    """, decimals=4)


@lru_cache(maxsize=1)
def country_outlines() -> dict:
    """The countries around Viet Nam, generalised to about 1 km (islands under ~50 km²
    and holes dropped): what is left of a map when the basemap cannot be reached. From
    the shipped file (© OpenStreetMap contributors, ODbL)."""
    raw = json.loads(OUTLINES_FILE.read_text(encoding="utf-8"))
    features = []
    for f in raw["features"]:
        geom = shapely.geometry.shape(f["geometry"])
        parts = [shapely.Polygon(p.exterior) for p in getattr(geom, "geoms", [geom]) if p.area >= OUTLINE_MIN_AREA]
        geom = shapely.MultiPolygon(parts).simplify(OUTLINE_TOLERANCE, preserve_topology=False)
        geom = shapely.make_valid(shapely.set_precision(geom, 10 ** -3))
        features.append({"type": "Feature", "properties": {"iso3": f["properties"]["iso3"]},
                         "geometry": shapely.geometry.mapping(geom)})
    return json.loads(json.dumps({"type": "FeatureCollection", "features": features}))


def data_bounds(conn: Connection, viewer: Viewer, post_id: int | None = None) -> list[list[float]]:
    """[[south, west], [north, east]] of the markers (of one post), for the initial view."""
    where = "WHERE t.post_id = :post" if post_id else ""
    row = conn.execute(text(f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                            f"(SELECT ST_Extent({geometry_sql(MARKERS, viewer)}) AS e FROM marker t {where}) x"),
                       {"post": post_id}).one()
    if row[0] is None:
        return [[8.4, 102.1], [23.4, 109.5]]  # Viet Nam
    return [[row[1], row[0]], [row[3], row[2]]]


# --------------------------------------------------------------------------- post page


def post_choices(conn: Connection, province: str | None = None, most: int = 400) -> dict[str, Any]:
    """The post selector's choices: the provinces with posts, and the posts of `province`,
    or all posts while there are at most `most` (a 100× dataset has 21,000)."""
    return json.loads(conn.execute(text("""
        WITH p AS (SELECT p.id, p.name, p.province,
                          (SELECT count(*) FROM branch_road r WHERE r.post_id = p.id) AS roads
                   FROM border_post p
                   WHERE CAST(:province AS text) IS NULL OR p.province = :province
                      OR (SELECT count(*) FROM border_post) <= :most)
        SELECT json_build_object(
            'provinces', (SELECT COALESCE(json_agg(x.province ORDER BY x.province), '[]')
                          FROM (SELECT DISTINCT province FROM border_post) x),
            'posts', (SELECT COALESCE(json_agg(json_build_object('id', p.id, 'name', p.name,
                          'province', p.province, 'roads', p.roads) ORDER BY p.province, p.name, p.id), '[]')
                      FROM p WHERE CAST(:province AS text) IS NOT NULL OR (SELECT count(*) FROM border_post) <= :most)
        )::text
    """), {"province": province, "most": most}).scalar_one())


def post_detail(conn: Connection, post_id: int) -> dict:
    row = conn.execute(text("""
        SELECT json_build_object('id', p.id, 'code', p.code, 'name', p.name, 'province', p.province,
            'district', p.district, 'commune', p.commune, 'lon', ST_X(p.geom), 'lat', ST_Y(p.geom))::text
        FROM border_post p WHERE p.id = :id
    """), {"id": post_id}).scalar()
    if row is None:
        raise NotFound(f"post {post_id} not found")
    return json.loads(row)


def post_roads(conn: Connection, viewer: Viewer, post_id: int) -> dict:
    """The post's roads with what the status form needs: version and the next statuses
    (from the lifecycle rules; `inaugurated` is left out, it comes with a ceremony record)."""
    fc = _fc(conn, f"""
        SELECT t.id, {geometry_sql(ROADS, viewer)} AS geom,
            ({road_props_sql(None)}::jsonb || jsonb_build_object('suspended_from',
                CASE WHEN t.status = 'suspended' THEN
                    (SELECT e.from_status FROM road_event e WHERE e.road_id = t.id
                     AND e.to_status = 'suspended' AND e.from_status <> 'suspended'
                     ORDER BY e.id DESC LIMIT 1) END))::json AS props
        FROM {ROAD_FROM} WHERE t.post_id = :post
    """, {"post": post_id})
    for f in fc["features"]:
        p = f["properties"]
        p["next"] = next_statuses(p["status"], p.get("suspended_from"))
    return fc


def next_statuses(status: str, suspended_from: str | None = None) -> list[str]:
    state = lifecycle.RoadState(id=0, code="", status=status, estimated_cost=None,
                                suspended_from=suspended_from)
    return [s for s in lifecycle.allowed_targets(state) if s != "inaugurated"]


# ------------------------------------------------------------------------------ planner


def province_table(conn: Connection) -> list[dict]:
    return json.loads(reports.as_json(conn, reports.PROVINCES_SQL))["items"]


# ----------------------------------------------------------------------------- villages


def pair_features(conn: Connection, viewer: Viewer, ref_date: str | None = None,
                  pair_id: int | None = None) -> dict:
    """Twinned pairs as lines across the border, with their last meeting and overdue flag."""
    ref = "CAST(:ref AS date)" if ref_date else "current_date"
    where = "WHERE t.id = :id" if pair_id else ""
    return _fc(conn, f"""
        SELECT t.id, {geometry_sql(VILLAGE_PAIRS, viewer)} AS geom, json_build_object(
            'vn_village', vn.name, 'vn_province', vn.admin1, 'vn_district', vn.admin2,
            'foreign_village', fv.name, 'foreign_country', fv.country, 'foreign_admin1', fv.admin1,
            'post', bp.name, 'twinned_on', t.twinned_on,
            'meetings', (SELECT count(*) FROM pair_meeting pm WHERE pm.pair_id = t.id),
            'last_meeting_on', (SELECT max(pm.held_on) FROM pair_meeting pm WHERE pm.pair_id = t.id),
            'last_meeting_quarter', (SELECT pm.year || '-Q' || pm.quarter FROM pair_meeting pm
                WHERE pm.pair_id = t.id ORDER BY pm.year DESC, pm.quarter DESC LIMIT 1),
            'last_topics', (SELECT array_to_string(pm.topics, ', ') FROM pair_meeting pm
                WHERE pm.pair_id = t.id ORDER BY pm.held_on DESC LIMIT 1),
            'due_quarter', (SELECT extract(year FROM q) || '-Q' || extract(quarter FROM q)
                            FROM (SELECT {last_completed_quarter_sql(ref)} AS q) x),
            'overdue', {pair_overdue_sql(ref)}) AS props
        FROM village_pair t JOIN village vn ON vn.id = t.vn_village_id
        JOIN village fv ON fv.id = t.foreign_village_id LEFT JOIN border_post bp ON bp.id = t.post_id {where}
    """, {"ref": ref_date, "id": pair_id})


def pair_popup(conn: Connection, viewer: Viewer, pair_id: int) -> dict:
    features = pair_features(conn, viewer, pair_id=pair_id)["features"]
    if not features:
        raise NotFound(f"village pair {pair_id} not found")
    return {"id": pair_id, **features[0]["properties"]}


PAIRED = "t.id IN (SELECT vn_village_id FROM village_pair UNION ALL SELECT foreign_village_id FROM village_pair)"


def village_points(conn: Connection, viewer: Viewer, paired: bool = False) -> Points:
    """Villages (only those in a twinned pair, with `paired`)."""
    return _points(conn, VILLAGES, viewer, {"name": "t.name", "country": "t.country", "admin1": "t.admin1",
                                    "admin2": "t.admin2"}, f"village t {'WHERE ' + PAIRED if paired else ''}")


# ------------------------------------------------------------------------------- charts


def money_by_year(conn: Connection, donor_id: int | None = None) -> list[dict]:
    """VND per year and ledger kind, for all donors or one donor with its members."""
    where = ("WHERE f.donor_id = :d OR f.donor_id IN (SELECT member_id FROM donor_member WHERE group_id = :d)"
             if donor_id else "")
    return json.loads(conn.execute(text(f"""
        SELECT COALESCE(json_agg(q ORDER BY q.year), '[]')::text FROM (
            SELECT extract(year FROM f.tx_date)::int AS year, {sums()}
            FROM funding_tx f {where} GROUP BY 1) q
    """), {"d": donor_id}).scalar_one())


def money_by_donor(conn: Connection, limit: int = 12) -> list[dict]:
    """The donors that pledged most, with their four ledger totals (as recorded, not rolled
    up into groups) and the groups they belong to."""
    return json.loads(conn.execute(text(f"""
        SELECT COALESCE(json_agg(q ORDER BY q.pledged DESC, q.name), '[]')::text FROM (
            SELECT d.id, d.name, d.name_en, (SELECT string_agg(g.name, ', ' ORDER BY g.id)
                FROM donor_member dm JOIN donor g ON g.id = dm.group_id WHERE dm.member_id = d.id) AS groups,
                {sums()}
            FROM funding_tx f JOIN donor d ON d.id = f.donor_id
            GROUP BY d.id ORDER BY pledged DESC, d.name LIMIT :limit) q
    """), {"limit": limit}).scalar_one())
