"""Candidates (SQL): the markers far from the network, each with its nearest network
point, the travel to them from their post, then their scores and costs.

The nearest network edge of every marker is kept in ``marker_network_access``
(``REFRESH_SQL``); ``refresh_network_access`` brings it up to date after a network import
so that the first planner request does not pay for the searches. ``prepare`` fills the
session's temporary tables, ``scored`` runs ``scoring.SCORE_SQL`` over them.
"""

from __future__ import annotations

import time
from datetime import date

from sqlalchemy import Connection, text

from geo_api import db
from geo_api.domain.planner.scoring import SCORE_SQL, Candidate, score_params
from geo_api.domain.planner.settings import PlannerSettings, effective_weights
from geo_api.errors import InvalidInput, NotFound, PreconditionFailed
from geo_api.schemas.planner import Weights, WeightsUpdate
from geo_api.settings import get_settings

# The markers the planner looks at (before the road-status exclusion, which changes often).
IN_SCOPE = """(CAST(:province AS text) IS NULL OR m.province = CAST(:province AS text))
      AND m.access <> 'concrete' AND m.id % :parts = :part"""

# Each marker's nearest network edge (migration 0005 keeps it in marker_network_access
# while the network and the marker are unchanged): for the markers in scope whose row is
# missing or stale, in spatial (geohash) order so consecutive searches touch the same
# index pages, the k nearest edges by the index-ordered <-> operator (planar, in degrees),
# re-ranked by `d`, the distance with longitudes scaled by cos(latitude) (an
# equirectangular view: d × 110.6–111.4 km is the distance in metres to within 1% over a
# few km); the winner's distance is then measured on the spheroid. Its end nearer the
# marker is the vertex routing starts from.
REFRESH_SQL = f"""
INSERT INTO marker_network_access AS a
    (marker_id, marker_xmin, network_version, edge_id, highway, d, dist_m, vid, access_m, near_lon, near_lat)
SELECT m.id, m.xmin, v.version, net.id, net.highway, net.d,
       ST_Distance(net.geom::geography, m.geom::geography), e.vid,
       ST_Distance(e.pt::geography, m.geom::geography), ST_X(cp.pt), ST_Y(cp.pt)
FROM (
    -- kx squeezes longitudes so planar distances rank like metres near the marker
    SELECT m.id, m.xmin, m.geom, cos(radians(ST_Y(m.geom))) AS kx,
           ST_Scale(m.geom, cos(radians(ST_Y(m.geom))), 1) AS g
    FROM marker m
    WHERE {IN_SCOPE}
      AND NOT EXISTS (SELECT 1 FROM marker_network_access a, network_version v
                      WHERE a.marker_id = m.id AND a.marker_xmin = m.xmin AND a.network_version = v.version)
    ORDER BY ST_GeoHash(m.geom, 10), m.id  -- rows upserted in one order by every session: no lock cycles
    OFFSET 0
) m
CROSS JOIN network_version v
LEFT JOIN LATERAL (
    SELECT k.* FROM (SELECT r.id, r.highway, r.geom, r.source, r.target,
                            ST_Distance(ST_Scale(r.geom, m.kx, 1), m.g) AS d
                     FROM road_network r ORDER BY r.geom <-> m.geom LIMIT :knn) k
    ORDER BY k.d, k.id LIMIT 1
) net ON true
LEFT JOIN LATERAL (
    SELECT CASE WHEN near_start THEN net.source ELSE net.target END AS vid,
           CASE WHEN near_start THEN ST_StartPoint(net.geom) ELSE ST_EndPoint(net.geom) END AS pt
    FROM (SELECT ST_Distance(ST_Scale(ST_StartPoint(net.geom), m.kx, 1), m.g)
                 <= ST_Distance(ST_Scale(ST_EndPoint(net.geom), m.kx, 1), m.g) AS near_start) ns
) e ON true
LEFT JOIN LATERAL (SELECT ST_ClosestPoint(net.geom, m.geom) AS pt) cp ON true
ON CONFLICT (marker_id) DO UPDATE SET
    marker_xmin = EXCLUDED.marker_xmin, network_version = EXCLUDED.network_version,
    edge_id = EXCLUDED.edge_id, highway = EXCLUDED.highway, d = EXCLUDED.d, dist_m = EXCLUDED.dist_m,
    vid = EXCLUDED.vid, access_m = EXCLUDED.access_m,
    near_lon = EXCLUDED.near_lon, near_lat = EXCLUDED.near_lat
"""

