"""The planner: which markers to fund next within a budget, and why.

1. **Candidates** (SQL, one statement): markers not reached by a completed or inaugurated
   road (nor with a road that already has its money: funded or under construction — see
   ``excluded_road_statuses``), whose access is not concrete, and that lie farther than
   ``min_distance_m`` from the network. The network is ``road_network`` plus the built
   branch roads; the nearest piece is found with the index-ordered ``<->`` operator in a
   LATERAL join (the ``k`` nearest in degrees, re-ranked with longitudes scaled by
   cos(latitude), the winner's distance measured on the spheroid). Above
   ``parallel_min_markers`` the statement is split by marker id over several sessions.
2. **Travel from the post** (one pgRouting call): a Dijkstra over ``road_network`` from
   every responsible post's nearest vertex, bounded at ``travel_cap_m``
   (``pgr_drivingDistance``), gives the network part; the two straight legs off the
   network are added. A route longer than the cap scores the full weight anyway, and one
   shorter than it cannot leave the box of that radius around its post, so only those
   edges are loaded. Without a network: the straight post-to-marker distance.
3. **Score** (SQL): each factor scores 0..1, times its weight; points are rounded to 0.01
   and the score is their sum, so the breakdown a user reads adds up to the score exactly.
   Every factor measures *need*: far from a road, hard terrain, asked for by the post,
   people and twinned villages nearby, long since the last inspection, far to travel.
4. **Cost** (SQL, NUMERIC): new road = shortest line to the network × winding factor; cost
   = length × unit cost per km of the marker's terrain class, rounded up to whole millions.
5. **Plan** (HiGHS through ``scipy.optimize``, exact: see ``solve_optimal``): choose
   markers to maximise the total
   score within the budget, per-province caps and must-include markers. Shared roads: a
   chosen marker may be reached by *extending* the road of a chosen neighbour within
   ``shared_road_radius_m`` (same province) instead of building its own road from the
   network; the shared part is then paid once. To keep the roads a forest, a marker may
   only hang off a neighbour that is closer to the network — the one it is cheapest to
   extend from. The greedy answer (best score per đồng first) is computed on the same
   options and reported beside it.
"""

from __future__ import annotations

import csv
import heapq
import io
import json
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import lru_cache
from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Connection, text

from geo_api import db
from geo_api.errors import InvalidInput, NotFound, PreconditionFailed
from geo_api.schemas.planner import FACTORS, PlanCreate, Weights, WeightsUpdate


class PlannerSettings(BaseSettings):
    """Planner configuration (environment prefix ``TRACKER_PLANNER_``; dicts as JSON, e.g.
    ``TRACKER_PLANNER_WEIGHTS='{"distance": 40}'``). Requests may override the weights,
    the minimum distance and the reference date."""

    model_config = SettingsConfigDict(env_prefix="TRACKER_PLANNER_", extra="ignore")

    min_distance_m: float = 200.0
    # Markers with a road in one of these states are not candidates: reached, or already paid for.
    excluded_road_statuses: tuple[str, ...] = ("completed", "inaugurated", "funded", "under_construction")
    winding_factor: Decimal = Decimal("1.3")
    unit_cost_per_km: dict[int, int] = {
        1: 600_000_000, 2: 750_000_000, 3: 900_000_000, 4: 1_100_000_000, 5: 1_350_000_000,
    }
    cost_rounding_vnd: int = 1_000_000
    weights: Weights = Weights()
    # Where each factor reaches 1 (its full weight).
    distance_cap_m: float = 5_000.0
    people_cap: int = 2_000
    pairs_cap: int = 2
    inspection_cap_days: int = 730
    travel_cap_m: float = 30_000.0
    village_radius_m: float = 5_000.0
    shared_road_radius_m: float = 1_500.0
    knn_candidates: int = 3
    routing: bool = True
    # Above this many markers to examine, the nearest-network searches are split over
    # this many database sessions (one per core); below it one session is quicker.
    parallel_sessions: int = 2
    parallel_min_markers: int = 20_000
    solver_time_limit_s: float = 30.0

    @field_validator("unit_cost_per_km")
    @classmethod
    def _all_classes(cls, v: dict[int, int]) -> dict[int, int]:
        if sorted(v) != [1, 2, 3, 4, 5] or any(c <= 0 for c in v.values()):
            raise ValueError("unit_cost_per_km needs a positive cost for each terrain class 1..5")
        return v


@lru_cache
def get_planner_settings() -> PlannerSettings:
    return PlannerSettings()


LABELS = {
    "distance": ("Khoảng cách tới mạng đường", "Distance to the road network"),
    "terrain": ("Độ khó địa hình", "Terrain difficulty"),
    "requested": ("Đồn biên phòng đề nghị", "Requested by the post"),
    "people": ("Dân cư các bản lân cận", "People in nearby villages"),
    "pairs": ("Cặp bản kết nghĩa lân cận", "Twinned village pairs nearby"),
    "inspection": ("Thời gian từ lần kiểm tra gần nhất", "Time since the last inspection"),
    "travel": ("Quãng đường từ đồn", "Travel from the post"),
}


