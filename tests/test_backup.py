"""`tracker db backup FILE` / `tracker db restore FILE`: a real pg_dump / pg_restore round trip.

The CLI runs as a subprocess with DATABASE_URL pointing at the database to use, as an
operator would run it. Tables are compared by row count and by a checksum of all their
rows (md5 of every row's text, in a fixed order).
"""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest
from sqlalchemy.engine import make_url

from geo_api import db
from geo_api.backup import DERIVED, libpq_url, own_tables
from geo_api.domain.planner import refresh_network_access

TRACKER = [sys.executable, "-m", "geo_api.cli"]


def tracker(url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.run([*TRACKER, "db", *args], capture_output=True, text=True, env=env, timeout=120)


def fingerprint(url: str) -> dict[str, tuple[int, str]]:
    """Every table of the database (extensions' included): (row count, md5 of its rows)."""
    with psycopg.connect(libpq_url(url)) as conn:
        tables = [r[0] for r in conn.execute("""
            SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
              AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1""")]
        out = {}
        for t in tables:
            n, digest = conn.execute(
                f"SELECT count(*), md5(COALESCE(string_agg(r::text, E'\\n' ORDER BY r::text), '')) FROM {t} r"
            ).fetchone()
            out[t] = (n, digest)
    return out


@pytest.fixture(scope="module")
def source(database_url, demo_counts) -> str:
    """The session's demo database, with a few audit rows and an account so every kind of row is there."""
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute("INSERT INTO audit_log (actor, action, target_table, target_id, after) "
                     "VALUES ('backup-test', 'create', 'marker', '1', '{\"n\": 1}')")
    return database_url


def test_round_trip_keeps_every_row(source, fresh_database, tmp_path):
    engine = db.get_engine(source)
    try:  # the planner's kept nearest edges, current in the source
        refresh_network_access(engine)
    finally:
        engine.dispose()
    archive = tmp_path / "tracker.dump"
    done = tracker(source, "backup", str(archive))
    assert done.returncode == 0, done.stderr
    assert "Backed up" in done.stdout and archive.read_bytes()[:5] == b"PGDMP"

    target = fresh_database()
    done = tracker(target, "restore", str(archive))
    assert done.returncode == 0, done.stderr

    before, after = fingerprint(source), fingerprint(target)
    assert before.keys() == after.keys()
    assert "public.marker" in before and "public.funding_tx" in before and "public.audit_log" in before
    assert before["public.marker"][0] == 3150 and before["public.funding_tx"][0] > 1000
    for table in before.keys() - {DERIVED}:
        assert after[table] == before[table], table
    # The planner's kept nearest edges are not in the archive; the restore measured them
    # again, current for the restored rows and the same as the source's.
    kept = ("SELECT a.marker_id, a.edge_id, a.dist_m, a.vid FROM marker_network_access a "
            "JOIN marker m ON m.id = a.marker_id AND a.marker_xmin = m.xmin "
            "JOIN network_version v ON v.version = a.network_version ORDER BY 1")
    with psycopg.connect(libpq_url(source)) as a, psycopg.connect(libpq_url(target)) as b:
        current = b.execute(kept).fetchall()
        assert len(current) == after[DERIVED][0] > 3000
        assert current == a.execute(kept).fetchall()
    assert f"measured for {len(current):,} markers" in done.stdout
    # Identity sequences come along: the next row gets the next id, not a duplicate.
    with psycopg.connect(libpq_url(source)) as a, psycopg.connect(libpq_url(target)) as b:
        q = "SELECT last_value FROM pg_sequences WHERE sequencename = 'funding_tx_id_seq'"
        assert a.execute(q).fetchone() == b.execute(q).fetchone()
        # and the app role's rights: it still may not rewrite the audit log.
        rights = "SELECT has_table_privilege('tracker_app', 'audit_log', 'UPDATE'), " \
                 "has_table_privilege('tracker_app', 'audit_log', 'INSERT')"
        assert b.execute(rights).fetchone() == a.execute(rights).fetchone() == (False, True)


def test_restore_refuses_a_database_that_is_not_empty(source, tmp_path):
    archive = tmp_path / "again.dump"
    assert tracker(source, "backup", str(archive)).returncode == 0
    before = fingerprint(source)
    done = tracker(source, "restore", str(archive))
    assert done.returncode == 2
    assert "is not empty" in done.stderr and "create a new one" in done.stderr
    assert fingerprint(source) == before


def test_restore_of_a_file_that_is_not_a_backup(fresh_database, tmp_path):
    target = fresh_database()
    junk = tmp_path / "notes.txt"
    junk.write_text("not a dump")
    done = tracker(target, "restore", str(junk))
    assert done.returncode == 2 and "not a backup made by `tracker db backup`" in done.stderr
    done = tracker(target, "restore", str(tmp_path / "missing.dump"))
    assert done.returncode == 2 and "does not exist" in done.stderr
    done = tracker(target, "restore")
    assert done.returncode == 2 and "needs a FILE" in done.stderr
    assert own_tables(target) == []


def test_a_failed_restore_leaves_the_database_empty(source, fresh_database, tmp_path):
    archive = tmp_path / "cut.dump"
    assert tracker(source, "backup", str(archive)).returncode == 0
    cut = tmp_path / "truncated.dump"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])  # a copy cut short
    target = fresh_database()
    done = tracker(target, "restore", str(cut))
    assert done.returncode == 2 and "nothing was restored" in done.stderr
    assert own_tables(target) == []


def test_backup_keeps_an_existing_file_and_reports_bad_targets(source, tmp_path):
    existing = tmp_path / "keep.dump"
    existing.write_bytes(b"precious")
    done = tracker(source, "backup", str(existing))
    assert done.returncode == 2 and "already exists" in done.stderr and "--force" in done.stderr
    assert existing.read_bytes() == b"precious"
    assert list(tmp_path.iterdir()) == [existing]  # no partial file left behind

    done = tracker(source, "backup", str(tmp_path / "no" / "such" / "dir.dump"))
    assert done.returncode == 2 and "does not exist" in done.stderr
    done = tracker(source, "backup", str(tmp_path))
    assert done.returncode == 2 and "is a directory" in done.stderr

    done = tracker(source, "backup", str(existing), "--force")
    assert done.returncode == 0 and existing.read_bytes()[:5] == b"PGDMP"


def test_backup_of_an_unreachable_database_writes_nothing(database_url, tmp_path):
    gone = make_url(database_url).set(database="tracker_no_such_db").render_as_string(hide_password=False)
    target = tmp_path / "x.dump"
    done = tracker(gone, "backup", str(target))
    assert done.returncode == 2 and "pg_dump could not back up" in done.stderr
    assert "tracker_no_such_db" in done.stderr
    assert not target.exists() and list(tmp_path.iterdir()) == []
