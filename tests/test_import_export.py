"""File import (all or nothing, every bad row reported) and export, through the domain
functions, the HTTP endpoints and the CLI.

Imports go into a second database (`target`) that starts with the demo's border segments
and posts (the posts themselves imported from a GeoJSON export of the demo); each round
trip runs in a transaction that is rolled back, so the tests do not depend on each other.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Transformer
from shapely.geometry import Point
from sqlalchemy import create_engine, text

from geo_api import auth, cli_files, db, guards, policy
from geo_api.domain import io_export, io_import
from geo_api.errors import InvalidInput, UnsupportedMediaType
from geo_api.settings import get_settings

FORMATS = list(io_export.FORMATS)
TO_UTM = Transformer.from_crs("EPSG:4326", "EPSG:32648", always_xy=True)

# Columns an import carries (natural keys instead of ids), compared after a round trip.
CARRIED = {
    "posts": ["code", "name", "province", "district", "commune", "segment", "notes"],
    "markers": ["number", "kind", "segment", "chainage_km", "province", "district", "commune",
                "post_code", "access", "terrain_difficulty", "requested_by_post", "last_inspected_on",
                "notes"],
    "roads": ["code", "name", "post_code", "province", "district", "commune", "estimated_cost",
              "markers", "surface", "width_m", "planned_start", "planned_end", "contractor", "notes"],
    "villages": ["code", "name", "country", "admin1", "admin2", "admin3", "population", "households"],
}
KEY = {"posts": "code", "markers": "number", "roads": "code", "villages": "code"}
QT = {"posts": {"province": "Quảng Trị"}, "markers": {"province": "Quảng Trị"},
      "roads": {"province": "Quảng Trị"}, "villages": {"admin1": "Quảng Trị"}}


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def target(fresh_database, engine, demo_counts, tmp_path_factory):
    """A second database: the demo's border segments (copied) and posts (imported)."""
    url = fresh_database()
    db.upgrade(url)
    eng = create_engine(url)
    with engine.connect() as src, eng.begin() as dst:
        for r in src.execute(text("SELECT code, neighbour_iso3, name_vi, name_en, ST_AsEWKB(geom) AS g "
                                  "FROM border_segment ORDER BY id")):
            dst.execute(text("INSERT INTO border_segment (code, neighbour_iso3, name_vi, name_en, geom) "
                             "VALUES (:c, :n, :vi, :en, ST_GeomFromEWKB(:g))"),
                        {"c": r.code, "n": r.neighbour_iso3, "vi": r.name_vi, "en": r.name_en, "g": r.g})
    posts = tmp_path_factory.mktemp("posts") / "posts.geojson"
    io_export.export_to_file(engine, "posts", "geojson", {}, posts)
    with eng.begin() as conn:
        report = io_import.import_file(conn, "posts", posts, dry_run=False, actor="test")
    assert report.committed and report.created == demo_counts["border_post"], report.errors[:3]
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def target_client(target):
    """A client of the target database, logged in as a planner."""
    from geo_api.main import create_app

    with target.begin() as conn:
        planner = auth.create_account(conn, username="import.planner", role="planner", password=None)
    app = create_app(target.url.render_as_string(hide_password=False))
    app.dependency_overrides[guards.optional_account] = lambda: planner
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def anonymous_target_client(target):
    from geo_api.main import create_app

    with TestClient(create_app(target.url.render_as_string(hide_password=False))) as c:
        yield c


def state(eng) -> tuple:
    """Row counts and a checksum of the tables an import writes to."""
    with eng.connect() as conn:
        return conn.execute(text("""
            SELECT (SELECT count(*) FROM marker), (SELECT count(*) FROM border_post),
                   (SELECT count(*) FROM branch_road), (SELECT count(*) FROM village),
                   (SELECT count(*) FROM audit_log),
                   (SELECT md5(string_agg(m::text, ',' ORDER BY m.id)) FROM marker m)
        """)).one()


def export_file(engine, layer: str, fmt: str, filters: dict, folder: Path) -> Path:
    out = folder / f"{layer}.{io_export.EXTENSIONS[fmt]}"
    io_export.export_to_file(engine, layer, fmt, filters, out)
    return out


