"""Create / update / delete of markers, posts, roads, donors, campaigns and villages.

Runs on its own database (migrated, the three border segments loaded, then a few posts and
markers created through the API) so the shared demo database stays as other tests expect.
Every refusal is checked twice: the status and reason, and that no table changed.
"""

import itertools
import json

import pytest
from support.api_client import ApiClient
from sqlalchemy import create_engine, text

from geo_api import DATA_DIR, db
from geo_api.schemas import resources as s
from geo_api.settings import configure

ON_LINE = [106.88017, 21.98204]   # a vertex of the VN-CN line (marker 1033 here)
M2 = [106.88257, 21.98051]        # the next vertex, ~300 m away (marker 1033/1)
M3 = [106.87666, 21.98140]        # the previous vertex (marker 1034, another post's)
IN_VN = [106.88017, 21.97204]     # ~1 km inside Viet Nam
IN_CN = [106.88017, 21.99204]     # ~1 km inside China
IN_LAOS = [106.5603, 16.62344]
TABLES = ("border_post", "marker", "branch_road", "road_marker", "donor", "donor_member",
          "campaign", "village", "village_pair", "funding_tx", "audit_log")
_n = itertools.count(1)


def uid(prefix: str) -> str:
    return f"{prefix}-{next(_n)}"


def point(xy):
    return {"type": "Point", "coordinates": list(xy)}


def line(*xys):
    return {"type": "LineString", "coordinates": [list(p) for p in xys]}


@pytest.fixture(scope="module")
def engine_w(fresh_database):
    url = fresh_database()
    db.upgrade(url)
    eng = create_engine(url)
    borders = json.loads((DATA_DIR / "borders" / "vn_land_borders.geojson").read_text(encoding="utf-8"))
    with eng.begin() as conn:
        for f in borders["features"]:
            p = f["properties"]
            conn.execute(text("""
                INSERT INTO border_segment (code, neighbour_iso3, name_vi, name_en, geom)
                VALUES (:code, :iso, :vi, :en, ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(:g), 4326)))
            """), {"code": p["code"], "iso": p["neighbour_iso3"], "vi": p["name_vi"],
                   "en": p["name_en"], "g": json.dumps(f["geometry"])})
    eng.url_for_app = url
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def api(engine_w):
    from geo_api.main import create_app

    with ApiClient(create_app(engine_w.url_for_app), engine_w, role="planner", username="tester") as c:
        yield c


@pytest.fixture(scope="module")
def base(api, engine_w):
    """Two posts and three markers on the VN-CN line near Đào Viên (Lạng Sơn)."""
    with engine_w.connect() as conn:
        cn = conn.execute(text("SELECT id FROM border_segment WHERE code = 'VN-CN'")).scalar_one()

    def post(code, name, xy):
        r = api.post("/api/posts", json={"code": code, "name": name, "province": "Lạng Sơn",
                                         "district": "Tràng Định", "geometry": point(xy)})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    a = post("BN", "Bình Nghi", [106.875, 21.965])
    b = post("PB", "Đồn B", [106.870, 21.968])

    def marker(number, xy, post_id):
        r = api.post("/api/markers", json={
            "segment_id": cn, "number": number, "geometry": point(xy), "province": "Lạng Sơn",
            "district": "Tràng Định", "commune": "Đào Viên", "post_id": post_id,
            "requested_by_post": True})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    return {"cn": cn, "post_a": a, "post_b": b, "m1033": marker("1033", ON_LINE, a),
            "m1033_1": marker("1033/1", M2, a), "m1034": marker("1034", M3, b)}


def snapshot(engine) -> dict[str, tuple[int, str]]:
    parts = ", ".join(
        f"'{t}', (SELECT json_build_array(count(*), md5(COALESCE(string_agg(to_jsonb(x)::text, '|' "
        f"ORDER BY to_jsonb(x)::text), ''))) FROM {t} x)" for t in TABLES)
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT json_build_object({parts})")).scalar_one()


def reason(r) -> str:
    body = r.json()
    return body["message"]


