"""Shared roads: a candidate may be reached by extending the road of a neighbouring
candidate (same province, within ``shared_road_radius_m``) instead of its own road from
the network; the shared part is then paid once. A candidate only hangs off a neighbour
closer to the network, so the roads stay a forest."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Connection, text

from geo_api.domain.planner.scoring import Candidate
from geo_api.domain.planner.settings import PlannerSettings

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
