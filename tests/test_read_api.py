"""The read API over the demo dataset: GeoJSON, paging, filters, bad input."""

import pytest

from geo_api import db
from geo_api.layers import LAYERS

SPATIAL = [layer.name for layer in LAYERS if layer.spatial]
TABULAR = [layer.name for layer in LAYERS if not layer.spatial]


def test_health_reports_database_postgis_and_migration(client):
    body = client.get("/api/health").json()
    assert body["status"] == "ok"
    assert body["database"] == "reachable"
    assert body["postgis"].startswith("3.")
    assert body["migration"] == body["migration_head"] == db.head_revision()


def test_health_is_503_when_database_is_unreachable():
    from fastapi.testclient import TestClient

    from geo_api.main import create_app

    app = create_app("postgresql+psycopg://nobody@127.0.0.1:9/nowhere?connect_timeout=2")
    with TestClient(app) as c:
        r = c.get("/api/health")
    assert r.status_code == 503
    assert "unreachable" in r.json()["message"]


@pytest.mark.parametrize("name", SPATIAL)
def test_spatial_lists_are_feature_collections(client, name):
    r = client.get(f"/api/{name}", params={"limit": 5})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    body = r.json()
    assert body["type"] == "FeatureCollection"
    assert 1 <= body["numberReturned"] == len(body["features"]) <= 5
    for f in body["features"]:
        assert f["type"] == "Feature" and isinstance(f["id"], int)
        assert f["geometry"]["type"] in {"Point", "LineString", "MultiLineString"}
        lon, lat = _first_coord(f["geometry"])
        assert 100 < lon < 112 and 8 < lat < 24.5


@pytest.mark.parametrize("name", TABULAR)
def test_tabular_lists_are_pages_of_items(client, name):
    body = client.get(f"/api/{name}", params={"limit": 3}).json()
    assert 1 <= body["numberReturned"] == len(body["items"]) <= 3
    assert all(isinstance(i["id"], int) for i in body["items"])


@pytest.mark.parametrize("name", SPATIAL + TABULAR)
def test_item_endpoint_returns_the_listed_item_and_404_for_unknown(client, name):
    listed = client.get(f"/api/{name}", params={"limit": 1}).json()
    first = (listed.get("features") or listed.get("items"))[0]
    one = client.get(f"/api/{name}/{first['id']}")
    assert one.status_code == 200
    assert one.json() == first
    missing = client.get(f"/api/{name}/999999999")
    assert missing.status_code == 404
    assert "not found" in missing.json()["message"]


def _first_coord(geometry):
    c = geometry["coordinates"]
    while isinstance(c[0], list):
        c = c[0]
    return c


