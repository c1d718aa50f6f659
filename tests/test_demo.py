"""The generated demo dataset: idempotent, deterministic, geographically and financially sane."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import date

import geopandas as gpd
import pytest
from sqlalchemy import create_engine, text

from geo_api import db
from geo_api.demo import COUNTED, COUNTRIES_FILE, REFERENCE_DATE, load_demo, table_counts

CHECKSUMS = {
    "marker": """SELECT md5(string_agg(concat_ws('|', s.code, m.number, m.kind, ST_AsEWKT(m.geom),
                     m.chainage_km, m.province, p.code, m.access, m.last_inspected_on), ','
                     ORDER BY s.code, m.number))
                 FROM marker m JOIN border_segment s ON s.id = m.segment_id
                 LEFT JOIN border_post p ON p.id = m.post_id""",
    "branch_road": """SELECT md5(string_agg(concat_ws('|', code, status, ST_AsEWKT(geom),
                          estimated_cost, actual_cost, completed_on), ',' ORDER BY code))
                      FROM branch_road""",
    "road_event": """SELECT md5(string_agg(concat_ws('|', r.code, e.from_status, e.to_status,
                         e.occurred_at, e.actor), ',' ORDER BY r.code, e.occurred_at, e.to_status))
                     FROM road_event e JOIN branch_road r ON r.id = e.road_id""",
    "funding_tx": """SELECT md5(string_agg(concat_ws('|', idempotency_key, amount, tx_date), ','
                         ORDER BY idempotency_key)) FROM funding_tx""",
    "village": """SELECT md5(string_agg(concat_ws('|', code, name, ST_AsEWKT(geom)), ',' ORDER BY code))
                  FROM village""",
}


def _checksums(engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {name: conn.execute(text(sql)).scalar() for name, sql in CHECKSUMS.items()}


def _rows(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).all()


def _scalar(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


# --- loading ------------------------------------------------------------------------------


def _fresh_demo(fresh_database):
    url = fresh_database()
    db.upgrade(url)
    eng = create_engine(url)
    started = time.perf_counter()
    counts = load_demo(eng)
    return eng, counts, time.perf_counter() - started


@pytest.fixture(scope="module")
def demo_load(fresh_database):
    """A database of its own holding only the demo dataset, so other modules' writes to the
    shared session database cannot blur what is checked here: (engine, counts, seconds)."""
    loaded = _fresh_demo(fresh_database)
    yield loaded
    loaded[0].dispose()


@pytest.fixture(scope="module")
def demo_engine(demo_load):
    return demo_load[0]


def test_counts_are_what_the_tables_hold(demo_load):
    demo_engine, counts, seconds = demo_load
    assert list(counts) == COUNTED
    for table, n in counts.items():
        assert _scalar(demo_engine, f"SELECT count(*) FROM {table}") == n, table
    assert counts["border_segment"] == 3
    assert 250 <= counts["branch_road"] <= 400
    assert counts["funding_tx"] > counts["branch_road"]
    print(f"load_demo into an empty database: {seconds:.2f} s")
    assert seconds < 20


def test_loading_twice_changes_nothing(demo_load):
    demo_engine, counts, _ = demo_load
    before = _checksums(demo_engine)
    assert load_demo(demo_engine) == counts
    assert _checksums(demo_engine) == before


def test_loading_again_into_the_shared_database_changes_nothing(engine, demo_counts):
    with engine.connect() as conn:
        before = table_counts(conn)
    checksums = _checksums(engine)
    assert load_demo(engine) == before
    assert _checksums(engine) == checksums


def test_a_second_database_gets_the_same_rows(fresh_database, demo_load):
    demo_engine, first_counts, _ = demo_load
    other, counts, _ = _fresh_demo(fresh_database)
    try:
        assert counts == first_counts
        assert _checksums(other) == _checksums(demo_engine)
    finally:
        other.dispose()


def test_every_demo_row_is_labelled_generated(demo_engine):
    for table in ("border_post", "marker", "branch_road", "donor", "campaign", "village"):
        assert _scalar(demo_engine, f"SELECT count(*) FROM {table} WHERE NOT is_generated") == 0


# --- markers ------------------------------------------------------------------------------


@pytest.mark.parametrize("code,low,high", [("VN-CN", 1800, 2200), ("VN-LA", 700, 900), ("VN-KH", 300, 400)])
def test_marker_counts_per_segment_are_realistic(demo_engine, code, low, high):
    n = _scalar(demo_engine, "SELECT count(*) FROM marker m JOIN border_segment s ON s.id = m.segment_id "
                        "WHERE s.code = :code", code=code)
    assert low <= n <= high


def test_markers_lie_on_their_own_segment(demo_engine):
    off_line = _scalar(demo_engine, """
        SELECT count(*) FROM marker m JOIN border_segment s ON s.id = m.segment_id
        WHERE NOT ST_DWithin(m.geom::geography, s.geom::geography, 100)""")
    assert off_line == 0
    # Own segment within 100 m, every other one farther: so the own one is the nearest.
    near_other = _scalar(demo_engine, """
        SELECT count(*) FROM marker m JOIN border_segment s ON s.id <> m.segment_id
        WHERE ST_DWithin(m.geom, s.geom, 0.002)  -- cheap planar pre-filter (0.002° > 100 m)
          AND ST_DWithin(m.geom::geography, s.geom::geography, 100)""")
    assert near_other == 0


def test_main_numbers_run_with_chainage(demo_engine):
    rows = _rows(demo_engine, """
        SELECT s.code, m.number, m.chainage_km FROM marker m JOIN border_segment s ON s.id = m.segment_id
        WHERE m.number ~ '^[0-9]+$' ORDER BY s.code, m.chainage_km""")
    by_segment = defaultdict(list)
    for code, number, _ in rows:
        by_segment[code].append(int(number))
    assert set(by_segment) == {"VN-CN", "VN-LA", "VN-KH"}
    for code, numbers in by_segment.items():
        assert numbers == list(range(1, len(numbers) + 1)), code
    assert len(by_segment["VN-CN"]) == 1378
    assert _scalar(demo_engine, "SELECT count(*) - count(DISTINCT (segment_id, number)) FROM marker") == 0
    kinds = {k for (k,) in _rows(demo_engine, "SELECT DISTINCT kind::text FROM marker")}
    assert kinds == {"main", "sub", "paired"}


def test_sub_markers_sit_between_their_main_markers(demo_engine):
    bad = _scalar(demo_engine, """
        SELECT count(*) FROM marker sub
        JOIN marker lo ON lo.segment_id = sub.segment_id AND lo.number = split_part(sub.number, '/', 1)
        JOIN marker hi ON hi.segment_id = sub.segment_id
                      AND hi.number = (split_part(sub.number, '/', 1)::int + 1)::text
        WHERE sub.kind = 'sub' AND NOT (lo.chainage_km < sub.chainage_km AND sub.chainage_km < hi.chainage_km)""")
    assert bad == 0


def test_marker_1033_is_in_trang_dinh_under_binh_nghi(demo_engine):
    row = _rows(demo_engine, """
        SELECT m.province, m.district, m.commune, p.name, p.code, ST_X(m.geom) lon, ST_Y(m.geom) lat,
               ST_Distance(m.geom::geography, p.geom::geography) AS to_post
        FROM marker m JOIN border_segment s ON s.id = m.segment_id JOIN border_post p ON p.id = m.post_id
        WHERE s.code = 'VN-CN' AND m.number = '1033'""")
    assert len(row) == 1
    r = row[0]
    assert (r.province, r.district, r.commune) == ("Lạng Sơn", "Tràng Định", "Đào Viên")
    assert r.name == "Đồn Biên phòng Bình Nghi"
    assert 106.3 <= r.lon <= 106.75 and 22.2 <= r.lat <= 22.6
    assert 1000 < r.to_post < 8000
    west, east = _rows(demo_engine, """
        SELECT max(m.chainage_km) FILTER (WHERE m.number ~ '^[0-9]+$' AND m.number::int < 1033),
               min(m.chainage_km) FILTER (WHERE m.number ~ '^[0-9]+$' AND m.number::int > 1033)
        FROM marker m JOIN border_segment s ON s.id = m.segment_id WHERE s.code = 'VN-CN'""")[0]
    at = _scalar(demo_engine, "SELECT chainage_km FROM marker m JOIN border_segment s ON s.id = m.segment_id "
                         "WHERE s.code = 'VN-CN' AND m.number = '1033'")
    assert west < at < east


def test_each_marker_answers_to_its_nearest_post_on_its_segment(demo_engine):
    # 50 m of slack: the generator measures in UTM 48N, the database on the spheroid.
    farther = _scalar(demo_engine, """
        SELECT count(*) FROM marker m JOIN border_post p ON p.id = m.post_id
        WHERE p.segment_id <> m.segment_id
           OR ST_Distance(m.geom::geography, p.geom::geography) > 50 + (
              SELECT min(ST_Distance(m.geom::geography, q.geom::geography))
              FROM border_post q WHERE q.segment_id = m.segment_id)""")
    assert farther == 0
    assert _scalar(demo_engine, "SELECT count(*) FROM marker WHERE post_id IS NULL") == 0


def test_access_is_concrete_exactly_where_a_finished_road_arrives(demo_engine):
    rows = _rows(demo_engine, """
        SELECT m.access::text, EXISTS (
            SELECT 1 FROM road_marker rm JOIN branch_road r ON r.id = rm.road_id
            WHERE rm.marker_id = m.id AND r.status IN ('completed', 'inaugurated')) AS finished
        FROM marker m""")
    assert rows and all((access == "concrete") == finished for access, finished in rows)
    assert {a for a, _ in rows} == {"none", "footpath", "earth", "concrete"}


# --- posts --------------------------------------------------------------------------------


def test_posts_every_15_to_30_km_inside_viet_nam(demo_engine, countries):
    for code, length_km, n in _rows(demo_engine, """
            SELECT s.code, s.length_km, count(p.id) FROM border_segment s
            LEFT JOIN border_post p ON p.segment_id = s.id GROUP BY s.code, s.length_km"""):
        assert float(length_km) / 30 <= n <= float(length_km) / 15, code
    outside = _scalar(demo_engine, """
        SELECT count(*) FROM border_post p
        WHERE NOT EXISTS (SELECT 1 FROM demo_countries c WHERE c.iso3 = 'VNM' AND ST_Within(p.geom, c.geom))""")
    assert outside == 0
    assert _scalar(demo_engine, """
        SELECT min(ST_Distance(p.geom::geography, s.geom::geography)) FROM border_post p
        JOIN border_segment s ON s.id = p.segment_id""") > 1000
    assert _scalar(demo_engine, "SELECT count(*) FROM border_post WHERE name = 'Đồn Biên phòng Cửa khẩu Quốc tế Lao Bảo' "
                           "AND province = 'Quảng Trị'") == 1


# --- roads --------------------------------------------------------------------------------


def test_every_status_is_present_and_fields_fit_it(demo_engine):
    rows = _rows(demo_engine, "SELECT status::text, progress_pct, completed_on, actual_cost, actual_start FROM branch_road")
    statuses = {r.status for r in rows}
    assert statuses == {"proposed", "surveyed", "funded", "under_construction", "completed",
                        "inaugurated", "suspended", "cancelled"}
    for r in rows:
        if r.status in ("completed", "inaugurated"):
            assert r.progress_pct == 100 and r.completed_on and r.actual_cost > 0
        elif r.status in ("proposed", "surveyed", "funded"):
            assert r.progress_pct == 0 and r.completed_on is None and r.actual_start is None
        elif r.status == "under_construction":
            assert 5 <= r.progress_pct <= 95 and r.actual_start


def test_roads_reach_their_markers_from_their_post(demo_engine):
    assert _scalar(demo_engine, """
        SELECT count(*) FROM branch_road r WHERE NOT EXISTS (SELECT 1 FROM road_marker rm WHERE rm.road_id = r.id)""") == 0
    assert _scalar(demo_engine, """
        SELECT count(*) FROM road_marker rm JOIN branch_road r ON r.id = rm.road_id JOIN marker m ON m.id = rm.marker_id
        WHERE NOT ST_DWithin(r.geom::geography, m.geom::geography, 30) OR m.post_id <> r.post_id
           OR m.province <> r.province""") == 0
    assert _scalar(demo_engine, "SELECT count(*) FROM branch_road WHERE NOT ST_IsSimple(geom) "
                           "OR length_m NOT BETWEEN 300 AND 8000") == 0
    crossing = _scalar(demo_engine, """
        SELECT count(*) FROM branch_road r JOIN border_segment s
          ON ST_Intersects(r.geom, s.geom) OR ST_Intersects(r.as_built_geom, s.geom)""")
    assert crossing == 0
    assert _scalar(demo_engine, "SELECT count(*) FROM branch_road WHERE code !~ '^DN-[A-Z]{2,3}-[0-9]{4}$' "
                           "OR name !~ '^Đường nhánh lên mốc '") == 0


def test_road_histories_follow_the_lifecycle(demo_engine):
    allowed = {
        None: {"proposed"}, "proposed": {"surveyed", "suspended", "cancelled"},
        "surveyed": {"funded", "suspended", "cancelled"}, "funded": {"under_construction", "suspended", "cancelled"},
        "under_construction": {"completed", "suspended", "cancelled"}, "completed": {"inaugurated"},
        "suspended": {"proposed", "surveyed", "funded", "under_construction", "cancelled"},
    }
    events = defaultdict(list)
    for road_id, frm, to, at, actor in _rows(demo_engine, """
            SELECT road_id, from_status::text, to_status::text, occurred_at, actor FROM road_event
            ORDER BY road_id, occurred_at, id"""):
        events[road_id].append((frm, to, at, actor))
    roads = dict(_rows(demo_engine, "SELECT id, status::text FROM branch_road"))
    assert set(events) == set(roads)
    for road_id, history in events.items():
        previous, last_at = None, None
        for frm, to, at, actor in history:
            assert frm == previous and to in allowed[frm], (road_id, history)
            assert last_at is None or at > last_at
            assert actor and at.date() <= REFERENCE_DATE
            previous, last_at = to, at
        assert previous == roads[road_id]


def test_inaugurated_roads_have_one_ceremony_on_their_inauguration_day(demo_engine):
    rows = _rows(demo_engine, """
        SELECT r.code, i.held_on, (SELECT e.occurred_at::date FROM road_event e
                                   WHERE e.road_id = r.id AND e.to_status = 'inaugurated') AS event_day,
               r.completed_on
        FROM branch_road r LEFT JOIN inauguration_road ir ON ir.road_id = r.id
        LEFT JOIN inauguration i ON i.id = ir.inauguration_id WHERE r.status = 'inaugurated'""")
    assert len(rows) >= 20
    for code, held_on, event_day, completed_on in rows:
        assert held_on is not None and held_on == event_day and completed_on <= held_on, code
    assert _scalar(demo_engine, """
        SELECT count(*) FROM inauguration_road ir JOIN branch_road r ON r.id = ir.road_id
        WHERE r.status <> 'inaugurated'""") == 0
    assert _scalar(demo_engine, """
        SELECT count(*) FROM inauguration i WHERE NOT EXISTS (SELECT 1 FROM inauguration_road ir
        WHERE ir.inauguration_id = i.id) OR NOT EXISTS (SELECT 1 FROM inauguration_donor d
        WHERE d.inauguration_id = i.id)""") == 0


def test_the_four_dao_vien_roads(demo_engine):
    roads = _rows(demo_engine, """
        SELECT r.id, r.code, r.status::text, r.commune, r.district, r.province, r.estimated_cost,
               p.name AS post, i.title, i.held_on, i.place,
               array(SELECT m.number FROM road_marker rm JOIN marker m ON m.id = rm.marker_id
                     WHERE rm.road_id = r.id) AS numbers
        FROM branch_road r JOIN border_post p ON p.id = r.post_id
        JOIN inauguration_road ir ON ir.road_id = r.id JOIN inauguration i ON i.id = ir.inauguration_id
        WHERE i.held_on = '2022-11-16' AND i.commune = 'Đào Viên'""")
    assert len(roads) == 4
    assert {r.title for r in roads} == {"Lễ khánh thành 04 đường nhánh kiểm tra cột mốc quốc giới"}
    assert {(r.status, r.commune, r.district, r.province, r.post) for r in roads} == {
        ("inaugurated", "Đào Viên", "Tràng Định", "Lạng Sơn", "Đồn Biên phòng Bình Nghi")}
    assert any("1033" in r.numbers for r in roads)
    for r in roads:
        money = dict(_rows(demo_engine, """
            SELECT t.kind::text, sum(t.amount) FROM funding_tx t
            JOIN donor_member dm ON dm.member_id = t.donor_id
            JOIN donor g ON g.id = dm.group_id AND g.code = 'CTD-THTH-LS'
            JOIN campaign c ON c.id = t.campaign_id AND c.code = '39/KH-CTĐ'
            WHERE t.road_id = :road GROUP BY t.kind""", road=r.id))
        assert money["commitment"] >= r.estimated_cost
        assert money["expenditure"] <= money["disbursement"] <= money["commitment"]
        donors = _scalar(demo_engine, "SELECT count(DISTINCT donor_id) FROM funding_tx WHERE road_id = :road", road=r.id)
        assert donors == 7
        events = [e for (e,) in _rows(demo_engine, "SELECT to_status::text FROM road_event WHERE road_id = :road "
                                              "ORDER BY occurred_at", road=r.id)]
        assert events == ["proposed", "surveyed", "funded", "under_construction", "completed", "inaugurated"]
    credited = {n for (n,) in _rows(demo_engine, """
        SELECT d.name FROM inauguration_donor x JOIN donor d ON d.id = x.donor_id
        JOIN inauguration i ON i.id = x.inauguration_id WHERE i.held_on = '2022-11-16'""")}
    assert "Cụm thi đua các cơ quan tham mưu tổng hợp tỉnh Lạng Sơn" in credited


def test_the_cluster_and_its_plan(demo_engine):
    members = dict(_rows(demo_engine, """
        SELECT m.name, dm.role FROM donor g JOIN donor_member dm ON dm.group_id = g.id
        JOIN donor m ON m.id = dm.member_id
        WHERE g.code = 'CTD-THTH-LS' AND g.is_group AND g.kind = 'cluster' AND m.kind = 'agency'"""))
    assert len(members) == 7
    assert members["Sở Kế hoạch và Đầu tư tỉnh Lạng Sơn"] == "Cụm trưởng"
    assert members["Sở Ngoại vụ tỉnh Lạng Sơn"] == "Cụm phó"
    plan = _rows(demo_engine, """SELECT c.plan_date, c.province, d.code FROM campaign c
                            JOIN donor d ON d.id = c.organiser_id WHERE c.code = '39/KH-CTĐ'""")
    assert plan == [(date(2022, 2, 18), "Lạng Sơn", "CTD-THTH-LS")]


# --- money --------------------------------------------------------------------------------


def test_money_adds_up_per_road_and_donor(demo_engine):
    rows = _rows(demo_engine, """
        SELECT r.code, r.status::text, r.estimated_cost, r.actual_cost,
               EXISTS (SELECT 1 FROM road_event e WHERE e.road_id = r.id AND e.to_status = 'funded') AS was_funded,
               coalesce(sum(t.amount) FILTER (WHERE t.kind = 'commitment'), 0) AS committed,
               coalesce(sum(t.amount) FILTER (WHERE t.kind = 'disbursement'), 0) AS disbursed,
               coalesce(sum(t.amount) FILTER (WHERE t.kind = 'expenditure'), 0) AS spent
        FROM branch_road r LEFT JOIN funding_tx t ON t.road_id = r.id GROUP BY r.id""")
    for r in rows:
        assert r.spent <= r.disbursed <= r.committed, r.code
        if r.was_funded:
            assert r.committed >= r.estimated_cost, r.code
        else:
            assert r.committed == r.disbursed == r.spent == 0, r.code
        if r.status in ("completed", "inaugurated"):
            assert r.actual_cost == r.spent > 0, r.code
        assert r.estimated_cost > 0 and r.estimated_cost % 1000 == 0
    assert _scalar(demo_engine, """
        SELECT count(*) FROM (
            SELECT road_id, donor_id,
                   sum(amount) FILTER (WHERE kind = 'commitment') c,
                   sum(amount) FILTER (WHERE kind = 'disbursement') d,
                   sum(amount) FILTER (WHERE kind = 'expenditure') x
            FROM funding_tx WHERE road_id IS NOT NULL GROUP BY 1, 2) s
        WHERE coalesce(x, 0) > coalesce(d, 0) OR coalesce(d, 0) > coalesce(c, 0)""") == 0
    assert _scalar(demo_engine, "SELECT count(*) FROM funding_tx WHERE amount % 1000000 <> 0 "
                           "OR tx_date > :ref", ref=REFERENCE_DATE) == 0
    assert _scalar(demo_engine, "SELECT count(*) FROM funding_tx WHERE campaign_id IS NOT NULL") > 20


def test_money_moves_after_the_decisions_it_follows(demo_engine):
    late = _scalar(demo_engine, """
        SELECT count(*) FROM funding_tx t JOIN road_event e ON e.road_id = t.road_id AND e.to_status = 'funded'
        WHERE (t.kind = 'commitment' AND t.tx_date > e.occurred_at::date)
           OR (t.kind IN ('disbursement', 'expenditure') AND t.tx_date < e.occurred_at::date)""")
    assert late == 0


# --- villages -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def countries(demo_engine):
    """The neighbours' outlines from data/borders, as a table next to the demo data."""
    frame = gpd.read_file(COUNTRIES_FILE)
    with demo_engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS demo_countries (iso3 text, geom geometry(MultiPolygon, 4326))"))
        conn.execute(text("TRUNCATE demo_countries"))
        conn.execute(text("INSERT INTO demo_countries VALUES (:iso3, ST_Multi(ST_GeomFromText(:wkt, 4326)))"),
                     [{"iso3": r.iso3, "wkt": r.geometry.wkt} for r in frame.itertuples()])
    yield
    with demo_engine.begin() as conn:
        conn.execute(text("DROP TABLE demo_countries"))