# The candidates: markers in scope without a road in an excluded state, whose nearest
# network edge (above) or built branch road is farther than :min_distance. Built roads are
# searched like edges (k nearest by <->, re-ranked by d), and only for markers whose edge
# is farther than :min_distance; a built road's spheroid distance is measured only when it
# may beat the edge's (d × LOW_M_PER_DEGREE, a lower bound of its length in metres, under
# the edge's distance). OFFSET 0 keeps PostgreSQL from inlining, and so repeating, it.
LOW_M_PER_DEGREE = 110_000
CANDIDATES_SELECT = f"""
SELECT m.id AS marker_id, m.number, s.code AS segment, m.province, m.post_id,
       p.name AS post_name, m.geom, m.terrain_difficulty AS terrain,
       m.requested_by_post AS requested, m.last_inspected_on,
       pick.kind AS nearest_kind, pick.ref_id AS nearest_id, pick.label AS nearest_label,
       round(pick.dist_m::numeric, 1) AS dist_m, pick.pt AS nearest_pt,
       vil.people, vil.villages, vil.pairs,
       CASE WHEN :routing THEN a.vid END AS marker_vid, a.access_m AS marker_access_m,
       NULL::double precision AS route_m
FROM (
    SELECT m.*, cos(radians(ST_Y(m.geom))) AS kx, ST_Scale(m.geom, cos(radians(ST_Y(m.geom))), 1) AS g
    FROM marker m
    WHERE {IN_SCOPE}
      AND NOT EXISTS (SELECT 1 FROM road_marker rm JOIN branch_road b ON b.id = rm.road_id
                      WHERE rm.marker_id = m.id AND b.status = ANY(CAST(:excluded AS road_status[])))
    ORDER BY ST_GeoHash(m.geom, 10), m.id
    OFFSET 0
) m
JOIN border_segment s ON s.id = m.segment_id
LEFT JOIN border_post p ON p.id = m.post_id
LEFT JOIN marker_network_access a ON a.marker_id = m.id
LEFT JOIN LATERAL (
    SELECT k.* FROM (SELECT b.id, b.code, COALESCE(b.as_built_geom, b.geom) AS geom,
                            ST_Distance(ST_Scale(COALESCE(b.as_built_geom, b.geom), m.kx, 1), m.g) AS d
                     FROM branch_road b
                     WHERE b.status IN ('completed', 'inaugurated')
                       AND (a.dist_m IS NULL OR a.dist_m > :min_distance)
                     ORDER BY COALESCE(b.as_built_geom, b.geom) <-> m.geom LIMIT :knn) k
    ORDER BY k.d, k.id LIMIT 1
) built ON true
CROSS JOIN LATERAL (
    SELECT CASE WHEN built.id IS NOT NULL AND (a.dist_m IS NULL OR built.d * {LOW_M_PER_DEGREE} < a.dist_m)
                THEN ST_Distance(built.geom::geography, m.geom::geography) END AS built_m
    OFFSET 0
) bm
CROSS JOIN LATERAL (
    SELECT CASE WHEN nw THEN 'network' ELSE 'branch_road' END AS kind,
           CASE WHEN nw THEN a.edge_id ELSE built.id END AS ref_id,
           CASE WHEN nw THEN a.highway ELSE built.code END AS label,
           CASE WHEN nw THEN ST_SetSRID(ST_MakePoint(a.near_lon, a.near_lat), 4326)
                ELSE ST_ClosestPoint(built.geom, m.geom) END AS pt,
           CASE WHEN nw THEN a.dist_m ELSE bm.built_m END AS dist_m
    FROM (SELECT a.dist_m IS NOT NULL AND (bm.built_m IS NULL OR a.dist_m <= bm.built_m) AS nw) w
    WHERE LEAST(a.dist_m, bm.built_m) > :min_distance
) pick
CROSS JOIN LATERAL (
    SELECT COALESCE(sum(v.population), 0)::bigint AS people, count(*) AS villages,
           COALESCE(sum((SELECT count(*) FROM village_pair vp WHERE vp.vn_village_id = v.id)), 0) AS pairs
    FROM village v
    WHERE v.country = 'VNM'
      AND v.geom && ST_Expand(m.geom, :radius / (111320 * m.kx), :radius / 110540.0)
      AND ST_DWithin(v.geom::geography, m.geom::geography, :radius, false)
) vil
"""
CANDIDATES_SQL = "CREATE TEMP TABLE plan_candidate ON COMMIT DROP AS " + CANDIDATES_SELECT