def refused(api, engine, method, url, body=None, status=422, headers=None) -> str:
    """Send a bad request: check its status, that nothing changed, and return the reason."""
    before = snapshot(engine)
    r = api.request(method, url, json=body, headers=headers)
    assert r.status_code == status, r.text
    assert snapshot(engine) == before, "a refused request changed the data"
    return reason(r)


def road_body(base, **over):
    body = {"code": uid("R"), "name": "Đường nhánh lên mốc 1033", "post_id": base["post_a"],
            "marker_ids": [base["m1033"]], "geometry": line(IN_VN, ON_LINE),
            "estimated_cost": 1_200_000_000}
    return {**body, **over}


def marker_body(base, **over):
    body = {"segment_id": base["cn"], "number": f"{2000 + next(_n)}", "geometry": point(ON_LINE),
            "province": "Lạng Sơn", "post_id": base["post_a"]}
    return {**body, **over}


def create(api, layer, body):
    r = api.post(f"/api/{layer}", json=body)
    assert r.status_code == 201, r.text
    return r


# ---------------------------------------------------------------------------- happy paths


@pytest.mark.parametrize("layer, public", [
    ("markers", s.MarkerPublic), ("posts", s.PostPublic), ("roads", s.RoadPublic),
])
def test_created_items_are_returned_as_get_shows_them(api, base, layer, public):
    body = {"markers": marker_body(base), "roads": road_body(base),
            "posts": {"code": uid("P"), "name": "Đồn mới", "province": "Lạng Sơn",
                      "geometry": point(IN_VN)}}[layer]
    r = create(api, layer, body)
    assert r.headers["location"] == f"/api/{layer}/{r.json()['id']}"
    assert r.headers["content-type"].startswith("application/geo+json")
    assert r.headers["etag"] == '"1"'
    assert api.get(r.headers["location"]).json() == r.json()
    public.model_validate(r.json())
    assert r.json()["properties"]["is_generated"] is False


def test_a_new_road_is_proposed_serves_its_markers_and_takes_places_from_the_first(api, base):
    r = create(api, "roads", road_body(base, marker_ids=[base["m1033"], base["m1033_1"]],
                                       geometry=line(IN_VN, M2, ON_LINE)))
    props = r.json()["properties"]
    assert props["status"] == "proposed" and props["version"] == 1
    assert props["markers"] == ["1033", "1033/1"]
    assert (props["province"], props["district"], props["commune"]) == ("Lạng Sơn", "Tràng Định", "Đào Viên")
    assert props["estimated_cost"] == 1_200_000_000 and 1000 < props["length_m"] < 2000
    assert props["post_name"] == "Bình Nghi"


def test_given_place_names_win_and_stop_the_defaults_below_them(api, base):
    props = create(api, "roads", road_body(base, district="Văn Lãng")).json()["properties"]
    assert (props["province"], props["district"], props["commune"]) == ("Lạng Sơn", "Văn Lãng", None)
    props = create(api, "roads", road_body(base, commune="Tân Tiến")).json()["properties"]
    assert (props["province"], props["district"], props["commune"]) == ("Lạng Sơn", "Tràng Định", "Tân Tiến")


def test_a_road_given_in_utm_48n_is_stored_in_lon_lat(api, base):
    from pyproj import Transformer

    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32648", always_xy=True)
    utm = [list(to_utm.transform(*xy)) for xy in (IN_VN, ON_LINE)]
    r = create(api, "roads", road_body(base, geometry=line(*utm), crs="EPSG:32648"))
    (x0, y0), (x1, y1) = r.json()["geometry"]["coordinates"]
    assert (x0, y0, x1, y1) == pytest.approx((*IN_VN, *ON_LINE), abs=1e-6)


def test_patch_changes_only_what_is_sent_and_bumps_version(api, base, engine_w):
    m = create(api, "markers", marker_body(base, access="earth")).json()
    with engine_w.connect() as conn:
        t0 = conn.execute(text("SELECT updated_at FROM marker WHERE id = :id"), {"id": m["id"]}).scalar()
    r = api.patch(f"/api/markers/{m['id']}", json={"access": "concrete", "commune": None})
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == '"2"'
    props = r.json()["properties"]
    assert props["access"] == "concrete" and props["commune"] is None
    assert props["number"] == m["properties"]["number"] and props["province"] == "Lạng Sơn"
    assert api.get(f"/api/markers/{m['id']}").json() == r.json()
    with engine_w.connect() as conn:
        row = conn.execute(text("SELECT version, updated_at FROM marker WHERE id = :id"), {"id": m["id"]}).one()
    assert row.version == 2 and row.updated_at > t0