def test_villages_lie_on_their_countrys_side(demo_engine, countries):
    rows = _rows(demo_engine, """
        SELECT v.code, v.country, array(SELECT c.iso3 FROM demo_countries c WHERE ST_Within(v.geom, c.geom)) AS inside
        FROM village v""")
    assert len({r.country for r in rows}) == 4
    for code, country, inside in rows:
        assert inside == [country], code
    far = _scalar(demo_engine, """
        SELECT count(*) FROM village v WHERE v.is_generated AND v.code ~ '^V-[A-Z]{3}-[0-9]+$'
        AND NOT ST_DWithin(v.geom::geography, (SELECT ST_Collect(geom) FROM border_segment)::geography, 6500)""")
    assert far == 0


def test_pairs_face_each_other_and_meet_each_quarter(demo_engine):
    pairs = _rows(demo_engine, """
        SELECT p.id, v.country AS a, f.country AS b, ST_Distance(v.geom::geography, f.geom::geography) AS apart,
               (SELECT max(m.year * 10 + m.quarter) FROM pair_meeting m WHERE m.pair_id = p.id) AS last
        FROM village_pair p JOIN village v ON v.id = p.vn_village_id JOIN village f ON f.id = p.foreign_village_id""")
    assert 25 <= len(pairs) <= 60
    assert all(p.a == "VNM" and p.b != "VNM" and p.apart < 12000 for p in pairs)
    overdue = [p for p in pairs if (p.last or 0) < 2026 * 10 + 3]
    assert 1 <= len(overdue) < len(pairs) / 2
    assert _scalar(demo_engine, "SELECT count(*) FROM pair_meeting WHERE held_on > :ref", ref=REFERENCE_DATE) == 0
    assert _scalar(demo_engine, "SELECT count(*) FROM village_pair WHERE post_id IS NULL") == 0