def carried(conn, layer: str, filters: dict) -> pd.DataFrame:
    """The export of `layer` as compared after a round trip: carried columns and geometry."""
    exported = io_export.export_layer(layer)
    df = io_export.frame(conn, exported, io_export.parse_filters(exported, "gpkg", filters), policy.SYSTEM)
    out = pd.DataFrame(df[CARRIED[layer]]).set_index(KEY[layer]).sort_index()
    out["wkt"] = [shapely.to_wkt(g, rounding_precision=6) for g in df.set_index(KEY[layer]).sort_index().geometry]
    return out.astype(object).where(out.notna(), None)


# ---------------------------------------------------------------------------- a province's shapefile


def border_points(eng, n: int) -> list[tuple[float, float]]:
    """`n` points on the VN-CN border line near Tràng Định (Lạng Sơn)."""
    with eng.connect() as conn:
        return [tuple(r) for r in conn.execute(text("""
            SELECT ST_X(p), ST_Y(p) FROM (
                SELECT ST_ClosestPoint(s.geom, ST_SetSRID(ST_Point(106.40 + 0.02 * i, 22.45), 4326)) AS p, i
                FROM border_segment s, generate_series(0, :n - 1) i WHERE s.code = 'VN-CN') x ORDER BY i
        """), {"n": n})]


def marker_rows(eng) -> tuple[list[dict], list, dict[int, str]]:
    """Good and bad marker rows (in lon/lat), and for each bad row the field it fails on."""
    pts = border_points(eng, 12)
    base = {"segment": "VN-CN", "kind": "main", "province": "Lạng Sơn", "district": "Tràng Định",
            "post_code": "BP-BINH-NGHI", "terrain_difficulty": 3, "access": "earth"}
    rows, geoms, bad = [], [], {}

    def add(number, geom, bad_field=None, **over):
        rows.append({**base, "number": number, **over})
        geoms.append(geom)
        if bad_field:
            bad[len(rows)] = bad_field

    for i in range(6):
        add(f"98{i:02d}", Point(pts[i]))
    add("12A/b", Point(pts[6]), "number")                                # not a marker number
    add("9810", Point(pts[7]), "kind", kind="giant")                     # unknown kind
    add("9811", Point(pts[8][0] - 0.2, pts[8][1] - 0.1), "geometry")     # ~20 km inland
    add("9800", Point(pts[9]), "number")                                 # same number as row 1
    add("9812", Point(pts[10]), "terrain_difficulty", terrain_difficulty=9)
    add("9813", Point(pts[11]), "post_code", post_code="BP-NOWHERE")
    add("9814", Point(pts[11]), "segment", segment="VN-XX")
    add("9815", Point(pts[11]), "province", province=None)
    add("9816", None, "geometry")                                        # no geometry
    return rows, geoms, bad


def write_utm_shapefile(rows: list[dict], geoms: list, folder: Path, name: str = "markers") -> Path:
    """The rows as a zipped Shapefile in UTM 48N (EPSG:32648), .prj included."""
    utm = [None if g is None else Point(*TO_UTM.transform(g.x, g.y)) for g in geoms]
    gdf = gpd.GeoDataFrame(pd.DataFrame(rows), geometry=utm, crs="EPSG:32648")
    shp_dir = folder / f"{name}_shp"
    shp_dir.mkdir()
    with warnings.catch_warnings():  # field names cut to 10 characters: expected
        warnings.simplefilter("ignore", RuntimeWarning)
        pyogrio.write_dataframe(gdf, shp_dir / f"{name}.shp", encoding="UTF-8")
    out = folder / f"{name}.zip"
    with zipfile.ZipFile(out, "w") as zf:
        for part in shp_dir.iterdir():
            zf.write(part, part.name)
    assert any(p.suffix == ".prj" for p in shp_dir.iterdir())
    return out