def test_keyset_paging_walks_every_marker_once(client, demo_counts):
    seen, url, params = [], "/api/markers", {"limit": 1000, "segment": "VN-LA"}
    while url:
        body = client.get(url, params=params).json()
        seen += [f["id"] for f in body["features"]]
        nxt = [link["href"] for link in body["links"] if link["rel"] == "next"]
        url, params = (nxt[0], None) if nxt else (None, None)
    assert len(seen) == len(set(seen))
    assert seen == sorted(seen)
    total = client.get("/api/border-segments", params={"code": "VN-LA"}).json()
    assert total["numberReturned"] == 1
    # every VN-LA marker, and nothing else
    for fid in seen[:: max(1, len(seen) // 20)]:
        assert client.get(f"/api/markers/{fid}").json()["properties"]["segment"] == "VN-LA"
    assert 600 <= len(seen) <= 1000


def test_next_link_keeps_the_filters(client):
    body = client.get("/api/markers", params={"limit": 2, "province": "Lạng Sơn"}).json()
    href = body["links"][0]["href"]
    assert "province=L%E1%BA%A1ng+S%C6%A1n" in href and "limit=2" in href and "after=" in href
    nxt = client.get(href).json()
    assert nxt["features"][0]["id"] > body["features"][-1]["id"]
    assert {f["properties"]["province"] for f in nxt["features"]} == {"Lạng Sơn"}


def test_bbox_returns_only_features_inside(client):
    bbox = (106.3, 22.2, 106.8, 22.6)  # Tràng Định, Lạng Sơn
    body = client.get("/api/markers", params={"bbox": ",".join(map(str, bbox)), "limit": 1000}).json()
    assert body["numberReturned"] > 0
    for f in body["features"]:
        lon, lat = f["geometry"]["coordinates"]
        assert bbox[0] <= lon <= bbox[2] and bbox[1] <= lat <= bbox[3]
    numbers = {f["properties"]["number"] for f in body["features"]}
    assert "1033" in numbers


def test_status_filter_accepts_several_statuses(client):
    body = client.get("/api/roads", params={"status": "completed,inaugurated", "limit": 1000}).json()
    statuses = {f["properties"]["status"] for f in body["features"]}
    assert statuses == {"completed", "inaugurated"}


def test_marker_1033_and_its_roads(client):
    m = client.get("/api/markers", params={"number": "1033", "segment": "VN-CN"}).json()["features"]
    assert len(m) == 1
    props = m[0]["properties"]
    assert props["province"] == "Lạng Sơn" and props["district"] == "Tràng Định"
    assert "Bình Nghi" in props["post_name"]
    roads = client.get("/api/roads", params={"marker": "1033"}).json()["features"]
    assert any(r["properties"]["inaugurated_on"] == "2022-11-16" for r in roads)


def test_roads_by_donor_group_include_members_funding(client):
    groups = client.get("/api/donors", params={"is_group": "true", "limit": 100}).json()["items"]
    cluster = next(d for d in groups if "tham mưu tổng hợp" in d["name"])
    assert len(cluster["members"]) == 7
    roads = client.get("/api/roads", params={"donor_id": cluster["id"], "limit": 1000}).json()["features"]
    daoviên = [r for r in roads if r["properties"]["inaugurated_on"] == "2022-11-16"]
    assert len(daoviên) == 4


def test_village_pairs_and_meetings(client):
    pairs = client.get("/api/village-pairs", params={"limit": 1000}).json()["features"]
    duy_tan = next(p for p in pairs if p["properties"]["vn_village"] == "Khóm Duy Tân")
    assert duy_tan["properties"]["foreign_village"] == "Bản Phường"
    assert duy_tan["geometry"]["type"] == "LineString"
    meetings = client.get(f"/api/village-pairs/{duy_tan['id']}/meetings").json()["items"]
    q2 = [m for m in meetings if m["held_on"] == "2023-07-31"]
    assert q2 and q2[0]["quarter"] == 2 and q2[0]["year"] == 2023
    assert client.get("/api/village-pairs/999999/meetings").status_code == 404


def test_money_is_exact_integers(client):
    items = client.get("/api/funding", params={"limit": 50}).json()["items"]
    assert items and all(isinstance(i["amount"], int) and i["amount"] > 0 for i in items)


@pytest.mark.parametrize("url,reason", [
    ("/api/markers?bbox=1,2,3", "four comma-separated numbers"),
    ("/api/markers?bbox=a,b,c,d", "must be numbers"),
    ("/api/markers?bbox=106,23,105,22", "minimum must not exceed maximum"),
    ("/api/markers?bbox=106,95,107,96", "latitudes"),
    ("/api/markers?limit=0", "greater than or equal to 1"),
    ("/api/markers?limit=1001", "at most 1000"),
    ("/api/markers?limit=ten", "valid integer"),
    ("/api/markers?after=-1", "greater than or equal to 0"),
    ("/api/markers?kind=huge", "main"),
    ("/api/markers?post_id=abc", "valid integer"),
    ("/api/roads?status=paved", "unknown status 'paved'"),
    ("/api/roads?status=funded,paved", "unknown status 'paved'"),
    ("/api/roads?stauts=funded", "stauts"),
    ("/api/villages?country=USA", "VNM"),
    ("/api/donors?is_group=maybe", "valid boolean"),
    ("/api/markers/0", "greater than or equal to 1"),
    ("/api/markers/abc", "valid integer"),
])
def test_bad_input_is_422_with_a_reason(client, url, reason):
    r = client.get(url)
    assert r.status_code == 422, r.text
    assert reason in r.json()["message"]


def test_openapi_documents_every_list_and_its_filters(client):
    spec = client.get("/openapi.json").json()
    for layer in LAYERS:
        op = spec["paths"][f"/api/{layer.name}"]["get"]
        names = {p["name"] for p in op["parameters"]}
        assert {"limit", "after"} | set(layer.filters) <= names
    assert client.get("/docs").status_code == 200
