"""Deterministic 1×, 10× and 100× datasets for the benchmarks, each in its own database.

    .venv/bin/python benchmarks/scale.py --scale 100 [--bench-server] [--rebuild] [--drop]

Builds (or reuses) the database ``tracker_scale_<N>x`` on the project-local PostGIS cluster
(or DATABASE_URL's server; with ``--bench-server`` on the benchmarks' own cluster, see
`bench_server`) and prints its URL and row counts:

1. migrates it and loads the demo dataset and the demo road network through the project's
   own loaders (``geo_api.demo.load_demo``, ``geo_api.domain.network.load_demo_network``);
2. for N > 1, adds copies k = 1..N-1 of the demo posts, markers, branch roads (with their
   markers, history and ledger rows), villages and twinned pairs, each copy shifted by
   up to ±0.09° on a 10 × 10 grid of offsets (so copies overlap the border region like a
   denser deployment rather than sitting on top of each other). Natural keys get a
   ``-X<k>`` suffix; marker numbers become ``k·10000 + number`` (``1033/1`` → ``11033/1``
   in copy 1), so they stay valid marker numbers;
3. tops the ledger up to 10,000·N funding rows (1,000,000 at 100×) with pledges and
   commitments spread over all roads, and the road network up to 10,000·N segments
   (1,000,000 at 100×) with shifted copies of the demo network;
4. ANALYZEs, and marks the database complete (a COMMENT), so a later run reuses it.

Everything is computed from ids and copy numbers (no random()), so two builds are
identical. At 100×: ~315,000 markers, 30,000 roads, 21,100 posts, 1,000,000 funding rows,
1,000,000 network segments; about 4–6 minutes on 2 cores.

Other benchmarks import `ensure(scale)` to get the URL of a built database.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import psycopg
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from geo_api import db  # noqa: E402
from geo_api.localdb import ensure_database_available  # noqa: E402

FUNDING_PER_SCALE = 10_000
NETWORK_PER_SCALE = 10_000
COMPLETE = "border-roads benchmark dataset, complete"

# Copy k's offset in degrees: a 10 × 10 grid of steps of 0.02° (about 2 km), centred.
SHIFT = "((k % 10) - 4.5) * 0.02, (((k / 10) % 10) - 4.5) * 0.02"


def admin_kwargs(url: str, dbname: str = "postgres") -> dict:
    u = make_url(url)
    return {k: v for k, v in {"host": u.host, "port": u.port, "user": u.username,
                              "password": u.password, "dbname": dbname}.items() if v is not None}


BENCH_DIR = Path("/var/tmp/border-roads-bench")
BENCH_PORT = 55440


def bench_server() -> str:
    """A PostGIS cluster of the benchmarks' own (``localdb.Cluster`` with its own data
    directory and port), started if needed, so other work on the project cluster neither
    slows the measurements nor moves the database snapshot that read caches key on.
    Stop it with `--stop-bench-server`."""
    from geo_api.localdb import Cluster, ensure_postgis
    from geo_api.settings import DatabaseSettings

    ensure_postgis(lambda *_: None)
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    BENCH_DIR.chmod(0o755)  # the postgres user (when run as root) must reach the data dir
    cluster = Cluster(DatabaseSettings(database_url=None, pg_dir=BENCH_DIR / "pgdata", pg_port=BENCH_PORT,
                               pg_database="postgres"))
    cluster.start()
    return cluster.admin_url("postgres")


def stop_bench_server() -> None:
    from geo_api.localdb import Cluster
    from geo_api.settings import DatabaseSettings

    Cluster(DatabaseSettings(database_url=None, pg_dir=BENCH_DIR / "pgdata", pg_port=BENCH_PORT)).stop()


def database_name(scale: int) -> str:
    return f"tracker_scale_{scale}x"


def url_for(scale: int, server: str | None = None) -> str:
    server = server or ensure_database_available(lambda *_: None)
    return make_url(server).set(database=database_name(scale)).render_as_string(hide_password=False)


def _comment(url: str) -> str | None:
    name = make_url(url).database
    with psycopg.connect(**admin_kwargs(url), autocommit=True) as conn:
        row = conn.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                           (name,)).fetchone()
    return None if row is None else (row[0] or "")


def drop(scale: int, server: str | None = None) -> None:
    url = url_for(scale, server)
    with psycopg.connect(**admin_kwargs(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database_name(scale)}" WITH (FORCE)')


# ---------------------------------------------------------------------------- copies

COPY_STATEMENTS = [
    ("posts", f"""
        INSERT INTO border_post (code, name, province, district, commune, segment_id, geom, notes)
        SELECT p.code || '-X' || k, p.name || ' #' || k, p.province, p.district, p.commune, p.segment_id,
               ST_Translate(p.geom, {SHIFT}), p.notes
        FROM border_post p CROSS JOIN generate_series(1, :copies) k WHERE p.id <= :post ORDER BY k, p.id"""),
    ("markers", f"""
        INSERT INTO marker (segment_id, number, kind, geom, chainage_km, province, district, commune,
                            post_id, access, terrain_difficulty, requested_by_post, last_inspected_on, notes)
        SELECT m.segment_id,
               (k * 10000 + substring(m.number from '^[0-9]+')::int)::text
                   || substring(m.number from '^[0-9]+(.*)$'),
               m.kind, ST_Translate(m.geom, {SHIFT}), m.chainage_km, m.province, m.district, m.commune,
               m.post_id + k * :post, m.access, m.terrain_difficulty, m.requested_by_post,
               m.last_inspected_on, m.notes
        FROM marker m CROSS JOIN generate_series(1, :copies) k WHERE m.id <= :marker ORDER BY k, m.id"""),
    ("roads", f"""
        INSERT INTO branch_road (code, name, post_id, province, district, commune, status, geom,
                                 as_built_geom, surface, width_m, estimated_cost, actual_cost, planned_start,
                                 planned_end, actual_start, completed_on, contractor, progress_pct, notes)
        SELECT r.code || '-X' || k, r.name, r.post_id + k * :post, r.province, r.district, r.commune,
               r.status, ST_Translate(r.geom, {SHIFT}), ST_Translate(r.as_built_geom, {SHIFT}),
               r.surface, r.width_m, r.estimated_cost, r.actual_cost, r.planned_start, r.planned_end,
               r.actual_start, r.completed_on, r.contractor, r.progress_pct, r.notes
        FROM branch_road r CROSS JOIN generate_series(1, :copies) k WHERE r.id <= :road ORDER BY k, r.id"""),
    ("road markers", """
        INSERT INTO road_marker (road_id, marker_id)
        SELECT rm.road_id + k * :road, rm.marker_id + k * :marker
        FROM road_marker rm CROSS JOIN generate_series(1, :copies) k WHERE rm.road_id <= :road"""),
    ("history", f"""
        INSERT INTO road_event (road_id, from_status, to_status, occurred_at, recorded_at, actor, note,
                                progress_pct, evidence, geom)
        SELECT e.road_id + k * :road, e.from_status, e.to_status, e.occurred_at, e.recorded_at, e.actor,
               e.note, e.progress_pct, e.evidence, ST_Translate(e.geom, {SHIFT})
        FROM road_event e CROSS JOIN generate_series(1, :copies) k WHERE e.id <= :event ORDER BY k, e.id"""),
    ("ledger", """
        INSERT INTO funding_tx (donor_id, road_id, campaign_id, kind, amount, tx_date, reference, note,
                                created_at)
        SELECT f.donor_id, f.road_id + k * :road, f.campaign_id, f.kind, f.amount, f.tx_date, f.reference,
               f.note, f.created_at
        FROM funding_tx f CROSS JOIN generate_series(1, :copies) k
        WHERE f.id <= :funding AND f.road_id IS NOT NULL ORDER BY k, f.id"""),
    ("villages", f"""
        INSERT INTO village (code, name, country, admin1, admin2, admin3, population, households, geom)
        SELECT v.code || '-X' || k, v.name, v.country, v.admin1, v.admin2, v.admin3, v.population,
               v.households, ST_Translate(v.geom, {SHIFT})
        FROM village v CROSS JOIN generate_series(1, :copies) k WHERE v.id <= :village ORDER BY k, v.id"""),
    ("pairs", """
        INSERT INTO village_pair (vn_village_id, foreign_village_id, post_id, twinned_on, notes)
        SELECT p.vn_village_id + k * :village, p.foreign_village_id + k * :village,
               p.post_id + k * :post, p.twinned_on, p.notes
        FROM village_pair p CROSS JOIN generate_series(1, :copies) k WHERE p.id <= :pair ORDER BY k, p.id"""),
]

# Pledges and commitments spread over every road and donor, from the row number only.
LEDGER_TOP_UP = """
    INSERT INTO funding_tx (donor_id, road_id, kind, amount, tx_date, reference)
    SELECT d.ids[(1 + (i * 31) % array_length(d.ids, 1))::int],
           (1 + (i * 7919) % :roads)::int,
           CASE WHEN i % 3 = 0 THEN 'commitment' ELSE 'pledge' END::funding_kind,
           (1 + (i * 104729) % 500) * 1000000,
           DATE '2019-01-01' + ((i * 13) % 2800)::int,
           'bench-' || i
    FROM generate_series(CAST(1 AS bigint), :n) i, (SELECT array_agg(id ORDER BY id) AS ids FROM donor) d