POSTS_SQL = """
CREATE TEMP TABLE plan_post ON COMMIT DROP AS
SELECT p.id AS post_id, p.geom, v.vid, v.access_m
FROM border_post p
CROSS JOIN LATERAL (
    SELECT CASE WHEN k.d0 <= k.d1 THEN k.source ELSE k.target END AS vid, LEAST(k.d0, k.d1) AS access_m
    FROM (SELECT r.source, r.target, ST_Distance(r.geom::geography, p.geom::geography) AS dist_m,
                 ST_Distance(ST_StartPoint(r.geom)::geography, p.geom::geography) AS d0,
                 ST_Distance(ST_EndPoint(r.geom)::geography, p.geom::geography) AS d1
          FROM road_network r ORDER BY r.geom <-> p.geom LIMIT :knn) k
    ORDER BY k.dist_m LIMIT 1
) v
WHERE p.id IN (SELECT m.post_id FROM marker m
               WHERE (CAST(:province AS text) IS NULL OR m.province = CAST(:province AS text))
                 AND m.access <> 'concrete')
"""

# The area routing needs: a route no longer than the travel cap never leaves the box of
# that radius around its post, and every edge on it starts inside that box. So only the
# edges starting in a 0.1° cell touched by such a box are loaded into pgRouting (one scan
# of the network, no duplicates). Longer routes (or none) score the full weight anyway.
AREA_SQL = """
CREATE TEMP TABLE plan_cell ON COMMIT DROP AS
SELECT DISTINCT cx, cy
FROM (SELECT ST_Expand(geom, :cap / (111320 * cos(radians(LEAST(abs(ST_Y(geom)) + 1, 89)))),
                       :cap / 110540.0) AS box FROM plan_post) b,
     generate_series(floor(ST_XMin(b.box) * 10)::int, floor(ST_XMax(b.box) * 10)::int) cx,
     generate_series(floor(ST_YMin(b.box) * 10)::int, floor(ST_YMax(b.box) * 10)::int) cy
"""

# Bounded Dijkstra from every post at once: it stops at the travel cap, so a marker with
# no route (e.g. across a river with no bridge in the data) costs no more than one within
# reach. Each (post vertex, vertex) pair reached gives the network part of a travel
# distance. It needs only the posts, so it runs while the candidates are searched.
REACH_SQL = """
CREATE TEMP TABLE plan_reach ON COMMIT DROP AS
SELECT d.from_v, d.node, d.agg_cost
FROM pgr_drivingDistance(
    $edges$
    SELECT r.id, r.source, r.target, r.length_m AS cost, r.length_m AS reverse_cost
    FROM road_network r
    WHERE (floor(ST_X(ST_StartPoint(r.geom)) * 10)::int, floor(ST_Y(ST_StartPoint(r.geom)) * 10)::int)
          IN (SELECT cx, cy FROM plan_cell)
    $edges$,
    (SELECT array_agg(DISTINCT vid) FROM plan_post WHERE vid IS NOT NULL),
    :cap, directed => false) d
"""

ROUTE_SQL = """
UPDATE plan_candidate c SET route_m = d.agg_cost
FROM plan_post pp JOIN plan_reach d ON d.from_v = pp.vid
WHERE pp.post_id = c.post_id AND d.node = c.marker_vid
"""


def check_province(conn: Connection, province: str | None, what: str = "province") -> None:
    if province is None:
        return
    known = [r[0] for r in conn.execute(text("SELECT DISTINCT province FROM marker ORDER BY 1"))]
    if province not in known:
        raise InvalidInput(f"{what} {province!r} has no markers; known provinces: {', '.join(known)}")