def test_province_shapefile_reports_every_bad_row_and_commits_nothing(target, tmp_path):
    rows, geoms, bad = marker_rows(target)
    path = write_utm_shapefile(rows, geoms, tmp_path)
    before = state(target)

    with target.begin() as conn:
        dry = io_import.import_file(conn, "markers", path, dry_run=True, actor="test")
    assert dry.format == "shp" and dry.source_crs == "EPSG:32648"
    assert dry.rows == len(rows) and dry.bad_rows == len(bad) and dry.valid_rows == 6
    found = {e.row: e for e in dry.errors}
    assert sorted(found) == sorted(bad)
    for row, field in bad.items():
        assert found[row].field == field, (row, found[row])
    assert "12A/b" in found[7].reason
    assert "giant" in found[8].reason
    assert "from border segment VN-CN" in found[9].reason and "within 500 m" in found[9].reason
    assert "the same as row 1 of this file" in found[10].reason
    assert "less than or equal to 5" in found[11].reason
    assert "BP-NOWHERE" in found[12].reason
    assert "VN-XX" in found[13].reason
    assert "required" in found[14].reason.lower()
    assert "no geometry" in found[15].reason
    assert state(target) == before

    with target.begin() as conn:
        real = io_import.import_file(conn, "markers", path, dry_run=False, actor="test")
    assert not real.committed and real.created == 0 and real.bad_rows == len(bad)
    assert "nothing was written" in real.message
    assert state(target) == before

    good = [i for i in range(len(rows)) if i + 1 not in bad]
    fixed = write_utm_shapefile([rows[i] for i in good], [geoms[i] for i in good], tmp_path, "fixed")
    with target.begin() as conn:
        ok = io_import.import_file(conn, "markers", fixed, dry_run=False, actor="test")
        assert ok.committed and ok.created == 6 and ok.errors == []
        stored = conn.execute(text("SELECT number, ST_X(geom), ST_Y(geom), post_id IS NOT NULL, province "
                                   "FROM marker WHERE number LIKE '98__' ORDER BY number")).all()
        conn.execute(text("DELETE FROM marker WHERE number LIKE '98__'"))  # leave the target as it was
    assert [s[0] for s in stored] == [f"98{i:02d}" for i in range(6)]
    for s, i in zip(stored, good):  # reprojected from UTM back to lon/lat, to the centimetre
        assert abs(s[1] - geoms[i].x) < 1e-6 and abs(s[2] - geoms[i].y) < 1e-6
        assert s[3] and s[4] == "Lạng Sơn"


# ---------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_every_format(engine, target, tmp_path, fmt):
    """Export Quảng Trị's posts, markers, roads and villages from the demo in `fmt`, import
    them into the target, and get the same rows back (rolled back afterwards)."""
    files = {layer: export_file(engine, layer, fmt, QT[layer], tmp_path) for layer in CARRIED}
    with target.connect() as conn:
        tx = conn.begin()
        conn.execute(text("DELETE FROM border_post WHERE province = 'Quảng Trị'"))
        for layer in ("posts", "markers", "roads", "villages"):
            report = io_import.import_file(conn, layer, files[layer], dry_run=False, actor="test")
            assert report.committed, (layer, report.errors[:3])
            assert report.created > 0
        with engine.connect() as src:
            for layer in CARRIED:
                expected, got = carried(src, layer, QT[layer]), carried(conn, layer, QT[layer])
                pd.testing.assert_frame_equal(got, expected, check_dtype=False, obj=f"{layer} via {fmt}")
        tx.rollback()


def test_round_trip_keeps_money_whole_and_vietnamese_text(engine, tmp_path):
    csv_path = export_file(engine, "roads", "csv", {"province": "Lạng Sơn"}, tmp_path)
    raw = csv_path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: spreadsheet programs read the Vietnamese right
    df = pd.read_csv(csv_path, dtype=str, encoding="utf-8-sig")
    dao_vien = df[df.code == "DN-LS-0001"].iloc[0]
    assert dao_vien["estimated_cost"] == "265000000" and dao_vien["post_name"] == "Đồn Biên phòng Bình Nghi"
    assert dao_vien["wkt"].startswith("LINESTRING (")


# ---------------------------------------------------------------------------- other sources


