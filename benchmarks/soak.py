"""Soak: minutes of mixed reads, writes and tiles over loopback; zero 5xx, flat memory.

    .venv/bin/python benchmarks/soak.py [--minutes 5] [--clients 6] [--scale 10] [--shared-server]

On a throwaway copy of the `scale`× dataset (benchmarks/scale.py) the tracker runs as one
uvicorn worker; `clients` loopback clients (threads, keep-alive HTTP/1.1) send, for
`minutes` minutes and at most 2,000,000 requests in all, a mix per client loop of:
REST pages (/api/markers, /api/roads with filters), OGC items with and without bbox,
single features, vector tiles of the roads and markers at zooms 6–14 around the border,
road transitions (If-Match) and funding pledges (anonymous reads, planner writes). The
app's resident memory (VmRSS) is sampled every 5 seconds.

Passes when no request got a 5xx or no answer, every answer was the expected status, and
memory is flat: the RSS of the last fifth of the run is within 10% (and 50 MiB) of the
RSS after the first fifth (warm-up: caches and pools fill). Prints the figures either way.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import scale  # noqa: E402
from vs_tipg import machine, stop  # noqa: E402
from write_path import (Client, RoadStepper, drop_database, percentile, planner_token, pledge,  # noqa: E402
                        start_app, throwaway_database)

MAX_REQUESTS = 2_000_000
REGION = (102.2, 20.5, 107.9, 23.3)  # the VN-CN and northern VN-LA border


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--scale", type=int, default=10, choices=[1, 10, 100])
    parser.add_argument("--shared-server", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the throwaway database")
    args = parser.parse_args()
    if not 0 < args.minutes <= 60:
        parser.error("--minutes must be in (0, 60]")

    from geo_api.domain.tiles import tile_range

    server = None if args.shared_server else scale.bench_server()
    url = throwaway_database(args.scale, server, "tracker_soak")
    logs = Path(tempfile.mkdtemp(prefix="soak-"))
    app = None
    samples: list[tuple[float, float]] = []
    clients: list[Client] = []
    unexpected: list[str] = []
    try:
        token = planner_token(url, "soak-planner")
        engine = create_engine(url)
        with engine.connect() as conn:
            roads = conn.execute(text("SELECT id FROM branch_road WHERE status = 'proposed' ORDER BY id LIMIT :n"),
                                 {"n": args.clients * 4}).scalars().all()
            n_roads = conn.execute(text("SELECT max(id) FROM branch_road")).scalar_one()
            n_markers = conn.execute(text("SELECT max(id) FROM marker")).scalar_one()
            donors = conn.execute(text("SELECT id FROM donor WHERE NOT is_group ORDER BY id")).scalars().all()
        engine.dispose()
        app, base = start_app(url, logs / "app.log")
        started = time.monotonic()
        stop_at = started + args.minutes * 60
        done = threading.Event()
        count = [0]
        lock = threading.Lock()

        def sampler() -> None:
            while not done.wait(5):
                samples.append((time.monotonic() - started, rss_mib(app.pid)))

        def work(n: int) -> None:
            rng = random.Random(n)
            reader, writer = Client(base), Client(base, token)
            clients.extend([reader, writer])
            stepper = RoadStepper(writer, list(roads[n::args.clients]), f"soak-{n}")

            def expect(status: int, what: str, wanted: tuple[int, ...] = (200,)) -> None:
                if status not in wanted and len(unexpected) < 50:
                    unexpected.append(f"{what}: {status}")

            i = 0
            while time.monotonic() < stop_at:
                with lock:
                    count[0] += 1
                    if count[0] > MAX_REQUESTS:
                        return
                i += 1
                x0 = rng.uniform(REGION[0], REGION[2] - 0.5)
                y0 = rng.uniform(REGION[1], REGION[3] - 0.5)
                bbox = f"{x0:.3f},{y0:.3f},{x0 + 0.5:.3f},{y0 + 0.5:.3f}"
                pick = i % 10
                if pick == 0:
                    path = f"/api/markers?limit=100&after={rng.randrange(n_markers)}"
                elif pick == 1:
                    path = f"/api/roads?limit=50&status=proposed,funded&bbox={bbox}"
                elif pick == 2:
                    path = f"/ogc/collections/markers/items?limit={rng.choice((10, 100, 1000))}&bbox={bbox}"
                elif pick == 3:
                    path = f"/ogc/collections/roads/items?limit=100&offset={rng.randrange(0, 2000)}"
                elif pick == 4:
                    path = f"/ogc/collections/markers/items/{rng.randrange(1, n_markers + 1)}"
                elif pick in (5, 6):
                    z = rng.randrange(6, 15)
                    xa, ya, xb, yb = tile_range(REGION, z)
                    layer = rng.choice(("roads", "markers"))
                    path = f"/tiles/{layer}/{z}/{rng.randint(xa, xb)}/{rng.randint(ya, yb)}.pbf"
                elif pick == 7:
                    path = f"/api/roads/{rng.randrange(1, n_roads + 1)}"
                elif pick == 8:
                    ok = stepper.step()
                    if not ok:
                        expect(0, "transition")
                    continue
                else:
                    road = roads[rng.randrange(len(roads))]
                    if not pledge(writer, donors[i % len(donors)], road, f"soak-{n}-{i}"):
                        expect(0, "pledge")
                    continue
                status, _, _ = reader.call("GET", path)
                expect(status, path)

        sampler_thread = threading.Thread(target=sampler, daemon=True)
        sampler_thread.start()
        threads = [threading.Thread(target=work, args=(n,)) for n in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        done.set()
        elapsed = time.monotonic() - started
    finally:
        stop(app)
        if not args.keep:
            drop_database(url)

    statuses: dict[int, int] = {}
    latencies: list[float] = []
    for c in clients:
        latencies += c.latencies
        for s, n in c.statuses.items():
            statuses[s] = statuses.get(s, 0) + n
    total = sum(statuses.values())
    errors = sum(n for s, n in statuses.items() if s >= 500 or s == 0)
    fifth = max(1, len(samples) // 5)
    warm = statistics.median(r for _, r in samples[fifth - 1:fifth + 1]) if samples else float("nan")
    late = statistics.median(r for _, r in samples[-fifth:]) if samples else float("nan")
    peak = max((r for _, r in samples), default=float("nan"))
    flat = late <= warm * 1.10 or late - warm <= 50
    print(f"Machine: {machine()}.")
    print(f"Data: {args.scale}× the demo ({make_url(url).database}, dropped after); {args.clients} clients "
          f"(each one reader and one writer connection), {elapsed / 60:.1f} minutes.\n")
    print("| requests | per second | p50 ms | p99 ms | statuses | 5xx or no answer | unexpected | "
          "RSS after warm-up MiB | RSS last fifth MiB | RSS peak MiB | flat |")
    print("|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|---|")
    print(f"| {total:,} | {total / elapsed:,.1f} | {percentile(latencies, 0.5) * 1000:.1f} | "
          f"{percentile(latencies, 0.99) * 1000:.1f} | {dict(sorted(statuses.items()))} | {errors} | "
          f"{len(unexpected)} | {warm:.0f} | {late:.0f} | {peak:.0f} | {'yes' if flat else 'NO'} |")
    print("\nRSS samples (s, MiB): " + ", ".join(f"{t:.0f}: {r:.0f}" for t, r in samples[:: max(1, len(samples) // 12)]))
    if unexpected:
        print("Unexpected answers: " + "; ".join(unexpected[:20]))
    return 0 if errors == 0 and not unexpected and flat else 1


if __name__ == "__main__":
    sys.exit(main())