def test_patch_a_road_line_and_markers(api, base):
    road = create(api, "roads", road_body(base)).json()
    r = api.patch(f"/api/roads/{road['id']}", json={
        "marker_ids": [base["m1033_1"]], "geometry": line(IN_VN, M2), "name": "Đường lên mốc 1033/1"})
    assert r.status_code == 200, r.text
    props = r.json()["properties"]
    assert props["markers"] == ["1033/1"] and props["version"] == 2 and props["status"] == "proposed"
    assert r.json()["geometry"]["coordinates"][-1] == M2


def test_writes_are_audited_with_the_actor(api, base, engine_w):
    m = create(api, "markers", marker_body(base)).json()
    api.patch(f"/api/markers/{m['id']}", json={"notes": "đã kiểm tra"})
    api.delete(f"/api/markers/{m['id']}")
    with engine_w.connect() as conn:
        rows = conn.execute(text(
            "SELECT action, actor, before IS NOT NULL AS b, after IS NOT NULL AS a, after->>'notes' AS notes "
            "FROM audit_log WHERE target_table = 'marker' AND target_id = :id ORDER BY id"),
            {"id": str(m["id"])}).all()
    assert [(r.action, r.actor, r.b, r.a) for r in rows] == [
        ("create", "tester", False, True), ("update", "tester", True, True), ("delete", "tester", True, False)]
    assert rows[1].notes == "đã kiểm tra"


def test_delete_an_unreferenced_item(api, base):
    for layer, body in (("markers", marker_body(base)), ("roads", road_body(base)),
                        ("posts", {"code": uid("P"), "name": "x", "province": "Cao Bằng",
                                   "geometry": point(IN_VN)}),
                        ("villages", {"code": uid("V"), "name": "x", "country": "VNM",
                                      "admin1": "Lạng Sơn", "geometry": point(IN_VN)}),
                        ("donors", {"code": uid("D"), "name": "x", "kind": "person"}),
                        ("campaigns", {"code": uid("C"), "name": "x"})):
        item = create(api, layer, body).json()
        r = api.delete(f"/api/{layer}/{item['id']}")
        assert r.status_code == 204, (layer, r.text)
        assert api.get(f"/api/{layer}/{item['id']}").status_code == 404
    assert api.delete("/api/markers/999999").status_code == 404


def test_a_post_with_an_area_of_responsibility(api):
    ring = [IN_VN, [106.89, 21.972], [106.885, 21.965], IN_VN]
    r = create(api, "posts", {"code": uid("P"), "name": "Đồn có địa bàn", "province": "Lạng Sơn",
                              "geometry": point(IN_VN), "area": {"type": "Polygon", "coordinates": [ring]}})
    assert r.json()["properties"]["markers"] == 0


# ---------------------------------------------------------------------------- marker rules


@pytest.mark.parametrize("over, reason_part", [
    ({"geometry": point([21.98204, 106.88017])}, "longitude and latitude look swapped"),
    ({"geometry": point([2.35, 48.85])}, "km outside Viet Nam"),
    ({"geometry": point(IN_VN)}, "is 964 m from border segment VN-CN; a marker must stand within 500 m"),
    ({"geometry": line(IN_VN, ON_LINE)}, "expected a Point, got LineString"),
    ({"geometry": {"type": "Point", "coordinates": []}}, "the Point is empty"),
    ({"geometry": point(ON_LINE), "crs": "EPSG:999999"}, "unknown CRS"),
    ({"segment_id": 999}, "segment_id: border segment 999 does not exist"),
    ({"post_id": 999999}, "post_id: post 999999 does not exist"),
    ({"number": "10-33"}, "number: String should match pattern"),
    ({"version": 7}, "version cannot be set"),
    ({"id": 5}, "id cannot be set"),
    ({"colour": "red"}, "colour: Extra inputs are not permitted"),
    ({"terrain_difficulty": 9}, "terrain_difficulty"),
])
def test_bad_markers_are_refused_and_change_nothing(api, engine_w, base, over, reason_part):
    assert reason_part in refused(api, engine_w, "POST", "/api/markers", marker_body(base, **over))


