"""Web pages benchmark: page weight and time to render in headless Chromium, at 1×, 10× and
100× the demo data, in its own throwaway database.

    .venv/bin/python benchmarks/pages_bench.py [--scales 1,10,100] [--runs 3] [--keep]

1. Makes a database on the project-local PostGIS cluster (or DATABASE_URL's server),
   migrates it and loads the demo data (3,150 markers, ~300 roads, 211 posts, 389 villages).
2. For each scale, multiplies the demo data in SQL: copies of the posts, markers, roads
   (with their markers and ledger rows), villages and twinned pairs, shifted a little, so
   10× is ~31,500 markers / ~3,000 roads and 100× ~315,000 markers / ~30,000 roads.
3. Serves the app (uvicorn, in this process) with an unreachable basemap, and opens each
   page in headless Chromium (system `chromium` + `chromedriver`) with an empty cache, at
   1280×860: the donor map (auto mode: inline GeoJSON at 1×, vector tiles above
   TRACKER_INLINE_MAX_MARKERS / _ROADS), the donor map forced inline, the planner, the
   villages map, the busiest post's page and the charts.
4. Reports the median of `--runs` loads: bytes over the wire (HTML; everything incl.
   scripts and tiles), the HTML's size unpacked, time to first byte (the server building
   the page), DOMContentLoaded, and "map ready" (all inline layers added, or the first
   view's vector tiles loaded).

Prints a Markdown table; the figures in docs/benchmarks.md ("Web pages") come from it.
"""

from __future__ import annotations

import argparse
import platform
import secrets
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from geo_api import db  # noqa: E402
from geo_api.localdb import ensure_database_available  # noqa: E402

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,860"]
ORIGINAL = "original"  # the demo rows are those with id <= the ids recorded before scaling


def admin(url: str) -> dict:
    u = make_url(url)
    return {k: v for k, v in {"host": u.host, "port": u.port, "user": u.username,
                              "password": u.password, "dbname": "postgres"}.items() if v is not None}