# ---------------------------------------------------------------------------------------
# Candidates and scores
# ---------------------------------------------------------------------------------------

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

SCORE_SQL = """
WITH f AS (
    SELECT c.*, pp.access_m AS post_access_m,
        ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat,
        ST_X(c.nearest_pt) AS near_lon, ST_Y(c.nearest_pt) AS near_lat,
        CASE
            WHEN c.post_id IS NULL THEN 'no_post'
            WHEN NOT :routing OR pp.vid IS NULL OR c.marker_vid IS NULL THEN 'straight_line'
            WHEN c.route_m IS NOT NULL THEN 'network'
            ELSE 'no_route' END AS travel_method,
        (:as_of - c.last_inspected_on) AS days_since,
        round(c.dist_m * CAST(:winding AS numeric), 1) AS new_road_m
    FROM plan_candidate c
    LEFT JOIN plan_post pp ON pp.post_id = c.post_id
), t AS (
    SELECT f.*,
        round(CASE f.travel_method
            WHEN 'network' THEN f.post_access_m + COALESCE(f.route_m, 0) + f.marker_access_m
            WHEN 'straight_line' THEN ST_Distance(f.geom::geography, bp.geom::geography)
            END::numeric, 1) AS travel_m
    FROM f LEFT JOIN border_post bp ON bp.id = f.post_id
), n AS (
    SELECT t.*,
        round(LEAST(t.dist_m / CAST(:cap_distance AS numeric), 1), 4) AS n_distance,
        round((t.terrain - 1) / 4.0, 4) AS n_terrain,
        CASE WHEN t.requested THEN 1.0 ELSE 0.0 END AS n_requested,
        round(LEAST(t.people / CAST(:cap_people AS numeric), 1), 4) AS n_people,
        round(LEAST(t.pairs / CAST(:cap_pairs AS numeric), 1), 4) AS n_pairs,
        CASE WHEN t.days_since IS NULL THEN 1.0
             ELSE round(LEAST(GREATEST(t.days_since, 0) / CAST(:cap_days AS numeric), 1), 4) END AS n_inspection,
        CASE t.travel_method WHEN 'no_post' THEN 0.0 WHEN 'no_route' THEN 1.0
             ELSE round(LEAST(t.travel_m / CAST(:cap_travel AS numeric), 1), 4) END AS n_travel,
        ceil(t.new_road_m * (CAST(:unit_costs AS bigint[]))[t.terrain] / 1000
             / CAST(:rounding AS numeric)) * CAST(:rounding AS numeric) AS cost_vnd
    FROM t
), p AS (
    SELECT n.*,
        round(n.n_distance * CAST(:w_distance AS numeric), 2) AS p_distance,
        round(n.n_terrain * CAST(:w_terrain AS numeric), 2) AS p_terrain,
        round(n.n_requested * CAST(:w_requested AS numeric), 2) AS p_requested,
        round(n.n_people * CAST(:w_people AS numeric), 2) AS p_people,
        round(n.n_pairs * CAST(:w_pairs AS numeric), 2) AS p_pairs,
        round(n.n_inspection * CAST(:w_inspection AS numeric), 2) AS p_inspection,
        round(n.n_travel * CAST(:w_travel AS numeric), 2) AS p_travel
    FROM n
)
SELECT marker_id, number, segment, province, post_id, post_name, lon, lat, terrain, requested,
       last_inspected_on, days_since, nearest_kind, nearest_id, nearest_label, near_lon, near_lat,
       dist_m, new_road_m, cost_vnd, people, villages, pairs, travel_m, travel_method,
       n_distance, n_terrain, n_requested, n_people, n_pairs, n_inspection, n_travel,
       p_distance, p_terrain, p_requested, p_people, p_pairs, p_inspection, p_travel,
       p_distance + p_terrain + p_requested + p_people + p_pairs + p_inspection + p_travel AS score
FROM p
ORDER BY score DESC, cost_vnd, marker_id
"""

# Neighbouring candidates one road can serve: the child hangs off the parent, which is
# the one closer to the network; the link is paid like a new road of the harder terrain.
# (Distances on the sphere: within about 0.5% of the spheroid, well inside the winding factor.)
LINKS_SQL = """
SELECT CASE WHEN (a.dist_m, a.marker_id) > (b.dist_m, b.marker_id) THEN a.marker_id ELSE b.marker_id END AS child,
       CASE WHEN (a.dist_m, a.marker_id) > (b.dist_m, b.marker_id) THEN b.marker_id ELSE a.marker_id END AS parent,
       l.link_m,
       ceil(l.link_m * (CAST(:unit_costs AS bigint[]))[GREATEST(a.terrain, b.terrain)] / 1000
            / CAST(:rounding AS numeric)) * CAST(:rounding AS numeric) AS link_cost
FROM plan_candidate a
JOIN plan_candidate b ON a.marker_id < b.marker_id AND a.province = b.province
     AND b.geom && ST_Expand(a.geom, :radius / (111320 * cos(radians(ST_Y(a.geom)))), :radius / 110540.0)
CROSS JOIN LATERAL (SELECT round((ST_Distance(a.geom::geography, b.geom::geography, false)
                                  * CAST(:winding AS numeric))::numeric, 1) AS link_m) l
WHERE ST_DWithin(a.geom::geography, b.geom::geography, :radius, false)
"""