def test_a_duplicate_marker_number_on_a_segment_is_a_conflict(api, engine_w, base):
    msg = refused(api, engine_w, "POST", "/api/markers", marker_body(base, number="1033"), status=409)
    assert "marker 1033 already exists on border segment VN-CN" in msg


def test_marker_segment_distance_is_configurable(api, engine_w, base, monkeypatch):
    monkeypatch.setenv("TRACKER_MARKER_MAX_DISTANCE_M", "2000")
    configure()
    try:
        create(api, "markers", marker_body(base, geometry=point(IN_VN)))
    finally:
        monkeypatch.undo()
        configure()
    assert "within 500 m" in refused(api, engine_w, "POST", "/api/markers", marker_body(base, geometry=point(IN_VN)))


def test_patch_rechecks_the_merged_marker(api, engine_w, base):
    mid = base["m1033"]
    assert "964 m from border segment VN-CN" in refused(
        api, engine_w, "PATCH", f"/api/markers/{mid}", {"geometry": point(IN_VN)})
    # another segment: the stored point is then hundreds of km from it
    with engine_w.connect() as conn:
        la = conn.execute(text("SELECT id FROM border_segment WHERE code = 'VN-LA'")).scalar_one()
    assert "from border segment VN-LA" in refused(api, engine_w, "PATCH", f"/api/markers/{mid}", {"segment_id": la})
    assert "province cannot be null" in refused(api, engine_w, "PATCH", f"/api/markers/{mid}", {"province": None})
    assert "nothing to update" in refused(api, engine_w, "PATCH", f"/api/markers/{mid}", {})
    assert "crs only applies together with a new geometry" in refused(
        api, engine_w, "PATCH", f"/api/markers/{mid}", {"crs": "EPSG:32648"})
    assert "not found" in refused(api, engine_w, "PATCH", "/api/markers/999999", {"notes": "x"}, status=404)


def test_if_match_refuses_a_stale_version(api, engine_w, base):
    m = create(api, "markers", marker_body(base)).json()
    assert api.patch(f"/api/markers/{m['id']}", json={"notes": "a"}, headers={"If-Match": '"1"'}).status_code == 200
    msg = refused(api, engine_w, "PATCH", f"/api/markers/{m['id']}", {"notes": "b"},
                  status=412, headers={"If-Match": '"1"'})
    assert "it is at version 2, not 1" in msg
    refused(api, engine_w, "DELETE", f"/api/markers/{m['id']}", status=412, headers={"If-Match": "1"})
    assert "If-Match must be a version number" in refused(
        api, engine_w, "PATCH", f"/api/markers/{m['id']}", {"notes": "b"}, headers={"If-Match": "abc"})


def test_a_marker_served_by_a_road_cannot_be_deleted(api, engine_w, base):
    road = create(api, "roads", road_body(base, marker_ids=[base["m1034"]], post_id=base["post_b"],
                                          geometry=line(IN_VN, M3))).json()
    msg = refused(api, engine_w, "DELETE", f"/api/markers/{base['m1034']}", status=409)
    assert f"it is served by branch road(s) {road['properties']['code']}" in msg


# ---------------------------------------------------------------------------- post rules


