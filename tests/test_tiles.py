"""Vector tiles (ST_AsMVT): content per layer, per-zoom reduction, filters, caching, bad input.

Tiles are decoded with the small protobuf reader in tests/support/mvt.py, so the tests
check what a client would actually draw, not just that some bytes came back.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from geo_api import policy
from geo_api.domain import tiles
from geo_api.domain.tiles import TILE_LAYERS, tile_range
from support.mvt import decode

ANCHOR_SQL = {  # a place where each layer has something: its first feature
    "markers": "SELECT ST_X(geom), ST_Y(geom) FROM marker ORDER BY id LIMIT 1",
    "roads": "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_LineInterpolatePoint(geom, 0.5) AS p FROM branch_road "
             "ORDER BY id LIMIT 1) x",
    "posts": "SELECT ST_X(geom), ST_Y(geom) FROM border_post ORDER BY id LIMIT 1",
    "villages": "SELECT ST_X(geom), ST_Y(geom) FROM village ORDER BY id LIMIT 1",
    "village-pairs": "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_LineInterpolatePoint(ST_MakeLine(vn.geom, fv.geom), 0.5) "
                     "AS p FROM village_pair t JOIN village vn ON vn.id = t.vn_village_id "
                     "JOIN village fv ON fv.id = t.foreign_village_id ORDER BY t.id LIMIT 1) x",
}
SOURCES = {  # FROM:geometry of each layer, to list what a tile should hold
    "markers": "marker t:t.geom", "roads": "branch_road t:COALESCE(t.as_built_geom, t.geom)",
    "posts": "border_post t:t.geom", "villages": "village t:t.geom",
    "village-pairs": "village_pair t JOIN village vn ON vn.id = t.vn_village_id JOIN village fv "
                     "ON fv.id = t.foreign_village_id:ST_MakeLine(vn.geom, fv.geom)",
}


# ------------------------------------------------------------------------------ helpers


def _tile_at(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    x0, y0, _, _ = tile_range((lon, lat, lon, lat), z)
    return z, x0, y0


def _get(client, layer: str, z: int, x: int, y: int, **params):
    return client.get(f"/tiles/{layer}/{z}/{x}/{y}.pbf", params=params, headers={"Accept-Encoding": "identity"})


def _ids_in_tile(engine, source_geom: str, z: int, x: int, y: int, where: str = "true", **params) -> set[int]:
    """Ids of the rows whose geometry meets tile z/x/y; `source_geom` is "FROM clause:geometry"
    (a bare table name is aliased t)."""
    source, geom = source_geom.split(":")
    source = source if " " in source else f"{source} t"
    with engine.connect() as conn:
        return set(conn.execute(text(
            f"SELECT t.id FROM {source} WHERE ST_Intersects({geom}, ST_Transform(ST_TileEnvelope(:z, :x, :y), 4326)) "
            f"AND {where}"), {"z": z, "x": x, "y": y, **params}).scalars())


# -------------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def dao_vien(engine, demo_counts) -> tuple[float, float]:
    """The middle of the branch road to marker 1033, inaugurated at Đào Viên on 16/11/2022."""
    with engine.connect() as conn:
        return tuple(conn.execute(text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_LineInterpolatePoint(geom, 0.5) AS p "
            "FROM branch_road WHERE code = 'DN-LS-0001') x")).one())


@pytest.mark.parametrize("layer", list(TILE_LAYERS))
def test_each_layer_serves_its_features_with_their_ids(client, engine, layer):
    spec = TILE_LAYERS[layer]
    with engine.connect() as conn:
        lon, lat = conn.execute(text(ANCHOR_SQL[layer])).one()
    z, x, y = _tile_at(lon, lat, max(spec.aggregate_below, 12))
    r = _get(client, layer, z, x, y)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    decoded = decode(r.content)
    expected = _ids_in_tile(engine, SOURCES[layer], z, x, y)
    got = {f["id"] for f in decoded.get(layer, {"features": []})["features"]}
    assert expected, f"the test tile should hold some {layer}"
    assert expected <= got  # the margin may add features just outside the tile
    assert set(decoded) == {layer}
    feature = decoded[layer]["features"][0]
    assert set(spec.columns) <= set(feature["props"])


def test_roads_carry_status_and_code(client, engine, dao_vien):
    z, x, y = _tile_at(*dao_vien, 12)
    roads = decode(_get(client, "roads", z, x, y).content)["roads"]["features"]
    with engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT id, status::text FROM branch_road")).all())
    assert roads and all(f["props"]["status"] == rows[f["id"]] for f in roads)
    assert all(f["type"] == 2 for f in roads)  # LINESTRING


def test_points_are_gathered_into_cells_below_the_layer_zoom(client, engine, dao_vien):
    # Zoom 5 around Lạng Sơn: markers arrive as cells whose counts add up to every marker there.
    z, x, y = _tile_at(*dao_vien, 5)
    cells = decode(_get(client, "markers", z, x, y).content)["markers"]["features"]
    in_tile = _ids_in_tile(engine, "marker:t.geom", z, x, y)
    assert len(cells) < len(in_tile)
    assert any(f["props"]["count"] > 1 for f in cells)
    total = sum(f["props"]["count"] for f in cells)
    assert len(in_tile) <= total <= len(in_tile) * 1.2  # plus those in the margin
    assert all(f["props"]["access"] in ("none", "footpath", "earth", "concrete") for f in cells)
    # From the layer's zoom on, one feature per marker.
    z, x, y = _tile_at(*dao_vien, TILE_LAYERS["markers"].aggregate_below)
    single = decode(_get(client, "markers", z, x, y).content)["markers"]["features"]
    assert single and all(f["props"]["count"] == 1 for f in single)
    assert len({f["id"] for f in single}) == len(single)


def test_roads_become_cells_by_status_at_low_zoom(client, engine, dao_vien):
    z, x, y = _tile_at(*dao_vien, TILE_LAYERS["roads"].aggregate_below - 1)
    cells = decode(_get(client, "roads", z, x, y).content)["roads"]["features"]
    with engine.connect() as conn:
        statuses = set(conn.execute(text("SELECT DISTINCT status::text FROM branch_road")).scalars())
    in_tile = _ids_in_tile(engine, "branch_road:ST_LineInterpolatePoint(COALESCE(t.as_built_geom, t.geom), 0.5)",
                           z, x, y)
    assert cells and all(f["type"] == 1 for f in cells)  # POINT
    assert any(f["props"]["count"] > 1 for f in cells)
    assert len(in_tile) <= sum(f["props"]["count"] for f in cells) <= len(in_tile) * 1.2
    assert {f["props"]["status"] for f in cells} <= statuses
    lines = decode(_get(client, "roads", *_tile_at(*dao_vien, TILE_LAYERS["roads"].aggregate_below)).content)
    assert all(f["type"] == 2 for f in lines["roads"]["features"])


def test_lines_are_simplified_below_the_detail_zoom(engine, monkeypatch):
    """A wiggly road (400 vertices, 44 m zigzags): a few vertices at zoom 10, every vertex
    from DETAIL_ZOOM on; turning simplification off shows it was the simplification."""
    lon0, lat0 = 106.60, 22.45
    coords = ", ".join(f"{lon0 + i * 0.00025} {lat0 + (0.0004 if i % 2 else 0)}" for i in range(400))
    with engine.connect() as conn:
        tx = conn.begin()
        try:
            post = conn.execute(text("SELECT id FROM border_post ORDER BY id LIMIT 1")).scalar()
            road = conn.execute(text(
                f"INSERT INTO branch_road (code, name, post_id, province, geom) VALUES "
                f"('TILE-TEST', 'wiggle', :post, 'Lạng Sơn', ST_GeomFromText('LINESTRING({coords})', 4326)) "
                f"RETURNING id"), {"post": post}).scalar()

            def vertices(z: int) -> int:
                _, x, y = _tile_at(lon0 + 0.05, lat0, z)
                feats = decode(tiles.tile(conn, "roads", z, x, y, policy.SYSTEM))["roads"]["features"]
                return next(f["vertices"] for f in feats if f["id"] == road)

            detail_zoom = tiles.DETAIL_ZOOM
            simplified, detailed = vertices(10), vertices(detail_zoom)
            monkeypatch.setattr(tiles, "DETAIL_ZOOM", 0)  # no simplification at any zoom
            assert simplified < 20 < vertices(10)
            assert detailed == vertices(detail_zoom) > 50
        finally:
            tx.rollback()


def test_road_filters_match_the_read_api(client, engine, dao_vien):
    z, x, y = _tile_at(*dao_vien, 8)

    def ids(**params) -> set[int]:
        r = _get(client, "roads", z, x, y, **params)
        assert r.status_code == 200
        return {f["id"] for f in decode(r.content).get("roads", {"features": []})["features"]}

    everything = ids()
    inaugurated = ids(status="inaugurated")
    with engine.connect() as conn:
        statuses = dict(conn.execute(text("SELECT id, status::text FROM branch_road")).all())
        cluster = conn.execute(text("SELECT id FROM donor WHERE code = 'CTD-THTH-LS'")).scalar()
        dao_vien = set(conn.execute(text(
            "SELECT ir.road_id FROM inauguration_road ir JOIN inauguration i ON i.id = ir.inauguration_id "
            "WHERE i.held_on = '2022-11-16'")).scalars())
        campaign = conn.execute(text("SELECT id FROM campaign WHERE code = '39/KH-CTĐ'")).scalar()
        by_campaign = set(conn.execute(text(
            "SELECT DISTINCT road_id FROM funding_tx WHERE campaign_id = :c AND road_id IS NOT NULL"),
            {"c": campaign}).scalars())
    assert inaugurated and inaugurated < everything
    assert all(statuses[i] == "inaugurated" for i in inaugurated)
    assert ids(status="inaugurated,completed") == {i for i in everything if statuses[i] in ("inaugurated", "completed")}
    # A donor group stands for its members: the cluster funded the four Đào Viên roads.
    api = client.get("/api/roads", params={"donor_id": cluster, "limit": 1000}).json()
    assert dao_vien <= ids(donor_id=cluster) == {f["id"] for f in api["features"]} & everything
    assert dao_vien <= ids(campaign_id=campaign) == by_campaign & everything


@pytest.mark.parametrize("path, params, reason", [
    ("/tiles/roads/23/0/0.pbf", {}, "z"),
    ("/tiles/roads/3/8/0.pbf", {}, "x 8 is outside 0..7"),
    ("/tiles/roads/3/0/9.pbf", {}, "y 9 is outside 0..7"),
    ("/tiles/roads/3/-1/0.pbf", {}, "x"),
    ("/tiles/roads/3/a/0.pbf", {}, "x"),
    ("/tiles/roads/3/0/0.pbf", {"status": "built"}, "unknown status 'built'"),
    ("/tiles/roads/3/0/0.pbf", {"donor_id": "0"}, "donor_id"),
    ("/tiles/roads/3/0/0.pbf", {"colour": "red"}, "colour"),
    ("/tiles/markers/3/0/0.pbf", {"access": "road"}, "unknown access 'road'"),
    ("/tiles/villages/3/0/0.pbf", {"country": "FRA"}, "country"),
])
def test_bad_tile_requests_are_refused_with_a_reason(client, path, params, reason):
    r = client.get(path, params=params)
    assert r.status_code == 422
    body = r.json()
    assert reason in body["message"]


def test_unknown_layer_is_404(client):
    assert client.get("/tiles/rivers/3/0/0.pbf").status_code == 404


def test_an_empty_tile_is_an_empty_200(client):
    z, x, y = _tile_at(-30.0, 0.0, 6)  # the Atlantic
    r = _get(client, "markers", z, x, y)
    assert r.status_code == 200 and r.content == b""
    assert r.headers["ETag"]


def test_tiles_are_cacheable_and_revalidate_with_304(client, dao_vien):
    z, x, y = _tile_at(*dao_vien, 9)
    first = _get(client, "roads", z, x, y)
    etag = first.headers["ETag"]
    assert "max-age=" in first.headers["Cache-Control"] and "public" in first.headers["Cache-Control"]
    again = client.get(f"/tiles/roads/{z}/{x}/{y}.pbf", headers={"If-None-Match": etag, "Accept-Encoding": "identity"})
    assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == etag
    other = client.get(f"/tiles/roads/{z}/{x}/{y}.pbf", params={"status": "proposed"},
                       headers={"If-None-Match": etag, "Accept-Encoding": "identity"})
    assert other.status_code == 200 and other.headers["ETag"] != etag


def test_tiles_are_gzipped_for_clients_that_accept_it(client, dao_vien):
    z, x, y = _tile_at(*dao_vien, TILE_LAYERS["roads"].aggregate_below)
    plain = _get(client, "roads", z, x, y)
    assert len(plain.content) > 1000
    zipped = client.get(f"/tiles/roads/{z}/{x}/{y}.pbf", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["Vary"]
    assert zipped.content == plain.content  # httpx decoded it
    assert zipped.headers["ETag"] != plain.headers["ETag"]
    assert int(zipped.headers["content-length"]) < len(plain.content)
    z, x, y = _tile_at(-30.0, 0.0, 6)  # empty: not worth compressing
    small = client.get(f"/tiles/markers/{z}/{x}/{y}.pbf", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in small.headers


def test_tilejson_and_index_describe_every_layer(client):
    index = client.get("/tiles").json()
    assert [layer["name"] for layer in index["layers"]] == list(TILE_LAYERS)
    tj = client.get("/tiles/roads.json", params={"status": "inaugurated"}).json()
    assert tj["tilejson"] == "3.0.0"
    assert tj["tiles"][0].endswith("/tiles/roads/{z}/{x}/{y}.pbf?status=inaugurated")
    assert tj["vector_layers"][0]["id"] == "roads"
    assert client.get("/tiles/roads.json", params={"status": "nope"}).status_code == 422


def test_anonymous_callers_get_marker_positions_only_to_about_100_m(client, engine, auth_headers, dao_vien):
    """Like the read API (layers.PRIVACY): snapped positions for anonymous callers, exact ones
    for signed-in callers, whose tiles no shared cache may keep."""
    z, x, y = _tile_at(*dao_vien, 13)
    anonymous = _get(client, "markers", z, x, y)
    signed = client.get(f"/tiles/markers/{z}/{x}/{y}.pbf", headers={**auth_headers("viewer"),
                                                                     "Accept-Encoding": "identity"})
    assert anonymous.headers["Cache-Control"].startswith("public")
    assert signed.headers["Cache-Control"].startswith("private")
    assert "Authorization" in anonymous.headers["Vary"]

    def expected(geom: str) -> dict[int, tuple[int, int]]:
        with engine.connect() as conn:
            rows = conn.execute(text(f"""
                SELECT id, ST_X(g)::int, ST_Y(g)::int FROM (
                    SELECT t.id, ST_AsMVTGeom(ST_Transform({geom}, 3857), ST_TileEnvelope(:z, :x, :y),
                                              4096, 64, true) AS g FROM marker t) q WHERE g IS NOT NULL
            """), {"z": z, "x": x, "y": y}).all()
        return {r[0]: (r[1], r[2]) for r in rows}

    got_anonymous = {f["id"]: f["point"] for f in decode(anonymous.content)["markers"]["features"]}
    got_signed = {f["id"]: f["point"] for f in decode(signed.content)["markers"]["features"]}
    snapped, exact = expected("ST_SnapToGrid(t.geom, 0.001)"), expected("t.geom")
    assert got_anonymous and got_anonymous == snapped
    assert got_signed == exact
    assert any(snapped[i] != exact.get(i) for i in snapped)


def test_a_kept_tile_is_served_until_the_data_changes(client, engine, dao_vien):
    """Rendered tiles are reused only while the database snapshot is the one they were
    rendered in: a committed insert shows in the next tile, an uncommitted one never."""
    from geo_api.settings import get_settings
    from geo_api.domain.tiles import tile_cache

    cache = tile_cache(get_settings().api.tile_cache_mb)
    z, x, y = _tile_at(*dao_vien, 15)

    def ids() -> set[int]:
        r = _get(client, "markers", z, x, y)
        assert r.status_code == 200
        return {f["id"] for f in decode(r.content).get("markers", {"features": []})["features"]}

    before = ids()
    hits = cache.hits
    assert ids() == before and cache.hits == hits + 1  # the same snapshot: served from memory
    insert = text("""
        INSERT INTO marker (segment_id, number, geom, province, post_id, access, terrain_difficulty)
        SELECT segment_id, '9999/9Z', ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), province, post_id,
               access, terrain_difficulty FROM marker ORDER BY id LIMIT 1 RETURNING id""")
    with engine.connect() as pending:  # begun, never committed
        pending.execute(insert, {"lon": dao_vien[0], "lat": dao_vien[1]})
        assert ids() == before
        pending.rollback()
    with engine.begin() as conn:
        new_id = conn.execute(insert, {"lon": dao_vien[0], "lat": dao_vien[1]}).scalar_one()
    try:
        assert ids() == before | {new_id}
        hits = cache.hits
        assert ids() == before | {new_id} and cache.hits == hits + 1
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM marker WHERE id = :id"), {"id": new_id})
    assert ids() == before


def test_tiles_without_the_cache_are_the_same(client, dao_vien, monkeypatch):
    from geo_api.settings import get_settings

    z, x, y = _tile_at(*dao_vien, 10)
    kept = _get(client, "roads", z, x, y)
    monkeypatch.setattr(get_settings().api, "tile_cache_mb", 0)
    fresh = _get(client, "roads", z, x, y)
    assert fresh.content == kept.content and fresh.headers["ETag"] == kept.headers["ETag"]