@dataclass
class Candidate:
    marker_id: int
    number: str
    segment: str
    province: str
    post_id: int | None
    post_name: str | None
    lon: float
    lat: float
    distance_m: Decimal
    new_road_m: Decimal
    cost_vnd: int
    travel_m: Decimal | None
    travel_method: str
    score: Decimal
    nearest: dict[str, Any]
    raw: Mapping[str, Any]  # the scored row: raw values, normalised factors, points
    weights: Weights
    radius_m: float
    travel_cap_m: float = 30_000.0
    rank: int = 0

    @property
    def score_cents(self) -> int:
        return int(self.score * 100)

    def breakdown(self, lang: str = "vi") -> list[dict[str, Any]]:
        r = self.raw
        out = []
        for f in FACTORS:
            out.append({
                "factor": f,
                "label": LABELS[f][0 if lang == "vi" else 1],
                "value": _value(f, r, self),
                "normalised": float(r[f"n_{f}"]),
                "weight": float(getattr(self.weights, f)),
                "points": float(r[f"p_{f}"]),
                "reason": reason(f, self, lang),
            })
        return out

    def public(self, lang: str = "vi") -> dict[str, Any]:
        return {
            "rank": self.rank, "marker_id": self.marker_id, "number": self.number,
            "segment": self.segment, "province": self.province, "post_id": self.post_id,
            "post_name": self.post_name, "lon": self.lon, "lat": self.lat,
            "distance_to_network_m": float(self.distance_m), "nearest_network": self.nearest,
            "new_road_m": float(self.new_road_m), "cost_vnd": self.cost_vnd,
            "travel_m": None if self.travel_m is None else float(self.travel_m),
            "travel_method": self.travel_method, "score": float(self.score),
            "breakdown": self.breakdown(lang),
        }


def _value(f: str, r: dict, c: Candidate):
    return {
        "distance": float(c.distance_m), "terrain": r["terrain"], "requested": r["requested"],
        "people": int(r["people"]), "pairs": int(r["pairs"]),
        "inspection": r["days_since"], "travel": None if c.travel_m is None else float(c.travel_m),
    }[f]


def _km(metres, lang: str) -> str:
    s = f"{float(metres) / 1000:.1f}"
    return s.replace(".", ",") if lang == "vi" else s


def reason(f: str, c: Candidate, lang: str = "vi") -> str:
    """One line a planner can read out: why this factor gave these points."""
    r, vi = c.raw, lang == "vi"
    radius = _km(c.radius_m, lang)
    if f == "distance":
        what = c.nearest["label"] if c.nearest["kind"] == "network" else (
            f"đường nhánh {c.nearest['label']}" if vi else f"branch road {c.nearest['label']}")
        return (f"Cách mạng đường {_km(c.distance_m, lang)} km (gần nhất: {what})" if vi
                else f"{_km(c.distance_m, lang)} km from the road network (nearest: {what})")
    if f == "terrain":
        return f"Địa hình cấp {r['terrain']}/5" if vi else f"terrain class {r['terrain']} of 5"
    if f == "requested":
        if r["requested"]:
            return "Đồn biên phòng đã đề nghị làm đường" if vi else "the post asked for this road"
        return "Chưa có đề nghị của đồn" if vi else "no request from the post"
    if f == "people":
        return (f"{r['people']:,} người ở {r['villages']} bản Việt Nam trong bán kính {radius} km".replace(",", ".")
                if vi else f"{r['people']:,} people in {r['villages']} Vietnamese village(s) within {radius} km")
    if f == "pairs":
        return (f"{r['pairs']} cặp bản kết nghĩa trong bán kính {radius} km" if vi
                else f"{r['pairs']} twinned village pair(s) within {radius} km")
    if f == "inspection":
        if r["last_inspected_on"] is None:
            return "Chưa ghi nhận lần kiểm tra nào" if vi else "no inspection on record"
        day = r["last_inspected_on"]
        return (f"{r['days_since']} ngày kể từ lần kiểm tra {day:%d/%m/%Y}" if vi
                else f"{r['days_since']} days since the inspection of {day:%Y-%m-%d}")
    post = c.post_name or ""
    return {
        "network": (f"{_km(c.travel_m or 0, lang)} km từ {post} theo mạng đường" if vi
                    else f"{_km(c.travel_m or 0, lang)} km from {post} over the network"),
        "straight_line": (f"{_km(c.travel_m or 0, lang)} km từ {post} theo đường chim bay (chưa có mạng đường)"
                          if vi else f"{_km(c.travel_m or 0, lang)} km from {post} as the crow flies (no network)"),
        "no_route": (f"Không có đường nối từ {post} trong phạm vi {_km(c.travel_cap_m, lang)} km trên mạng đường"
                     if vi else f"no route from {post} within {_km(c.travel_cap_m, lang)} km over the network"),
        "no_post": "Chưa giao đồn phụ trách" if vi else "no responsible post",
    }[c.travel_method]


