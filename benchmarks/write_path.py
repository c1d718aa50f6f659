"""Writes per second through the app, against the server's own ceiling for a plain UPDATE.

    .venv/bin/python benchmarks/write_path.py [--scale 10] [--duration 15] [--rounds 3]
        [--clients 8] [--shared-server]

On a throwaway copy of the `scale`× dataset (benchmarks/scale.py; on the benchmarks' own
cluster unless ``--shared-server``) the tracker runs as one uvicorn worker, and `clients`
loopback clients (threads, keep-alive HTTP/1.1), each signed in as a planner, send for
`duration` seconds:

- **transitions**: POST /api/roads/{id}/transitions with If-Match, each client on roads of
  its own, moving them proposed → suspended → proposed (every step is a guarded UPDATE of
  the road, its road_event history row and its audit_log row, in one transaction);
- **funding**: POST /api/funding, a pledge to a road (the ledger row and its audit row,
  after the ledger rules and a lock on the road).

The ceiling is pgbench on the same server with the same number of clients, each
transaction one plain ``UPDATE branch_road SET progress_pct = progress_pct WHERE id = :id``
on a random road: a durable commit with no rules, no history and no HTTP. Rounds alternate
the three, and the report gives the medians and the ratio of each to the ceiling. At the
end every acknowledged write is checked to be there with its history and audit rows.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import scale  # noqa: E402
from vs_tipg import free_port, machine, pgbench, start, stop, wait_http  # noqa: E402

VENV_BIN = Path(sys.executable).parent


# ---------------------------------------------------------------------------- shared with soak.py


def throwaway_database(scale_n: int, server: str | None, prefix: str) -> str:
    """A new database with the `scale_n`× dataset (built with benchmarks/scale.py's loaders)."""
    base = scale.url_for(scale_n, server)
    name = f"{prefix}_{secrets.token_hex(3)}"
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(**scale.admin_kwargs(url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    scale.build(url, scale_n, echo=lambda m: print(m, file=sys.stderr, flush=True))
    return url


def drop_database(url: str) -> None:
    with psycopg.connect(**scale.admin_kwargs(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


def planner_token(url: str, username: str) -> str:
    from geo_api.auth import issue_token

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            account = conn.execute(text("INSERT INTO account (username, display_name, role) "
                                        "VALUES (:u, :u, 'planner') RETURNING id"), {"u": username}).scalar_one()
            return issue_token(conn, account, ttl_hours=24)[0]
    finally:
        engine.dispose()


def start_app(url: str, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    proc = start([str(VENV_BIN / "uvicorn"), "geo_api.main:create_app", "--factory", "--host", "127.0.0.1",
                  "--port", str(port), "--workers", "1", "--log-level", "warning", "--no-access-log"],
                 {**os.environ, "DATABASE_URL": libpq}, log)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/api/health")
    return proc, base


class Client:
    """A keep-alive HTTP/1.1 client on one connection; records statuses and latencies."""

    def __init__(self, base: str, token: str | None = None):
        host, port = base.removeprefix("http://").split(":")
        self.host, self.port, self.token = host, int(port), token
        self.conn: http.client.HTTPConnection | None = None
        self.statuses: dict[int, int] = {}
        self.latencies: list[float] = []

    def call(self, method: str, path: str, body: dict | None = None, headers: dict | None = None
             ) -> tuple[int, str | None, bytes]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        h = {"Content-Type": "application/json", **(headers or {})}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        started = time.perf_counter()
        try:
            self.conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
            r = self.conn.getresponse()
            out = r.status, r.getheader("ETag"), r.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = None
            out = 0, None, b""
        self.latencies.append(time.perf_counter() - started)
        self.statuses[out[0]] = self.statuses.get(out[0], 0) + 1
        return out


class RoadStepper:
    """Moves its own roads proposed ⇄ suspended, keeping each road's ETag for If-Match."""

    def __init__(self, client: Client, roads: list[int], tag: str):
        self.client, self.roads, self.tag = client, roads, tag
        self.state: dict[int, tuple[str, str] | None] = {r: None for r in roads}
        self.acked: list[str] = []
        self.i = 0

    def step(self) -> bool:
        self.i += 1
        road = self.roads[self.i % len(self.roads)]
        if self.state[road] is None:
            status, etag, body = self.client.call("GET", f"/api/roads/{road}")
            if status != 200:
                return False
            self.state[road] = (json.loads(body)["properties"]["status"], etag)
        current, etag = self.state[road]
        to = "suspended" if current == "proposed" else "proposed"
        note = f"{self.tag}-{self.i}-{to}"
        status, new_etag, _ = self.client.call("POST", f"/api/roads/{road}/transitions",
                                               {"to_status": to, "note": note}, {"If-Match": etag})
        if status == 200:
            self.state[road] = (to, new_etag)
            self.acked.append(note)
            return True
        self.state[road] = None
        return False


def pledge(client: Client, donor: int, road: int, ref: str) -> bool:
    status, _, _ = client.call("POST", "/api/funding", {
        "donor_id": donor, "kind": "pledge", "amount": 5_000_000, "tx_date": "2024-05-01", "road_id": road,
        "reference": ref})
    return status == 201


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


# ---------------------------------------------------------------------------- main


def run_load(kind: str, base: str, token: str, roads_by_client: list[list[int]], donors: list[int],
             duration: float, round_no: int, acked: dict[str, list[str]]) -> dict:
    stop_at = time.monotonic() + duration
    clients = [Client(base, token) for _ in roads_by_client]

    def work(n: int) -> None:
        c = clients[n]
        stepper = RoadStepper(c, roads_by_client[n], f"wp{round_no}-{n}")
        i = 0
        while time.monotonic() < stop_at:
            i += 1
            if kind == "transitions":
                stepper.step()
            else:
                ref = f"wp{round_no}-{n}-{i}"
                if pledge(c, donors[(n + i) % len(donors)], roads_by_client[n][i % len(roads_by_client[n])], ref):
                    acked["funding"].append(ref)
        acked["transitions"].extend(stepper.acked)

    started = time.monotonic()
    threads = [threading.Thread(target=work, args=(n,)) for n in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    statuses: dict[int, int] = {}
    lat: list[float] = []
    for c in clients:
        lat += c.latencies
        for s, n in c.statuses.items():
            statuses[s] = statuses.get(s, 0) + n
    ok = statuses.get(200 if kind == "transitions" else 201, 0)
    return {"per_s": ok / elapsed, "p50": percentile(lat, 0.5) * 1000, "p99": percentile(lat, 0.99) * 1000,
            "statuses": statuses}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=10, choices=[1, 10, 100])
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--shared-server", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the throwaway database")
    args = parser.parse_args()

    server = None if args.shared_server else scale.bench_server()
    url = throwaway_database(args.scale, server, "tracker_writebench")
    dbname = make_url(url).database
    server_url = make_url(url).set(database="postgres").render_as_string(hide_password=False)
    logs = Path(tempfile.mkdtemp(prefix="write-path-"))
    app = None
    results: dict[str, list] = {"transitions": [], "funding": [], "ceiling": []}
    acked: dict[str, list[str]] = {"transitions": [], "funding": []}
    try:
        token = planner_token(url, "bench-planner")
        engine = create_engine(url)
        with engine.connect() as conn:
            roads = conn.execute(text("SELECT id FROM branch_road WHERE status = 'proposed' ORDER BY id LIMIT :n"),
                                 {"n": args.clients * 4}).scalars().all()
            donors = conn.execute(text("SELECT id FROM donor WHERE NOT is_group ORDER BY id")).scalars().all()
            n_roads = conn.execute(text("SELECT max(id) FROM branch_road")).scalar_one()
            before = conn.execute(text("SELECT (SELECT count(*) FROM road_event), (SELECT count(*) FROM audit_log), "
                                       "(SELECT count(*) FROM funding_tx)")).one()
        engine.dispose()
        by_client = [list(roads[n::args.clients]) for n in range(args.clients)]
        app, base = start_app(url, logs / "app.log")
        ceiling_sql = ("\\set id random(1, %d)\nUPDATE branch_road SET progress_pct = progress_pct WHERE id = :id;\n"
                       % n_roads)
        for r in range(args.rounds):
            order = ["transitions", "funding", "ceiling"]
            order = order[r % 3:] + order[:r % 3]
            for kind in order:
                if kind == "ceiling":
                    tps = pgbench(server_url, dbname, ceiling_sql, args.duration, args.clients, 2)
                    results["ceiling"].append(tps)
                    print(f"round {r + 1} plain UPDATE (pgbench)  {tps:8.1f}/s", file=sys.stderr, flush=True)
                else:
                    res = run_load(kind, base, token, by_client, donors, args.duration, r, acked)
                    results[kind].append(res)
                    print(f"round {r + 1} {kind:<22} {res['per_s']:8.1f}/s  p50 {res['p50']:.1f} ms  "
                          f"p99 {res['p99']:.1f} ms  {res['statuses']}", file=sys.stderr, flush=True)
        stop(app)
        app = None
        # Every acknowledged write is there, with its history and audit rows.
        engine = create_engine(url)
        with engine.connect() as conn:
            events = conn.execute(text("SELECT count(*) FROM road_event WHERE note = ANY(:n)"),
                                  {"n": acked["transitions"]}).scalar_one()
            ledger = conn.execute(text("SELECT count(*) FROM funding_tx WHERE reference = ANY(:r)"),
                                  {"r": acked["funding"]}).scalar_one()
            after = conn.execute(text("SELECT (SELECT count(*) FROM road_event), (SELECT count(*) FROM audit_log), "
                                      "(SELECT count(*) FROM funding_tx)")).one()
        engine.dispose()
        new_events, new_audit, new_ledger = (a - b for a, b in zip(after, before))
        assert events == len(acked["transitions"]) == new_events, (events, len(acked["transitions"]), new_events)
        assert ledger == len(acked["funding"]) == new_ledger, (ledger, len(acked["funding"]), new_ledger)
        assert new_audit == new_events + new_ledger, (new_audit, new_events, new_ledger)
    finally:
        stop(app)
        if not args.keep:
            drop_database(url)

    ceiling = statistics.median(results["ceiling"])
    print(f"\nMachine: {machine()}.")
    print(f"Data: {args.scale}× the demo; {args.clients} clients, {args.duration} s per run, {args.rounds} rounds "
          f"alternating, medians. Checked after the runs: {len(acked['transitions']):,} acknowledged transitions "
          f"= {len(acked['transitions']):,} new road_event rows, {len(acked['funding']):,} acknowledged ledger rows, "
          f"and one audit_log row for each ({len(acked['transitions']) + len(acked['funding']):,}).\n")
    print("| write | per second | p50 ms | p99 ms | ceiling (plain UPDATE, pgbench) /s | fraction of ceiling |")
    print("|---|--:|--:|--:|--:|--:|")
    for kind, label in (("transitions", "road transition (UPDATE + history + audit)"),
                        ("funding", "funding pledge (rules + ledger row + audit)")):
        per_s = statistics.median(x["per_s"] for x in results[kind])
        print(f"| {label} | {per_s:,.1f} | {statistics.median(x['p50'] for x in results[kind]):.1f} | "
              f"{statistics.median(x['p99'] for x in results[kind]):.1f} | {ceiling:,.1f} | {per_s / ceiling:.0%} |")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    sys.exit(main())