def test_post_rules(api, engine_w, base):
    body = {"code": "BN", "name": "again", "province": "Lạng Sơn", "geometry": point(IN_VN)}
    assert "a post with code 'BN' already exists" in refused(api, engine_w, "POST", "/api/posts", body, status=409)
    body["code"] = uid("P")
    assert "segment_id: border segment 77 does not exist" in refused(
        api, engine_w, "POST", "/api/posts", {**body, "segment_id": 77})
    assert "look swapped" in refused(api, engine_w, "POST", "/api/posts", {**body, "geometry": point(IN_VN[::-1])})
    bowtie = [[106.87, 21.96], [106.88, 21.97], [106.88, 21.96], [106.87, 21.97], [106.87, 21.96]]
    assert "area: invalid geometry: self-intersection at [106.875, 21.965]" in refused(
        api, engine_w, "POST", "/api/posts", {**body, "area": {"type": "Polygon", "coordinates": [bowtie]}})
    assert "area: expected a Polygon or a MultiPolygon, got Point" in refused(
        api, engine_w, "POST", "/api/posts", {**body, "area": point(IN_VN)})
    assert "code: a post with code 'PB' already exists" in refused(
        api, engine_w, "PATCH", f"/api/posts/{base['post_a']}", {"code": "PB"}, status=409)


def test_a_post_still_in_use_cannot_be_deleted(api, engine_w, base):
    msg = refused(api, engine_w, "DELETE", f"/api/posts/{base['post_a']}", status=409)
    assert "cannot be deleted" in msg and ("branch road" in msg or "marker" in msg)
    lonely = create(api, "posts", {"code": uid("P"), "name": "x", "province": "Lạng Sơn",
                                   "geometry": point(IN_VN)}).json()
    create(api, "markers", marker_body(base, post_id=lonely["id"]))
    msg = refused(api, engine_w, "DELETE", f"/api/posts/{lonely['id']}", status=409)
    assert "it is responsible for marker(s)" in msg


# ---------------------------------------------------------------------------- road rules


@pytest.mark.parametrize("over, reason_part", [
    ({"status": "funded"}, "status cannot be set: a road's status changes only through"),
    ({"version": 3}, "version cannot be set"),
    ({"progress_pct": 50}, "progress_pct cannot be set"),
    ({"post_id": 999999}, "post_id: post 999999 does not exist"),
    ({"marker_ids": [999999]}, "marker_ids: marker 999999 does not exist"),
    ({"marker_ids": []}, "marker_ids: List should have at least 1 item"),
    ("no markers", "marker_ids: Field required"),
    ({"geometry": point(ON_LINE)}, "expected a LineString, got Point"),
    ({"geometry": line([106.870, 21.960], [106.875, 21.965], [106.875, 21.960], [106.870, 21.965],
                       IN_VN, ON_LINE)}, "the line crosses or overlaps itself at [106.8725, 21.9625]"),
    ({"geometry": line(IN_VN[::-1], ON_LINE[::-1])}, "longitude and latitude look swapped"),
    ({"geometry": line([106.88017, 21.96204], IN_VN)},
     "the road does not reach marker 1033 (id"),
    ({"geometry": line(IN_VN, IN_CN)}, "neither end of the road is at a marker it serves: the nearest end is 1.1 km from marker 1033"),
    ({"estimated_cost": 1.5}, "estimated_cost: must be a whole number of đồng; 1.5 has a fractional part"),
    ({"estimated_cost": -5}, "estimated_cost: must be positive"),
    ({"estimated_cost": 0}, "estimated_cost: must be positive"),
    ({"estimated_cost": "1,2 tỷ"}, "estimated_cost: must be a whole number of đồng"),
    ({"estimated_cost": 10**15 + 1}, "must be at most 10^15"),
    ({"planned_start": "2022-05-01", "planned_end": "2022-03-01"}, "planned_end 2022-03-01 is before planned_start"),
])
def test_bad_roads_are_refused_and_change_nothing(api, engine_w, base, over, reason_part):
    body = road_body(base)
    if over == "no markers":
        del body["marker_ids"]
    else:
        body.update(over)
    assert reason_part in refused(api, engine_w, "POST", "/api/roads", body)


def test_a_road_far_from_its_marker_says_how_far(api, engine_w, base):
    msg = refused(api, engine_w, "POST", "/api/roads", road_body(base, geometry=line([106.88017, 21.96204], IN_VN)))
    assert "it passes 1.1 km from it at its closest; a branch road must come within 200 m" in msg