"""

NETWORK_TOP_UP = f"""
    INSERT INTO road_network (osm_id, highway, surface, name, geom, is_generated, imported_from)
    SELECT n.osm_id, n.highway, n.surface, n.name, ST_Translate(n.geom, {SHIFT}), true, 'bench-scale'
    FROM road_network n CROSS JOIN generate_series(1, :copies) k
    WHERE n.id <= :network ORDER BY k, n.id LIMIT :n
"""


def counts(conn) -> dict[str, int]:
    tables = ["marker", "border_post", "branch_road", "road_marker", "road_event", "funding_tx",
              "village", "village_pair", "road_network"]
    sql = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in tables)
    found = {name: int(n) for name, n in conn.execute(text(sql))}
    return {t: found[t] for t in tables}


def build(url: str, scale: int, echo=print) -> dict[str, float]:
    """Load the demo data into the (migrated, empty) database at `url` and scale it up."""
    from geo_api.demo import load_demo
    from geo_api.domain.network import load_demo_network

    timings: dict[str, float] = {}

    def timed(name: str, fn):
        started = time.perf_counter()
        out = fn()
        timings[name] = time.perf_counter() - started
        echo(f"  {name}: {timings[name]:.1f} s")
        return out

    db.upgrade(url)
    engine = create_engine(url)
    try:
        timed("demo data (geo_api.demo.load_demo)", lambda: load_demo(engine))
        timed("demo network (load_demo_network)", lambda: load_demo_network(engine))
        with engine.connect() as conn:
            base = dict(conn.execute(text("""
                SELECT 'post', max(id) FROM border_post UNION ALL SELECT 'marker', max(id) FROM marker
                UNION ALL SELECT 'road', max(id) FROM branch_road UNION ALL SELECT 'event', max(id) FROM road_event
                UNION ALL SELECT 'funding', max(id) FROM funding_tx UNION ALL SELECT 'village', max(id) FROM village
                UNION ALL SELECT 'pair', max(id) FROM village_pair UNION ALL SELECT 'network', max(id) FROM road_network
            """)).all())
            n = dict(conn.execute(text("""
                SELECT 'post', count(*) FROM border_post UNION ALL SELECT 'marker', count(*) FROM marker
                UNION ALL SELECT 'road', count(*) FROM branch_road UNION ALL SELECT 'village', count(*) FROM village
            """)).all())
        # The copy statements shift ids by k·max(id); that is exact only for dense ids.
        assert all(base[k] == n[k] for k in n), f"demo ids are not dense: {base} vs {n}"
        copies = scale - 1
        for name, sql in COPY_STATEMENTS if copies else ():
            with engine.begin() as conn:
                conn.execute(text("SET LOCAL jit = off"))
                timed(f"copies: {name}", lambda: conn.execute(text(sql), {"copies": copies, **base}))
        with engine.begin() as conn:
            have = counts(conn)
            roads = have["branch_road"]
            need = FUNDING_PER_SCALE * scale - have["funding_tx"]
            if need > 0:
                timed("ledger top-up", lambda: conn.execute(text(LEDGER_TOP_UP), {"n": need, "roads": roads}))
        with engine.begin() as conn:
            need = NETWORK_PER_SCALE * scale - have["road_network"]
            if need > 0:
                net_copies = -(-need // base["network"])
                timed("network top-up", lambda: conn.execute(
                    text(NETWORK_TOP_UP), {"n": need, "copies": net_copies, "network": base["network"]}))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            timed("VACUUM ANALYZE", lambda: conn.execute(text("VACUUM ANALYZE")))
    finally:
        engine.dispose()
    return timings


def ensure(scale: int, rebuild: bool = False, echo=print, server: str | None = None) -> str:
    """The URL of the built `scale`× database on `server` (default: the project cluster or
    DATABASE_URL's server), building it first when needed."""
    url = url_for(scale, server)
    name = database_name(scale)
    comment = _comment(url)
    if comment == COMPLETE and not rebuild:
        from geo_api import db

        db.upgrade(url)  # built before a later migration: bring it to head
        return url
    with psycopg.connect(**admin_kwargs(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    echo(f"building {name} ({scale}× the demo data) ...")
    started = time.perf_counter()
    build(url, scale, echo)
    with psycopg.connect(**admin_kwargs(url), autocommit=True) as conn:
        conn.execute(f"COMMENT ON DATABASE \"{name}\" IS '{COMPLETE}'")
    echo(f"built {name} in {time.perf_counter() - started:.0f} s")
    return url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=100, choices=[1, 10, 100])
    parser.add_argument("--rebuild", action="store_true", help="drop and build again even if complete")
    parser.add_argument("--drop", action="store_true", help="drop the database and exit")
    parser.add_argument("--bench-server", action="store_true",
                        help=f"on the benchmarks' own cluster (port {BENCH_PORT}, data in {BENCH_DIR})")
    parser.add_argument("--stop-bench-server", action="store_true", help="stop that cluster and exit")
    args = parser.parse_args()
    if args.stop_bench_server:
        stop_bench_server()
        return 0
    server = bench_server() if args.bench_server else None
    if args.drop:
        drop(args.scale, server)
        print(f"dropped {database_name(args.scale)}")
        return 0
    url = ensure(args.scale, args.rebuild, echo=lambda m: print(m, file=sys.stderr, flush=True),
                 server=server)
    engine = create_engine(url)
    with engine.connect() as conn:
        print(url)
        for table, n in counts(conn).items():
            print(f"{table:>14}: {n:,}")
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
