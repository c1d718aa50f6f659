"""Desktop GIS clients against a real server: GDAL's OAPIF driver (`ogrinfo`, from Debian's
gdal-bin, installed by `tracker ensure-gis-tools` as `make test` does) reads the field types
of /ogc collections from their schema, not from a guess over the first page of features.

Without a schema GDAL types money from the first features it sees: a 32-bit Integer unless
one of them happens to exceed 2^31, and then caps every larger amount at 2,147,483,647.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
from sqlalchemy import text

from support.live import serve

OGRINFO = shutil.which("ogrinfo")


@pytest.fixture(scope="module")
def live(database_url, demo_counts):
    """The app served by uvicorn on 127.0.0.1:<free port> over the demo database."""
    from geo_api.main import create_app

    with serve(create_app(database_url)) as url:
        yield url


def ogrinfo(*args: str) -> str:
    assert OGRINFO, "ogrinfo is missing: run `tracker ensure-gis-tools` (make test does)"
    env = {**os.environ, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}  # loopback only
    done = subprocess.run([OGRINFO, "--config", "GDAL_HTTP_TIMEOUT", "60", *args], capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def field_types(summary: str) -> dict[str, str]:
    """`name: Type (width.precision)` lines of `ogrinfo -so` -> {name: Type}."""
    return dict(re.findall(r"^(\w+): (\w+(?:\(\w+\))?) \(", summary, re.M))


def test_gdal_types_money_as_integer64_and_dates_as_date(live):
    roads = field_types(ogrinfo("-so", "-al", f"OAPIF:{live}/ogc/collections/roads"))
    assert roads["actual_cost"] == "Integer64"
    assert roads["estimated_cost"] == "Integer64"
    assert roads["completed_on"] == "Date"
    assert roads["inaugurated_on"] == "Date"
    assert roads["as_built"] == "Integer(Boolean)"
    assert roads["length_m"] == "Real" and roads["progress_pct"] == "Integer"
    assert roads["markers"] == "StringList"

    summary = ogrinfo("-so", "-al", f"OAPIF:{live}/ogc/collections/markers")
    assert "Geometry: Point" in summary
    markers = field_types(summary)
    assert markers["last_inspected_on"] == "Date"
    assert markers["requested_by_post"] == "Integer(Boolean)"
    assert markers["terrain_difficulty"] == "Integer" and markers["chainage_km"] == "Real"
    assert markers["number"] == "String"


def test_a_recent_gdal_reads_the_same_types(live):
    """pyogrio's own GDAL (3.12), which matches `describedby` in any case and prefers the GML
    application schema to the JSON Schema (whose integers it would take as 32-bit)."""
    import pyogrio

    info = pyogrio.read_info(f"OAPIF:{live}/ogc/collections/roads")
    types = dict(zip(info["fields"], zip(info["ogr_types"], info["ogr_subtypes"])))
    assert types["actual_cost"] == types["estimated_cost"] == ("OFTInteger64", "OFSTNone")
    assert types["completed_on"] == ("OFTDate", "OFSTNone")
    assert types["as_built"] == ("OFTInteger", "OFSTBoolean")


def test_gdal_reads_the_largest_actual_cost_exactly(live, engine):
    with engine.connect() as conn:
        road_id, cost, completed = conn.execute(text(
            "SELECT id, actual_cost, completed_on FROM branch_road WHERE actual_cost IS NOT NULL "
            "ORDER BY actual_cost DESC, id LIMIT 1")).one()
    assert cost > 2**31  # the demo has roads that cost more than a 32-bit integer holds
    out = ogrinfo("-q", f"OAPIF:{live}/ogc/collections/roads", "roads", "-fid", str(road_id))
    assert f"actual_cost (Integer64) = {int(cost)}" in out
    assert f"completed_on (Date) = {completed:%Y/%m/%d}" in out


def test_ensure_gis_tools_installs_gdal_bin_only_when_missing(monkeypatch):
    from geo_api import cli

    installed = subprocess.run([os.path.join(os.path.dirname(sys.executable), "tracker"), "ensure-gis-tools"],
                               capture_output=True, text=True, timeout=900)
    assert installed.returncode == 0, installed.stderr
    assert shutil.which("ogrinfo") and cli.gis_tools_missing_packages() == []
    asked: list[list[str]] = []
    monkeypatch.setattr(cli, "ensure_apt_packages", lambda missing, *a, **k: asked.append(missing))
    monkeypatch.setattr(cli.shutil, "which", lambda *a, **k: None)
    assert cli.gis_tools_missing_packages() == ["gdal-bin"]
    assert cli.main(["ensure-gis-tools"]) == 0 and asked == [["gdal-bin"]]