def test_a_road_must_serve_markers_of_its_own_post(api, engine_w, base):
    msg = refused(api, engine_w, "POST", "/api/roads", road_body(base, marker_ids=[base["m1034"]],
                                                                 geometry=line(IN_VN, M3)))
    assert "marker 1034" in msg and "is in the care of post Đồn B" in msg and f"not post {base['post_a']}" in msg


def test_money_accepts_integer_strings_and_integral_floats(api, base):
    for given in ("1200000000", 1.2e9, 1_200_000_000):
        r = create(api, "roads", road_body(base, estimated_cost=given))
        assert r.json()["properties"]["estimated_cost"] == 1_200_000_000


def test_too_many_vertices_are_refused(api, engine_w, base):
    coords = [[IN_VN[0], IN_VN[1] + i * 1e-6] for i in range(10_001)]
    assert "too many vertices (more than 10,000)" in refused(
        api, engine_w, "POST", "/api/roads", road_body(base, geometry={"type": "LineString", "coordinates": coords}))


def test_patch_rechecks_the_merged_road(api, engine_w, base):
    road = create(api, "roads", road_body(base)).json()
    url = f"/api/roads/{road['id']}"
    assert "is in the care of post Bình Nghi" in refused(api, engine_w, "PATCH", url, {"post_id": base["post_b"]})
    assert "does not reach marker 1034" in refused(
        api, engine_w, "PATCH", url, {"post_id": base["post_b"], "marker_ids": [base["m1034"]]})
    assert "does not reach marker 1033" in refused(
        api, engine_w, "PATCH", url, {"geometry": line([106.88017, 21.96204], IN_VN)})
    assert "status cannot be set" in refused(api, engine_w, "PATCH", url, {"status": "completed"})
    assert "marker_ids cannot be null" in refused(api, engine_w, "PATCH", url, {"marker_ids": None})
    assert "planned_end 2020-01-01 is before planned_start" in refused(
        api, engine_w, "PATCH", url, {"planned_start": "2021-01-01", "planned_end": "2020-01-01"})


def test_only_a_proposed_road_without_money_can_be_deleted(api, engine_w, base):
    surveyed = create(api, "roads", road_body(base)).json()
    funded = create(api, "roads", road_body(base)).json()
    with engine_w.begin() as conn:
        conn.execute(text("UPDATE branch_road SET status = 'surveyed' WHERE id = :id"), {"id": surveyed["id"]})
        donor = conn.execute(text("INSERT INTO donor (code, name, kind) VALUES ('DX', 'x', 'agency') "
                                  "RETURNING id")).scalar_one()
        conn.execute(text("INSERT INTO funding_tx (donor_id, road_id, kind, amount, tx_date) "
                          "VALUES (:d, :r, 'pledge', 500000000, '2022-03-01')"), {"d": donor, "r": funded["id"]})
    assert "only a proposed road can be deleted" in refused(
        api, engine_w, "DELETE", f"/api/roads/{surveyed['id']}", status=409)
    assert "money is recorded against it: pledge 500000000 VND" in refused(
        api, engine_w, "DELETE", f"/api/roads/{funded['id']}", status=409)
    assert "money is recorded from it" in refused(api, engine_w, "DELETE", f"/api/donors/{donor}", status=409)

    photographed = create(api, "roads", road_body(base)).json()
    with engine_w.begin() as conn:
        conn.execute(text("""
            INSERT INTO attachment (road_id, kind, filename, content_type, size_bytes, sha256, storage_path, actor)
            VALUES (:r, 'photo', 'moc-1033.jpg', 'image/jpeg', 10, repeat('a', 64),
                    'aa/aa/' || repeat('a', 64), 'tester')"""), {"r": photographed["id"]})
    assert "it has attachment(s) (delete them first): moc-1033.jpg" in refused(
        api, engine_w, "DELETE", f"/api/roads/{photographed['id']}", status=409)


# ---------------------------------------------------------------------------- donors


