"""The read policy over every GET route × every role (geo_api.policy).

Every GET route of the app is called as each role and anonymously, with its path filled
from the demo data (a route this file does not know how to fill fails the test: map it).
No answer may be a 5xx; the routes closed to a role are exactly the declared ones; and no
anonymous answer, whatever its format (JSON, GeoJSON, HTML pages, CSV, KML, GeoPackage,
zipped Shapefile, vector tiles, images aside), carries a coordinate within
`policy.MARKER_CLEARANCE_M` of a marker's exact position, except marker positions snapped
to the public grid and points of the public border line (OpenStreetMap's, which the
generated markers sit on). A tile is judged at its own resolution, and a tile cell that
stands for several markers is not any one marker's position.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import shapely
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import text

from support.api_client import account_headers
from geo_api import layers, policy
from geo_api.domain import tiles
from geo_api.domain.attachments import Store
from support.mvt import decode, lonlat

ROLES = (None, "viewer", "donor", "post", "planner", "admin")
SKIPPED = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/static/{path:path}"}
# GET routes closed to some roles: route -> the roles that may read it (None: anonymous).
GUARDED = {
    "/planner": {"planner", "admin"},
    "/planner/plan": {"planner", "admin"},
    "/api/plan/candidates": {"planner", "admin"},
    "/api/audit-log": {"planner", "admin"},
    "/api/accounts": {"admin"},
    "/api/auth/me": {"viewer", "donor", "post", "planner", "admin"},
}
EXPORT_FORMATS = ("geojson", "gpkg", "shp", "csv", "kml")
SNAP = 3  # the markers' public grid, as declared in the catalogue
LON, LAT = (100.0, 112.0), (8.0, 24.0)


def _jpeg_with_gps() -> bytes:
    exif = Image.Exif()
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (22.0, 15.0, 30.5), 3: "E", 4: (106.0, 25.0, 12.25)})
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (120, 160, 90)).save(out, "JPEG", exif=exif)
    return out.getvalue()


GPX = (b'<?xml version="1.0"?><gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1">'
       b"<trk><trkseg>{points}</trkseg></trk></gpx>")


@pytest.fixture(scope="module")
def world(database_url, demo_counts, engine, tmp_path_factory):
    """The app with a throwaway attachment store, the ids to fill paths with, a photo with
    GPS in its EXIF and a GPX track along the road to marker 1033, and each role's headers."""
    from geo_api.main import create_app
    from geo_api.routes import attachments

    app = create_app(database_url)
    store = Store(tmp_path_factory.mktemp("policy-attachments"))
    app.dependency_overrides[attachments.get_store] = lambda: store
    with engine.connect() as conn:
        q = lambda sql: conn.execute(text(sql)).scalar_one()  # noqa: E731
        scope = {"post": {"post_id": q("SELECT min(id) FROM border_post")},
                 "donor": {"donor_id": q("SELECT min(id) FROM donor")}}
        road = q("SELECT id FROM branch_road WHERE code = 'DN-LS-0001'")
        ids = {
            "markers": q("SELECT id FROM marker WHERE number = '1033' ORDER BY id LIMIT 1"),
            "roads": road,
            "village-pairs": q("SELECT min(id) FROM village_pair"),
            "meetings": q("SELECT min(id) FROM pair_meeting"),
            "inaugurations": q("SELECT i.id FROM inauguration i JOIN inauguration_road ir "
                               f"ON ir.inauguration_id = i.id WHERE ir.road_id = {road}"),
            "donors": q("SELECT min(id) FROM donor WHERE is_group"),
            "funding": q("SELECT min(id) FROM funding_tx"),
        }
        for layer in layers.LAYERS:
            ids.setdefault(layer.name, q(f"SELECT min(id) FROM {layer.table}"))
        line = json.loads(q(f"SELECT ST_AsGeoJSON(COALESCE(as_built_geom, geom)) FROM branch_road WHERE id = {road}"))
        rows = conn.execute(text("SELECT id, ST_X(geom), ST_Y(geom) FROM marker ORDER BY id")).all()
        markers = np.array([r[1:] for r in rows])
        border = shapely.get_coordinates(shapely.from_wkb(q("SELECT ST_AsBinary(ST_Collect(geom)) FROM border_segment")))
        marker_1033 = conn.execute(text(f"SELECT ST_X(geom), ST_Y(geom) FROM marker WHERE id = {ids['markers']}")).one()
    headers = {role: account_headers(engine, role, username=f"policy-{role}", **scope.get(role, {}))
               for role in ROLES if role}
    points = "".join(f'<trkpt lat="{y}" lon="{x}"></trkpt>' for x, y in line["coordinates"])
    with TestClient(app) as client:
        uploads = {}
        for kind, name, body, ctype in (("photo", "hien-truong.jpg", _jpeg_with_gps(), "image/jpeg"),
                                        ("gpx", "track.gpx", GPX.replace(b"{points}", points.encode()),
                                         "application/gpx+xml")):
            r = client.post("/api/attachments", data={"owner_kind": "road", "owner_id": str(road)},
                            files={"file": (name, body, ctype)}, headers=headers["planner"])
            assert r.status_code == 201, r.text
            uploads[kind] = (r.json()["id"], body)
        ids["attachments"] = uploads["photo"][0]
        yield {"client": client, "app": app, "ids": ids, "uploads": uploads, "headers": headers,
               "markers": markers, "marker_ids": [r[0] for r in rows], "marker_1033": tuple(marker_1033),
               "border": border}


