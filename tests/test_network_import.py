"""The road network: OSM import (.osm and .osm.pbf written here with pyosmium), its
routable topology, and the generated demo network."""

from __future__ import annotations

import os
import subprocess
import sys

import osmium
import pytest
from osmium.osm.mutable import Node, Way
from sqlalchemy import create_engine, text

from geo_api import db
from geo_api.domain import network
from geo_api.errors import InvalidInput, PreconditionFailed

# A small area in the sea east of Hải Phòng: nothing else of the test data is near it.
NODES = {
    1: (107.000, 20.500), 2: (107.010, 20.500), 3: (107.020, 20.500), 4: (107.030, 20.500),
    5: (107.020, 20.510), 6: (107.010, 20.490), 7: (107.020, 20.520), 8: (107.030, 20.520),
    9: (107.040, 20.520), 10: (107.000, 20.530), 11: (107.010, 20.530),
}
WAYS = [
    # id, nodes, tags
    (100, [1, 2, 3, 4], {"highway": "track", "surface": "dirt", "name": "Đường mòn Khe Lầy"}),
    (101, [3, 5, 7], {"highway": "tertiary", "surface": "asphalt"}),  # meets 100 at node 3
    (102, [2, 6], {"highway": "footway"}),                              # not kept: no split at 2
    (103, [7, 8, 99, 9], {"highway": "residential"}),                   # node 99 is missing
    (104, [10, 11], {"building": "yes"}),                               # not a road
    (105, [10, 11], {"highway": "proposed"}),                           # not built
]


def write_osm(path, nodes=NODES, ways=WAYS) -> str:
    if os.path.exists(path):
        os.remove(path)
    with osmium.SimpleWriter(str(path)) as w:
        for nid, (lon, lat) in sorted(nodes.items()):
            w.add_node(Node(id=nid, location=(lon, lat)))
        for wid, refs, tags in ways:
            w.add_way(Way(id=wid, nodes=refs, tags=tags))
    return str(path)


@pytest.fixture(scope="module")
def net_engine(fresh_database):
    url = fresh_database()
    db.upgrade(url)
    eng = create_engine(url)
    yield eng
    eng.dispose()


def _edges(engine, name):
    with engine.connect() as conn:
        return conn.execute(text("""
            SELECT osm_id, highway, surface, name, source, target, round(length_m) AS m,
                   ST_AsText(geom) AS wkt, is_generated
            FROM road_network WHERE imported_from = :f ORDER BY osm_id, ST_X(ST_StartPoint(geom))
        """), {"f": name}).mappings().all()


def test_reader_splits_ways_at_shared_nodes_and_missing_nodes(tmp_path):
    edges = list(network.read_osm_edges(write_osm(tmp_path / "x.osm")))
    got = sorted((e.osm_id, tuple(e.coords)) for e in edges)
    assert got == [
        (100, ((107.0, 20.5), (107.01, 20.5), (107.02, 20.5))),  # split at node 3, not at 2
        (100, ((107.02, 20.5), (107.03, 20.5))),
        (101, ((107.02, 20.5), (107.02, 20.51), (107.02, 20.52))),
        (103, ((107.02, 20.52), (107.03, 20.52))),               # cut at missing node 99
    ]
    assert {e.highway for e in edges} == {"track", "tertiary", "residential"}


@pytest.mark.parametrize("suffix", [".osm", ".osm.pbf"])
def test_import_keeps_class_surface_name_and_builds_a_routable_topology(tmp_path, net_engine, suffix):
    path = write_osm(tmp_path / f"khe_lay{suffix}")
    result = network.import_osm(net_engine, path)
    assert (result.ways, result.edges, result.replaced) == (3, 4, 0)
    rows = _edges(net_engine, f"khe_lay{suffix}")
    assert [(r["osm_id"], r["highway"], r["surface"], r["name"]) for r in rows] == [
        (100, "track", "dirt", "Đường mòn Khe Lầy"), (100, "track", "dirt", "Đường mòn Khe Lầy"),
        (101, "tertiary", "asphalt", None), (103, "residential", None, None)]
    assert not any(r["is_generated"] for r in rows)
    west, east, branch, _ = rows
    # node 3 is one vertex shared by three edges
    assert west["target"] == east["source"] == branch["source"]
    # ~2.08 km along the track to node 3, then ~2.21 km north to node 7
    with net_engine.connect() as conn:
        cost = conn.execute(text("""
            SELECT agg_cost FROM pgr_dijkstraCost(
                'SELECT id, source, target, length_m AS cost, length_m AS reverse_cost FROM road_network',
                CAST(:a AS bigint), CAST(:b AS bigint), false)
        """), {"a": west["source"], "b": branch["target"]}).scalar_one()
    assert cost == pytest.approx(west["m"] + branch["m"], abs=1)
    assert 4200 < cost < 4350


def test_reimporting_a_file_replaces_its_rows(tmp_path, net_engine):
    path = write_osm(tmp_path / "again.osm")
    network.import_osm(net_engine, path)
    first = _edges(net_engine, "again.osm")
    second = network.import_osm(net_engine, path)
    assert second.replaced == len(first) == second.edges
    assert _edges(net_engine, "again.osm") == first