def _weights(update: WeightsUpdate | None, cfg: PlannerSettings) -> Weights:
    return update.apply(cfg.weights) if update else cfg.weights


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

    cfg = cfg or get_planner_settings()
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
    rows = conn.execute(text(SCORE_SQL), {
        "routing": routing, "as_of": as_of, "winding": str(cfg.winding_factor),
        "cap_distance": cfg.distance_cap_m, "cap_people": cfg.people_cap, "cap_pairs": cfg.pairs_cap,
        "cap_days": cfg.inspection_cap_days, "cap_travel": cfg.travel_cap_m,
        "unit_costs": [cfg.unit_cost_per_km[k] for k in range(1, 6)],
        "rounding": cfg.cost_rounding_vnd,
        **{f"w_{f}": getattr(weights, f) for f in FACTORS},
    }).mappings().all()
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
    cfg = cfg or get_planner_settings()
    check_province(conn, province)
    routing = prepare(conn, province, cfg.min_distance_m if min_distance_m is None else min_distance_m, cfg)
    return scored(conn, routing, _weights(weights, cfg), as_of or date.today(), cfg)


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


# ---------------------------------------------------------------------------------------
# The budget plan: exact (MILP) and greedy, on the same options
# ---------------------------------------------------------------------------------------


@dataclass
class Problem:
    """Markers with a score (integer hundredths) and the cost of their own road; links
    (child, parent, cost): the child may be served by extending the parent's road."""

    score: list[int]
    cost: list[int]
    province: list[str]
    budget: int
    caps: dict[str, int] = field(default_factory=dict)
    must: list[int] = field(default_factory=list)
    links: list[tuple[int, int, int]] = field(default_factory=list)


@dataclass
class Selection:
    method: str
    status: str
    chosen: dict[int, tuple[int | None, int]]  # index -> (parent index or None, cost)
    seconds: float
    bound: int | None = None  # no plan can score more (hundredths): the LP relaxation

    def total_cost(self) -> int:
        return sum(c for _, c in self.chosen.values())

    def total_score(self, p: Problem) -> int:
        return sum(p.score[i] for i in self.chosen)


def _check(p: Problem, sel: Selection) -> None:
    """Exact integer check of a selection against the budget, caps and must-includes (the
    solver works in floating point: this guards the whole-đồng arithmetic)."""
    if sel.status == "infeasible":
        return
    spent: dict[str, int] = defaultdict(int)
    for i, (_, c) in sel.chosen.items():
        spent[p.province[i]] += c
    problems = []
    if sum(spent.values()) > p.budget:
        problems.append("over budget")
    problems += [f"over the cap of {prov}" for prov, cap in p.caps.items() if spent.get(prov, 0) > cap]
    if any(parent is not None and parent not in sel.chosen for parent, _ in sel.chosen.values()):
        problems.append("extends a road that is not chosen")
    if not all(i in sel.chosen for i in p.must):
        problems.append("misses a must-include marker")
    if problems:
        raise RuntimeError(f"the {sel.method} plan is inconsistent: {', '.join(problems)}")


@dataclass
class _Model:
    """The MILP in minimisation form: r_i (marker i gets its own road), then y_l (link l:
    its child is reached by extending its parent's road)."""

    c: np.ndarray
    A: Any  # scipy.sparse CSR
    row_lo: np.ndarray
    row_hi: np.ndarray
    lb: np.ndarray
    ub: np.ndarray