def urls(route_path: str, ids: dict, marker_1033: tuple[float, float]) -> list[str]:
    """Concrete URLs for a route path, its parameters filled from the demo data."""
    p = route_path
    if p == "/api/export/{layer}.{fmt}":  # any other layer: 404 (each layer has its own route)
        return ["/api/export/no-such-layer.csv"]
    m = re.match(r"^/api/export/([a-z-]+)\.\{fmt\}$", p)
    if m:
        spatial = layers.BY_NAME[m[1]].spatial
        return [f"/api/export/{m[1]}.{fmt}" for fmt in (EXPORT_FORMATS if spatial else ("csv",))]
    if p.startswith("/ogc/collections/{collection_id}"):
        from geo_api.domain.ogc import COLLECTIONS

        return [p.replace("{collection_id}", name).replace("{feature_id}", str(ids[name]))
                for name in COLLECTIONS]
    if p.startswith("/tiles/") and "{z}" in p:
        out = []
        for z in (9, 12, 14):
            _, _, x, y = tiles.tile_range((*marker_1033, *marker_1033), z)
            out.append(p.replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y)))
        return out
    m = re.match(r"^/api/([a-z-]+)/\{item_id\}$", p)
    if m:
        return [p.replace("{item_id}", str(ids[m[1]]))]
    fill = {"{pair_id}": ids["village-pairs"], "{road_id}": ids["roads"], "{donor_id}": ids["donors"],
            "{attachment_id}": ids["attachments"]}
    for key, value in fill.items():
        p = p.replace(key, str(value))
    assert "{" not in p, f"the read-policy test does not know how to fill {route_path}: add it to urls()"
    return [p]


def get_routes(app) -> list[str]:
    return sorted({r.path for r in iter_route_contexts(app.routes)
                   if getattr(r, "methods", None) and "GET" in r.methods and r.path not in SKIPPED})


# ------------------------------------------------------------------------ coordinates


def _in_range(x: float, y: float) -> bool:
    return LON[0] <= x <= LON[1] and LAT[0] <= y <= LAT[1]


def _json_points(doc) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []

    def walk(v):
        if isinstance(v, list):
            if len(v) >= 2 and all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in v[:2]):
                if _in_range(v[0], v[1]):
                    out.append((float(v[0]), float(v[1])))
                elif _in_range(v[1], v[0]):  # Leaflet's [lat, lon]
                    out.append((float(v[1]), float(v[0])))
            for item in v:
                walk(item)
        elif isinstance(v, dict):
            for a, b in (("lon", "lat"), ("longitude", "latitude"), ("x", "y")):
                if isinstance(v.get(a), (int, float)) and isinstance(v.get(b), (int, float)) \
                        and _in_range(v[a], v[b]):
                    out.append((float(v[a]), float(v[b])))
            for item in v.values():
                walk(item)

    walk(doc)
    return out


NUMBER_PAIR = re.compile(r"(-?\d{1,3}\.\d{3,})\s*,\s*(-?\d{1,3}\.\d{3,})")


def _text_points(body: str) -> list[tuple[float, float]]:
    """Number pairs in a page (its inline GeoJSON [lon, lat] and Leaflet's [lat, lon])."""
    out = []
    for a, b in NUMBER_PAIR.findall(body):
        a, b = float(a), float(b)
        if _in_range(a, b):
            out.append((a, b))
        elif _in_range(b, a):
            out.append((b, a))
    return out


