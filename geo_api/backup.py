"""`tracker db backup FILE` and `tracker db restore FILE`: pg_dump / pg_restore, custom format.

Both use the PostgreSQL client programs installed with the server (``localdb.pg_bin_dir``),
so the dump format matches the local cluster's version, and the database the rest of the
CLI uses (DATABASE_URL, else the project-local cluster).

- A backup is written to a temporary file beside FILE and renamed into place only when
  pg_dump succeeded, so FILE is either a complete archive or absent. An existing FILE is
  kept unless ``--force``.
- A restore goes only into an *empty* database (no tables of its own; extensions' tables
  do not count) and runs as one transaction with ``--exit-on-error``: it either restores
  everything or leaves the database as it was. Privileges come along, so the application
  role (TRACKER_APP_DB_ROLE, made by migration 0004) must exist on the target server.
- The planner's kept nearest network edges (``marker_network_access``, migration 0005)
  are derived data tied to the source's row versions: a backup leaves their rows out and
  a restore measures them again at its end, so the restored planner starts current.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from geo_api.localdb import LocalDbError, pg_bin_dir

MAGIC = b"PGDMP"  # the first bytes of a pg_dump custom-format archive
DERIVED = "public.marker_network_access"  # rebuilt after a restore, not backed up


class BackupError(LocalDbError):
    """A backup or restore that cannot go ahead; the message says what to do."""


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL (postgresql+psycopg://...) as a libpq connection URI."""
    u = make_url(url)
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _run(tool: str, args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(pg_bin_dir() / tool), *args], capture_output=True, text=True)


def _reason(result: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in (result.stderr or result.stdout).strip().splitlines() if ln.strip()]
    return "\n".join(lines[-6:]) or f"exit code {result.returncode}"


def backup(url: str, path: str | Path, force: bool = False) -> int:
    """Dump the database at `url` to `path` (custom format); returns the archive's size."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise BackupError(f"{target} is a directory; give the backup file's name, e.g. {target / 'tracker.dump'}")
    if target.exists() and not force:
        raise BackupError(f"{target} already exists; choose another name, or pass --force to replace it")
    if not target.parent.is_dir():
        raise BackupError(f"the folder {target.parent} does not exist; create it first")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(fd)
    try:
        result = _run("pg_dump", ["--format=custom", "--compress=6", f"--file={tmp}",
                                  f"--exclude-table-data={DERIVED}", f"--dbname={libpq_url(url)}"])
        if result.returncode != 0:
            raise BackupError(f"pg_dump could not back up {_shown(url)}:\n{_reason(result)}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target.stat().st_size


def own_tables(url: str) -> list[str]:
    """The database's tables and views that no extension owns (e.g. PostGIS's spatial_ref_sys)."""
    with psycopg.connect(libpq_url(url)) as conn:
        rows = conn.execute("""
            SELECT n.nspname || '.' || c.relname FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
              AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                              AND d.objid = c.oid AND d.deptype = 'e')
            ORDER BY 1
        """).fetchall()
    return [r[0] for r in rows]


def restore(url: str, path: str | Path) -> int:
    """Restore the archive at `path` into the empty database at `url`, all or nothing;
    returns the markers whose nearest network edge was measured again."""
    source = Path(path).expanduser()
    if not source.is_file():
        raise BackupError(f"{source} does not exist or is not a file")
    with open(source, "rb") as fh:
        if fh.read(len(MAGIC)) != MAGIC:
            raise BackupError(f"{source} is not a backup made by `tracker db backup` "
                              "(not a pg_dump custom-format archive)")
    try:
        existing = own_tables(url)
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BackupError(f"cannot reach the database to restore into, {_shown(url)}: {reason}; "
                          "create it first (an empty database) and point DATABASE_URL at it") from None
    if existing:
        shown = ", ".join(existing[:5]) + (f" and {len(existing) - 5} more" if len(existing) > 5 else "")
        raise BackupError(
            f"{_shown(url)} is not empty ({len(existing)} tables: {shown}); a restore goes only into an "
            "empty database: create a new one and point DATABASE_URL at it")
    result = _run("pg_restore", ["--exit-on-error", "--single-transaction", f"--dbname={libpq_url(url)}",
                                 str(source)])
    if result.returncode != 0:
        reason = _reason(result)
        hint = ""
        if "role" in reason and "does not exist" in reason:
            hint = ("\nThe archive grants rights to a role this server lacks: create it first "
                    "(e.g. CREATE ROLE tracker_app NOLOGIN) and restore again.")
        raise BackupError(f"pg_restore failed; nothing was restored into {_shown(url)}:\n{reason}{hint}")
    return _remeasure(url)


def _remeasure(url: str) -> int:
    """The planner's nearest network edges for the restored markers; how many."""
    if DERIVED not in own_tables(url):  # an archive from before migration 0005
        return 0
    from geo_api import db
    from geo_api.domain.planner import refresh_network_access

    engine = db.get_engine(url)
    try:
        return refresh_network_access(engine)
    finally:
        engine.dispose()


def run(action: str, url: str, file: str | None, force: bool = False, echo=print) -> int:
    """The CLI's `db backup|restore FILE`."""
    if not file:
        raise BackupError(f"`tracker db {action}` needs a FILE, e.g. tracker db {action} tracker.dump")
    if action == "backup":
        size = backup(url, file, force)
        echo(f"Backed up {_shown(url)} to {file} ({size:,} bytes, pg_dump custom format).")
    else:
        measured = restore(url, file)
        echo(f"Restored {file} into {_shown(url)}; nearest network edges measured for {measured:,} markers.")
    return 0