def _model(p: Problem) -> _Model:
    from scipy.sparse import coo_array

    n, nl = len(p.score), len(p.links)
    nv = n + nl
    score = np.asarray(p.score, dtype=float)
    c = -np.concatenate([score, score[[l[0] for l in p.links]]]) if nl else -score
    cost = np.concatenate([np.asarray(p.cost, float), np.asarray([l[2] for l in p.links], float)]) / COST_SCALE
    kids: dict[int, list[int]] = defaultdict(list)  # marker -> the links that would serve it
    for k, (child, _, _) in enumerate(p.links):
        kids[child].append(n + k)
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    lo: list[float] = []
    hi: list[float] = []

    def row(entries: list[tuple[int, float]], low: float, high: float) -> None:
        r = len(lo)
        for col, val in entries:
            rows.append(r); cols.append(col); vals.append(val)
        lo.append(low); hi.append(high)

    served = {i: [(i, 1.0)] + [(k, 1.0) for k in ks] for i, ks in kids.items()}
    for i, entries in served.items():  # at most one way to serve a marker
        row(entries, -np.inf, 1.0)
    for k, (_, parent, _) in enumerate(p.links):  # an extension needs its parent served
        row([(n + k, 1.0)] + [(j, -1.0) for j, _ in served.get(parent, [(parent, 1.0)])], -np.inf, 0.0)
    for prov, limit in [(None, p.budget)] + sorted(p.caps.items()):
        owner = list(range(n)) + [l[0] for l in p.links]
        row([(j, cost[j]) for j in range(nv) if prov is None or p.province[owner[j]] == prov],
            -np.inf, limit / COST_SCALE)
    lb = np.zeros(nv)
    for i in p.must:
        if i in served:
            row(served[i], 1.0, np.inf)
        else:
            lb[i] = 1.0
    A = coo_array((vals, (rows, cols)), shape=(len(lo), nv)).tocsr()
    return _Model(c, A, np.asarray(lo), np.asarray(hi), lb, np.ones(nv))


COST_SCALE = 1e6  # costs in millions of đồng keep the coefficients well scaled
CORE_SIZE = 200


def _milp(m: _Model, lb: np.ndarray, ub: np.ndarray, time_limit_s: float):
    from scipy.optimize import Bounds, LinearConstraint, milp

    return milp(m.c, integrality=np.ones(len(m.c)), bounds=Bounds(lb, ub),
                constraints=LinearConstraint(m.A, m.row_lo, m.row_hi),
                options={"time_limit": max(time_limit_s, 0.1), "mip_rel_gap": 0.0, "presolve": True})


def solve_optimal(p: Problem, time_limit_s: float = 30.0) -> Selection:
    """Maximise the total score exactly with HiGHS (scipy.optimize.linprog / milp).

    Variables: r_i (marker i gets its own road from the network) and y_l (link l: marker i
    is reached by extending the road of its chosen neighbour j). At most one way per
    marker; y_l ≤ (j served); costs within the budget and each province cap; must-include
    markers served. Scores are whole hundredths, so the objective is integral.

    A large instance is a knapsack whose LP relaxation is very tight, and proving the last
    hundredth by branch and bound alone is slow. So: (1) solve the LP relaxation, giving the
    bound and each variable's reduced cost; (2) solve the MILP on the *core* — the variables
    with the smallest reduced costs — with the others fixed at their LP values, giving a
    near-optimal incumbent; (3) a variable whose reduced cost exceeds (incumbent − LP bound
    − 1) keeps its LP value in every strictly better plan (reduced-cost fixing), so if all
    the others lie in the core, the incumbent is optimal; otherwise the core is doubled and
    solved again. Each round keeps or improves the incumbent, so the free set only shrinks
    and the rounds end (at worst with every variable in the core); the answer is exact."""
    from scipy.optimize import linprog

    started = time.perf_counter()
    n = len(p.score)
    if n == 0:
        return Selection("optimal", "optimal", {}, 0.0)
    m = _model(p)
    nv = len(m.c)
    deadline = started + time_limit_s
    A_ub, b_ub = _stack(m)
    # HiGHS' presolve takes seconds on a 10,000-column knapsack row; the LP itself does not.
    lp = linprog(m.c, A_ub=A_ub, b_ub=b_ub, bounds=np.column_stack([m.lb, m.ub]), method="highs-ds",
                 options={"presolve": False})
    if lp.status == 2:
        return Selection("optimal", "infeasible", {}, round(time.perf_counter() - started, 3))
    x_lp = lp.x
    rc = np.abs(lp.lower.marginals + lp.upper.marginals)
    at = np.round(x_lp)
    fractional = np.abs(x_lp - at) > 1e-6
    res, status = None, "optimal"
    if nv > CORE_SIZE:
        by_rc = np.argsort(rc, kind="stable")
        core = np.zeros(nv, dtype=bool)
        core[by_rc[:CORE_SIZE]] = True
        core |= fractional
        while True:
            res = _milp(m, np.where(core, m.lb, at), np.where(core, m.ub, at), deadline - time.perf_counter())
            if res.status != 0:
                res = None  # let the full problem decide (infeasible, or out of time)
                break
            # every strictly better plan keeps the variables outside `free` at their LP values
            slack = float(res.fun) - float(lp.fun) - 1.0
            free = (rc <= slack + 1e-6 * max(1.0, abs(float(lp.fun)))) | fractional
            if not free[~core].any():
                break  # the core held every variable that could still improve: optimal
            # widen the core (doubling it) and solve again: the incumbent can only improve,
            # so the free set can only shrink
            core[by_rc[:2 * int(core.sum())]] = True
    if res is None:
        res = _milp(m, m.lb, m.ub, deadline - time.perf_counter())
        status = "optimal" if res.status == 0 else "time_limit"
    seconds = round(time.perf_counter() - started, 3)
    if res.x is None:
        return Selection("optimal", "infeasible" if res.status == 2 else "no_solution", {}, seconds)
    x = np.round(res.x).astype(int)
    chosen: dict[int, tuple[int | None, int]] = {i: (None, p.cost[i]) for i in range(n) if x[i]}
    for k, (child, parent, lcost) in enumerate(p.links):
        if x[n + k]:
            chosen[child] = (parent, lcost)
    sel = Selection("optimal", status, _cheapest(p, chosen), seconds, math.floor(-float(lp.fun) + 1e-6))
    _check(p, sel)
    return sel