def test_csv_in_utm_needs_its_crs_and_then_imports(target, tmp_path):
    (lon, lat), = border_points(target, 1)
    x, y = TO_UTM.transform(lon, lat)
    path = tmp_path / "villages.csv"
    path.write_text("code;name;country;admin1;x;y\n"
                    f"V-TEST-1;Bản Thử;VNM;Lạng Sơn;{x - 3000:.2f};{y - 3000:.2f}\n", encoding="utf-8")
    with target.begin() as conn:
        with pytest.raises(InvalidInput) as err:
            io_import.import_file(conn, "villages", path, dry_run=True, actor="test")
        assert "not longitude/latitude" in err.value.message and "crs" in err.value.message
        report = io_import.import_file(conn, "villages", path, dry_run=True, actor="test", crs="EPSG:32648")
    assert report.errors == [] and report.valid_rows == 1 and report.source_crs == "EPSG:32648"


def test_a_crs_that_contradicts_the_file_is_refused(target, tmp_path):
    rows, geoms, _ = marker_rows(target)
    path = write_utm_shapefile(rows[:2], geoms[:2], tmp_path)
    with target.begin() as conn, pytest.raises(InvalidInput) as err:
        io_import.import_file(conn, "markers", path, dry_run=True, actor="test", crs="EPSG:4326")
    assert "EPSG:32648" in err.value.message


def gpx(body: str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<gpx version="1.1" creator="test" '
            f'xmlns="http://www.topografix.com/GPX/1/1">{body}</gpx>')


def test_gpx_waypoints_as_markers_and_a_track_as_a_road(target, tmp_path):
    pts = border_points(target, 3)
    wpts = "".join(f'<wpt lat="{y}" lon="{x}"><ele>600</ele><name>97{i:02d}</name></wpt>'
                   for i, (x, y) in enumerate(pts))
    (tmp_path / "m.gpx").write_text(gpx(wpts), encoding="utf-8")
    x0, y0 = pts[0]
    track = "".join(f'<trkpt lat="{y0 - 0.002 * k}" lon="{x0 - 0.002 * k}"><ele>{500 + k}</ele></trkpt>'
                    for k in range(5))
    (tmp_path / "r.gpx").write_text(gpx(f"<trk><name>Đường lên mốc 9700</name><trkseg>{track}</trkseg></trk>"),
                                    encoding="utf-8")
    with target.connect() as conn:
        tx = conn.begin()
        markers = io_import.import_file(
            conn, "markers", tmp_path / "m.gpx", dry_run=False, actor="test",
            defaults={"segment": "VN-CN", "province": "Lạng Sơn", "post_code": "BP-BINH-NGHI"})
        assert markers.committed and markers.created == 3 and markers.format == "gpx"
        road = io_import.import_file(
            conn, "roads", tmp_path / "r.gpx", dry_run=False, actor="test",
            defaults={"code": "DN-LS-GPX-1", "post_code": "BP-BINH-NGHI", "markers": "9700"})
        assert road.committed, road.errors
        line = conn.execute(text("SELECT name, ST_NPoints(geom), ST_NDims(geom) FROM branch_road "
                                 "WHERE code = 'DN-LS-GPX-1'")).one()
        assert line == ("Đường lên mốc 9700", 5, 2)
        tx.rollback()


def test_kml_from_another_tool_imports_with_defaults(target, tmp_path):
    (lon, lat), = border_points(target, 1)
    kml = f"""<?xml version="1.0" encoding="UTF-8"?><kml xmlns="http://www.opengis.net/kml/2.2"><Document>
      <Placemark><name>Đồn Thử</name><ExtendedData><Data name="code"><value>BP-KML-1</value></Data>
      </ExtendedData><Point><coordinates>{lon - 0.05},{lat - 0.05},0</coordinates></Point></Placemark>
      </Document></kml>"""
    (tmp_path / "p.kml").write_text(kml, encoding="utf-8")
    with target.begin() as conn:
        report = io_import.import_file(conn, "posts", tmp_path / "p.kml", dry_run=True, actor="test",
                                       defaults={"province": "Lạng Sơn"})
    assert report.errors == [] and report.valid_rows == 1