def _network_present(conn: Connection) -> tuple[bool, bool]:
    row = conn.execute(text("""
        SELECT EXISTS (SELECT 1 FROM road_network),
               EXISTS (SELECT 1 FROM branch_road WHERE status IN ('completed', 'inaugurated'))
    """)).one()
    return bool(row[0]), bool(row[1])


def prepare(conn: Connection, province: str | None, min_distance_m: float,
            cfg: PlannerSettings, timings: dict[str, float] | None = None) -> bool:
    """Fill the session's ``plan_candidate`` / ``plan_post`` tables (dropped at commit or
    rollback). Returns whether travel was routed over the network. ``timings``, if given,
    receives the seconds spent searching, routing (while the search runs, when it is split
    over sessions) and in all (for the benchmark)."""
    started = time.perf_counter()
    timings = {} if timings is None else timings
    network, built = _network_present(conn)
    if not (network or built):
        raise PreconditionFailed("no road network: import one (tracker network import FILE.osm.pbf) "
                                 "or generate the demo network (tracker network demo)")
    routing = bool(cfg.routing and network)
    # Many cheap index probes: compiling them (JIT) costs more than it saves.
    conn.execute(text("SET LOCAL jit = off"))
    conn.execute(text("DROP TABLE IF EXISTS plan_candidate, plan_post, plan_cell, plan_reach"))
    params = {
        "knn": cfg.knn_candidates, "routing": routing, "radius": cfg.village_radius_m,
        "province": province, "excluded": list(cfg.excluded_road_statuses),
        "min_distance": min_distance_m, "parts": 1, "part": 0,
    }

    def route() -> None:
        t = time.perf_counter()
        if routing:
            conn.execute(text(POSTS_SQL), {"knn": cfg.knn_candidates, "province": province})
            conn.execute(text(AREA_SQL), {"cap": cfg.travel_cap_m})
            conn.execute(text("ANALYZE plan_cell"))
            conn.execute(text(REACH_SQL), {"cap": cfg.travel_cap_m})
        else:
            conn.execute(text("CREATE TEMP TABLE plan_post (post_id integer, geom geometry, vid bigint, "
                              "access_m double precision) ON COMMIT DROP"))
        timings["routing"] = time.perf_counter() - t

    parts = cfg.parallel_sessions
    if parts > 1 and conn.execute(text(
            "SELECT count(*) FROM marker WHERE CAST(:province AS text) IS NULL OR province = :province"),
            {"province": province}).scalar_one() >= cfg.parallel_min_markers:
        _candidates_in_parallel(conn, params, parts, route)
        timings["search"] = time.perf_counter() - started  # routing ran meanwhile
    else:
        conn.execute(text(REFRESH_SQL), params)
        conn.execute(text(CANDIDATES_SQL), params)
        timings["search"] = time.perf_counter() - started
        route()
    if routing:
        conn.execute(text("ANALYZE plan_candidate"))
        conn.execute(text(ROUTE_SQL))
    timings["total"] = time.perf_counter() - started
    return routing


def refresh_network_access(engine, cfg: PlannerSettings | None = None) -> int:
    """Bring every marker's nearest network edge (``marker_network_access``) up to date,
    split over ``parallel_sessions`` sessions; returns the rows recomputed. Run after a
    network import, so that planners do not pay for the searches on their first request."""
    from concurrent.futures import ThreadPoolExecutor

    cfg = cfg or get_settings().planner
    parts = max(1, cfg.parallel_sessions)

    def run(part: int) -> int:
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL jit = off"))
            return conn.execute(text(REFRESH_SQL), {"province": None, "knn": cfg.knn_candidates,
                                                    "parts": parts, "part": part}).rowcount

    with ThreadPoolExecutor(max_workers=parts) as pool:
        return sum(pool.map(run, range(parts)))


