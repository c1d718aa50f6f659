"""The planner: candidates, scores with reasons, costs, the exact and greedy plans, the
API, the map page and the CLI.

Most tests run on a small hand-made world (its own database) whose answers are known:
a straight road along latitude 21° from 105.00°E to 105.20°E, an isolated stretch at
105.40°E, a completed branch road at 105.30°E, and markers placed north of them at
known distances (0.01° of latitude ≈ 1,107 m there).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import subprocess
import sys
from datetime import date
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from geo_api import db
from geo_api.domain import network, planner
from geo_api.errors import InvalidInput, NotFound, PreconditionFailed
from geo_api.schemas.planner import PlanCreate, WeightsUpdate
from support.plans import brute_force

AS_OF = date(2026, 6, 30)
CFG = planner.PlannerSettings()
UNIT = CFG.unit_cost_per_km
M = 1_000_000

# ---------------------------------------------------------------------------------------
# The hand-made world
# ---------------------------------------------------------------------------------------

WORLD_SQL = """
INSERT INTO border_segment (code, neighbour_iso3, name_vi, name_en, geom) VALUES
  ('VN-CN', 'CHN', 'Biên giới Việt Nam - Trung Quốc', 'Viet Nam - China border',
   'SRID=4326;MULTILINESTRING((104.9 21.06, 105.6 21.06))');
INSERT INTO border_post (code, name, province, geom) VALUES
  ('BP-T-01', 'Đồn Biên phòng Thử 01', 'Tỉnh A', 'SRID=4326;POINT(105.0 21.0)'),
  ('BP-T-02', 'Đồn Biên phòng Thử 02', 'Tỉnh B', 'SRID=4326;POINT(105.05 20.98)');
INSERT INTO road_network (highway, surface, name, geom, imported_from) VALUES
  ('tertiary', 'asphalt', 'Đường thử', 'SRID=4326;LINESTRING(105.00 21.0, 105.05 21.0)', 'test'),
  ('tertiary', 'asphalt', 'Đường thử', 'SRID=4326;LINESTRING(105.05 21.0, 105.10 21.0)', 'test'),
  ('tertiary', 'asphalt', 'Đường thử', 'SRID=4326;LINESTRING(105.10 21.0, 105.15 21.0)', 'test'),
  ('tertiary', 'asphalt', 'Đường thử', 'SRID=4326;LINESTRING(105.15 21.0, 105.20 21.0)', 'test'),
  ('track', 'dirt', 'Đoạn rời', 'SRID=4326;LINESTRING(105.40 21.0, 105.42 21.0)', 'test');
INSERT INTO marker (segment_id, number, geom, province, post_id, access, terrain_difficulty,
                    requested_by_post, last_inspected_on) VALUES
  (1, '1',  'SRID=4326;POINT(105.05 21.0009)',  'Tỉnh A', 1, 'none', 3, false, NULL),       -- ~100 m
  (1, '2',  'SRID=4326;POINT(105.10 21.01)',    'Tỉnh A', 1, 'footpath', 5, true, '2025-06-30'),
  (1, '3',  'SRID=4326;POINT(105.15 21.02)',    'Tỉnh A', 1, 'none', 1, false, NULL),
  (1, '4',  'SRID=4326;POINT(105.15 21.023)',   'Tỉnh A', 1, 'none', 5, false, '2026-06-30'),
  (1, '5',  'SRID=4326;POINT(105.30 21.0202)',  'Tỉnh A', 1, 'earth', 3, false, NULL),       -- reached
  (1, '6',  'SRID=4326;POINT(105.18 21.01)',    'Tỉnh A', 1, 'earth', 3, false, NULL),       -- funded
  (1, '7',  'SRID=4326;POINT(105.02 21.01)',    'Tỉnh A', 1, 'earth', 3, true, NULL),        -- proposed
  (1, '8',  'SRID=4326;POINT(105.12 21.03)',    'Tỉnh A', 1, 'concrete', 3, false, NULL),
  (1, '9',  'SRID=4326;POINT(105.3014 21.01)',  'Tỉnh A', 1, 'none', 3, false, NULL),       -- ~145 m from built
  (1, '10', 'SRID=4326;POINT(105.304 21.01)',   'Tỉnh A', 1, 'none', 3, false, NULL),       -- ~416 m from built
  (1, '11', 'SRID=4326;POINT(105.41 21.01)',    'Tỉnh A', 1, 'none', 3, false, NULL),       -- isolated road
  (1, '12', 'SRID=4326;POINT(105.05 20.99)',    'Tỉnh B', 2, 'none', 2, false, NULL),
  (1, '13', 'SRID=4326;POINT(105.07 21.015)',   'Tỉnh A', NULL, 'none', 3, false, NULL);   -- no post