def test_a_group_donor_with_members_and_roles(api, engine_w):
    ids = [create(api, "donors", {"code": uid("D"), "name": n, "kind": "agency"}).json()["id"]
           for n in ("Sở Kế hoạch và Đầu tư", "Sở Ngoại vụ", "Sở Tài chính")]
    r = create(api, "donors", {
        "code": uid("CTĐ"), "name": "Cụm thi đua các cơ quan tham mưu tổng hợp", "kind": "cluster",
        "is_group": True, "province": "Lạng Sơn",
        "members": [{"member_id": ids[0], "role": "cluster head"}, {"member_id": ids[1], "role": "deputy head"}]})
    group = r.json()
    s.DonorPublic.model_validate(group)
    assert r.headers["content-type"].startswith("application/json")
    assert group["members"] == [{"id": ids[0], "role": "cluster head"}, {"id": ids[1], "role": "deputy head"}]
    assert api.get(f"/api/donors/{ids[0]}").json()["groups"] == [group["id"]]

    r = api.post(f"/api/donors/{group['id']}/members", json={"member_id": ids[2], "role": "member"})
    assert r.status_code == 201, r.text
    assert [m["id"] for m in r.json()["members"]] == ids and r.headers["etag"] == '"2"'

    assert "is already a member" in refused(
        api, engine_w, "POST", f"/api/donors/{group['id']}/members", {"member_id": ids[2]}, status=409)
    assert "a donor cannot be its own member" in refused(
        api, engine_w, "POST", f"/api/donors/{group['id']}/members", {"member_id": group["id"]})
    assert "member_id: donor 999999 does not exist" in refused(
        api, engine_w, "POST", f"/api/donors/{group['id']}/members", {"member_id": 999999})
    assert "is not a group" in refused(
        api, engine_w, "POST", f"/api/donors/{ids[0]}/members", {"member_id": ids[1]})
    assert "not found" in refused(
        api, engine_w, "POST", "/api/donors/999999/members", {"member_id": ids[1]}, status=404)
    assert "it is a member of group(s)" in refused(api, engine_w, "DELETE", f"/api/donors/{ids[0]}", status=409)
    assert "still has 3 member(s)" in refused(
        api, engine_w, "PATCH", f"/api/donors/{group['id']}", {"is_group": False})

    assert api.delete(f"/api/donors/{group['id']}/members/{ids[2]}").status_code == 204
    assert [m["id"] for m in api.get(f"/api/donors/{group['id']}").json()["members"]] == ids[:2]
    assert "is not a member of group" in refused(
        api, engine_w, "DELETE", f"/api/donors/{group['id']}/members/{ids[2]}", status=404)

    # deleting the group keeps its members
    assert api.delete(f"/api/donors/{group['id']}").status_code == 204
    assert api.get(f"/api/donors/{ids[0]}").json()["groups"] == []


def test_groups_of_groups_never_form_a_cycle(api, engine_w):
    def group(members=()):
        return create(api, "donors", {"code": uid("G"), "name": "g", "kind": "cluster", "is_group": True,
                                      "members": [{"member_id": m} for m in members]}).json()["id"]

    a = group()
    b = group([a])
    c = group([b])  # c ⊃ b ⊃ a
    msg = refused(api, engine_w, "POST", f"/api/donors/{a}/members", {"member_id": c})
    assert f"would make a cycle: group {a} is already inside donor {c} ({c} ⊃ {b} ⊃ {a})" in msg
    assert "would make a cycle" in refused(api, engine_w, "POST", f"/api/donors/{a}/members", {"member_id": b})
    d = group()
    assert api.post(f"/api/donors/{d}/members", json={"member_id": c}).status_code == 201  # no cycle


@pytest.mark.parametrize("body, reason_part", [
    ({"kind": "cluster", "members": [{"member_id": 1}]}, "members given but is_group is false"),
    ({"kind": "cluster", "is_group": True, "members": [{"member_id": 999999}]},
     "members: donor 999999 does not exist"),
    ({"kind": "cluster", "is_group": True, "members": [{"member_id": 1}, {"member_id": 1}]},
     "member 1 listed more than once"),
    ({"kind": "ministry"}, "kind: Input should be"),
    ({"kind": "person", "name": "  "}, "name: String should have at least 1 character"),
    ({"kind": "person", "is_generated": True}, "is_generated cannot be set"),
])
def test_bad_donors_are_refused(api, engine_w, body, reason_part):
    full = {"code": uid("D"), "name": "Nhà tài trợ", **body}
    assert reason_part in refused(api, engine_w, "POST", "/api/donors", full)


