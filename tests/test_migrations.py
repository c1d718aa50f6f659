"""Migrations go up and down cleanly on a real PostGIS."""

import psycopg
import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from geo_api import db

TABLES = {
    "border_segment", "border_post", "marker", "branch_road", "road_marker", "road_event",
    "donor", "donor_member", "campaign", "funding_tx", "inauguration", "inauguration_road",
    "inauguration_donor", "village", "village_pair", "pair_meeting", "account", "audit_log",
    "attachment", "road_network",
    "auth_token", "login_attempt", "idempotency_key", "sync_item",  # 0004_accounts_security
    "marker_network_access", "network_version",  # 0005_marker_network_access
}
SECURITY = {"auth_token", "login_attempt", "idempotency_key", "sync_item"}
PLANNER = {"marker_network_access", "network_version"}


def _tables(url):
    eng = create_engine(url)
    try:
        return set(inspect(eng).get_table_names()) - {"spatial_ref_sys", "alembic_version"}
    finally:
        eng.dispose()


def test_upgrade_downgrade_upgrade(fresh_database):
    url = fresh_database()
    db.upgrade(url)
    assert _tables(url) == TABLES
    db.downgrade(url, "base")
    assert _tables(url) == set()
    eng = create_engine(url)
    with eng.connect() as conn:
        types = conn.execute(text(
            "SELECT count(*) FROM pg_type WHERE typname IN ('road_status', 'funding_kind')"
        )).scalar()
    eng.dispose()
    assert types == 0
    db.upgrade(url)
    assert _tables(url) == TABLES


def test_attachments_migration_goes_down_to_the_initial_schema_and_back(fresh_database):
    url = fresh_database()
    db.upgrade(url)
    db.downgrade(url, "0001_initial_schema")
    assert _tables(url) == TABLES - {"attachment", "road_network"} - SECURITY - PLANNER
    db.upgrade(url)
    assert _tables(url) == TABLES


def test_attachment_needs_exactly_one_owner(fresh_database):
    url = fresh_database()
    db.upgrade(url)
    eng = create_engine(url)
    sha = "a" * 64
    row = ("INSERT INTO attachment ({cols} kind, filename, content_type, size_bytes, sha256, "
           "storage_path, actor) VALUES ({vals} 'photo', 'x.jpg', 'image/jpeg', 1, :sha, :path, 't')")
    params = {"sha": sha, "path": f"aa/aa/{sha}"}
    try:
        with eng.begin() as conn:
            conn.execute(text("INSERT INTO inauguration (title, held_on, place, province) "
                              "VALUES ('t', '2022-11-16', 'Đào Viên', 'Lạng Sơn')"))
        with pytest.raises(IntegrityError, match="attachment_one_owner"), eng.begin() as conn:
            conn.execute(text(row.format(cols="", vals="")), params)
        with pytest.raises(IntegrityError, match="foreign key"), eng.begin() as conn:
            conn.execute(text(row.format(cols="road_id,", vals="999,")), params)
        with eng.begin() as conn:
            conn.execute(text(row.format(cols="inauguration_id,", vals="1,")), params)
            kind, owner = conn.execute(text("SELECT owner_kind, owner_id FROM attachment")).one()
        assert (kind, owner) == ("inauguration", 1)
        with pytest.raises(IntegrityError, match="foreign key"), eng.begin() as conn:
            conn.execute(text("DELETE FROM inauguration"))
    finally:
        eng.dispose()


def test_geometry_columns_are_typed_4326(engine):
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT f_table_name, f_geometry_column, srid, type FROM geometry_columns"
        )).all()
    assert rows, "no geometry columns registered"
    assert {r.srid for r in rows} == {4326}
    kinds = {(r.f_table_name, r.f_geometry_column): r.type for r in rows}
    assert kinds[("marker", "geom")] == "POINT"
    assert kinds[("branch_road", "geom")] == "LINESTRING"
    assert kinds[("border_segment", "geom")] == "MULTILINESTRING"


def test_every_geometry_column_has_a_gist_index(engine):
    with engine.connect() as conn:
        missing = conn.execute(text("""
            SELECT g.f_table_name || '.' || g.f_geometry_column
            FROM geometry_columns g
            WHERE NOT EXISTS (
                SELECT 1 FROM pg_index i
                JOIN pg_class c ON c.oid = i.indexrelid
                JOIN pg_am am ON am.oid = c.relam
                JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
                WHERE i.indrelid = g.f_table_name::regclass AND am.amname = 'gist'
                  AND a.attname = g.f_geometry_column)
        """)).scalars().all()
    assert missing == []


@pytest.mark.parametrize("wkt,reason", [
    ("POINT(200 20)", "lonlat"),
    ("POINT EMPTY", "valid"),
])
def test_marker_geometry_checks_reject_bad_points(fresh_database, wkt, reason):
    url = fresh_database()
    db.upgrade(url)
    eng = create_engine(url)
    with eng.begin() as conn:
        seg = conn.execute(text(
            "INSERT INTO border_segment (code, neighbour_iso3, name_vi, name_en, geom) VALUES "
            "('VN-CN', 'CHN', 'x', 'x', 'SRID=4326;MULTILINESTRING((106 22, 106.1 22.1))') RETURNING id"
        )).scalar()
    with pytest.raises(IntegrityError) as err, eng.begin() as conn:
        conn.execute(text(
            "INSERT INTO marker (segment_id, number, geom, province) "
            "VALUES (:s, '1', ST_GeomFromText(:w, 4326), 'Lạng Sơn')"
        ), {"s": seg, "w": wkt})
    assert reason in str(err.value)
    eng.dispose()


def test_money_is_numeric_and_positive(engine):
    with engine.connect() as conn:
        col = conn.execute(text(
            "SELECT data_type, numeric_scale FROM information_schema.columns "
            "WHERE table_name = 'funding_tx' AND column_name = 'amount'"
        )).one()
    assert col.data_type == "numeric" and col.numeric_scale == 0


def test_self_intersecting_road_is_rejected(fresh_database):
    url = fresh_database()
    db.upgrade(url)
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        conn.execute(
            "INSERT INTO border_segment (code, neighbour_iso3, name_vi, name_en, geom) VALUES "
            "('VN-CN', 'CHN', 'x', 'x', 'SRID=4326;MULTILINESTRING((106 22, 106.1 22.1))')"
        )
        conn.execute(
            "INSERT INTO border_post (code, name, province, geom) "
            "VALUES ('P1', 'Đồn', 'Lạng Sơn', 'SRID=4326;POINT(106 22)')"
        )
        conn.commit()
        with pytest.raises(psycopg.errors.CheckViolation, match="branch_road_geom_simple"):
            conn.execute(
                "INSERT INTO branch_road (code, name, post_id, province, geom) SELECT 'R1', 'r', id, "
                "'Lạng Sơn', 'SRID=4326;LINESTRING(106 22, 106.1 22.1, 106.1 22, 106 22.1)'::geometry "
                "FROM border_post"
            )