def _candidates_in_parallel(conn: Connection, params: dict, parts: int, meanwhile) -> None:
    """The nearest-edge refresh and the candidate query split by marker id over ``parts``
    extra sessions running at once (the per-marker searches are independent; each commits
    its refreshed rows), while this session runs ``meanwhile`` (the routing). Each part's
    candidates pass through as binary COPY data into this session's ``plan_candidate``,
    unparsed."""
    from concurrent.futures import ThreadPoolExecutor

    conn.execute(text(CANDIDATES_SQL + " LIMIT 0"), params)  # the table, with the right types
    copy_out = "COPY (" + db.psycopg_sql(CANDIDATES_SELECT) + ") TO STDOUT (FORMAT binary)"

    def run(part: int) -> bytes:
        with conn.engine.connect() as worker:
            worker.execute(text("SET LOCAL jit = off"))
            worker.execute(text(REFRESH_SQL), {**params, "parts": parts, "part": part})
            worker.commit()
            worker.execute(text("SET LOCAL jit = off"))
            out = bytearray()
            with worker.connection.driver_connection.cursor() as cur, \
                    cur.copy(copy_out, {**params, "parts": parts, "part": part}) as copy:
                for block in copy:
                    out += block
            return bytes(out)

    with ThreadPoolExecutor(max_workers=parts) as pool:
        futures = [pool.submit(run, part) for part in range(parts)]
        meanwhile()
        results = [f.result() for f in futures]
    with conn.connection.driver_connection.cursor() as cur:
        for data in results:
            with cur.copy("COPY plan_candidate FROM STDIN (FORMAT binary)") as copy:
                copy.write(data)


def scored(conn: Connection, routing: bool, weights: Weights, as_of: date,
           cfg: PlannerSettings) -> list[Candidate]:
    """The candidates ``prepare`` left in ``plan_candidate``, scored and costed, best first."""
    rows = conn.execute(text(SCORE_SQL), score_params(routing, weights, as_of, cfg)).mappings().all()
    out = []
    for rank, r in enumerate(rows, 1):
        out.append(Candidate(
            marker_id=r["marker_id"], number=r["number"], segment=r["segment"], province=r["province"],
            post_id=r["post_id"], post_name=r["post_name"], lon=round(r["lon"], 7), lat=round(r["lat"], 7),
            distance_m=r["dist_m"], new_road_m=r["new_road_m"], cost_vnd=int(r["cost_vnd"]),
            travel_m=r["travel_m"], travel_method=r["travel_method"], score=r["score"],
            nearest={"kind": r["nearest_kind"], "id": r["nearest_id"], "label": r["nearest_label"],
                     "lon": round(r["near_lon"], 7), "lat": round(r["near_lat"], 7)},
            raw=r, weights=weights, radius_m=cfg.village_radius_m, travel_cap_m=cfg.travel_cap_m,
            rank=rank))
    return out


def candidates(conn: Connection, province: str | None = None, min_distance_m: float | None = None,
               weights: WeightsUpdate | None = None, as_of: date | None = None,
               cfg: PlannerSettings | None = None) -> list[Candidate]:
    """The ranked candidates (best score first) with their scores, breakdowns and costs."""
    cfg = cfg or get_settings().planner
    check_province(conn, province)
    routing = prepare(conn, province, cfg.min_distance_m if min_distance_m is None else min_distance_m, cfg)
    return scored(conn, routing, effective_weights(weights, cfg), as_of or date.today(), cfg)


def why_not_candidate(conn: Connection, marker_id: int, province: str | None, min_distance_m: float,
                      cfg: PlannerSettings) -> str:
    """Why a marker is not among the candidates, in words a planner can act on."""
    row = conn.execute(text("""
        SELECT m.number, m.province, m.access::text AS access,
               (SELECT string_agg(b.code || ' (' || b.status || ')', ', ')
                FROM road_marker rm JOIN branch_road b ON b.id = rm.road_id
                WHERE rm.marker_id = m.id AND b.status = ANY(CAST(:excluded AS road_status[]))) AS roads
        FROM marker m WHERE m.id = :id
    """), {"id": marker_id, "excluded": list(cfg.excluded_road_statuses)}).mappings().one_or_none()
    if row is None:
        raise NotFound(f"marker {marker_id} not found")
    label = f"marker {marker_id} (number {row['number']}, {row['province']})"
    if province is not None and row["province"] != province:
        return f"{label} is not in {province}"
    if row["roads"]:
        return f"{label} already has a road: {row['roads']}"
    if row["access"] == "concrete":
        return f"{label} already has concrete access"
    return f"{label} is within {min_distance_m:g} m of the road network"