def scale_up(engine, copies_from: int, copies_to: int, base: dict[str, int]) -> float:
    """Add copies k = copies_from..copies_to of the demo rows (ids <= base[...]), each shifted
    by a few kilometres. Natural keys get a "-Xk" suffix (markers: number k·10⁶ + id)."""
    started = time.perf_counter()
    shift = "((k % 10) - 4.5) * 0.02, ((k / 10) % 10 - 4.5) * 0.02"
    statements = [
        f"""INSERT INTO border_post (code, name, province, district, commune, segment_id, geom, is_generated)
            SELECT p.code || '-X' || k, p.name || ' #' || k, p.province, p.district, p.commune, p.segment_id,
                   ST_Translate(p.geom, {shift}), true
            FROM border_post p, generate_series(CAST(:k0 AS integer), CAST(:k1 AS integer)) k WHERE p.id <= :post""",
        f"""INSERT INTO marker (segment_id, number, kind, geom, chainage_km, province, district, commune,
                                post_id, access, terrain_difficulty, requested_by_post, is_generated)
            SELECT m.segment_id, (k * 1000000 + m.id)::text, m.kind, ST_Translate(m.geom, {shift}),
                   m.chainage_km, m.province, m.district, m.commune, np.id, m.access,
                   m.terrain_difficulty, m.requested_by_post, true
            FROM marker m CROSS JOIN generate_series(CAST(:k0 AS integer), CAST(:k1 AS integer)) k
            LEFT JOIN border_post op ON op.id = m.post_id
            LEFT JOIN border_post np ON np.code = op.code || '-X' || k
            WHERE m.id <= :marker""",
        f"""INSERT INTO branch_road (code, name, post_id, province, district, commune, status, geom,
                                     as_built_geom, estimated_cost, actual_cost, completed_on,
                                     progress_pct, is_generated)
            SELECT r.code || '-X' || k, r.name, np.id, r.province, r.district, r.commune, r.status,
                   ST_Translate(r.geom, {shift}), ST_Translate(r.as_built_geom, {shift}),
                   r.estimated_cost, r.actual_cost, r.completed_on, r.progress_pct, true
            FROM branch_road r CROSS JOIN generate_series(CAST(:k0 AS integer), CAST(:k1 AS integer)) k
            JOIN border_post op ON op.id = r.post_id JOIN border_post np ON np.code = op.code || '-X' || k
            WHERE r.id <= :road""",
        """INSERT INTO road_marker (road_id, marker_id)
            SELECT nr.id, nm.id FROM road_marker rm CROSS JOIN generate_series(CAST(:k0 AS integer), CAST(:k1 AS integer)) k
            JOIN branch_road r ON r.id = rm.road_id JOIN branch_road nr ON nr.code = r.code || '-X' || k
            JOIN marker m ON m.id = rm.marker_id
            JOIN marker nm ON nm.segment_id = m.segment_id AND nm.number = (k * 1000000 + m.id)::text
            WHERE rm.road_id <= :road""",
        """INSERT INTO funding_tx (donor_id, road_id, campaign_id, kind, amount, tx_date, reference)
            SELECT f.donor_id, nr.id, f.campaign_id, f.kind, f.amount, f.tx_date, f.reference
            FROM funding_tx f CROSS JOIN generate_series(CAST(:k0 AS integer), CAST(:k1 AS integer)) k
            JOIN branch_road r ON r.id = f.road_id JOIN branch_road nr ON nr.code = r.code || '-X' || k
            WHERE f.id <= :funding""",
        f"""INSERT INTO village (code, name, country, admin1, admin2, admin3, population, households, geom,
                                 is_generated)
            SELECT v.code || '-X' || k, v.name, v.country, v.admin1, v.admin2, v.admin3, v.population,
                   v.households, ST_Translate(v.geom, {shift}), true
            FROM village v, generate_series(CAST(:k0 AS integer), CAST(:k1 AS integer)) k WHERE v.id <= :village""",
        """INSERT INTO village_pair (vn_village_id, foreign_village_id, post_id, twinned_on)
            SELECT nv.id, nf.id, np.id, p.twinned_on FROM village_pair p CROSS JOIN generate_series(CAST(:k0 AS integer), CAST(:k1 AS integer)) k
            JOIN village v ON v.id = p.vn_village_id JOIN village nv ON nv.code = v.code || '-X' || k
            JOIN village f ON f.id = p.foreign_village_id JOIN village nf ON nf.code = f.code || '-X' || k
            LEFT JOIN border_post op ON op.id = p.post_id LEFT JOIN border_post np ON np.code = op.code || '-X' || k
            WHERE p.id <= :pair""",
        "ANALYZE",
    ]
    with engine.begin() as conn:
        for sql in statements:
            conn.execute(text(sql), {"k0": copies_from, "k1": copies_to, **base})
    return time.perf_counter() - started


def serve(url: str):
    import uvicorn

    from geo_api.main import create_app
    from geo_api.settings import MapSettings, Settings

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    app = create_app(url, Settings(maps=MapSettings(basemap_url=f"http://127.0.0.1:{dead}/{{z}}/{{x}}/{{y}}.png")))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="bench-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(180)
    driver.execute_cdp_cmd("Network.enable", {})
    return driver, profile


MEASURE = """
var nav = performance.getEntriesByType('navigation')[0];
var res = performance.getEntriesByType('resource');
var tiles = res.filter(function (r) { return r.name.indexOf('/tiles/') >= 0; });
function sum(list, key) { return list.reduce(function (n, r) { return n + (r[key] || 0); }, 0); }
return {
  html_wire: nav.transferSize, html_raw: nav.decodedBodySize,
  total_wire: nav.transferSize + sum(res, 'transferSize'),
  tiles: tiles.length, tiles_wire: sum(tiles, 'transferSize'),
  ttfb: nav.responseStart - nav.startTime, dcl: nav.domContentLoadedEventEnd - nav.startTime,
  ready: window.BR && BR.readyAt ? BR.readyAt : nav.loadEventEnd - nav.startTime,
  mode: (window.BR && BR.layers && Object.keys(BR.tileLayers || {}).length) ? 'tiles' : 'inline'
};
"""


def measure(driver, url: str) -> dict:
    driver.execute_cdp_cmd("Network.clearBrowserCache", {})
    driver.get("about:blank")
    driver.get(url)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        state = driver.execute_script("return [document.readyState, !window.BR || !BR.map || BR.ready]")
        if state[0] == "complete" and state[1]:
            break
        time.sleep(0.05)
    else:
        raise RuntimeError(f"{url} did not finish rendering")
    time.sleep(0.3)  # let late tile requests land in the resource timing list
    return driver.execute_script(MEASURE)


