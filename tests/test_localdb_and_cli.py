"""The project-local cluster and the CLI, as a user runs them."""

import os
import subprocess
import sys

import pytest

from geo_api import localdb
from geo_api.settings import DatabaseSettings, get_settings, normalise_url


def test_postgis_and_pgrouting_are_installed():
    assert localdb.postgis_missing_packages() == []


def test_local_cluster_is_running_on_its_own_port(server_url):
    if get_settings().database.database_url:
        pytest.skip("DATABASE_URL points at an external server")
    cluster = localdb.local_cluster()
    assert cluster.running()
    assert (cluster.data_dir / "PG_VERSION").exists()
    assert f":{get_settings().database.pg_port}/" in server_url


def test_ensure_postgis_names_the_command_when_it_cannot_install(monkeypatch):
    monkeypatch.setattr(localdb, "postgis_missing_packages", lambda: ["postgresql-15-postgis-3"])
    monkeypatch.setattr(localdb.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(localdb.shutil, "which", lambda name: None)
    with pytest.raises(localdb.LocalDbError) as err:
        localdb.ensure_postgis()
    assert "sudo apt-get install -y --no-install-recommends postgresql-15-postgis-3" in str(err.value)
    assert "PostGIS is not installed" in str(err.value)
    assert "DATABASE_URL" in str(err.value)


def test_database_url_wins_over_the_local_cluster(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db.example:5432/roads")
    assert DatabaseSettings().resolved_database_url() == "postgresql+psycopg://u:p@db.example:5432/roads"
    assert normalise_url("postgres://x/y") == "postgresql+psycopg://x/y"


def _tracker(*args, env=None):
    exe = os.path.join(os.path.dirname(sys.executable), "tracker")
    return subprocess.run([exe, *args], capture_output=True, text=True, env=env, timeout=300)


def test_cli_migrate_and_demo_load_are_idempotent(fresh_database):
    url = fresh_database()
    env = {**os.environ, "DATABASE_URL": url}
    assert _tracker("migrate", env=env).returncode == 0
    first = _tracker("demo", "load", env=env)
    assert first.returncode == 0, first.stderr
    second = _tracker("demo", "load", env=env)
    assert second.returncode == 0, second.stderr
    # the printed counts are the row counts after loading: the same both times
    assert first.stdout.strip().splitlines()[-1] == second.stdout.strip().splitlines()[-1]
    assert "marker" in first.stdout


def test_cli_reports_a_clear_error_for_an_unreachable_database():
    env = {**os.environ, "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none?connect_timeout=2"}
    result = _tracker("migrate", env=env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "cannot reach the database" in result.stderr