def _stack(m: _Model):
    """The rows as A_ub x <= b_ub (a >= row is negated)."""
    from scipy.sparse import vstack

    upper = np.isfinite(m.row_hi)
    lower = np.isfinite(m.row_lo)
    A = vstack([m.A[upper], -m.A[lower]]).tocsr()
    return A, np.concatenate([m.row_hi[upper], -m.row_lo[lower]])


def _cheapest(p: Problem, chosen: dict[int, tuple[int | None, int]]) -> dict[int, tuple[int | None, int]]:
    """Same markers, each reached the cheapest way the chosen set allows (ties in score
    leave the solver free to pay more than needed). Links only go towards the network, so
    re-pointing a marker never creates a cycle."""
    options: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for child, parent, lcost in p.links:
        options[child].append((lcost, parent))
    out = dict(chosen)
    for i in chosen:
        best = min([(p.cost[i], -1)] + [o for o in options[i] if o[1] in chosen])
        out[i] = (None if best[1] < 0 else best[1], best[0])
    return out


def solve_greedy(p: Problem) -> Selection:
    """Best score per đồng first, skipping what no longer fits; must-include markers are
    taken first, each by its cheapest available option. Extensions become available once
    their parent is chosen."""
    started = time.perf_counter()
    n = len(p.score)
    children: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for child, parent, lcost in p.links:
        children[parent].append((child, lcost))
    chosen: dict[int, tuple[int | None, int]] = {}
    spent, by_prov = 0, defaultdict(int)

    def fits(i: int, cost: int) -> bool:
        prov = p.province[i]
        return spent + cost <= p.budget and (prov not in p.caps or by_prov[prov] + cost <= p.caps[prov])

    heap: list[tuple[float, int, int, int, int]] = []

    def push(i: int, cost: int, parent: int) -> None:  # parent -1: own road
        ratio = p.score[i] / cost if cost else math.inf
        heapq.heappush(heap, (-ratio, -p.score[i], cost, i, parent))

    def take(i: int, parent: int | None, cost: int) -> None:
        nonlocal spent
        chosen[i] = (parent, cost)
        spent += cost
        by_prov[p.province[i]] += cost
        for child, lcost in children[i]:
            if child not in chosen:
                push(child, lcost, i)

    status = "greedy"
    links_of: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for child, parent, lcost in p.links:
        links_of[child].append((parent, lcost))
    for i in p.must:
        options = [(p.cost[i], None)] + [(lc, par) for par, lc in links_of[i] if par in chosen]
        cost, parent = min(options, key=lambda o: (o[0], -1 if o[1] is None else o[1]))
        if not fits(i, cost):
            status = "infeasible"
            break
        take(i, parent, cost)
    if status != "infeasible":
        for i in range(n):
            if i not in chosen:
                push(i, p.cost[i], -1)
        while heap:
            _, _, cost, i, parent = heapq.heappop(heap)
            if i in chosen or not fits(i, cost):
                continue
            take(i, None if parent < 0 else parent, cost)
    sel = Selection("greedy", status, chosen, round(time.perf_counter() - started, 3))
    _check(p, sel)
    return sel