INSERT INTO branch_road (code, name, post_id, province, status, geom, completed_on) VALUES
  ('DN-T-0001', 'Đường nhánh lên mốc 5', 1, 'Tỉnh A', 'completed',
   'SRID=4326;LINESTRING(105.30 21.0, 105.30 21.02)', '2024-01-01'),
  ('DN-T-0002', 'Đường nhánh lên mốc 6', 1, 'Tỉnh A', 'funded',
   'SRID=4326;LINESTRING(105.18 21.0, 105.18 21.009)', NULL),
  ('DN-T-0003', 'Đường nhánh lên mốc 7', 1, 'Tỉnh A', 'proposed',
   'SRID=4326;LINESTRING(105.02 21.0, 105.02 21.009)', NULL);
INSERT INTO road_marker (road_id, marker_id) VALUES (1, 5), (2, 6), (3, 7);
INSERT INTO village (code, name, country, admin1, population, geom) VALUES
  ('V-T-1', 'Bản Thử', 'VNM', 'Tỉnh A', 1000, 'SRID=4326;POINT(105.10 21.03)'),
  ('V-T-2', 'Bản Bên Kia', 'CHN', 'Guangxi', 500, 'SRID=4326;POINT(105.10 21.07)');
INSERT INTO village_pair (vn_village_id, foreign_village_id, post_id) VALUES (1, 2, 1);
"""
CANDIDATES = {"2", "3", "4", "7", "10", "11", "12", "13"}


@pytest.fixture(scope="module")
def world_url(fresh_database) -> str:
    url = fresh_database()
    db.upgrade(url)
    eng = create_engine(url)
    with eng.begin() as conn:
        for statement in WORLD_SQL.split(";\n"):
            if statement.strip():
                conn.execute(text(statement))
    eng.dispose()
    return url


@pytest.fixture(scope="module")
def world(world_url):
    eng = create_engine(world_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def api(world_url):
    from geo_api.main import create_app
    from support.api_client import account_headers

    with TestClient(create_app(world_url)) as c:
        c.headers.update(account_headers(world_url, "planner", username="ke-hoach-thu"))
        yield c


def ranked(world, **kw) -> dict[str, planner.Candidate]:
    with world.connect() as conn:
        return {c.number: c for c in planner.candidates(conn, as_of=AS_OF, **kw)}


def expected_cost(metres: Decimal, terrain: int) -> int:
    return math.ceil(metres * UNIT[terrain] / 1000 / M) * M


def test_candidates_follow_the_rules(world):
    got = ranked(world)
    assert set(got) == CANDIDATES
    # ~100 m from the road; a completed road reaches 5; 6 is funded; 8 has concrete
    # access; 9 is 145 m from a built branch road, which counts as network.
    assert got["7"].nearest["kind"] == "network"  # a proposed road does not stop a marker
    far = got["10"]
    assert far.nearest["kind"] == "branch_road" and far.nearest["label"] == "DN-T-0001"
    assert float(far.distance_m) == pytest.approx(415.9, abs=1)
    assert set(ranked(world, min_distance_m=50)) == CANDIDATES | {"1", "9"}
    assert set(ranked(world, province="Tỉnh B")) == {"12"}
    assert [c.rank for c in sorted(got.values(), key=lambda c: c.rank)] == list(range(1, len(got) + 1))
    assert sorted(got.values(), key=lambda c: c.rank)[0].score == max(c.score for c in got.values())


def test_distance_point_and_cost(world):
    c = ranked(world)["2"]
    assert float(c.distance_m) == pytest.approx(1107.2, abs=1)
    assert (c.nearest["lon"], c.nearest["lat"]) == pytest.approx((105.10, 21.0), abs=1e-6)
    assert c.new_road_m == (c.distance_m * Decimal("1.3")).quantize(Decimal("0.1"))
    assert isinstance(c.cost_vnd, int) and c.cost_vnd == expected_cost(c.new_road_m, 5)
    assert c.cost_vnd == 1_944_000_000  # 1107.2 m × 1.3 × 1.35 billion/km, rounded up


def test_score_breakdown_adds_up_and_explains(world):
    c = ranked(world)["2"]
    parts = {b["factor"]: b for b in c.breakdown("en")}
    assert list(parts) == ["distance", "terrain", "requested", "people", "pairs", "inspection", "travel"]
    assert parts["terrain"]["normalised"] == 1.0 and parts["terrain"]["points"] == 15.0
    assert parts["requested"]["points"] == 20.0 and parts["requested"]["value"] is True
    assert parts["people"]["value"] == 1000 and parts["people"]["normalised"] == 0.5   # 1000 / 2000
    assert parts["pairs"]["value"] == 1 and parts["pairs"]["normalised"] == 0.5         # 1 / 2
    assert parts["inspection"]["value"] == 365 and parts["inspection"]["normalised"] == 0.5  # 365 / 730
    assert parts["distance"]["normalised"] == pytest.approx(1107.2 / 5000, abs=1e-4)
    # travel: 2 edges of road from the post (10.4 km) + 1.1 km off the road
    assert c.travel_method == "network"
    assert float(c.travel_m) == pytest.approx(10_397 + 1_107, abs=5)
    for b in parts.values():
        assert b["points"] == round(b["normalised"] * b["weight"], 2)
    assert round(sum(b["points"] for b in parts.values()), 2) == float(c.score)
    assert "1.1 km from the road network" in parts["distance"]["reason"]
    assert "365 days since the inspection of 2025-06-30" in parts["inspection"]["reason"]
    vi = {b["factor"]: b for b in c.breakdown("vi")}
    assert vi["distance"]["reason"].startswith("Cách mạng đường 1,1 km")
    assert vi["requested"]["label"] == "Đồn biên phòng đề nghị"


def test_travel_without_a_route_or_a_post(world):
    got = ranked(world)
    iso = {b["factor"]: b for b in got["11"].breakdown("en")}["travel"]
    assert got["11"].travel_method == "no_route" and iso["normalised"] == 1.0
    assert "no route" in iso["reason"]
    nopost = {b["factor"]: b for b in got["13"].breakdown("en")}["travel"]
    assert got["13"].travel_method == "no_post" and nopost["points"] == 0.0
    # post 2 is 2.2 km south of the road, marker 12 1.1 km south of the same vertex
    assert float(got["12"].travel_m) == pytest.approx(2214 + 1107, abs=5)


def test_inspection_never_and_today(world):
    got = ranked(world)
    never = {b["factor"]: b for b in got["3"].breakdown("en")}["inspection"]
    assert never["normalised"] == 1.0 and never["reason"] == "no inspection on record"
    today = {b["factor"]: b for b in got["4"].breakdown("en")}["inspection"]
    assert today["value"] == 0 and today["points"] == 0.0


def test_weights_can_be_changed_per_request(world):
    only_requests = WeightsUpdate(distance=0, terrain=0, requested=100, people=0, pairs=0,
                                  inspection=0, travel=0)
    got = ranked(world, weights=only_requests)
    assert {n: float(c.score) for n, c in got.items() if c.score > 0} == {"2": 100.0, "7": 100.0}
    heavier = ranked(world, weights=WeightsUpdate(distance=100))
    base = ranked(world)
    assert heavier["3"].score > base["3"].score


def test_nearest_network_search_is_index_ordered(world):
    params = {"knn": 3, "routing": True, "radius": 5000.0, "province": None,
              "excluded": list(CFG.excluded_road_statuses), "min_distance": 200.0, "parts": 1, "part": 0}
    with world.connect() as conn:
        # tiny tables: make the planner show the plan it would pick for large ones
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        conn.execute(text("SET LOCAL enable_bitmapscan = off"))
        conn.execute(text("DROP TABLE IF EXISTS plan_candidate"))
        refresh = "\n".join(r[0] for r in conn.execute(text("EXPLAIN " + planner.REFRESH_SQL), params))
        search = "\n".join(r[0] for r in conn.execute(text("EXPLAIN " + planner.CANDIDATES_SQL), params))
    assert "Index Scan using road_network_geom_idx" in refresh
    assert "Order By: (geom <-> m.geom)" in refresh
    assert "Index Scan using branch_road_built_geom_idx" in search
    assert "Order By: (COALESCE(as_built_geom, geom) <-> m.geom)" in search


def current_access_rows(conn) -> dict[str, tuple]:
    """marker number -> (edge, metres) of the kept nearest-edge rows that are current."""
    return {r[0]: (r[1], round(r[2])) for r in conn.execute(text("""
        SELECT m.number, a.edge_id, a.dist_m FROM marker_network_access a
        JOIN marker m ON m.id = a.marker_id AND a.marker_xmin = m.xmin
        JOIN network_version v ON v.version = a.network_version"""))}


def test_kept_nearest_edges_follow_network_and_marker_changes(world):
    with world.connect() as conn:  # rolled back at the end: the world stays as it was
        def got() -> dict[str, planner.Candidate]:
            return {c.number: c for c in planner.candidates(conn, as_of=AS_OF)}

        before = got()
        kept = current_access_rows(conn)
        assert set(kept) == {str(n) for n in range(1, 14)} - {"8"}  # concrete access: not looked at
        assert kept["3"][1] == round(float(before["3"].distance_m))
        assert got().keys() == before.keys()  # reused: the same answer
        assert current_access_rows(conn) == kept

        # a new edge beside marker 3: 3 is reached, 4 (~343 m away) now measures to it
        new_edge = conn.execute(text("""
            INSERT INTO road_network (highway, geom, imported_from)
            VALUES ('track', 'SRID=4326;LINESTRING(105.149 21.0199, 105.151 21.0199)', 'test')
            RETURNING id""")).scalar_one()
        assert current_access_rows(conn) == {}  # all stale at once
        after = got()
        assert "3" not in after and after["4"].nearest["id"] == new_edge
        assert float(after["4"].distance_m) == pytest.approx(343, abs=3)

        conn.execute(text("DELETE FROM road_network WHERE id = :id"), {"id": new_edge})
        again = got()
        assert {n: c.distance_m for n, c in again.items()} == {n: c.distance_m for n, c in before.items()}

        # a marker moved 0.01° north is measured again; the others keep their rows
        conn.execute(text("UPDATE marker SET geom = 'SRID=4326;POINT(105.10 21.02)' WHERE number = '2'"))
        stale = current_access_rows(conn)
        assert "2" not in stale and len(stale) == len(kept) - 1
        assert float(got()["2"].distance_m) == pytest.approx(2214.4, abs=2)
        conn.rollback()


def test_parallel_sessions_give_the_same_candidates(world):
    one = ranked(world)
    split = ranked(world, cfg=planner.PlannerSettings(parallel_sessions=3, parallel_min_markers=1))
    assert {n: (c.score, c.cost_vnd, c.travel_m, c.nearest) for n, c in split.items()} == \
        {n: (c.score, c.cost_vnd, c.travel_m, c.nearest) for n, c in one.items()}


def test_no_network_at_all_is_a_precondition(fresh_database):
    url = fresh_database()
    db.upgrade(url)
    eng = create_engine(url)
    try:
        with eng.connect() as conn:
            with pytest.raises(PreconditionFailed, match="no road network"):
                planner.candidates(conn)
    finally:
        eng.dispose()


# -- plans on the world


def plan(world, **kw) -> planner.Plan:
    with world.connect() as conn:
        return planner.make_plan(conn, PlanCreate(as_of=AS_OF, **kw))


def test_shared_road_option_is_built_from_neighbours(world):
    p = plan(world, budget=10**12, province="Tỉnh A")
    by_no = {c.number: i for i, c in enumerate(p.ranked)}
    assert [(p.ranked[ch].number, p.ranked[par].number) for ch, par, _ in p.problem.links] == [("4", "3")]
    (_, _, link_cost), = p.problem.links
    link_m = p.link_m[(by_no["4"], by_no["3"])]
    assert float(link_m) == pytest.approx(332.2 * 1.3, rel=0.006)  # on the sphere
    assert link_cost == expected_cost(link_m, 5)  # the harder terrain of the two
    assert link_cost < p.ranked[by_no["4"]].cost_vnd
    # with money for everything, everything is chosen, and 4 hangs off 3
    assert len(p.optimal.chosen) == len(p.ranked) == 7
    assert p.optimal.chosen[by_no["4"]] == (by_no["3"], link_cost)


@pytest.mark.parametrize("budget", [500 * M, 2_000 * M, 3_500 * M, 6_000 * M, 9_000 * M])
def test_plan_is_optimal_on_the_world(world, budget):
    p = plan(world, budget=budget)
    best = brute_force(p.problem)
    assert p.optimal.status == "optimal" and p.optimal.total_score(p.problem) == best
    assert p.greedy.total_score(p.problem) <= best
    assert p.optimal.total_cost() <= budget


def test_must_include_uses_the_shared_road(world):
    got = ranked(world)
    c3, c4 = got["3"], got["4"]
    link = expected_cost((Decimal("332.2") * Decimal("1.3")).quantize(Decimal("0.1")), 5)
    budget = c3.cost_vnd + link + 5 * M
    assert c4.cost_vnd > budget  # marker 4 alone does not fit
    p = plan(world, budget=budget, province="Tỉnh A", must_include=[c4.marker_id])
    public = p.public("en")
    chosen = {ch["number"]: ch for ch in public["optimal"]["chosen"]}
    assert set(chosen) == {"3", "4"}
    assert chosen["4"]["connects_to"] == f"marker:{c3.marker_id}" and chosen["4"]["connects_to_number"] == "3"
    assert chosen["3"]["connects_to"] == "network"
    assert public["optimal"]["total_cost_vnd"] == c3.cost_vnd + chosen["4"]["cost_vnd"] <= budget
    with pytest.raises(InvalidInput, match="must-include markers \\(4\\) cost at least"):
        plan(world, budget=budget, province="Tỉnh A", must_include=[c4.marker_id], shared_roads=False)


def test_province_cap_keeps_a_province_out(world):
    c12 = ranked(world)["12"]
    rich = plan(world, budget=10**12)
    assert "12" in {c["number"] for c in rich.public()["optimal"]["chosen"]}
    capped = plan(world, budget=10**12, province_caps={"Tỉnh B": c12.cost_vnd - 1})
    body = capped.public()
    assert "12" not in {c["number"] for c in body["optimal"]["chosen"]}
    assert body["optimal"]["by_province"].get("Tỉnh B", 0) == 0


def test_budget_below_every_road_chooses_nothing(world):
    p = plan(world, budget=1).public()
    assert p["optimal"]["markers"] == p["greedy"]["markers"] == 0
    assert p["optimal"]["remaining_vnd"] == 1 and p["score_gain_over_greedy"] == 0


def test_must_include_must_be_a_candidate(world):
    with world.connect() as conn:
        ids = dict(conn.execute(text("SELECT number, id FROM marker")).all())
    for number, reason in (("5", "already has a road: DN-T-0001 (completed)"),
                           ("6", "already has a road: DN-T-0002 (funded)"),
                           ("8", "already has concrete access"),
                           ("1", "is within 200 m of the road network"),
                           ("12", "is not in Tỉnh A")):
        with pytest.raises(InvalidInput, match=re.escape(f"number {number}, ") + ".*" + re.escape(reason)):
            plan(world, budget=10**10, province="Tỉnh A", must_include=[ids[number]])
    with pytest.raises(NotFound):
        plan(world, budget=10**10, must_include=[999_999])


# ---------------------------------------------------------------------------------------
# API, exports, page, CLI
# ---------------------------------------------------------------------------------------


def fingerprint(world) -> tuple:
    with world.connect() as conn:
        return tuple(conn.execute(text("""
            SELECT (SELECT md5(string_agg(m::text, '|' ORDER BY id)) FROM marker m),
                   (SELECT md5(string_agg(r::text, '|' ORDER BY id)) FROM road_network r),
                   (SELECT md5(string_agg(b::text, '|' ORDER BY id)) FROM branch_road b),
                   (SELECT count(*) FROM pg_class WHERE relname IN ('plan_candidate', 'plan_post'))
        """)).one())


def test_api_candidates_json_csv_geojson(api):
    r = api.get("/api/plan/candidates", params={"as_of": "2026-06-30", "lang": "en"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert {c["number"] for c in body} == CANDIDATES
    assert [c["rank"] for c in body] == list(range(1, len(body) + 1))
    first = body[0]
    assert isinstance(first["cost_vnd"], int) and len(first["breakdown"]) == 7
    assert round(sum(b["points"] for b in first["breakdown"]), 2) == first["score"]
    assert api.get("/api/plan/candidates", params={"limit": 2}).json()[1]["rank"] == 2

    r = api.get("/api/plan/candidates", params={"format": "csv", "as_of": "2026-06-30"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert {row["number"] for row in rows} == CANDIDATES
    assert all(row["cost_vnd"].isdigit() for row in rows)
    assert "Khoảng cách tới mạng đường" in rows[0]["reasons"]

    r = api.get("/api/plan/candidates", params={"format": "geojson", "province": "Tỉnh B"})
    assert r.headers["content-type"] == "application/geo+json"
    fc = r.json()
    assert fc["type"] == "FeatureCollection" and [f["properties"]["number"] for f in fc["features"]] == ["12"]
    assert fc["features"][0]["geometry"] == {"type": "Point", "coordinates": [105.05, 20.99]}


@pytest.mark.parametrize("params, message", [
    ({"min_distance_m": "-1"}, "min_distance_m"),
    ({"limit": "0"}, "limit"),
    ({"w_distance": "-5"}, "w_distance"),
    ({"w_travel": "lots"}, "w_travel"),
    ({"format": "xlsx"}, "format"),
    ({"as_of": "30/06/2026"}, "as_of"),
    ({"colour": "red"}, "colour"),
    ({"province": "Lang Son"}, "has no markers; known provinces: Tỉnh A, Tỉnh B"),
])
def test_api_candidates_bad_input(api, world, params, message):
    before = fingerprint(world)
    r = api.get("/api/plan/candidates", params=params)
    assert r.status_code == 422
    assert message in r.text
    assert fingerprint(world) == before


def test_api_plan(api, world):
    before = fingerprint(world)
    r = api.post("/api/plan", json={"budget": "4000000000", "province": "Tỉnh A"},
                 params={"ranked_limit": 3, "lang": "en"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["budget_vnd"] == 4_000_000_000 and body["candidates"] == 7 and len(body["ranked"]) == 3
    for key in ("optimal", "greedy"):
        s = body[key]
        assert s["total_cost_vnd"] == sum(c["cost_vnd"] for c in s["chosen"]) <= 4_000_000_000
        assert s["remaining_vnd"] == 4_000_000_000 - s["total_cost_vnd"]
        assert isinstance(s["total_cost_vnd"], int)
    assert body["optimal"]["status"] == "optimal"
    gain = body["optimal"]["total_score"] - body["greedy"]["total_score"]
    assert body["score_gain_over_greedy"] == pytest.approx(gain, abs=0.01) and gain >= 0

    csv_text = api.post("/api/plan", json={"budget": 4_000_000_000}, params={"format": "csv"}).text
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert sum(row["optimal"] == "yes" for row in rows) >= 1
    fc = api.post("/api/plan", json={"budget": 4_000_000_000}, params={"format": "geojson"}).json()
    roads = [f for f in fc["features"] if f["properties"]["feature"] == "new_road"]
    assert roads and all(f["geometry"]["type"] == "LineString" for f in roads)
    assert fc["plan"]["optimal"]["markers"] == sum(f["properties"]["plan"] == "optimal" for f in roads)
    assert fingerprint(world) == before


@pytest.mark.parametrize("body, status, message", [
    ({"budget": 0}, 422, "must be positive"),
    ({"budget": -5}, 422, "must be positive"),
    ({"budget": 1.5}, 422, "fractional part"),
    ({"budget": "12a"}, 422, "whole number"),
    ({"budget": True}, 422, "not true/false"),
    ({"budget": 10**15 + 1}, 422, "at most 10^15"),
    ({}, 422, "budget"),
    ({"budget": 10**9, "province_caps": {"Tỉnh C": 10**9}}, 422, "'Tỉnh C' has no markers"),
    ({"budget": 10**9, "province": "Tỉnh A", "province_caps": {"Tỉnh B": 10**9}}, 422, "plan is for 'Tỉnh A' only"),
    ({"budget": 10**9, "province_caps": {"Tỉnh A": 0}}, 422, "must be positive"),
    ({"budget": 10**9, "must_include": [999999]}, 404, "marker 999999 not found"),
    ({"budget": 10**9, "must_include": [5]}, 422, "already has a road"),
    ({"budget": 10**9, "must_include": [2, 2]}, 422, "more than once"),
    ({"budget": 10**9, "weights": {"distance": -1}}, 422, "weights.distance"),
    ({"budget": 10**9, "weights": {"beauty": 3}}, 422, "weights.beauty"),
    ({"budget": 10**9, "id": 3}, 422, "id"),
    ({"budget": 1_000_000, "must_include": [2]}, 422, "no plan satisfies the constraints"),
])
def test_api_plan_bad_input(api, world, body, status, message):
    before = fingerprint(world)
    r = api.post("/api/plan", json=body)
    assert r.status_code == status, r.text
    assert message in r.text
    assert fingerprint(world) == before


def test_api_plan_and_candidates_are_for_planners(api, world_url, world):
    from support.api_client import account_headers

    before = fingerprint(world)
    nobody = TestClient(api.app)
    assert nobody.post("/api/plan", json={"budget": 10**9}).status_code == 401
    viewer = api.post("/api/plan", json={"budget": 10**9}, headers=account_headers(world_url, "viewer"))
    assert viewer.status_code == 403 and "planner" in viewer.json()["message"]
    admin = api.post("/api/plan", json={"budget": 10**9}, headers=account_headers(world_url, "admin"))
    assert admin.status_code == 200
    assert nobody.get("/api/plan/candidates").status_code == 401  # the ranking is planners' data too
    assert fingerprint(world) == before


def test_api_settings_and_network(api):
    s = api.get("/api/plan/settings").json()
    assert s["weights"]["distance"] == 25 and s["unit_cost_per_km"]["5"] == 1_350_000_000
    assert s["winding_factor"] == "1.3"
    n = api.get("/api/plan/network").json()
    assert n["edges"] == 5 and n["built_branch_roads"]["roads"] == 1


def test_api_without_network_is_412(fresh_database):
    from geo_api.main import create_app

    from support.api_client import account_headers

    url = fresh_database()
    db.upgrade(url)
    with TestClient(create_app(url)) as c:
        r = c.get("/api/plan/candidates", headers=account_headers(url, "planner"))
    assert r.status_code == 412 and "tracker network import" in r.json()["message"]


def test_page_shows_candidates_plans_and_reasons(api):
    r = api.get("/planner/plan", params={"budget": "4000000000", "province": "Tỉnh A"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "<html lang='vi'>" in html and "Lập kế hoạch làm đường nhánh" in html
    assert "Tối ưu (quy hoạch nguyên)" in html and "Tham lam (điểm/chi phí)" in html
    assert "Tổng điểm" in html and "Đồn biên phòng đã đề nghị làm đường" in html  # a reason, in a popup
    assert "bindPopup" in html and "$(`" not in html  # plain Leaflet popups (no jQuery)
    assert "/static/vendor/leaflet/leaflet.js" in html
    en = api.get("/planner/plan", params={"budget": "4000000000", "province": "Tỉnh A", "lang": "en"}).text
    assert "Optimal (integer programming)" in en and "the post asked for this road" in en and "VND" in en


@pytest.mark.parametrize("params, message", [
    ({"budget": "1.5"}, "whole number"),
    ({"budget": "nothing"}, "whole number"),
    ({"province": "Nowhere"}, "has no markers"),
    ({"must_include": "abc"}, "must_include"),
])
def test_page_bad_input_is_a_422_page(api, params, message):
    r = api.get("/planner/plan", params={"lang": "en", **params})
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
    assert "role='alert'" in r.text and message in r.text


def _tracker(*args, url):
    exe = os.path.join(os.path.dirname(sys.executable), "tracker")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "DATABASE_URL": url})


def test_cli_plan_writes_csv_and_geojson(world_url, tmp_path):
    out = tmp_path / "plan.csv"
    done = _tracker("plan", "--budget", "4000000000", "--province", "Tỉnh A", "--as-of", "2026-06-30",
                    "--lang", "en", "--out", str(out), url=world_url)
    assert done.returncode == 0, done.stderr
    assert "7 candidates in Tỉnh A" in done.stdout and "optimal:" in done.stdout and "greedy:" in done.stdout
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 7 and any(r["optimal"] == "yes" for r in rows)
    gj = tmp_path / "plan.geojson"
    assert _tracker("plan", "--budget", "4000000000", "--out", str(gj), url=world_url).returncode == 0
    assert json.loads(gj.read_text(encoding="utf-8"))["type"] == "FeatureCollection"


@pytest.mark.parametrize("args, message", [
    (["--budget", "5e9"], "whole number"),
    (["--budget", "1000", "--out", "plan.xlsx"], "expected a .geojson, .csv or .json file"),
    (["--budget", "1000", "--cap", "5000"], "expected PROVINCE=VND"),
    (["--budget", "1000", "--province", "Atlantis"], "has no markers"),
])
def test_cli_plan_bad_input(world_url, tmp_path, args, message):
    done = _tracker("plan", *args, url=world_url)
    assert done.returncode == 1 and message in done.stderr and "Traceback" not in done.stderr


# ---------------------------------------------------------------------------------------
# The demo: "5 billion VND for Lạng Sơn: which markers?"
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def demo_network(engine, demo_counts):
    return network.load_demo_network(engine)


def test_five_billion_for_lang_son(engine, demo_network):
    with engine.connect() as conn:
        p = planner.make_plan(conn, PlanCreate(budget=5_000_000_000, province="Lạng Sơn", as_of=date(2026, 11, 23)))
        reached = conn.execute(text("""
            SELECT m.id FROM marker m JOIN border_segment s ON s.id = m.segment_id
            WHERE s.code = 'VN-CN' AND m.number = '1033'""")).scalar_one()
    body = p.public("vi", ranked_limit=5)
    assert body["candidates"] > 50
    assert reached not in {c.marker_id for c in p.ranked}  # inaugurated at Đào Viên in 2022
    opt = body["optimal"]
    assert opt["status"] == "optimal" and 0 < opt["total_cost_vnd"] <= 5_000_000_000
    assert opt["total_score"] >= body["greedy"]["total_score"]
    assert all(c["province"] == "Lạng Sơn" for c in opt["chosen"])
    assert p.optimal.seconds < 5
    assert sum(c.travel_method == "network" for c in p.ranked) > 0.8 * len(p.ranked)
