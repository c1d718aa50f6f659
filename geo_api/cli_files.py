"""`tracker import` and `tracker export`: files in and out from the command line.

    tracker import LAYER FILE [--dry-run] [--crs EPSG:xxxx] [--set FIELD=VALUE ...] [--actor NAME]
    tracker export LAYER --format geojson|gpkg|shp|csv|kml [--filter KEY=VALUE ...] --out FILE
        (a CSV gets GDAL's type sidecar beside it: FILE.csvt)

An import checks every row (with a progress bar on stderr), prints each bad row with its
reason and writes all rows or none. Exit status: 0 when every row is valid (and, without
--dry-run, written), 1 when some rows are bad (nothing written), 2 when the file cannot be
used at all.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from geo_api.errors import DomainError

# As in geo_api.domain.io_import.TARGETS / io_export.FORMATS (not imported here: `tracker
# --help` should not load GDAL); a test keeps them in step.
IMPORT_LAYERS = ["markers", "posts", "roads", "villages"]
EXPORT_FORMATS = ["geojson", "gpkg", "shp", "csv", "kml"]


def _echo(message: str) -> None:
    print(message, flush=True)


def _assignments(items: list[str] | None, what: str) -> dict[str, str]:
    from geo_api.routes.files import parse_assignments

    return parse_assignments(items, what)


def cmd_import(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from geo_api import db
    from geo_api.domain import io_import
    from geo_api.localdb import ensure_database_available

    path = Path(args.file)
    if not path.exists():
        print(f"tracker: no such file: {path}", file=sys.stderr)
        return 2
    bar: list[tqdm] = []

    def on_read(total: int) -> None:
        bar.append(tqdm(total=total, desc=f"checking {args.layer}", unit="row", file=sys.stderr))

    engine = db.get_engine(ensure_database_available(_echo))
    try:
        with engine.begin() as conn:
            report = io_import.import_file(
                conn, args.layer, path, dry_run=args.dry_run, actor=args.actor, crs=args.crs,
                defaults=_assignments(args.set, "--set"), on_read=on_read,
                progress=lambda n: bar[0].update(n) if bar else None,
            )
    except DomainError as exc:
        print(f"tracker: {exc.message}", file=sys.stderr)
        return 2
    finally:
        for b in bar:
            b.close()
    _echo(f"{report.source}: {report.format}, {report.rows} rows, CRS {report.source_crs}")
    if report.ignored_columns:
        _echo(f"ignored columns: {', '.join(report.ignored_columns)}")
    for err in report.errors:
        _echo(f"  row {err.row}{f' {err.field}' if err.field else ''}: {err.reason}")
    _echo(report.message)
    return 1 if report.errors or not report.rows else 0


def cmd_export(args: argparse.Namespace) -> int:
    from geo_api import db
    from geo_api.domain import io_export
    from geo_api.localdb import ensure_database_available

    engine = db.get_engine(ensure_database_available(_echo))
    out = Path(args.out)
    try:
        n = io_export.export_to_file(engine, args.layer, args.format,
                                     _assignments(args.filter, "--filter"), out)
    except DomainError as exc:
        print(f"tracker: {exc.message}", file=sys.stderr)
        return 2
    types = f", field types in {io_export.csvt_path(out)}" if args.format == "csv" else ""
    _echo(f"wrote {n} {args.layer} to {out} ({args.format}{types})")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `import` and `export` on the `tracker` parser."""
    p = sub.add_parser("import", help="import markers, posts, roads or villages from a file (all or nothing)")
    p.add_argument("layer", choices=IMPORT_LAYERS)
    p.add_argument("file", help=".geojson, .gpkg, .zip (Shapefile), .shp, .csv, .kml/.kmz or .gpx")
    p.add_argument("--dry-run", action="store_true", help="check every row, write nothing")
    p.add_argument("--crs", help="CRS of a file that names none, e.g. EPSG:32648")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="value for rows that lack FIELD (repeatable), e.g. --set province='Lạng Sơn'")
    p.add_argument("--actor", default=f"cli:{getpass.getuser()}", help="who imports (audit log)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("export", help="export a layer (filtered like /api/LAYER) to a file")
    p.add_argument("layer", help="markers, posts, roads, villages, village-pairs, ... (see /api)")
    p.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    p.add_argument("--filter", action="append", metavar="KEY=VALUE",
                   help="a filter of /api/LAYER (repeatable), e.g. --filter province='Lạng Sơn'")
    p.add_argument("--out", required=True, help="the file to write")
    p.set_defaults(func=cmd_export)