def test_duy_tan_and_ban_phuong(demo_engine):
    rows = _rows(demo_engine, """
        SELECT v.country, v.admin1, v.admin2, v.admin3, f.country AS f_country, f.admin1 AS f_admin1,
               f.admin2 AS f_admin2, po.name AS post, m.held_on, m.year, m.quarter, m.place, m.topics
        FROM village_pair p JOIN village v ON v.id = p.vn_village_id JOIN village f ON f.id = p.foreign_village_id
        JOIN border_post po ON po.id = p.post_id JOIN pair_meeting m ON m.pair_id = p.id
        WHERE v.name = 'Khóm Duy Tân' AND f.name = 'Bản Phường'""")
    assert len(rows) == 1
    r = rows[0]
    assert (r.country, r.admin1, r.admin2, r.admin3) == ("VNM", "Quảng Trị", "Hướng Hóa", "Lao Bảo")
    assert (r.f_country, r.f_admin1, r.f_admin2) == ("LAO", "Savannakhet", "Sê Pôn")
    assert r.post == "Đồn Biên phòng Cửa khẩu Quốc tế Lao Bảo"
    assert (r.held_on, r.year, r.quarter, r.place) == (date(2023, 7, 31), 2023, 2, "Thị trấn Lao Bảo")
    assert "tự quản đường biên, cột mốc" in r.topics


# --- geometry -----------------------------------------------------------------------------


def test_all_geometries_are_valid(demo_engine):
    columns = _rows(demo_engine, "SELECT f_table_name, f_geometry_column FROM geometry_columns "
                            "WHERE f_table_schema = 'public' AND f_table_name <> 'demo_countries'")
    assert len(columns) >= 8
    for table, column in columns:
        bad = _scalar(demo_engine, f"SELECT count(*) FROM {table} WHERE {column} IS NOT NULL "
                              f"AND NOT (ST_IsValid({column}) AND ST_SRID({column}) = 4326)")
        assert bad == 0, f"{table}.{column}"
