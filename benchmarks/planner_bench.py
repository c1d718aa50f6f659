"""Planner benchmark, in its own throwaway database (created, then dropped).

    .venv/bin/python benchmarks/planner_bench.py [--layout border|uniform] [--markers 100000]
        [--grid NXxNY] [--plan-candidates 10000] [--plain-sample 20] [--keep]

1. Builds a synthetic region (lon 102–108, lat 17–23) with a jittered road grid of about
   1,000,000 segments, 100,000 markers, posts, 20,000 villages with twinned pairs and
   2,000 completed branch roads, in 25 provinces (see ``build`` for the two layouts).
2. Times the planner's candidates + scores for all markers — nearest network by KNN,
   pgRouting travel from the posts, villages, score, cost — as the API computes them
   (``planner.prepare`` + ``planner.scored``). Target ≤ 10 s.
3. Times the exact budget plan over the 10,000 best candidates with their shared-road
   options (``planner.solve_optimal``; budget: a tenth of their total cost). Target ≤ 5 s.
   The greedy answer on the same options is shown beside it.
4. Compares the nearest-network query written with the KNN operator (``ORDER BY geom <->
   point LIMIT 1``, index-ordered) against a plain ``ORDER BY ST_Distance(geom, point)
   LIMIT 1`` on the same markers and network.

Prints a Markdown table; the figures in docs/benchmarks.md come from this script.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import sys
import time
from datetime import date
from pathlib import Path

import psycopg
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from geo_api import db  # noqa: E402
from geo_api.domain import planner  # noqa: E402
from geo_api.localdb import ensure_database_available  # noqa: E402
from geo_api.settings import get_settings

AS_OF = date(2026, 11, 23)
X0, X1, Y0, Y1 = 102.0, 108.0, 17.0, 23.0


def admin(url: str) -> dict:
    u = make_url(url)
    return {k: v for k, v in {"host": u.host, "port": u.port, "user": u.username,
                              "password": u.password, "dbname": "postgres"}.items() if v is not None}


# Border lines of the "border" layout: y = lat + AMP · sin(2π (x − 102) / WAVE), x in X0+0.1 .. X1-0.1
LINES = (17.6, 18.8, 20.0, 21.2, 22.4)
AMP, WAVE = 0.15, 0.8
BORDER_Y = f"(({{lat}}) + {AMP} * sin(2 * pi() * (({{x}}) - {X0}) / {WAVE}))"


def build(conn, markers: int, nx: int, ny: int, layout: str) -> dict[str, float]:
    """The synthetic world, all in SQL (seeded: the same every run).

    * ``border`` (the default, as in the domain): markers stand on five 640-km border lines
      (zigzagging ±0.15°), 3,200 km in all; posts every ~12 km, 2–8 km inland; villages
      within ~10 km of the lines; the road grid is thinned within ~1.5 km of the lines
      (border areas have few roads), so most markers are candidates.
    * ``uniform`` (a stress case): markers, posts and villages spread evenly over the region.
    """
    t: dict[str, float] = {}
    dx, dy = (X1 - X0) / (nx - 1), (Y1 - Y0) / (ny - 1)

    def step(name: str, sql: str, **params) -> None:
        started = time.perf_counter()
        for statement in sql.split(";\n"):
            if statement.strip():
                conn.execute(text(statement), params)
        t[name] = time.perf_counter() - started

    xy = dict(x0=X0, x1=X1, y0=Y0, y1=Y1)
    conn.execute(text("SELECT setseed(0.2022)"))
    lines = ", ".join(
        "(" + ", ".join(f"{x / 100:.2f} {eval_border(lat, x / 100):.6f}"
                        for x in range(int(X0 * 100) + 10, int(X1 * 100) - 9)) + ")" for lat in LINES)
    step("border lines", f"""
        INSERT INTO border_segment (code, neighbour_iso3, name_vi, name_en, geom)
        VALUES ('VN-CN', 'CHN', 'Biên giới (benchmark)', 'Border (benchmark)',
                ST_GeomFromText('MULTILINESTRING({lines})', 4326))
    """)
    step("grid vertices", """
        CREATE TEMP TABLE grid AS
        SELECT i, j, :x0 + i * :dx + (random() - 0.5) * 0.6 * :dx AS x,
                     :y0 + j * :dy + (random() - 0.5) * 0.6 * :dy AS y
        FROM generate_series(0, :nx - 1) i, generate_series(0, :ny - 1) j
    """, x0=X0, y0=Y0, dx=dx, dy=dy, nx=nx, ny=ny)
    conn.execute(text("CREATE INDEX ON grid (i, j)"))
    # the vertical distance (degrees) from a point to the nearest border line
    near_line = "LEAST(" + ", ".join(f"abs({{y}} - {BORDER_Y.format(lat=lat, x='{x}')})" for lat in LINES) + ")"
    thin = (f"AND {near_line.format(x='(a.x + b.x) / 2', y='(a.y + b.y) / 2')} > 0.014"
            if layout == "border" else "")
    step("network (segments + GiST index)", f"""
        INSERT INTO road_network (highway, surface, geom, is_generated, imported_from)
        SELECT CASE WHEN (a.i + a.j) % 7 = 0 THEN 'tertiary' ELSE 'track' END, 'dirt',
               ST_SetSRID(ST_MakeLine(ST_MakePoint(a.x, a.y), ST_MakePoint(b.x, b.y)), 4326), true, 'bench'
        FROM grid a JOIN grid b ON (b.i = a.i + 1 AND b.j = a.j) OR (b.i = a.i AND b.j = a.j + 1)
        WHERE true {thin}
    """)
    if layout == "border":
        line = f"(ARRAY{list(LINES)})[1 + floor(random() * {len(LINES)})::int]"
        point = ("SELECT g, x, " + BORDER_Y.format(lat="lat", x="x") + " + {off} AS y "
                 "FROM (SELECT g, {line} AS lat, :x0 + 0.1 + random() * (:x1 - :x0 - 0.2) AS x "
                 "FROM generate_series(1, {n}) g) s")
        posts_src = point.format(off="-(0.02 + random() * 0.05)", line=line, n=270)
        markers_src = point.format(off="(random() - 0.5) * 0.002", line=line, n=":n")
        villages_src = point.format(off="(random() - 0.5) * 0.18", line=line, n=20000)
    else:
        uniform = ("SELECT g, :x0 + random() * (:x1 - :x0) AS x, :y0 + random() * (:y1 - :y0) AS y "
                   "FROM generate_series(1, {n}) g")
        posts_src, markers_src, villages_src = (uniform.format(n=1000), uniform.format(n=":n"),
                                                uniform.format(n=20000))
    province = "'Tỉnh ' || (1 + least(floor((y - :y0) / (:y1 - :y0) * 5), 4) * 5 + least(floor((x - :x0) / (:x1 - :x0) * 5), 4))::int"
    step("posts", f"""
        INSERT INTO border_post (code, name, province, geom)
        SELECT 'BP-B-' || g, 'Đồn ' || g, {province}, ST_SetSRID(ST_MakePoint(x, y), 4326)
        FROM ({posts_src}) s
    """, **xy)
    step("markers", f"""
        INSERT INTO marker (segment_id, number, geom, province, access, terrain_difficulty,
                            requested_by_post, last_inspected_on)
        SELECT 1, g::text, ST_SetSRID(ST_MakePoint(x, y), 4326), {province},
               (ARRAY['none', 'footpath', 'earth'])[1 + floor(random() * 3)::int]::marker_access,
               1 + floor(random() * 5)::int, random() < 0.1,
               CASE WHEN random() < 0.75 THEN DATE '2026-11-20' - floor(random() * 900)::int END
        FROM ({markers_src}) s
    """, n=markers, **xy)
    step("marker -> nearest post", """
        UPDATE marker m SET post_id = (SELECT p.id FROM border_post p ORDER BY p.geom <-> m.geom LIMIT 1)
    """)
    step("villages and pairs", f"""
        INSERT INTO village (code, name, country, admin1, population, geom)
        SELECT 'V-B-' || g, 'Bản ' || g, CASE WHEN g % 2 = 0 THEN 'VNM' ELSE 'CHN' END, 'X',
               50 + floor(random() * 1500)::int, ST_SetSRID(ST_MakePoint(x, y), 4326)
        FROM ({villages_src}) s;
        INSERT INTO village_pair (vn_village_id, foreign_village_id)
        SELECT v.id, v.id + 1 FROM village v WHERE v.country = 'VNM' AND v.id % 10 = 0
          AND EXISTS (SELECT 1 FROM village f WHERE f.id = v.id + 1);
    """, **xy)
    step("completed branch roads", """
        INSERT INTO branch_road (code, name, post_id, province, status, geom, completed_on)
        SELECT 'DN-B-' || m.id, 'Đường nhánh ' || m.id, m.post_id, m.province, 'completed',
               ST_MakeLine(ST_Translate(m.geom, 0.004, -0.004), m.geom), DATE '2024-01-01'
        FROM marker m WHERE m.id % 50 = 0;
        INSERT INTO road_marker (road_id, marker_id)
        SELECT b.id, substr(b.code, 6)::int FROM branch_road b WHERE b.code LIKE 'DN-B-%';
    """)
    step("ANALYZE", "ANALYZE")
    return t


def eval_border(lat: float, x: float) -> float:
    import math

    return lat + AMP * math.sin(2 * math.pi * (x - X0) / WAVE)


def knn_vs_plain(conn, sample: int) -> dict:
    ids = [r[0] for r in conn.execute(text("SELECT id FROM marker ORDER BY id LIMIT :n"), {"n": sample})]
    # the distance, not the id, is compared: two edges meeting at the nearest vertex tie
    knn_sql = """SELECT m.id, (SELECT round(ST_Distance(r.geom, m.geom)::numeric, 9) FROM road_network r
                               ORDER BY r.geom <-> m.geom LIMIT 1)
                 FROM marker m WHERE m.id = ANY(:ids) ORDER BY m.id"""
    plain_sql = """SELECT m.id, (SELECT round(ST_Distance(r.geom, m.geom)::numeric, 9) FROM road_network r
                                 ORDER BY ST_Distance(r.geom, m.geom) LIMIT 1)
                   FROM marker m WHERE m.id = ANY(:ids) ORDER BY m.id"""
    out = {}
    for name, sql in (("knn", knn_sql), ("plain", plain_sql)):
        started = time.perf_counter()
        rows = conn.execute(text(sql), {"ids": ids}).all()
        out[name] = (time.perf_counter() - started, rows)
    same = sum(a == b for a, b in zip(out["knn"][1], out["plain"][1]))
    started = time.perf_counter()
    n_all = conn.execute(text("""SELECT count(nn) FROM marker m CROSS JOIN LATERAL
        (SELECT r.id AS nn FROM road_network r ORDER BY r.geom <-> m.geom LIMIT 1) k""")).scalar_one()
    knn_all = time.perf_counter() - started
    plan = "\n".join(r[0] for r in conn.execute(text("EXPLAIN " + knn_sql), {"ids": ids}))
    return {"sample": len(ids), "knn_s": out["knn"][0], "plain_s": out["plain"][0], "same": same,
            "knn_all_s": knn_all, "knn_all_n": n_all, "index_ordered": "Order By: (geom <-> m.geom)" in plan}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--markers", type=int, default=100_000)
    ap.add_argument("--layout", choices=["border", "uniform"], default="border")
    ap.add_argument("--grid", default=None,
                    help="road grid vertices, across x down (default 1000x515 for border: ~1.0M segments "
                         "after thinning; 1000x501 for uniform: 1,000,499 segments)")
    ap.add_argument("--plan-candidates", type=int, default=10_000)
    ap.add_argument("--plain-sample", type=int, default=20, help="markers for the plain ORDER BY ST_Distance run")
    ap.add_argument("--keep", action="store_true", help="keep the benchmark database")
    ap.add_argument("--reuse", metavar="DATABASE", help="measure again on a database kept by --keep")
    args = ap.parse_args()
    grid = args.grid or ("1000x515" if args.layout == "border" else "1000x501")
    nx, ny = (int(v) for v in grid.lower().split("x"))

    server = ensure_database_available(lambda *_: None)
    name = args.reuse or f"tracker_bench_{secrets.token_hex(4)}"
    if not args.reuse:
        with psycopg.connect(**admin(server), autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    print(f"# planner benchmark, {args.layout} layout, in database {name} "
          f"({os.cpu_count()} cores, {platform.machine()}; load average before: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())})")
    try:
        if not args.reuse:
            db.upgrade(url)
            with engine.begin() as conn:
                build_t = build(conn, args.markers, nx, ny, args.layout)
            for k, v in build_t.items():
                print(f"  setup {k}: {v:.1f} s")
        with engine.connect() as conn:
            sizes = conn.execute(text("""SELECT (SELECT count(*) FROM road_network), (SELECT count(*) FROM marker),
                                                (SELECT count(*) FROM border_post), (SELECT count(*) FROM village)""")).one()
        print(f"data: {sizes[0]:,} segments, {sizes[1]:,} markers, {sizes[2]:,} posts, {sizes[3]:,} villages")

        cfg = get_settings().planner

        def network_changed() -> None:  # what any change to road_network does
            with engine.begin() as conn:
                conn.execute(text("UPDATE network_version SET version = version + 1"))

        def candidates_and_scores(conn) -> tuple[float, float, dict, list]:
            started = time.perf_counter()
            steps: dict[str, float] = {}
            routing = planner.prepare(conn, None, cfg.min_distance_m, cfg, steps)
            t_prepare = time.perf_counter() - started
            ranked = planner.scored(conn, routing, cfg.weights, AS_OF, cfg)
            return time.perf_counter() - started, t_prepare, steps, ranked

        network_changed()
        with engine.connect() as conn:
            t_cold, _, cold_steps, cold = candidates_and_scores(conn)
        network_changed()
        started = time.perf_counter()
        refreshed = planner.refresh_network_access(engine, cfg)
        t_refresh = time.perf_counter() - started
        with engine.connect() as conn:  # the plan below reuses this session's plan_candidate
            t_all, t_prepare, steps, ranked = candidates_and_scores(conn)
            assert [(c.marker_id, c.score) for c in cold] == [(c.marker_id, c.score) for c in ranked]
            n_routed = sum(c.travel_method == "network" for c in ranked)
            # the plan: the best-ranked candidates, with their shared-road options
            top = ranked[:args.plan_candidates]
            keep = [c.marker_id for c in top]
            conn.execute(text("DELETE FROM plan_candidate WHERE NOT (marker_id = ANY(:ids))"), {"ids": keep})
            started = time.perf_counter()
            links, _ = planner.shared_road_links(conn, top, cfg)
            t_links = time.perf_counter() - started
            budget = sum(c.cost_vnd for c in top) // 10
            problem = planner.Problem(score=[c.score_cents for c in top], cost=[c.cost_vnd for c in top],
                                      province=[c.province for c in top], budget=budget, links=links)
            started = time.perf_counter()
            opt = planner.solve_optimal(problem, time_limit_s=60)
            t_opt = time.perf_counter() - started
            started = time.perf_counter()
            gr = planner.solve_greedy(problem)
            t_greedy = time.perf_counter() - started
            comparison = knn_vs_plain(conn, args.plain_sample)

        print()
        print("| measure | result |")
        print("|---|---|")
        print(f"| candidates + scores for {sizes[1]:,} markers vs {sizes[0]:,} segments, nearest edges kept "
              f"(every request after an import) | {t_all:.2f} s ({len(ranked):,} candidates; searches "
              f"{steps['search']:.2f} s with routing {steps.get('routing', 0):.2f} s beside them; scoring "
              f"{t_all - t_prepare:.2f} s; {n_routed:,} routed over the network) |")
        print(f"| nearest edges refreshed for all markers (what a network import runs at its end) | "
              f"{t_refresh:.2f} s ({refreshed:,} rows) |")
        print(f"| candidates + scores, first request after a network change that was not refreshed | "
              f"{t_cold:.2f} s (searches and refresh {cold_steps['search']:.2f} s with routing "
              f"{cold_steps.get('routing', 0):.2f} s beside them; same ranking) |")
        print(f"| shared-road options among the top {len(top):,} candidates | {len(links):,} links in {t_links:.2f} s |")
        print(f"| exact plan over {len(top):,} candidates (budget {budget:,} VND) | {t_opt:.2f} s, {opt.status}, "
              f"{len(opt.chosen):,} chosen, score {opt.total_score(problem) / 100:,.2f} |")
        print(f"| greedy plan, same options | {t_greedy:.2f} s, {len(gr.chosen):,} chosen, "
              f"score {gr.total_score(problem) / 100:,.2f} |")
        c = comparison
        print(f"| nearest segment, KNN `<->` ({c['sample']} markers) | {c['knn_s'] * 1000:.1f} ms "
              f"({c['knn_s'] / c['sample'] * 1000:.2f} ms/marker; index-ordered: {c['index_ordered']}) |")
        print(f"| nearest segment, plain `ORDER BY ST_Distance` (same {c['sample']} markers) | {c['plain_s']:.2f} s "
              f"({c['plain_s'] / c['sample'] * 1000:.0f} ms/marker; same nearest distance for {c['same']}/{c['sample']}) |")
        print(f"| nearest segment, KNN for all {c['knn_all_n']:,} markers | {c['knn_all_s']:.2f} s |")
    finally:
        engine.dispose()
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        if not (args.keep or args.reuse):
            with psycopg.connect(**admin(server), autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