def test_files_that_cannot_be_used_are_refused_whole(target, tmp_path):
    (tmp_path / "a.docx").write_bytes(b"PK")
    (tmp_path / "b.zip").write_bytes(b"not a zip")
    (tmp_path / "c.csv").write_text("code,name\nx,y\n", encoding="utf-8")
    with target.begin() as conn:
        with pytest.raises(UnsupportedMediaType):
            io_import.import_file(conn, "markers", tmp_path / "a.docx", dry_run=True, actor="t")
        with pytest.raises(InvalidInput, match="not a valid zip"):
            io_import.import_file(conn, "markers", tmp_path / "b.zip", dry_run=True, actor="t")
        with pytest.raises(InvalidInput, match="no coordinate columns"):
            io_import.import_file(conn, "villages", tmp_path / "c.csv", dry_run=True, actor="t")
        with pytest.raises(InvalidInput, match="cannot set colour"):
            io_import.import_file(conn, "villages", tmp_path / "c.csv", dry_run=True, actor="t",
                                  defaults={"colour": "red"})


def test_shapefile_column_names_map_back_to_fields():
    cols, ignored = io_import.map_columns(
        ["NUMBER", "terrain_di", "requested_", "last_inspe", "post_code", "status", "id"],
        io_import.TARGETS["markers"])
    assert cols == {"NUMBER": "number", "terrain_di": "terrain_difficulty", "requested_": "requested_by_post",
                    "last_inspe": "last_inspected_on", "post_code": "post_code"}
    assert ignored == ["status", "id"]


# ---------------------------------------------------------------------------- HTTP


def test_upload_endpoint_dry_run_commit_refusal_and_success(target, target_client, tmp_path):
    rows, geoms, bad = marker_rows(target)
    path = write_utm_shapefile(rows, geoms, tmp_path)
    before = state(target)

    def upload(p: Path, **params):
        with p.open("rb") as fh:
            return target_client.post("/api/import/markers", params=params,
                                      files={"file": (p.name, fh, "application/zip")})

    dry = upload(path)  # dry_run is the default
    assert dry.status_code == 200
    assert dry.json()["dry_run"] and dry.json()["bad_rows"] == len(bad)
    assert {e["row"] for e in dry.json()["errors"]} == set(bad)
    real = upload(path, dry_run="false")
    assert real.status_code == 422 and real.json()["committed"] is False
    assert state(target) == before

    good = [i for i in range(len(rows)) if i + 1 not in bad]
    fixed = write_utm_shapefile([rows[i] for i in good], [geoms[i] for i in good], tmp_path, "fixed")
    ok = upload(fixed, dry_run="false")
    assert ok.status_code == 200 and ok.json()["committed"] and ok.json()["created"] == 6
    with target.begin() as conn:
        actors = conn.execute(text("SELECT DISTINCT a.actor FROM audit_log a JOIN marker m "
                                   "ON a.target_table = 'marker' AND a.target_id = m.id::text "
                                   "WHERE m.number LIKE '98__'")).scalars().all()
        conn.execute(text("DELETE FROM marker WHERE number LIKE '98__'"))
    assert actors == ["import.planner"]


def test_upload_needs_a_planner(anonymous_target_client, target):
    before = state(target)
    r = anonymous_target_client.post("/api/import/villages", params={"dry_run": "false"}, files={
        "file": ("v.csv", io.BytesIO(b"code,name,country,admin1,longitude,latitude\n"), "text/csv")})
    assert r.status_code == 401
    assert state(target) == before


