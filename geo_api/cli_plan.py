"""`tracker plan` and `tracker network`: the planner from the command line.

    tracker plan --budget 5000000000 --province "Lạng Sơn" [--cap "Cao Bằng=2000000000" ...]
                 [--must-include MARKER_ID ...] [--min-distance M] [--as-of YYYY-MM-DD]
                 [--no-shared-roads] [--lang vi|en] [--out plan.geojson|plan.csv|plan.json]
    tracker network import FILE.osm.pbf|FILE.osm   (progress bar on stderr; repeatable)
    tracker network demo                           (the generated demo network; idempotent)
    tracker network summary

Exit status: 0 done, 1 bad input (the reason is printed), 2 the database or file cannot be used.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from geo_api.errors import DomainError

OUT_SUFFIXES = (".geojson", ".csv", ".json")


def _echo(message: str) -> None:
    print(message, flush=True)


def _fail(message: str, code: int = 1) -> int:
    print(f"tracker: {message}", file=sys.stderr)
    return code


def _engine():
    from geo_api import db
    from geo_api.localdb import ensure_database_available

    return db.get_engine(ensure_database_available(_echo))


def _caps(items: list[str] | None) -> dict[str, str]:
    caps: dict[str, str] = {}
    for item in items or []:
        province, sep, amount = item.rpartition("=")
        if not sep or not province.strip():
            raise ValueError(f"--cap {item!r}: expected PROVINCE=VND, e.g. \"Cao Bằng=2000000000\"")
        caps[province.strip()] = amount.strip()
    return caps


def _money(amount: int) -> str:
    return f"{amount:,} VND"


def cmd_plan(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from geo_api.domain import planner
    from geo_api.schemas.planner import PlanCreate

    out = Path(args.out) if args.out else None
    if out and not out.name.lower().endswith(OUT_SUFFIXES):
        return _fail(f"--out {out.name}: expected a .geojson, .csv or .json file")
    try:
        body = PlanCreate(budget=args.budget, province=args.province, province_caps=_caps(args.cap),
                          must_include=args.must_include or [], min_distance_m=args.min_distance,
                          as_of=args.as_of, shared_roads=not args.no_shared_roads)
    except (ValidationError, ValueError) as exc:
        if isinstance(exc, ValidationError):
            exc = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
                            for e in exc.errors())
        return _fail(str(exc))
    with _engine().connect() as conn:
        try:
            plan = planner.make_plan(conn, body)
        except DomainError as exc:
            return _fail(exc.message)
    lang = args.lang
    summary = plan.public(lang, ranked_limit=0)
    _echo(f"{len(plan.ranked)} candidates" + (f" in {args.province}" if args.province else "") +
          f"; budget {_money(body.budget)}")
    for key in ("optimal", "greedy"):
        s = summary[key]
        _echo(f"{key:>8}: {s['markers']} markers, score {s['total_score']:.2f}, cost "
              f"{_money(s['total_cost_vnd'])}, left {_money(s['remaining_vnd'])} ({s['status']}, {s['seconds']} s)")
    _echo(f"The optimal set scores {summary['score_gain_over_greedy']:.2f} more than the greedy one.")
    _echo(f"{'marker':>10} {'id':>6} {'score':>7} {'cost (VND)':>16}  connects to")
    for ch in summary["optimal"]["chosen"]:
        via = "network" if ch["connects_to"] == "network" else f"marker {ch['connects_to_number']}"
        _echo(f"{ch['number']:>10} {ch['marker_id']:>6} {ch['score']:>7.2f} {ch['cost_vnd']:>16,}  {via}")
    if out:
        name = out.name.lower()
        if name.endswith(".csv"):
            out.write_text(planner.to_csv(plan.ranked, plan, lang), encoding="utf-8")
        else:
            data = planner.to_geojson(plan.ranked, plan, lang) if name.endswith(".geojson") \
                else plan.public(lang)
            out.write_text(json.dumps(data, ensure_ascii=False, default=str, indent=1), encoding="utf-8")
        _echo(f"Wrote {out} ({len(plan.ranked)} candidates, chosen sets marked).")
    return 0


def cmd_network(args: argparse.Namespace) -> int:
    from geo_api.domain import network

    engine = _engine()
    try:
        if args.action == "import":
            if not args.file:
                return _fail("network import needs a FILE (.osm or .osm.pbf)")
            r = network.import_osm(engine, args.file, progress=not args.no_progress)
            _echo(f"Imported {r.file}: {r.ways} ways -> {r.edges} edges, {r.km:,.1f} km"
                  + (f" (replaced {r.replaced} edges of an earlier import)" if r.replaced else "")
                  + f" in {r.seconds} s.")
        elif args.action == "demo":
            counts = network.load_demo_network(engine)
            _echo(f"Demo network: {counts['road_network']} generated edges"
                  + ("" if counts["added"] else " (already there, nothing added)") + ".")
        else:
            with engine.connect() as conn:
                _echo(json.dumps(network.summary(conn), ensure_ascii=False, indent=1))
    except DomainError as exc:
        return _fail(exc.message, 2 if args.action == "import" else 1)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="choose markers to fund within a budget (optimal and greedy)")
    p.add_argument("--budget", required=True, help="VND, whole đồng, e.g. 5000000000")
    p.add_argument("--province", help="only this province, e.g. \"Lạng Sơn\"")
    p.add_argument("--cap", action="append", metavar="PROVINCE=VND", help="at most this much in a province")
    p.add_argument("--must-include", type=int, nargs="+", metavar="MARKER_ID", help="marker ids to include")
    p.add_argument("--min-distance", type=float, metavar="M", help="metres from the network (default 200)")
    p.add_argument("--as-of", metavar="YYYY-MM-DD", help="count 'time since inspection' to this day")
    p.add_argument("--no-shared-roads", action="store_true", help="every marker gets its own road")
    p.add_argument("--lang", choices=["vi", "en"], default="vi")
    p.add_argument("--out", metavar="FILE", help="write plan.geojson, plan.csv or plan.json")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("network", help="the road network: import OSM, generate the demo one, summary")
    p.add_argument("action", choices=["import", "demo", "summary"])
    p.add_argument("file", nargs="?", help="the .osm or .osm.pbf file to import")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_network)