def _count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM road_network")).scalar_one()


@pytest.mark.parametrize("name, content, message", [
    ("roads.geojson", '{"type": "FeatureCollection", "features": []}', "expected an OpenStreetMap file"),
    ("broken.osm", "<osm version='0.6'><node id='1' lat='20.5'", "not a readable OpenStreetMap file"),
    ("broken.osm.pbf", "this is not protobuf", "not a readable OpenStreetMap file"),
])
def test_bad_files_are_refused_and_change_nothing(tmp_path, net_engine, name, content, message):
    (tmp_path / name).write_text(content)
    before = _count(net_engine)
    with pytest.raises(InvalidInput, match=message):
        network.import_osm(net_engine, tmp_path / name)
    assert _count(net_engine) == before


def test_missing_file_is_refused(tmp_path, net_engine):
    with pytest.raises(InvalidInput, match="does not exist"):
        network.import_osm(net_engine, tmp_path / "nowhere.osm.pbf")


def _tracker(*args, url):
    exe = os.path.join(os.path.dirname(sys.executable), "tracker")
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.run([exe, *args], capture_output=True, text=True, env=env, timeout=120)


def test_cli_imports_with_a_progress_bar(tmp_path, net_engine):
    url = net_engine.url.render_as_string(hide_password=False)
    path = write_osm(tmp_path / "cli_roads.osm.pbf")
    done = _tracker("network", "import", path, url=url)
    assert done.returncode == 0, done.stderr
    assert "3 ways -> 4 edges" in done.stdout
    assert "2/2 edges: 100%" in done.stderr  # tqdm's bar
    assert len(_edges(net_engine, "cli_roads.osm.pbf")) == 4
    bad = _tracker("network", "import", str(tmp_path / "missing.osm"), url=url)
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr


def test_demo_network_needs_the_demo_markers(fresh_database):
    url = fresh_database()
    db.upgrade(url)
    eng = create_engine(url)
    try:
        with pytest.raises(PreconditionFailed, match="load the demo dataset first"):
            network.load_demo_network(eng)
    finally:
        eng.dispose()


@pytest.fixture(scope="session")
def demo_network(engine, demo_counts):
    return network.load_demo_network(engine)


def test_demo_network_is_generated_once_near_the_border_and_connected(engine, demo_network):
    assert demo_network["road_network"] > 2000
    assert network.load_demo_network(engine) == {"road_network": demo_network["road_network"], "added": 0}
    with engine.connect() as conn:
        classes = dict(conn.execute(text(
            "SELECT highway, count(*) FROM road_network WHERE imported_from = 'demo' GROUP BY 1")).all())
        assert set(classes) == {"tertiary", "unclassified", "track"}
        assert conn.execute(text("SELECT bool_and(is_generated) FROM road_network "
                                 "WHERE imported_from = 'demo'")).scalar_one()
        # every edge lies within about 20 km of the border (0.2°), and none crosses it
        far = conn.execute(text("""
            SELECT count(*) FROM road_network r
            WHERE r.imported_from = 'demo' AND NOT EXISTS (SELECT 1 FROM border_segment s
                WHERE ST_DWithin(r.geom, s.geom, 0.2))""")).scalar_one()
        assert far == 0
        crossing = conn.execute(text("""
            SELECT count(*) FROM road_network r JOIN border_segment s ON ST_Intersects(r.geom, s.geom)
            WHERE r.imported_from = 'demo'""")).scalar_one()
        assert crossing == 0
        # one network per border line (plus at most a few stray pieces)
        sizes = [n for (n,) in conn.execute(text("""
            SELECT count(*) FROM pgr_connectedComponents(
                'SELECT id, source, target, length_m AS cost, length_m AS reverse_cost
                 FROM road_network WHERE imported_from = ''demo''')
            GROUP BY component ORDER BY 1 DESC"""))]
        assert len(sizes) <= 6 and sum(sizes[:3]) > 0.98 * sum(sizes)
        # each post has a road into it (within ~50 m)
        lonely = conn.execute(text("""
            SELECT count(*) FROM border_post p WHERE NOT EXISTS (SELECT 1 FROM road_network r
                WHERE r.imported_from = 'demo' AND ST_DWithin(r.geom, p.geom, 0.0005))
        """)).scalar_one()
        assert lonely <= 5


def test_cli_network_demo_and_summary(database_url, demo_network):
    again = _tracker("network", "demo", url=database_url)
    assert again.returncode == 0, again.stderr
    assert f"{demo_network['road_network']} generated edges (already there, nothing added)" in again.stdout
    summary = _tracker("network", "summary", url=database_url)
    assert summary.returncode == 0 and '"edges":' in summary.stdout


def test_cli_network_demo_without_markers_fails_cleanly(fresh_database):
    url = fresh_database()
    db.upgrade(url)
    done = _tracker("network", "demo", url=url)
    assert done.returncode == 1 and "load the demo dataset first" in done.stderr
    assert "Traceback" not in done.stderr