@dataclass
class Plan:
    request: PlanCreate
    weights: Weights
    as_of: date
    ranked: list[Candidate]
    problem: Problem
    optimal: Selection
    greedy: Selection
    link_m: dict[tuple[int, int], Decimal]

    def selection_public(self, sel: Selection) -> dict[str, Any]:
        p, ranked = self.problem, self.ranked
        chosen = []
        for i, (parent, cost) in sorted(sel.chosen.items(), key=lambda kv: ranked[kv[0]].rank):
            c = ranked[i]
            road_m = c.new_road_m if parent is None else self.link_m[(i, parent)]
            chosen.append({
                "marker_id": c.marker_id, "number": c.number, "province": c.province,
                "score": float(c.score), "cost_vnd": cost,
                "connects_to": "network" if parent is None else f"marker:{ranked[parent].marker_id}",
                "connects_to_number": None if parent is None else ranked[parent].number,
                "road_m": float(road_m)})
        by_prov: dict[str, int] = defaultdict(int)
        for i, (_, cost) in sel.chosen.items():
            by_prov[p.province[i]] += cost
        total = sel.total_cost()
        return {
            "method": sel.method, "status": sel.status, "markers": len(sel.chosen),
            "total_score": round(sel.total_score(p) / 100, 2), "total_cost_vnd": total,
            "remaining_vnd": p.budget - total, "by_province": dict(sorted(by_prov.items())),
            "upper_bound_score": None if sel.bound is None else round(sel.bound / 100, 2),
            "seconds": sel.seconds, "chosen": chosen,
        }

    def public(self, lang: str = "vi", ranked_limit: int | None = None) -> dict[str, Any]:
        opt, gr = self.selection_public(self.optimal), self.selection_public(self.greedy)
        ranked = self.ranked if ranked_limit is None else self.ranked[:ranked_limit]
        return {
            "budget_vnd": self.request.budget, "province": self.request.province,
            "province_caps": dict(self.request.province_caps),
            "must_include": list(self.request.must_include), "as_of": self.as_of,
            "weights": self.weights.model_dump(), "candidates": len(self.ranked),
            "optimal": opt, "greedy": gr,
            "score_gain_over_greedy": round(opt["total_score"] - gr["total_score"], 2),
            "ranked": [c.public(lang) for c in ranked],
        }

    def role(self, i: int) -> dict[str, Any]:
        """How candidate i fares in each answer."""
        out = {}
        for name, sel in (("optimal", self.optimal), ("greedy", self.greedy)):
            if i in sel.chosen:
                parent, cost = sel.chosen[i]
                out[name] = {"cost_vnd": cost,
                             "connects_to": None if parent is None else self.ranked[parent].marker_id,
                             "connects_to_number": None if parent is None else self.ranked[parent].number}
            else:
                out[name] = None
        return out


def shared_road_links(conn: Connection, ranked: list[Candidate], cfg: PlannerSettings
                      ) -> tuple[list[tuple[int, int, int]], dict[tuple[int, int], Decimal]]:
    """(child, parent, cost) options among the candidates in ``plan_candidate`` (indices
    into ``ranked``), and each link's road length.

    Offering every neighbour as a parent makes the relaxation weak (a marker "half" served
    from two half-built neighbours) and the exact plan slow, so each marker may continue
    only from the neighbour it is cheapest to extend from, and only when that is cheaper
    than its own road."""
    if len(ranked) < 2:
        return [], {}
    index = {c.marker_id: i for i, c in enumerate(ranked)}
    conn.execute(text("CREATE INDEX IF NOT EXISTS plan_candidate_geom_idx ON plan_candidate USING gist (geom)"))
    conn.execute(text("ANALYZE plan_candidate"))
    cheapest: dict[int, tuple[int, int, Decimal]] = {}
    for child, parent, metres, lcost in conn.execute(text(LINKS_SQL), {
            "radius": cfg.shared_road_radius_m, "winding": str(cfg.winding_factor),
            "unit_costs": [cfg.unit_cost_per_km[k] for k in range(1, 6)],
            "rounding": cfg.cost_rounding_vnd}):
        if child not in index or parent not in index:
            continue
        ci, pi, lcost = index[child], index[parent], int(lcost)
        if lcost < ranked[ci].cost_vnd and (ci not in cheapest or (lcost, pi) < cheapest[ci][:2]):
            cheapest[ci] = (lcost, pi, metres)
    links = sorted((ci, pi, lcost) for ci, (lcost, pi, _) in cheapest.items())
    return links, {(ci, pi): metres for ci, (_, pi, metres) in cheapest.items()}


def make_plan(conn: Connection, req: PlanCreate, cfg: PlannerSettings | None = None) -> Plan:
    """Candidates, scores and costs for the request's area, then the exact and greedy plans."""
    cfg = cfg or get_planner_settings()
    check_province(conn, req.province)
    for prov in req.province_caps:
        check_province(conn, prov, "province_caps names province")
        if req.province is not None and prov != req.province:
            raise InvalidInput(f"province_caps names {prov!r}, but the plan is for {req.province!r} only")
    min_d = cfg.min_distance_m if req.min_distance_m is None else req.min_distance_m
    weights = _weights(req.weights, cfg)
    as_of = req.as_of or date.today()
    routing = prepare(conn, req.province, min_d, cfg)
    ranked = scored(conn, routing, weights, as_of, cfg)
    index = {c.marker_id: i for i, c in enumerate(ranked)}
    missing = [m for m in req.must_include if m not in index]
    if missing:
        reasons = "; ".join(why_not_candidate(conn, m, req.province, min_d, cfg) for m in missing)
        raise InvalidInput(f"must_include lists markers that are not candidates: {reasons}")

    links, link_m = shared_road_links(conn, ranked, cfg) if req.shared_roads else ([], {})
    problem = Problem(
        score=[c.score_cents for c in ranked], cost=[c.cost_vnd for c in ranked],
        province=[c.province for c in ranked], budget=req.budget, caps=dict(req.province_caps),
        must=[index[m] for m in req.must_include], links=links)
    optimal = solve_optimal(problem, cfg.solver_time_limit_s)
    if optimal.status == "infeasible":
        raise InvalidInput(_infeasible_message(problem, ranked, req))
    greedy = solve_greedy(problem)
    return Plan(req, weights, as_of, ranked, problem, optimal, greedy, link_m)