def kib(n: float) -> str:
    return f"{n / 1024:,.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", default="1,10,100", help="multiples of the demo data, increasing")
    parser.add_argument("--runs", type=int, default=3, help="loads per page; the median is reported")
    parser.add_argument("--keep", action="store_true", help="keep the throwaway database")
    args = parser.parse_args()
    scales = [int(s) for s in args.scales.split(",")]
    if scales != sorted(scales) or scales[0] < 1:
        parser.error("--scales must be increasing multiples >= 1")
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).is_file():
            print(f"{path} is missing: run `tracker ensure-browser`", file=sys.stderr)
            return 2

    from geo_api.demo import load_demo

    server_url = ensure_database_available(lambda *_: None)
    name = f"tracker_pagebench_{secrets.token_hex(4)}"
    with psycopg.connect(**admin(server_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    server = driver = profile = None
    rows: list[str] = []
    try:
        db.upgrade(url)
        load_demo(engine)
        with engine.connect() as conn:
            base = dict(conn.execute(text("""
                SELECT 'post', max(id) FROM border_post UNION ALL SELECT 'marker', max(id) FROM marker
                UNION ALL SELECT 'road', max(id) FROM branch_road UNION ALL SELECT 'funding', max(id) FROM funding_tx
                UNION ALL SELECT 'village', max(id) FROM village UNION ALL SELECT 'pair', max(id) FROM village_pair
            """)).all())
        server, thread, site = serve(url)
        driver, profile = browser()
        copies = 0
        for scale in scales:
            grow = 0.0
            if scale - 1 > copies:
                grow = scale_up(engine, copies + 1, scale - 1, base)
                copies = scale - 1
            with engine.connect() as conn:
                counts = conn.execute(text("SELECT (SELECT count(*) FROM marker), (SELECT count(*) FROM branch_road), "
                                           "(SELECT count(*) FROM village_pair)")).one()
                busiest = conn.execute(text("SELECT post_id FROM branch_road GROUP BY post_id "
                                            "ORDER BY count(*) DESC, post_id LIMIT 1")).scalar()
            print(f"scale {scale}×: {counts[0]:,} markers, {counts[1]:,} roads, {counts[2]:,} pairs"
                  + (f" (generated in {grow:.1f} s)" if grow else ""), file=sys.stderr)
            pages = [("/", "donor map"), ("/?mode=inline", "donor map, forced inline"), ("/planner", "planner"),
                     ("/villages", "villages"), (f"/post?post_id={busiest}", "post page"), ("/charts", "charts")]
            if scale == 1:
                pages.insert(2, ("/?mode=tiles", "donor map, forced tiles"))
            for path, label in pages:
                if path == "/?mode=inline" and not 1 < scale <= 10:
                    continue  # 1×: that is the default; above 10× the app refuses to embed that much
                runs = [measure(driver, site + path) for _ in range(args.runs)]
                med = {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "mode"}
                rows.append(
                    f"| {scale}× | {label} | {runs[0]['mode']} | {kib(med['html_wire'])} | {kib(med['html_raw'])} | "
                    f"{kib(med['total_wire'])} | {int(med['tiles'])} | {med['ttfb']:,.0f} | {med['dcl']:,.0f} | "
                    f"{med['ready']:,.0f} |")
                print(rows[-1], file=sys.stderr)
    finally:
        if driver is not None:
            driver.quit()
            shutil.rmtree(profile, ignore_errors=True)
        if server is not None:
            server.should_exit = True
        engine.dispose()
        if not args.keep:
            time.sleep(0.5)
            with psycopg.connect(**admin(server_url), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            print(f"kept database {name}", file=sys.stderr)

    print(f"Machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
          f"Chromium {CHROMIUM}; median of {args.runs} loads, empty browser cache each time.\n")
    print("| data | page | drawn from | HTML over the wire (KiB) | HTML unpacked (KiB) | all over the wire "
          "(KiB) | tiles | first byte (ms) | DOMContentLoaded (ms) | map ready (ms) |")
    print("|---|---|---|--:|--:|--:|--:|--:|--:|--:|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
