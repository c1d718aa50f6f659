"""Candidates and plans as CSV and GeoJSON."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from geo_api.domain.planner.plan import Plan
from geo_api.domain.planner.scoring import Candidate
from geo_api.schemas.planner import FACTORS

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
