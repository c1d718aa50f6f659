"""The transparent score: each factor 0..1 times its weight, and the breakdown and reasons
a planner reads; the cost of each candidate's own road.

``SCORE_SQL`` scores the rows of the session's ``plan_candidate`` / ``plan_post`` tables
(filled by ``candidates.prepare``, which runs it); points are rounded to 0.01 before they
are summed, so the breakdown adds up to the score exactly. Nothing here talks to the
database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from geo_api.domain.planner.settings import PlannerSettings
from geo_api.schemas.planner import FACTORS, Weights

LABELS = {
    "distance": ("Khoảng cách tới mạng đường", "Distance to the road network"),
    "terrain": ("Độ khó địa hình", "Terrain difficulty"),
    "requested": ("Đồn biên phòng đề nghị", "Requested by the post"),
    "people": ("Dân cư các bản lân cận", "People in nearby villages"),
    "pairs": ("Cặp bản kết nghĩa lân cận", "Twinned village pairs nearby"),
    "inspection": ("Thời gian từ lần kiểm tra gần nhất", "Time since the last inspection"),
    "travel": ("Quãng đường từ đồn", "Travel from the post"),
}

# Every factor measures need. Cost of a new road: the shortest line to the network × the
# winding factor, × the unit cost per km of the marker's terrain class, rounded up (NUMERIC,
# so whole đồng stay exact).
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


def score_params(routing: bool, weights: Weights, as_of: date, cfg: PlannerSettings) -> dict[str, Any]:
    """The parameters of ``SCORE_SQL``."""
    return {
        "routing": routing, "as_of": as_of, "winding": str(cfg.winding_factor),
        "cap_distance": cfg.distance_cap_m, "cap_people": cfg.people_cap, "cap_pairs": cfg.pairs_cap,
        "cap_days": cfg.inspection_cap_days, "cap_travel": cfg.travel_cap_m,
        "unit_costs": [cfg.unit_cost_per_km[k] for k in range(1, 6)],
        "rounding": cfg.cost_rounding_vnd,
        **{f"w_{f}": getattr(weights, f) for f in FACTORS},
    }


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
