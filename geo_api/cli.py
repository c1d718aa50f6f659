"""The `tracker` command line: database, migrations, demo data and the server."""

from __future__ import annotations

import argparse
import shutil
import sys

from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from geo_api.localdb import (
    LocalDbError,
    ensure_apt_packages,
    ensure_browser,
    ensure_database_available,
    ensure_postgis,
    local_cluster,
)
from geo_api.settings import get_settings
from geo_api import cli_files
from geo_api import cli_plan
from geo_api import cli_accounts


def _echo(message: str) -> None:
    print(message, flush=True)


def cmd_db(args: argparse.Namespace) -> int:
    settings = get_settings().database
    if args.action == "ensure-postgis":
        ensure_postgis(_echo)
        _echo("PostgreSQL, PostGIS and pgRouting are installed.")
        return 0
    if args.action == "url":
        _echo(settings.resolved_database_url())
        return 0
    if args.action in ("backup", "restore"):
        from geo_api import backup

        return backup.run(args.action, ensure_database_available(_echo), args.file, args.force, _echo)
    if settings.database_url and args.action in ("start", "stop"):
        _echo("DATABASE_URL is set: the project-local cluster is not used.")
        return 0
    cluster = local_cluster(settings)
    if args.action == "start":
        ensure_postgis(_echo)
        cluster.start()
        _echo(f"PostGIS running on 127.0.0.1:{settings.pg_port} (data in {cluster.data_dir})")
    elif args.action == "stop":
        cluster.stop()
        _echo("PostGIS stopped.")
    elif args.action == "status":
        running = cluster.running()
        _echo(f"{'running' if running else 'stopped'}: {cluster.data_dir} port {settings.pg_port}")
        return 0 if running else 3
    return 0


def cmd_ensure_browser(args: argparse.Namespace) -> int:
    ensure_browser(_echo)
    _echo("Chromium and ChromeDriver are installed.")
    return 0


def gis_tools_missing_packages() -> list[str]:
    """Debian packages still needed for the GIS client tests (GDAL's ogrinfo)."""
    return [] if shutil.which("ogrinfo") or shutil.which("ogrinfo", path="/usr/bin") else ["gdal-bin"]


def cmd_ensure_gis_tools(args: argparse.Namespace) -> int:
    ensure_apt_packages(gis_tools_missing_packages(), "GDAL (ogrinfo)", gis_tools_missing_packages, _echo)
    _echo("GDAL's command-line tools (ogrinfo, ogr2ogr) are installed.")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from geo_api import db

    url = ensure_database_available(_echo)
    if args.down:
        db.downgrade(url, args.down)
        _echo(f"Downgraded to {args.down}.")
    else:
        db.upgrade(url, args.revision)
        _echo(f"Database at {args.revision}.")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from geo_api import db, demo

    url = ensure_database_available(_echo)
    db.upgrade(url)
    counts = demo.load_demo(db.get_engine(url))
    _echo("Demo dataset loaded (generated data, labelled is_generated): " +
          ", ".join(f"{k} {v}" for k, v in counts.items()))
    from geo_api.domain.network import load_demo_network

    _echo(f"Demo road network: {load_demo_network(db.get_engine(url))['road_network']} generated edges.")
    return 0


def serve(host: str, port: int) -> None:
    import uvicorn

    _echo(f"Serving the tracker API on http://{host}:{port}  (docs: http://{host}:{port}/docs)")
    uvicorn.run("geo_api.main:create_app", factory=True, host=host, port=port, log_level="info")


def cmd_serve(args: argparse.Namespace) -> int:
    ensure_database_available(_echo)
    serve(args.host, args.port)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    cmd_demo(args)
    serve(args.host, args.port)
    return 0


def build_parser() -> argparse.ArgumentParser:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="tracker", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("db", help="the project-local PostGIS cluster")
    p.add_argument("action", choices=["ensure-postgis", "start", "stop", "status", "url", "backup", "restore"])
    p.add_argument("file", nargs="?", help="backup/restore: the archive (pg_dump custom format); a restore "
                   "goes only into an empty database")
    p.add_argument("--force", action="store_true", help="backup: replace FILE if it exists")
    p.set_defaults(func=cmd_db)

    p = sub.add_parser("ensure-browser", help="install Chromium + ChromeDriver (browser tests)")
    p.set_defaults(func=cmd_ensure_browser)

    p = sub.add_parser("ensure-gis-tools", help="install GDAL's ogrinfo/ogr2ogr, gdal-bin (GIS client tests)")
    p.set_defaults(func=cmd_ensure_gis_tools)

    p = sub.add_parser("migrate", help="apply (or roll back) the Alembic migrations")
    p.add_argument("--revision", default="head")
    p.add_argument("--down", metavar="REVISION", help="downgrade to REVISION (e.g. base)")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("demo", help="load the generated demo dataset (idempotent)")
    p.add_argument("action", choices=["load"])
    p.set_defaults(func=cmd_demo)

    for name, func, text in (
        ("serve", cmd_serve, "serve the API"),
        ("up", cmd_up, "start the database, migrate, load the demo data and serve"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--host", default=settings.server.host)
        p.add_argument("--port", type=int, default=settings.server.port)
        p.set_defaults(func=func)
    cli_files.add_commands(sub)
    cli_plan.add_commands(sub)
    cli_accounts.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except LocalDbError as exc:
        print(f"tracker: {exc}", file=sys.stderr)
        return 2
    except OperationalError as exc:
        url = make_url(get_settings().database.resolved_database_url()).render_as_string(hide_password=True)
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        print(f"tracker: cannot reach the database at {url}: {reason}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