def _csv_points(body: str) -> list[tuple[float, float]]:
    csv.field_size_limit(1 << 30)  # a border segment's WKT is megabytes
    rows = list(csv.DictReader(io.StringIO(body.lstrip("\ufeff"))))
    out = []
    for row in rows:
        if row.get("longitude") and row.get("latitude"):
            out.append((float(row["longitude"]), float(row["latitude"])))
        if row.get("wkt"):
            out += [(float(x), float(y)) for x, y in shapely.get_coordinates(shapely.from_wkt(row["wkt"]))]
    return out


def _kml_points(body: str) -> list[tuple[float, float]]:
    out = []
    for block in re.findall(r"<coordinates>(.*?)</coordinates>", body, re.S):
        for tuple_ in block.split():
            lon, lat = tuple_.split(",")[:2]
            out.append((float(lon), float(lat)))
    return out


def _file_points(content: bytes, suffix: str) -> list[tuple[float, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"export{suffix}"
        path.write_bytes(content)
        if suffix == ".zip":
            with zipfile.ZipFile(path) as zf:
                zf.extractall(tmp)
            path = next(Path(tmp).glob("*.shp"))
        df = pyogrio.read_dataframe(path)
    coords = shapely.get_coordinates(df.geometry.values[~df.geometry.isna()])
    return [(float(x), float(y)) for x, y in coords]


def _tile_points(url: str, content: bytes) -> list[tuple[float, float]]:
    z, x, y = (int(v) for v in re.search(r"/(\d+)/(\d+)/(\d+)\.pbf", url).groups())
    out = []
    for layer in decode(content).values():
        for feat in layer["features"]:
            if feat["props"].get("count", 1) > 1:  # a grid cell standing for several
                continue
            out += [lonlat(z, x, y, px, py, layer["extent"]) for px, py in feat["coords"]]
    return out


def tile_unit_m(url: str) -> float:
    """Half the diagonal of one tile coordinate unit, in metres (a tile's resolution)."""
    m = re.search(r"/tiles/[a-z-]+/(\d+)/", url)
    return 0.0 if m is None else 40_075_016.7 / (1 << int(m[1])) / 4096 * 0.71


def points_in(url: str, response) -> list[tuple[float, float]]:
    ctype = response.headers.get("content-type", "")
    if "vector-tile" in ctype:
        return _tile_points(url, response.content)
    if url.endswith((".gpkg", ".shp")):
        return _file_points(response.content, ".gpkg" if url.endswith(".gpkg") else ".zip")
    if "json" in ctype:
        return _json_points(response.json())
    if ctype.startswith("text/csv"):
        return _csv_points(response.text)
    if ctype.startswith("application/vnd.google-earth"):
        return _kml_points(response.text)
    if ctype.startswith("text/"):
        return _text_points(response.text)
    return []


def _metres(points: np.ndarray, x: float, y: float) -> np.ndarray:
    dx = (points[:, 0] - x) * 111_320 * math.cos(math.radians(y))
    dy = (points[:, 1] - y) * 110_574
    return np.sqrt(dx * dx + dy * dy)


def too_close(points: list[tuple[float, float]], markers: np.ndarray, border: np.ndarray,
              resolution_m: float = 0.0) -> list[tuple]:
    """Points within the clearance of an exact marker position, less `resolution_m` (what
    a tile's quantisation may move a point), that are neither snapped marker positions (on
    the 0.001° grid, give or take that resolution) nor vertices of the public border line
    (`border`: OpenStreetMap's line is public, whatever lies on its vertices)."""
    if not points:
        return []
    pts = np.array(points)
    grid = 10 ** SNAP
    off = np.abs(pts * grid - np.round(pts * grid)).max(axis=1)
    on_grid = off < max(1e-6, resolution_m / 111_000 * grid * 1.5)
    bad = []
    for (px, py), snapped in zip(pts, on_grid):
        if snapped:
            continue
        d = float(_metres(markers, px, py).min())
        # the approximation's error is far below 1%
        if d >= policy.MARKER_CLEARANCE_M * 0.99 - resolution_m:
            continue
        if float(_metres(border, px, py).min()) < 10 + resolution_m:
            continue  # a vertex of the public border line (pages round it to 4–5 decimals)
        bad.append((px, py, round(d, 1)))
    return bad


# ------------------------------------------------------------------------------ tests


def test_every_get_route_as_every_role(world):
    client, ids, headers = world["client"], world["ids"], world["headers"]
    closed: dict[str, set] = {}
    leaks: dict[str, list] = {}
    checked = 0
    for route in get_routes(world["app"]):
        for url in urls(route, ids, world["marker_1033"]):
            for role in ROLES:
                r = client.get(url, headers=headers[role] if role else {})
                assert r.status_code < 500, (url, role, r.status_code, r.text[:300])
                if url == "/api/export/no-such-layer.csv":
                    assert r.status_code == 404
                    continue
                if r.status_code in (401, 403):
                    closed.setdefault(route, set()).add(role)
                    assert r.status_code == (401 if role is None else 403), (url, role)
                    continue
                assert r.status_code in (200, 304), (url, role, r.status_code, r.text[:300])
                if role is None:
                    found = too_close(points_in(url, r), world["markers"], world["border"], tile_unit_m(url))
                    checked += 1
                    if found:
                        leaks[url] = found[:3]
    assert leaks == {}, f"anonymous answers with coordinates near exact marker positions: {leaks}"
    assert checked > 100
    # GPX content is closed to anonymous readers; every other closed route is declared here
    gpx_content = f"/api/attachments/{{attachment_id}}/content"
    closed.pop(gpx_content, None)
    expected = {route: set(ROLES) - allowed for route, allowed in GUARDED.items()}
    assert closed == expected


def test_the_policy_test_finds_a_leak(world):
    """The check above is not vacuous: the exact road and the exact marker are caught."""
    client, ids, headers = world["client"], world["ids"], world["headers"]
    exact = client.get(f"/api/roads/{ids['roads']}", headers=headers["viewer"])
    assert too_close(points_in(f"/api/roads/{ids['roads']}", exact), world["markers"], world["border"])
    public = client.get(f"/api/roads/{ids['roads']}")
    assert not too_close(points_in(f"/api/roads/{ids['roads']}", public), world["markers"], world["border"])
    # a marker between the border line's vertices (many demo markers sit on a vertex)
    off_vertex = next(i for i, (x, y) in zip(world["marker_ids"], world["markers"])
                      if _metres(world["border"], x, y).min() > 50)
    marker = client.get(f"/api/markers/{off_vertex}", headers=headers["viewer"])
    assert too_close(points_in("/api/markers/x", marker), world["markers"], world["border"])
    assert not too_close(points_in("/api/markers/x", client.get(f"/api/markers/{off_vertex}")),
                         world["markers"], world["border"])


def test_gps_tracks_and_photo_positions_are_not_public(world):
    client, headers, uploads = world["client"], world["headers"], world["uploads"]
    gpx_id, gpx = uploads["gpx"]
    r = client.get(f"/api/attachments/{gpx_id}/content")
    assert r.status_code == 401 and "GPS" in r.text
    assert client.get(f"/api/attachments/{gpx_id}/content", headers=headers["viewer"]).content == gpx
    photo_id, photo = uploads["photo"]
    original = Image.open(io.BytesIO(photo)).getexif().get_ifd(0x8825)
    assert original  # the test photo does carry a GPS position
    public = client.get(f"/api/attachments/{photo_id}/content")
    assert public.status_code == 200 and public.headers["content-type"] == "image/jpeg"
    assert b"Exif" not in public.content and len(public.content) < len(photo)
    seen = Image.open(io.BytesIO(public.content))
    assert seen.size == (32, 24) and not seen.getexif().get_ifd(0x8825)
    exact = client.get(f"/api/attachments/{photo_id}/content", headers=headers["viewer"])
    assert exact.content == photo and exact.headers["etag"] != public.headers["etag"]


def test_planner_pages_need_a_planner_signed_in_by_cookie(world, engine):
    """Pages are read by navigation (no Authorization header): the login's cookie counts,
    for page reads only."""
    client = world["client"]
    anonymous = client.get("/planner")
    assert anonymous.status_code == 401 and 'id="page-sign-in"' in anonymous.text
    assert "<html lang=\"vi\">" in anonymous.text and "Đăng nhập" in anonymous.text
    from geo_api.auth import create_account

    with engine.begin() as conn:
        create_account(conn, username="policy-cookie-planner", role="planner", password="ke-hoach-2026!")
        create_account(conn, username="policy-cookie-post", role="post", password="don-bien-2026!",
                       post=conn.execute(text("SELECT code FROM border_post ORDER BY id LIMIT 1")).scalar())
    with TestClient(world["app"]) as fresh:
        login = fresh.post("/api/auth/login", json={"username": "policy-cookie-post", "password": "don-bien-2026!"})
        assert "httponly" in login.headers["set-cookie"].lower() and "samesite=strict" in login.headers["set-cookie"].lower()
        assert fresh.get("/planner").status_code == 403
        fresh.post("/api/auth/login", json={"username": "policy-cookie-planner", "password": "ke-hoach-2026!"})
        page = fresh.get("/planner")
        assert page.status_code == 200 and 'id="page-sign-in"' not in page.text
        # the cookie is not a credential for the API: a write with it alone is refused
        r = fresh.post("/api/posts", json={})
        assert r.status_code == 401
        assert fresh.get("/api/auth/me").status_code == 401


def test_every_layer_declares_its_anonymous_rule_and_deny_is_the_default(world):
    """A layer with no anonymous rule is refused to anonymous readers (401), read by others."""
    import dataclasses

    from geo_api.errors import Unauthorized

    closed = dataclasses.replace(layers.POSTS, anonymous=None)
    with pytest.raises(Unauthorized):
        policy.geometry_sql(closed, policy.ANONYMOUS)
    with pytest.raises(Unauthorized):
        policy.hidden(closed, policy.ANONYMOUS)
    assert policy.geometry_sql(closed, policy.Viewer(role="viewer")) == "t.geom"
    assert {layer.name for layer in layers.LAYERS if layer.anonymous is not layers.PUBLIC} == {"markers", "roads"}


def test_roads_are_cut_again_when_markers_come_move_or_go(engine, demo_counts):
    """branch_road.public_geom follows the markers (migration 0006's triggers): a marker
    added on a road cuts it there, moved away it lets go, deleted it is forgotten."""
    near = """SELECT COALESCE(min(ST_Distance(m.geom::geography, r.public_geom::geography)), 1e9)
              FROM branch_road r, marker m WHERE r.code = 'DN-LS-0001' AND m.id = :m"""
    with engine.connect() as conn, conn.begin():
        mid = conn.execute(text("SELECT ST_AsText(ST_LineInterpolatePoint(r.geom, 0.5)), m.segment_id "
                                "FROM branch_road r JOIN marker m ON m.number = '1033' WHERE r.code = 'DN-LS-0001' "
                                "ORDER BY m.id LIMIT 1")).one()
        before = conn.execute(text("SELECT ST_Length(public_geom::geography) FROM branch_road "
                                   "WHERE code = 'DN-LS-0001'")).scalar()
        m = conn.execute(text("INSERT INTO marker (segment_id, number, geom, province) "
                              "VALUES (:s, '9999', ST_GeomFromText(:p, 4326), 'Lạng Sơn') RETURNING id"),
                         {"s": mid[1], "p": mid[0]}).scalar()
        assert conn.execute(text(near), {"m": m}).scalar() >= policy.MARKER_CLEARANCE_M
        cut = conn.execute(text("SELECT ST_Length(public_geom::geography) FROM branch_road "
                                "WHERE code = 'DN-LS-0001'")).scalar()
        assert cut < before - 2 * policy.MARKER_CLEARANCE_M * 0.9
        conn.execute(text("UPDATE marker SET geom = ST_Translate(geom, 0.05, 0) WHERE id = :m"), {"m": m})
        assert conn.execute(text("SELECT ST_Length(public_geom::geography) FROM branch_road "
                                 "WHERE code = 'DN-LS-0001'")).scalar() == pytest.approx(before)
        conn.execute(text("UPDATE marker SET geom = ST_GeomFromText(:p, 4326) WHERE id = :m"), {"p": mid[0], "m": m})
        assert conn.execute(text(near), {"m": m}).scalar() >= policy.MARKER_CLEARANCE_M
        conn.execute(text("DELETE FROM marker WHERE id = :m"), {"m": m})
        assert conn.execute(text("SELECT ST_Length(public_geom::geography) FROM branch_road "
                                 "WHERE code = 'DN-LS-0001'")).scalar() == pytest.approx(before)
        conn.rollback()
