"""Reports per province and per border segment, JSON and CSV, on a database of known content."""

from __future__ import annotations

import csv
import io
import json

import pytest
from fastapi.testclient import TestClient
from pyproj import Geod
from sqlalchemy import create_engine, text

from geo_api.vocabulary import ROAD_STATUSES
from support.world import INLAND, World, migrated_database

GEOD = Geod(ellps="WGS84")


def km(engine, road_id) -> float:
    """The road's length measured independently of PostGIS (pyproj on the ellipsoid)."""
    with engine.connect() as conn:
        line = json.loads(conn.execute(text("SELECT ST_AsGeoJSON(COALESCE(as_built_geom, geom)) FROM branch_road "
                                            "WHERE id = :id"), {"id": road_id}).scalar())
    lons, lats = zip(*line["coordinates"])
    return GEOD.line_length(lons, lats) / 1000


@pytest.fixture(scope="module")
def reported(fresh_database):
    url = migrated_database(fresh_database)
    eng = create_engine(url)
    w = World(eng)
    ls, cb = w.post(), w.post("Đồn Biên phòng Trà Lĩnh", province="Cao Bằng")
    qt = w.post("Đồn Biên phòng Cửa khẩu Quốc tế Lao Bảo", province="Quảng Trị", segment="VN-LA")
    m = [w.marker((106.45 + i * 0.03, 22.70), post_id=ls) for i in range(4)]
    m += [w.marker((106.30 + i * 0.05, 22.86), province="Cao Bằng", post_id=cb) for i in range(2)]
    m.append(w.marker((106.60, 16.62), segment="VN-LA", province="Quảng Trị", post_id=qt))
    a = w.road(m[0], ls, status="completed", code="A")
    b = w.road(m[1], ls, status="inaugurated", code="B")
    c = w.road(m[3], ls, status="proposed", code="C")
    d = w.road(m[4], cb, status="cancelled", province="Cao Bằng", code="D")
    e = w.road(m[6], qt, status="under_construction", province="Quảng Trị", progress=40, code="E")
    with eng.begin() as conn:  # B also serves marker 3; C also serves marker 1 (already reached by A)
        conn.execute(text("INSERT INTO road_marker VALUES (:b, :m2), (:c, :m0)"),
                     {"b": b, "m2": m[2], "c": c, "m0": m[0]})
        conn.execute(text("UPDATE branch_road SET as_built_geom = ST_SetSRID(ST_GeomFromGeoJSON(:g), 4326) "
                          "WHERE id = :id"), {"g": json.dumps(w.line_to(m[0], INLAND["Lạng Sơn"], step=0.02)),
                                              "id": a})
    donor = w.donor()
    camp = w.campaign(province="Lạng Sơn")
    w.fund(donor, "pledge", 2_000_000_000, a)
    w.fund(donor, "commitment", 1_200_000_000, a)
    w.fund(donor, "disbursement", 1_000_000_000, a)
    w.fund(donor, "expenditure", 900_000_000, a)
    w.fund(donor, "commitment", 300_000_000, e)
    w.fund(donor, "pledge", 40_000_000, campaign_id=camp)  # campaign-wide: province yes, segment no
    from geo_api.main import create_app

    with TestClient(create_app(url)) as client:
        yield client, {"km_ls": round(km(eng, a) + km(eng, b), 3)}
    eng.dispose()


def zeros(**kw):
    row = {f"roads_{s}": 0 for s in ROAD_STATUSES}
    row.update(roads=0, km_built=0, markers=0, markers_reached=0, pledged=0, committed=0, disbursed=0, spent=0)
    row.update(kw)
    return row


def test_provinces_report(reported):
    client, expect = reported
    body = client.get("/api/reports/provinces").json()
    items = {i["province"]: i for i in body["items"]}
    assert list(items) == ["Cao Bằng", "Lạng Sơn", "Quảng Trị"]
    ls = items["Lạng Sơn"]
    assert ls["km_built"] == pytest.approx(expect["km_ls"], abs=0.002)
    assert expect["km_ls"] > 3  # A's as-built line is longer than its plan
    assert ls == zeros(province="Lạng Sơn", roads=3, roads_completed=1, roads_inaugurated=1, roads_proposed=1,
                       km_built=ls["km_built"], markers=4, markers_reached=3, pledged=2_040_000_000,
                       committed=1_200_000_000, disbursed=1_000_000_000, spent=900_000_000)
    assert items["Cao Bằng"] == zeros(province="Cao Bằng", roads=1, roads_cancelled=1, markers=2)
    assert items["Quảng Trị"] == zeros(province="Quảng Trị", roads=1, roads_under_construction=1, markers=1,
                                       committed=300_000_000)


def test_segments_report(reported):
    client, expect = reported
    items = {i["segment"]: i for i in client.get("/api/reports/segments").json()["items"]}
    assert list(items) == ["VN-CN", "VN-KH", "VN-LA"]
    cn = items["VN-CN"]
    assert cn["km_built"] == pytest.approx(expect["km_ls"], abs=0.002)
    strip = lambda i: {k: v for k, v in i.items() if k not in ("segment", "name_en", "length_km")}  # noqa: E731
    assert strip(cn) == zeros(roads=4, roads_completed=1, roads_inaugurated=1, roads_proposed=1, roads_cancelled=1,
                              km_built=cn["km_built"], markers=6, markers_reached=3, pledged=2_000_000_000,
                              committed=1_200_000_000, disbursed=1_000_000_000, spent=900_000_000)
    assert strip(items["VN-LA"]) == zeros(roads=1, roads_under_construction=1, markers=1, committed=300_000_000)
    assert strip(items["VN-KH"]) == zeros()
    assert items["VN-KH"]["name_en"] == "Viet Nam - Cambodia land border" and items["VN-KH"]["length_km"] > 1000


@pytest.mark.parametrize("name,key", [("provinces", "province"), ("segments", "segment")])
def test_csv_has_the_same_rows_and_columns(reported, name, key):
    client, _ = reported
    as_json = client.get(f"/api/reports/{name}").json()["items"]
    r = client.get(f"/api/reports/{name}", params={"format": "csv"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"] == f'attachment; filename="{name}.csv"'
    text_ = r.content.decode("utf-8")
    rows = list(csv.reader(io.StringIO(text_)))
    assert rows[0] == list(as_json[0])  # header row: the JSON keys, in order
    assert [row[0] for row in rows[1:]] == [i[key] for i in as_json]
    assert "Lạng Sơn" in text_ or name == "segments"
    parsed = list(csv.DictReader(io.StringIO(text_)))
    for row, item in zip(parsed, as_json):
        assert int(row["roads"]) == item["roads"] and int(row["pledged"]) == item["pledged"]


def test_unknown_format_is_refused(reported):
    client, _ = reported
    r = client.get("/api/reports/provinces", params={"format": "xlsx"})
    assert r.status_code == 422 and "format" in r.json()["message"]
