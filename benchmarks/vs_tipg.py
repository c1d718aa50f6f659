"""The tracker against tipg, serving the same PostGIS tables, side by side.

    .venv/bin/python benchmarks/vs_tipg.py [--scale 100] [--duration 10] [--rounds 3]
        [--connections 8] [--shared-server] [--out docs/vs_tipg.json]

tipg (developmentseed's FastAPI OGC Features/Tiles server, a benchmark-only dependency:
``.venv/bin/pip install tipg``) and the tracker each run as one uvicorn worker on a loopback
port, over the same database (benchmarks/scale.py's ``tracker_scale_<N>x``, on the
benchmarks' own cluster unless ``--shared-server``), and are driven by the same client,
wrk (``apt-get install wrk``), with the same connections, threads and duration. Each round
runs every endpoint on both servers back to back, alternating which goes first, so both see
the same machine; the report gives the median over the rounds.

Endpoints (anonymous, as a donor or GIS client reads them), the tracker's OGC API vs tipg's:
- GeoJSON items of the 315,000 markers at limit 10 and 1,000, without and with a bbox;
- a single marker;
- vector tiles of the branch roads (z 8, 10, 12) and of the markers (z 12, 14) around
  marker ITEM_ID: zooms where both servers put the same rows in the tile (the tracker
  gathers markers into clusters below z 11, and tipg cuts a tile at 10,000 features;
  tipg is told to use the roads' planned line, `geom-column=geom`, as it cannot take the
  as-built line where there is one); the feature counts of both tiles are decoded and
  printed. The tracker keeps rendered tiles while the database is unchanged (see
  geo_api/domain/tiles.py), so the tiles are also run against a third server, the tracker
  with ``TRACKER_TILE_CACHE_MB=0``, which renders every request.

The ceiling: the SQL the tracker sends for each request (captured from the app itself,
in steady state), run by pgbench with the same number of clients on the same server;
each endpoint's req/s is given as a fraction of it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psycopg
from sqlalchemy import event
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import scale  # noqa: E402

VENV_BIN = Path(sys.executable).parent
BBOX = "106.30,22.20,106.90,22.90"  # Cao Bằng / Lạng Sơn, where the markers are densest
ITEM_ID = 123457


# ---------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as r:
        return r.read()


def mvt_feature_count(data: bytes) -> int:
    """Features in a Mapbox Vector Tile: a minimal protobuf walk (Tile.layers[].features)."""

    def varint(buf: bytes, i: int) -> tuple[int, int]:
        shift = value = 0
        while True:
            b = buf[i]
            i += 1
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value, i
            shift += 7

    def fields(buf: bytes):
        i = 0
        while i < len(buf):
            key, i = varint(buf, i)
            number, wire = key >> 3, key & 7
            if wire == 0:
                _, i = varint(buf, i)
                yield number, None
            elif wire == 2:
                n, i = varint(buf, i)
                yield number, buf[i:i + n]
                i += n
            elif wire == 5:
                i += 4
                yield number, None
            elif wire == 1:
                i += 8
                yield number, None
            else:
                raise ValueError(f"unexpected protobuf wire type {wire}")

    return sum(1 for n, layer in fields(data) if n == 3 for m, _ in fields(layer) if m == 2)


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    from geo_api.domain.tiles import tile_range

    x, y, _, _ = tile_range((lon, lat, lon, lat), z)
    return x, y


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True, cwd=ROOT)


def stop(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


# ---------------------------------------------------------------------------- load


def wrk(url: str, duration: int, connections: int, threads: int) -> dict:
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency",
                          "--timeout", "30s", url], capture_output=True, text=True, check=True).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(m[1]), m[2]
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]), "p50": ms("50%"), "p99": ms("99%"),
            "non2xx": int(errors[1]) if errors else 0,
            "socket_errors": sum(map(int, sock.groups())) if sock else 0}


def pgbench(server_url: str, db: str, script: str, duration: int, clients: int, threads: int) -> float:
    u = make_url(server_url)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as fh:
        fh.write(script)
    try:
        env = {**os.environ, "PGOPTIONS": "-c jit=off", "PGHOST": u.host, "PGPORT": str(u.port),
               "PGUSER": u.username, "PGDATABASE": db}
        out = subprocess.run(["pgbench", "-n", "-c", str(clients), "-j", str(threads), "-T", str(duration),
                              "-f", fh.name], capture_output=True, text=True, env=env)
        if out.returncode != 0:
            raise RuntimeError(f"pgbench failed: {out.stderr[-2000:]}")
        return float(re.search(r"tps = ([\d.]+)", out.stdout)[1])
    finally:
        os.unlink(fh.name)


# ---------------------------------------------------------------------------- the app's SQL


def capture_sql(url: str, paths: list[str], tile_cache_mb: int | None = None) -> dict[str, str]:
    """The statements the tracker sends for each path (second request: steady state, e.g.
    numberMatched already known for this snapshot, a tile kept from the first), as a
    pgbench script; ``tile_cache_mb=0``: as the tracker sends them with no tile cache."""
    from fastapi.testclient import TestClient

    from geo_api import db
    from geo_api.main import create_app
    from geo_api.settings import Settings

    settings = Settings()
    if tile_cache_mb is not None:
        settings.api.tile_cache_mb = tile_cache_mb

    seen: list[tuple[str, object]] = []
    original = db.ReadPool.fetchone

    def recording(self, sql, params=None):
        seen.append(("read", (sql, params)))
        return original(self, sql, params)

    app = create_app(url, settings)
    engine = app.state.engine

    @event.listens_for(engine, "before_cursor_execute")
    def _record(conn, cursor, statement, parameters, context, executemany):
        seen.append(("engine", (statement, parameters)))

    scripts: dict[str, str] = {}
    db.ReadPool.fetchone = recording
    try:
        with TestClient(app) as client, psycopg.connect(**scale.admin_kwargs(url, make_url(url).database),
                                                        autocommit=True) as pg:
            cur = psycopg.ClientCursor(pg)
            for path in paths:
                for _ in range(2):
                    seen.clear()
                    assert client.get(path).status_code == 200, path
                lines = []
                for kind, (sql, params) in seen:
                    literal = cur.mogrify(sql, params).strip().rstrip(";")
                    lines.append(literal + ";")
                if any(kind == "engine" for kind, _ in seen):  # a SQLAlchemy transaction
                    lines = ["BEGIN;", *lines, "ROLLBACK;"]
                scripts[path] = "\n".join(re.sub(r"\s*\n\s*", " ", ln) for ln in lines) + "\n"
    finally:
        db.ReadPool.fetchone = original
        engine.dispose()
    return scripts


# ---------------------------------------------------------------------------- main


def endpoints(url: str) -> list[tuple[str, str, str]]:
    """(label, tracker path, tipg path). Tiles: those holding marker ITEM_ID (markers) and
    the road nearest to it (roads), so that none is empty."""
    with psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)) as c:
        marker = c.execute("SELECT ST_X(geom), ST_Y(geom) FROM marker WHERE id = %s", (ITEM_ID,)).fetchone()
        road = c.execute("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointN(geom, 1) AS p FROM branch_road "
                         "ORDER BY geom <-> ST_SetSRID(ST_MakePoint(%s, %s), 4326) LIMIT 1) r", marker).fetchone()
    out = [
        ("items, limit 10", "/ogc/collections/markers/items?limit=10",
         "/collections/public.marker/items?limit=10"),
        ("items, limit 10, bbox", f"/ogc/collections/markers/items?limit=10&bbox={BBOX}",
         f"/collections/public.marker/items?limit=10&bbox={BBOX}"),
        ("items, limit 1,000", "/ogc/collections/markers/items?limit=1000",
         "/collections/public.marker/items?limit=1000"),
        ("items, limit 1,000, bbox", f"/ogc/collections/markers/items?limit=1000&bbox={BBOX}",
         f"/collections/public.marker/items?limit=1000&bbox={BBOX}"),
        ("single item", f"/ogc/collections/markers/items/{ITEM_ID}",
         f"/collections/public.marker/items/{ITEM_ID}"),
    ]
    for layer, table, zooms, point in (("roads", "branch_road", (8, 10, 12), road),
                                       ("markers", "marker", (12, 14), marker)):
        for z in zooms:
            x, y = tile_of(*point, z)
            out.append((f"tile {layer} z{z}", f"/tiles/{layer}/{z}/{x}/{y}.pbf",
                        f"/collections/public.{table}/tiles/WebMercatorQuad/{z}/{x}/{y}"
                        + ("?geom-column=geom" if table == "branch_road" else "")))
    return out


def machine() -> str:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    mem = int(next(ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines()
                   if ln.startswith("MemTotal"))) / 1024 / 1024
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, Python {platform.python_version()}"


def versions() -> str:
    from importlib.metadata import version

    pg = subprocess.run(["pgbench", "--version"], capture_output=True, text=True).stdout.strip()
    wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    wrk_line = (wrk_v.stdout or wrk_v.stderr).splitlines()[0].split(" [")[0]
    return (f"tipg {version('tipg')}, fastapi {version('fastapi')}, uvicorn {version('uvicorn')}, "
            f"psycopg {version('psycopg')}, asyncpg {version('asyncpg')}, {wrk_line}, {pg}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=100, choices=[1, 10, 100])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk / pgbench run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", help="run only endpoints whose label contains this")
    parser.add_argument("--shared-server", action="store_true",
                        help="use the project cluster (or DATABASE_URL's) instead of the benchmarks' own")
    parser.add_argument("--out", type=Path, help="also write the raw figures here as JSON")
    args = parser.parse_args()
    for tool in ("wrk", "pgbench"):
        if shutil.which(tool) is None:
            print(f"{tool} is missing: apt-get install -y {'wrk' if tool == 'wrk' else 'postgresql-client'}",
                  file=sys.stderr)
            return 2
    try:
        import tipg  # noqa: F401
    except ImportError:
        print("tipg is missing: .venv/bin/pip install tipg", file=sys.stderr)
        return 2

    server = None if args.shared_server else scale.bench_server()
    url = scale.ensure(args.scale, echo=lambda m: print(m, file=sys.stderr, flush=True), server=server)
    server_url = make_url(url).set(database="postgres").render_as_string(hide_password=False)
    dbname = make_url(url).database
    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    eps = [e for e in endpoints(url) if not args.only or args.only in e[0]]

    logs = Path(tempfile.mkdtemp(prefix="vs-tipg-"))
    p_port, t_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIPG_")}
    uvicorn = str(VENV_BIN / "uvicorn")
    common = ["--host", "127.0.0.1", "--workers", "1", "--log-level", "warning", "--no-access-log"]
    tracker = tipg = uncached = None
    results: dict[str, dict[str, list]] = {e[0]: {"tracker": [], "tipg": [], "sql": [], "uncached": []}
                                           for e in eps}
    tile_eps = [e for e in eps if e[0].startswith("tile")]
    u_port = free_port()
    try:
        capture_sql(url, [e[1] for e in eps])  # fails early if the app cannot serve an endpoint
        tracker = start([uvicorn, "geo_api.main:create_app", "--factory", "--port", str(p_port), *common],
                        {**env, "DATABASE_URL": libpq}, logs / "tracker.log")
        tipg = start([uvicorn, "tipg.main:app", "--port", str(t_port), *common],
                     {**env, "DATABASE_URL": libpq, "TIPG_DB_TABLES": '["public.marker","public.branch_road"]',
                      "TIPG_DB_FUNCTIONS": "[]", "TIPG_TILE_BUFFER": "64", "TIPG_CATALOG_TTL": "3600"},
                     logs / "tipg.log")
        if tile_eps:  # the tracker again with its tile cache off: every tile rendered
            uncached = start([uvicorn, "geo_api.main:create_app", "--factory", "--port", str(u_port), *common],
                             {**env, "DATABASE_URL": libpq, "TRACKER_TILE_CACHE_MB": "0"}, logs / "uncached.log")
            wait_http(f"http://127.0.0.1:{u_port}/api/health")
        p_base, t_base = f"http://127.0.0.1:{p_port}", f"http://127.0.0.1:{t_port}"
        u_base = f"http://127.0.0.1:{u_port}"
        wait_http(p_base + "/api/health")
        wait_http(t_base + "/collections")

        print("\nwhat each side returns (decoded once before the runs):", file=sys.stderr)
        for label, p_path, t_path in eps:
            a, b = fetch(p_base + p_path), fetch(t_base + t_path)
            if label.startswith("tile"):
                what = f"features {mvt_feature_count(a)} vs {mvt_feature_count(b)}"
            elif label == "single item":
                what = f"id {json.loads(a)['id']} vs {json.loads(b)['id']}"
            else:
                ja, jb = json.loads(a), json.loads(b)
                what = (f"numberMatched {ja['numberMatched']:,} vs {jb['numberMatched']:,}, "
                        f"returned {ja['numberReturned']} vs {jb['numberReturned']}")
            results[label]["check"] = what
            results[label]["bytes"] = (len(a), len(b))
            print(f"  {label:<26} {what}; {len(a):,} vs {len(b):,} bytes", file=sys.stderr)
            for _ in range(3):  # warm both (caches, prepared statements, tipg's catalog)
                fetch(p_base + p_path), fetch(t_base + t_path)

        for r in range(args.rounds):
            for i, (label, p_path, t_path) in enumerate(eps):
                order = [("tracker", p_base + p_path), ("tipg", t_base + t_path)]
                if label.startswith("tile"):
                    order.insert(1, ("uncached", u_base + p_path))
                if (r + i) % 2:
                    order.reverse()
                for side, target in order:
                    results[label][side].append(wrk(target, args.duration, args.connections, args.threads))
                script = capture_sql(url, [p_path])[p_path]  # the statement as the app sends it now
                tps = pgbench(server_url, dbname, script, args.duration, args.connections, args.threads)
                results[label]["sql"].append(tps)
                p, t = results[label]["tracker"][-1], results[label]["tipg"][-1]
                u = results[label]["uncached"][-1]["rps"] if results[label]["uncached"] else float("nan")
                print(f"round {r + 1} {label:<26} tracker {p['rps']:8.1f}/s  tipg {t['rps']:8.1f}/s  "
                      f"SQL {tps:8.1f}/s  tracker without tile cache {u:8.1f}/s", file=sys.stderr, flush=True)
            if tile_eps:  # the tile statement itself, as the uncached tracker runs it
                for label, p_path, _ in tile_eps:
                    script = capture_sql(url, [p_path], tile_cache_mb=0)[p_path]
                    results[label].setdefault("sql_uncached", []).append(
                        pgbench(server_url, dbname, script, args.duration, args.connections, args.threads))
    finally:
        stop(tracker)
        stop(tipg)
        stop(uncached)

    print(f"\nMachine: {machine()}.\n{versions()}.")
    print(f"Data: {args.scale}× the demo ({dbname}); wrk -t{args.threads} -c{args.connections} "
          f"-d{args.duration}s per run, {args.rounds} rounds alternating, medians; pgbench -c{args.connections} "
          f"-j{args.threads} -T{args.duration} on the tracker's SQL.\n")
    print("| endpoint | tracker req/s | p50 ms | p99 ms | tipg req/s | p50 ms | p99 ms | tracker/tipg | "
          "SQL ceiling /s | tracker / ceiling | non-2xx (tracker, tipg) | same content |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|")
    summary = {}
    for label, *_ in eps:
        res = results[label]

        def med(side: str, key: str) -> float:
            return statistics.median(x[key] for x in res[side])

        p_rps, t_rps, ceiling = med("tracker", "rps"), med("tipg", "rps"), statistics.median(res["sql"])
        errs = (sum(x["non2xx"] + x["socket_errors"] for x in res["tracker"]),
                sum(x["non2xx"] + x["socket_errors"] for x in res["tipg"]))
        summary[label] = {"tracker_rps": p_rps, "tipg_rps": t_rps, "ratio": p_rps / t_rps, "ceiling": ceiling,
                          "of_ceiling": p_rps / ceiling}
        print(f"| {label} | {p_rps:,.1f} | {med('tracker', 'p50'):,.1f} | {med('tracker', 'p99'):,.1f} | "
              f"{t_rps:,.1f} | {med('tipg', 'p50'):,.1f} | {med('tipg', 'p99'):,.1f} | {p_rps / t_rps:.2f}× | "
              f"{ceiling:,.1f} | {p_rps / ceiling:.0%} | {errs[0]}, {errs[1]} | {res.get('check', '')} |")
    if tile_eps:
        print("\nTiles with the tracker's tile cache off (`TRACKER_TILE_CACHE_MB=0`, a third server in the "
              "same rounds): every request renders its tile.\n")
        print("| tile | tracker, no cache, req/s | p50 ms | p99 ms | tipg req/s | no cache / tipg | "
              "tile SQL alone (pgbench) /s | no cache / SQL |")
        print("|---|--:|--:|--:|--:|--:|--:|--:|")
        for label, *_ in tile_eps:
            res = results[label]
            u_rps = statistics.median(x["rps"] for x in res["uncached"])
            t_rps = statistics.median(x["rps"] for x in res["tipg"])
            sql = statistics.median(res["sql_uncached"])
            summary[label].update(uncached_rps=u_rps, uncached_ratio=u_rps / t_rps, sql_uncached=sql)
            print(f"| {label} | {u_rps:,.1f} | {statistics.median(x['p50'] for x in res['uncached']):,.1f} | "
                  f"{statistics.median(x['p99'] for x in res['uncached']):,.1f} | {t_rps:,.1f} | "
                  f"{u_rps / t_rps:.2f}× | {sql:,.1f} | {u_rps / sql:.0%} |")
    if args.out:
        args.out.write_text(json.dumps({"machine": machine(), "versions": versions(), "scale": args.scale,
                                        "results": results, "summary": summary}, indent=1))
    shutil.rmtree(logs, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