def test_upload_endpoint_refusals(target_client, monkeypatch):
    def post(layer, name, content, **params):
        return target_client.post(f"/api/import/{layer}", params=params,
                                  files={"file": (name, io.BytesIO(content), "application/octet-stream")})

    assert post("donors", "d.csv", b"a,b\n1,2\n").status_code == 404
    assert post("markers", "m.xlsx", b"PK..").status_code == 415
    assert post("markers", "m.csv", b"").status_code == 422
    r = post("villages", "v.csv", b"code,name\n1,2\n")
    assert r.status_code == 422 and "no coordinate columns" in r.json()["message"]
    assert post("villages", "v.csv", b"code,longitude,latitude\n1,2,3\n", set="oops").status_code == 422
    monkeypatch.setattr(get_settings().files, "max_upload_bytes", 10)
    assert post("villages", "v.csv", b"code,longitude,latitude\nV,106.5,22.4\n").status_code == 413


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_endpoint_every_format_filtered(client, tmp_path, fmt):
    r = client.get(f"/api/export/markers.{fmt}", params={"province": "Lạng Sơn", "kind": "main"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(io_export.FORMATS[fmt].split(";")[0])
    assert "attachment" in r.headers["content-disposition"]
    path = tmp_path / f"x.{io_export.EXTENSIONS[fmt]}"
    path.write_bytes(r.content)
    if fmt == "csv":
        df = pd.read_csv(path, encoding="utf-8-sig", dtype=str)
    else:
        df = pyogrio.read_dataframe(f"/vsizip/{path}" if fmt == "shp" else path)
    expected = client.get("/api/markers", params={"province": "Lạng Sơn", "kind": "main", "limit": 1000}).json()
    assert len(df) == expected["numberReturned"] > 0
    assert set(df["province"]) == {"Lạng Sơn"} and set(df["kind"]) == {"main"}


def test_geojson_export_streams_the_same_features_as_the_api(client):
    r = client.get("/api/export/roads.geojson", params={"status": "inaugurated"})
    body = r.json()
    api = client.get("/api/roads", params={"status": "inaugurated", "limit": 1000}).json()
    assert body["type"] == "FeatureCollection" and body["numberReturned"] == len(api["features"])
    for mine, theirs in zip(body["features"], api["features"]):
        assert mine["geometry"] == theirs["geometry"] and mine["id"] == theirs["id"]
        assert {k: mine["properties"][k] for k in theirs["properties"]} == theirs["properties"]
        assert mine["properties"]["post_code"]  # the natural key an import needs


def test_export_of_a_table_without_geometry_is_csv_only(client):
    r = client.get("/api/export/donors.csv", params={"is_group": "true"})
    assert r.status_code == 200
    df = pd.read_csv(io.BytesIO(r.content), encoding="utf-8-sig")
    assert "CTD-THTH-LS" in set(df["code"])
    r = client.get("/api/export/donors.gpkg")
    assert r.status_code == 422 and "csv" in r.json()["message"]


@pytest.mark.parametrize("url, status, reason", [
    ("/api/export/markers.xlsx", 422, "fmt: Input should be 'geojson', 'gpkg', 'shp', 'csv', 'kml' or 'csvt'"),
    ("/api/export/markers.csv?colour=red", 422,  # each layer's export declares its own filters
     "colour: unknown query parameter; this endpoint takes: access, bbox, kind, number, post_id, province"),
    ("/api/export/markers.csv?limit=5", 422, "limit: unknown query parameter"),
    ("/api/export/donors.csv?bbox=1,2,3,4", 422, "bbox: unknown query parameter"),
    ("/api/export/markers.csvt?kind=giant", 422, "kind"),
    ("/api/export/markers.csv?kind=giant", 422, "kind"),
    ("/api/export/roads.csv?status=paved", 422, "unknown status"),
    ("/api/export/markers.csv?bbox=1,2", 422, "bbox"),
    ("/api/export/nothing.csv", 404, "no layer"),
])
def test_export_refusals(client, url, status, reason):
    r = client.get(url)
    assert r.status_code == status and reason in r.json()["message"]


# ---------------------------------------------------------------------------- CLI


def _tracker(*args, url: str):
    exe = os.path.join(os.path.dirname(sys.executable), "tracker")
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.run([exe, *args], capture_output=True, text=True, env=env, timeout=300)


def test_cli_import_with_progress_bar_and_export(target, tmp_path):
    url = target.url.render_as_string(hide_password=False)
    rows, geoms, bad = marker_rows(target)
    path = write_utm_shapefile(rows, geoms, tmp_path)
    before = state(target)
    result = _tracker("import", "markers", str(path), url=url)
    assert result.returncode == 1
    assert "checking markers" in result.stderr and "100%" in result.stderr  # tqdm
    for row in bad:
        assert f"  row {row} " in result.stdout
    assert "nothing was written" in result.stdout
    assert state(target) == before

    out = tmp_path / "posts.gpkg"
    result = _tracker("export", "posts", "--format", "gpkg", "--filter", "province=Lạng Sơn",
                      "--out", str(out), url=url)
    assert result.returncode == 0, result.stderr
    exported = pyogrio.read_dataframe(out)
    assert len(exported) > 0 and set(exported["province"]) == {"Lạng Sơn"}
    assert f"wrote {len(exported)} posts" in result.stdout

    out = tmp_path / "posts.csv"  # a CSV comes with its GDAL type sidecar
    result = _tracker("export", "posts", "--format", "csv", "--out", str(out), url=url)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "posts.csvt").read_text() == io_export.csvt(io_export.export_layer("posts"))
    assert f"field types in {tmp_path / 'posts.csvt'}" in result.stdout
    assert ogr_types(out)["markers"] == ("OFTInteger", "OFSTNone")

    result = _tracker("export", "posts", "--format", "csv", "--filter", "colour=red", "--out",
                      str(tmp_path / "x.csv"), url=url)
    assert result.returncode == 2 and "unknown filter 'colour'" in result.stderr


def test_cli_choices_follow_the_domain():
    assert cli_files.IMPORT_LAYERS == list(io_import.TARGETS)
    assert cli_files.EXPORT_FORMATS == list(io_export.FORMATS)


# ---------------------------------------------------------------------------- field types
# Each export read back by GDAL: pyogrio's own GDAL and Debian's ogrinfo (an older GDAL, as
# in QGIS on many desktops; installed by `tracker ensure-gis-tools`).


def ogr_types(path: Path | str) -> dict[str, tuple[str, str]]:
    """{field: (OGR type, OGR subtype)} as pyogrio's GDAL reads `path`."""
    info = pyogrio.read_info(path)
    return dict(zip(info["fields"], zip(info["ogr_types"], info["ogr_subtypes"])))


def ogrinfo(*args: str) -> str:
    done = subprocess.run(["ogrinfo", *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


DATE, INT, INT64, REAL, STRING = "OFTDate", "OFTInteger", "OFTInteger64", "OFTReal", "OFTString"
NONE, BOOL = "OFSTNone", "OFSTBoolean"


def costliest_road(engine) -> tuple[int, int, str]:
    with engine.connect() as conn:
        road_id, cost, code = conn.execute(text(
            "SELECT id, actual_cost, code FROM branch_road WHERE actual_cost IS NOT NULL "
            "ORDER BY actual_cost DESC, id LIMIT 1")).one()
    assert cost > 2**31
    return road_id, int(cost), code


def test_every_catalogue_type_has_a_type_in_every_format():
    from geo_api import layers

    assert set(io_export.FIELD_FORMATS) == set(layers.FIELD_TYPES)


def test_geopackage_keeps_dates_money_booleans_and_ids(engine, tmp_path):
    path = export_file(engine, "roads", "gpkg", {}, tmp_path)
    types = ogr_types(path)
    assert types["id"] == (INT, NONE)
    assert types["actual_cost"] == types["estimated_cost"] == (INT64, NONE)
    assert types["completed_on"] == types["planned_start"] == types["inaugurated_on"] == (DATE, NONE)
    assert types["as_built"] == types["is_generated"] == (INT, BOOL)
    assert types["length_m"] == (REAL, NONE) and types["markers"] == (STRING, NONE)
    road_id, cost, _ = costliest_road(engine)
    df = pyogrio.read_dataframe(path).set_index("id")
    assert df.loc[road_id, "actual_cost"] == cost  # above 2^31, exact
    with engine.connect() as conn:
        completed = conn.execute(text("SELECT completed_on FROM branch_road WHERE id = :i"), {"i": road_id}).scalar()
    assert df.loc[road_id, "completed_on"].date() == completed
    summary = ogrinfo("-so", "-al", str(path))
    for line in ("actual_cost: Integer64", "completed_on: Date", "as_built: Integer(Boolean)", "id: Integer"):
        assert line in summary, line


def test_shapefile_keeps_dates_money_and_booleans(engine, tmp_path):
    path = export_file(engine, "roads", "shp", {"province": "Lạng Sơn"}, tmp_path)
    types = ogr_types(f"/vsizip/{path}")  # names cut to 10 characters by the format
    assert types["completed_"] == types["planned_st"] == (DATE, NONE)
    assert types["actual_cos"] == types["estimated_"] == (INT64, NONE)
    assert types["as_built"] == (INT, BOOL) and types["id"] == (INT, NONE)
    summary = ogrinfo("-so", "-al", f"/vsizip/{path}")
    assert "completed_: Date" in summary and "actual_cos: Integer64" in summary


def test_kml_declares_types_so_ids_and_booleans_come_back(engine, tmp_path):
    path = export_file(engine, "markers", "kml", {"province": "Lạng Sơn"}, tmp_path)
    with engine.connect() as conn:
        requested = conn.execute(text("SELECT id, number FROM marker WHERE province = 'Lạng Sơn' "
                                      "AND requested_by_post ORDER BY id LIMIT 1")).one()
    df = pyogrio.read_dataframe(path)
    # pyogrio's GDAL (3.12) has its own `id` (the placemark's, <layer>.<id>): ours is `id2`
    row = df[df["id2"] == requested.id].iloc[0]
    assert row["id"] == f"markers.{requested.id}" and row["Name"] == requested.number
    assert df["requested_by_post"].dtype == bool and bool(row["requested_by_post"]) is True
    assert df["terrain_difficulty"].dtype == "int32"
    assert ogr_types(path)["requested_by_post"] == (INT, BOOL)
    # Debian's GDAL 3.6 reads the declared `id` as such, and the booleans as 1/0
    feature = ogrinfo("-q", str(path), "markers", "-where", f"id = {requested.id}")
    assert f"id (Integer) = {requested.id}" in feature
    assert "requested_by_post (Integer) = 1" in feature and "is_generated (Integer) = 1" in feature
    road_id, cost, code = costliest_road(engine)
    roads = export_file(engine, "roads", "kml", {}, tmp_path)
    assert ogr_types(roads)["actual_cost"] == (INT64, NONE)  # money as KML uint: GDAL's Integer64
    assert pyogrio.read_dataframe(roads).set_index("id2").loc[road_id, "actual_cost"] == cost
    assert f"actual_cost (Integer64) = {cost}" in ogrinfo("-q", str(roads), "roads", "-where", f"id = {road_id}")


def test_csv_with_its_csvt_sidecar_reads_typed(client, engine, tmp_path):
    r = client.get("/api/export/roads.csvt", params={"status": "completed"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="roads.csvt"' in r.headers["content-disposition"]
    assert r.text == io_export.csvt(io_export.export_layer("roads"))
    csv = client.get("/api/export/roads.csv")
    (tmp_path / "roads.csv").write_bytes(csv.content)
    header = pd.read_csv(tmp_path / "roads.csv", encoding="utf-8-sig", nrows=0).columns
    assert len(header) == r.text.count(",") + 1  # a type per column
    (tmp_path / "roads.csvt").write_text(r.text)
    types = ogr_types(tmp_path / "roads.csv")
    assert types["id"] == (INT, NONE) and types["actual_cost"] == (INT64, NONE)
    assert types["completed_on"] == (DATE, NONE) and types["as_built"] == (INT, BOOL)
    road_id, cost, _ = costliest_road(engine)
    roads = pyogrio.read_dataframe(tmp_path / "roads.csv").set_index("id")
    assert roads.loc[road_id, "actual_cost"] == cost
    assert set(roads.geometry.dropna().geom_type) <= {"LineString", "MultiLineString"}  # the wkt column
    assert roads.geometry.notna().sum() > 0
    summary = ogrinfo("-so", "-al", str(tmp_path / "roads.csv"))
    assert "actual_cost: Integer64" in summary and "completed_on: Date" in summary
    # point layers: longitude/latitude become the geometry (CoordX/CoordY)
    (tmp_path / "markers.csv").write_bytes(client.get("/api/export/markers.csv", params={"kind": "main"}).content)
    (tmp_path / "markers.csvt").write_text(client.get("/api/export/markers.csvt").text)
    markers = pyogrio.read_dataframe(tmp_path / "markers.csv")
    assert markers.geometry.geom_type.eq("Point").all()
    assert ogr_types(tmp_path / "markers.csv")["last_inspected_on"] == (DATE, NONE)


def test_csvt_refusals(client):
    assert client.get("/api/export/nothing.csvt").status_code == 404
    r = client.get("/api/export/roads.csvt", params={"status": "paved"})
    assert r.status_code == 422 and "unknown status" in r.json()["message"]