# ---------------------------------------------------------------------------- campaigns


def test_campaigns(api, engine_w):
    organiser = create(api, "donors", {"code": uid("D"), "name": "Cụm thi đua", "kind": "cluster",
                                       "is_group": True}).json()["id"]
    r = create(api, "campaigns", {"code": uid("39/KH-CTĐ"), "name": "Vận động xây đường nhánh",
                                  "organiser_id": organiser, "province": "Lạng Sơn",
                                  "plan_date": "2022-02-18", "target_amount": "4800000000"})
    camp = r.json()
    s.CampaignPublic.model_validate(camp)
    assert camp["target_amount"] == 4_800_000_000 and camp["plan_date"] == "2022-02-18"
    url = f"/api/campaigns/{camp['id']}"
    assert api.patch(url, json={"starts_on": "2022-03-01", "ends_on": "2022-12-31"}).status_code == 200
    assert "ends_on 2022-01-01 is before starts_on 2022-03-01" in refused(
        api, engine_w, "PATCH", url, {"ends_on": "2022-01-01"})
    assert "organiser_id: donor 999999 does not exist" in refused(
        api, engine_w, "PATCH", url, {"organiser_id": 999999})
    assert "target_amount: must be a whole number of đồng; 12.5" in refused(
        api, engine_w, "PATCH", url, {"target_amount": 12.5})
    assert "it organises campaign(s)" in refused(api, engine_w, "DELETE", f"/api/donors/{organiser}", status=409)
    with engine_w.begin() as conn:
        conn.execute(text("INSERT INTO funding_tx (donor_id, campaign_id, kind, amount, tx_date) "
                          "VALUES (:d, :c, 'pledge', 100000000, '2022-03-01')"), {"d": organiser, "c": camp["id"]})
    assert "money is recorded under it" in refused(api, engine_w, "DELETE", url, status=409)


# ---------------------------------------------------------------------------- villages


def test_villages_lie_on_their_country_side(api, engine_w):
    vn = create(api, "villages", {"code": uid("V"), "name": "Khóm Duy Tân", "country": "VNM",
                                  "admin1": "Quảng Trị", "geometry": point(IN_VN)}).json()
    s.VillagePublic.model_validate(vn)
    cn = create(api, "villages", {"code": uid("V"), "name": "Bản bên kia", "country": "CHN",
                                  "admin1": "Quảng Tây", "geometry": point(IN_CN)}).json()
    lao = {"code": uid("V"), "name": "Bản Phường", "country": "LAO", "admin1": "Savannakhet",
           "geometry": point(IN_LAOS)}
    create(api, "villages", lao)

    msg = refused(api, engine_w, "POST", "/api/villages", {**lao, "code": uid("V"), "geometry": point(IN_VN)})
    assert "lies in Viet Nam (VNM)" in msg and "its country is LAO" in msg
    msg = refused(api, engine_w, "PATCH", f"/api/villages/{cn['id']}", {"country": "VNM"})
    assert "lies in China (CHN)" in msg
    assert "look swapped" in refused(api, engine_w, "PATCH", f"/api/villages/{vn['id']}",
                                     {"geometry": point(IN_VN[::-1])})
    assert "population: Input should be greater than or equal to 0" in refused(
        api, engine_w, "PATCH", f"/api/villages/{vn['id']}", {"population": -1})
    # a foreign village far inside its country is outside the area the tracker covers
    assert "outside Viet Nam" in refused(api, engine_w, "POST", "/api/villages",
                                         {**lao, "code": uid("V"), "geometry": point([105.0, 16.0])})
    with engine_w.begin() as conn:
        conn.execute(text("INSERT INTO village_pair (vn_village_id, foreign_village_id) VALUES (:a, :b)"),
                     {"a": vn["id"], "b": cn["id"]})
    assert "it is twinned in village pair(s)" in refused(
        api, engine_w, "DELETE", f"/api/villages/{vn['id']}", status=409)