def _infeasible_message(p: Problem, ranked: list[Candidate], req: PlanCreate) -> str:
    cheapest = defaultdict(int)
    best = {i: p.cost[i] for i in p.must}
    for child, _, lcost in p.links:
        if child in best:
            best[child] = min(best[child], lcost)
    for i, c in best.items():
        cheapest[p.province[i]] += c
    numbers = ", ".join(ranked[i].number for i in p.must)
    total = sum(cheapest.values())
    parts = [f"the must-include markers ({numbers}) cost at least {total:,} VND together"]
    parts.append(f"the budget is {p.budget:,} VND")
    for prov, cap in sorted(p.caps.items()):
        if cheapest.get(prov, 0) > cap:
            parts.append(f"the cap for {prov} is {cap:,} VND but its must-include markers cost "
                         f"at least {cheapest[prov]:,} VND")
    return "no plan satisfies the constraints: " + "; ".join(parts) + \
        ". Raise the budget or cap, or drop some must-include markers."


# ---------------------------------------------------------------------------------------
# Exports
# ---------------------------------------------------------------------------------------

CSV_COLUMNS = ["rank", "marker_id", "number", "segment", "province", "post", "lon", "lat",
               "distance_to_network_m", "new_road_m", "cost_vnd", "travel_m", "travel_method", "score",
               *[f"points_{f}" for f in FACTORS], "optimal", "optimal_cost_vnd", "optimal_connects_to",
               "greedy", "greedy_cost_vnd", "reasons"]


def _row(c: Candidate, lang: str, role: dict | None = None) -> dict[str, Any]:
    row = {
        "rank": c.rank, "marker_id": c.marker_id, "number": c.number, "segment": c.segment,
        "province": c.province, "post": c.post_name or "", "lon": c.lon, "lat": c.lat,
        "distance_to_network_m": c.distance_m, "new_road_m": c.new_road_m, "cost_vnd": c.cost_vnd,
        "travel_m": "" if c.travel_m is None else c.travel_m, "travel_method": c.travel_method,
        "score": c.score, **{f"points_{f}": c.raw[f"p_{f}"] for f in FACTORS},
        "reasons": "; ".join(f"{b['label']}: {b['points']:g} ({b['reason']})" for b in c.breakdown(lang)),
    }
    role = role or {"optimal": None, "greedy": None}
    opt, gr = role["optimal"], role["greedy"]
    row.update({
        "optimal": "yes" if opt else "no", "optimal_cost_vnd": opt["cost_vnd"] if opt else "",
        "optimal_connects_to": "" if not opt else ("network" if opt["connects_to"] is None
                                                    else f"marker:{opt['connects_to']}"),
        "greedy": "yes" if gr else "no", "greedy_cost_vnd": gr["cost_vnd"] if gr else "",
    })
    return row


def to_csv(ranked: list[Candidate], plan: Plan | None = None, lang: str = "vi") -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for i, c in enumerate(ranked):
        w.writerow(_row(c, lang, plan.role(i) if plan else None))
    return buf.getvalue()


def to_geojson(ranked: list[Candidate], plan: Plan | None = None, lang: str = "vi") -> dict[str, Any]:
    """Candidates as points (with score, cost, breakdown, and their part in each plan) and
    the new road of every chosen marker as a line (to the network, or to its parent)."""
    features = []
    for i, c in enumerate(ranked):
        props = c.public(lang)
        props.pop("lon"); props.pop("lat")
        if plan:
            props["plan"] = plan.role(i)
        features.append({"type": "Feature", "id": c.marker_id, "properties": {"feature": "candidate", **props},
                         "geometry": {"type": "Point", "coordinates": [c.lon, c.lat]}})
    if plan:
        for name, sel in (("optimal", plan.optimal), ("greedy", plan.greedy)):
            for i, (parent, cost) in sel.chosen.items():
                c = ranked[i]
                end = ([c.nearest["lon"], c.nearest["lat"]] if parent is None
                       else [ranked[parent].lon, ranked[parent].lat])
                features.append({"type": "Feature", "properties": {
                    "feature": "new_road", "plan": name, "marker_id": c.marker_id, "number": c.number,
                    "cost_vnd": cost,
                    "connects_to": "network" if parent is None else f"marker:{ranked[parent].marker_id}"},
                    "geometry": {"type": "LineString", "coordinates": [[c.lon, c.lat], end]}})
    out: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if plan:
        summary = plan.public(lang, ranked_limit=0)
        summary.pop("ranked")
        out["plan"] = json.loads(json.dumps(summary, default=str))
    return out
