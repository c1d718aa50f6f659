"""Twinned village pairs and their quarterly meetings: rules, refusals, overdue flag.

Runs on its own database with a few villages around Lao Bảo (Quảng Trị) and across the
border in Savannakhet, so it does not depend on the demo dataset.
"""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from support.api_client import ApiClient
from sqlalchemy import create_engine, text

from geo_api import db
from geo_api.settings import configure, get_settings

N = 12  # villages on each side near Lao Bảo / Dansavanh


@pytest.fixture(scope="module")
def env(fresh_database):
    url = fresh_database()
    db.upgrade(url)
    eng = create_engine(url)
    with eng.begin() as conn:
        conn.execute(text("""
            INSERT INTO border_segment (code, neighbour_iso3, name_vi, name_en, geom) VALUES
            ('VN-LA', 'LAO', 'Việt Nam – Lào', 'Viet Nam – Laos',
             'SRID=4326;MULTILINESTRING((106.55 16.55, 106.57 16.70))');
            INSERT INTO border_post (code, name, province, geom) VALUES
            ('LB', 'Đồn Biên phòng Cửa khẩu Quốc tế Lao Bảo', 'Quảng Trị', 'SRID=4326;POINT(106.59 16.62)'),
            ('HT', 'Đồn Biên phòng Hướng Lập', 'Quảng Trị', 'SRID=4326;POINT(106.60 16.80)');
        """))
        for i in range(N):
            conn.execute(text("""
                INSERT INTO village (code, name, country, admin1, admin2, geom) VALUES
                (:vc, :vn, 'VNM', 'Quảng Trị', 'Hướng Hóa', ST_SetSRID(ST_MakePoint(:vx, 16.62), 4326)),
                (:lc, :ln, 'LAO', 'Savannakhet', 'Sê Pôn', ST_SetSRID(ST_MakePoint(:lx, 16.63), 4326))
            """), {"vc": f"VN{i}", "vn": "Khóm Duy Tân" if i == 0 else f"Khóm {i}",
                   "vx": 106.585 + 0.001 * i, "lc": f"LA{i}",
                   "ln": "Bản Phường" if i == 0 else f"Bản {i}", "lx": 106.550 + 0.001 * i})
        conn.execute(text("""
            INSERT INTO village (code, name, country, admin1, geom) VALUES
            ('LAFAR', 'Bản Xa', 'LAO', 'Savannakhet', 'SRID=4326;POINT(106.10 16.63)'),
            ('CN1', 'Cun Village', 'CHN', 'Guangxi', 'SRID=4326;POINT(106.75 22.40)'),
            ('VNFAR', 'Bản Lạng Sơn', 'VNM', 'Lạng Sơn', 'SRID=4326;POINT(106.70 22.35)')
        """))
        ids = dict(conn.execute(text("SELECT code, id FROM village")).all())
        posts = dict(conn.execute(text("SELECT code, id FROM border_post")).all())
    from geo_api.main import create_app

    with ApiClient(create_app(url), eng, role="planner") as client:
        yield {"client": client, "engine": eng, "villages": ids, "posts": posts,
               "couples": itertools.product(range(1, N), range(1, N))}
    eng.dispose()


@pytest.fixture
def client(env):
    return env["client"]


def snapshot(env) -> tuple:
    """Everything a village-pair write may touch, as checksums."""
    with env["engine"].connect() as conn:
        return conn.execute(text("""
            SELECT (SELECT md5(COALESCE(string_agg(to_jsonb(p)::text, ',' ORDER BY id), ''))
                    FROM village_pair p),
                   (SELECT md5(COALESCE(string_agg(to_jsonb(m)::text, ',' ORDER BY id), ''))
                    FROM pair_meeting m),
                   (SELECT count(*) FROM audit_log)
        """)).one()


def new_pair(env, **extra) -> dict:
    """A fresh pair of two villages not yet twinned."""
    vn, la = next(env["couples"])
    body = {"vn_village_id": env["villages"][f"VN{vn}"], "foreign_village_id": env["villages"][f"LA{la}"],
            **extra}
    r = env["client"].post("/api/village-pairs", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def meeting(env, pair_id: int, **body):
    return env["client"].post(f"/api/village-pairs/{pair_id}/meetings", json=body)


def refused(env, method: str, url: str, status: int, body=None, headers=None, reason: str = "") -> dict:
    """The request is refused with `status` and a reason, and the data is unchanged."""
    before = snapshot(env)
    r = env["client"].request(method, url, json=body, headers=headers or {})
    assert r.status_code == status, r.text
    payload = r.json()
    message = payload["message"]
    assert reason.lower() in message.lower(), message
    assert snapshot(env) == before
    return payload


def last_completed_quarter(today: dt.date) -> tuple[int, int, dt.date]:
    q = (today.month - 1) // 3 + 1
    year, quarter = (today.year, q - 1) if q > 1 else (today.year - 1, 4)
    start_of_this = dt.date(today.year, 3 * (q - 1) + 1, 1)
    return year, quarter, start_of_this - dt.timedelta(days=1)


# --- pairs ----------------------------------------------------------------------------------

def test_duy_tan_and_ban_phuong_are_twinned(env, client):
    ids = env["villages"]
    r = client.post("/api/village-pairs", json={
        "vn_village_id": ids["VN0"], "foreign_village_id": ids["LA0"], "post_id": env["posts"]["LB"],
        "twinned_on": "2019-05-10", "notes": "Khóm Duy Tân (Lao Bảo) – Bản Phường (Sê Pôn)",
    }, headers=client.as_("lao-bao-post", role="planner"))
    assert r.status_code == 201, r.text
    assert r.headers["content-type"].startswith("application/geo+json")
    assert r.headers["etag"] == '"1"'
    f = r.json()
    assert r.headers["location"] == f"/api/village-pairs/{f['id']}"
    p = f["properties"]
    assert (p["vn_village"], p["foreign_village"], p["foreign_country"]) == ("Khóm Duy Tân", "Bản Phường", "LAO")
    assert p["post_name"].endswith("Lao Bảo") and p["twinned_on"] == "2019-05-10"
    assert p["meetings"] == 0 and p["last_meeting_quarter"] is None and p["overdue"] is True
    assert f["geometry"]["type"] == "LineString"
    assert client.get(f"/api/village-pairs/{f['id']}").json() == f
    with env["engine"].connect() as conn:
        actor = conn.execute(text("SELECT actor FROM audit_log WHERE target_table = 'village_pair' "
                                  "AND target_id = :id AND action = 'create'"), {"id": str(f["id"])}).scalar()
    assert actor == "lao-bao-post"


@pytest.mark.parametrize("vn,foreign,extra,reason", [
    ("LA1", "VN1", {}, "swapped"),
    ("VN1", "VN2", {}, "must be a village in CHN, LAO, KHM"),
    ("VN1", "LAFAR", {}, "km apart"),
    ("VN1", "CN1", {}, "km apart"),
    ("VN1", None, {}, "does not exist"),
    ("VN1", "LA1", {"post_id": 999999}, "post 999999 does not exist"),
    ("VN1", "LA1", {"twinned_on": "2999-01-01"}, "in the future"),
    ("VN1", "LA1", {"meetings": 3}, "extra"),
    ("VN1", "LA1", {"twinned_on": "31/07/2023"}, "twinned_on"),
])
def test_bad_pairs_are_refused_and_change_nothing(env, vn, foreign, extra, reason):
    ids = env["villages"]
    body = {"vn_village_id": ids[vn], "foreign_village_id": ids[foreign] if foreign else 999999, **extra}
    refused(env, "POST", "/api/village-pairs", 422, body, reason=reason)


def test_distance_refusal_states_the_distance(env):
    ids = env["villages"]
    payload = refused(env, "POST", "/api/village-pairs", 422,
                      {"vn_village_id": ids["VN1"], "foreign_village_id": ids["LAFAR"]}, reason="at most 30 km")
    assert 45 < payload["detail"]["distance_km"] < 55


def test_the_pair_distance_is_configurable(env, monkeypatch):
    ids = env["villages"]
    monkeypatch.setenv("TRACKER_PAIR_MAX_DISTANCE_KM", "60")
    configure()
    try:
        r = env["client"].post("/api/village-pairs", json={"vn_village_id": ids["VN11"],
                                                           "foreign_village_id": ids["LAFAR"]})
        assert r.status_code == 201, r.text
    finally:
        monkeypatch.undo()
        configure()
    assert get_settings().villages.pair_max_distance_km == 30


def test_the_same_pair_twice_is_a_conflict(env):
    pair = new_pair(env)
    p = pair["properties"]
    refused(env, "POST", "/api/village-pairs", 409,
            {"vn_village_id": p["vn_village_id"], "foreign_village_id": p["foreign_village_id"]},
            reason=f"already twinned (village pair {pair['id']})")


def test_patch_pair_changes_only_what_is_sent_and_bumps_the_version(env, client):
    pair = new_pair(env, notes="first")
    r = client.patch(f"/api/village-pairs/{pair['id']}", json={"post_id": env["posts"]["HT"]},
                     headers={"If-Match": '"1"'})
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == '"2"'
    p = r.json()["properties"]
    assert p["post_name"] == "Đồn Biên phòng Hướng Lập"
    with env["engine"].connect() as conn:
        notes = conn.execute(text("SELECT notes FROM village_pair WHERE id = :id"), {"id": pair["id"]}).scalar()
    assert notes == "first"


@pytest.mark.parametrize("body,headers,status,reason", [
    ({"notes": "x"}, {"If-Match": '"7"'}, 412, "version"),
    ({"post_id": 424242}, {}, 422, "post 424242 does not exist"),
    ({"vn_village_id": 1}, {}, 422, "extra"),
    ({"twinned_on": "2999-12-31"}, {}, 422, "in the future"),
    ({"twinned_on": "2023-09-01"}, {}, 422, "after the pair's first meeting"),
    ({"notes": "x"}, {"If-Match": "yesterday"}, 422, "If-Match"),
])
def test_bad_pair_updates_are_refused_and_change_nothing(env, body, headers, status, reason):
    pair = new_pair(env)
    assert meeting(env, pair["id"], held_on="2023-07-31").status_code == 201
    refused(env, "PATCH", f"/api/village-pairs/{pair['id']}", status, body, headers, reason)


def test_patch_or_delete_an_unknown_pair_is_404(env):
    refused(env, "PATCH", "/api/village-pairs/999999", 404, {"notes": "x"}, reason="not found")
    refused(env, "DELETE", "/api/village-pairs/999999", 404, reason="not found")


def test_a_pair_with_meetings_is_kept_and_one_without_is_deleted(env, client):
    kept = new_pair(env)
    assert meeting(env, kept["id"], held_on="2023-07-31", year=2023, quarter=2).status_code == 201
    refused(env, "DELETE", f"/api/village-pairs/{kept['id']}", 409, reason="has 1 meeting(s)")
    gone = new_pair(env)
    refused(env, "DELETE", f"/api/village-pairs/{gone['id']}", 412, headers={"If-Match": '"5"'},
            reason="version")
    assert client.delete(f"/api/village-pairs/{gone['id']}").status_code == 204
    assert client.get(f"/api/village-pairs/{gone['id']}").status_code == 404


# --- meetings -------------------------------------------------------------------------------

def test_the_q2_2023_meeting_held_on_31_july_is_for_q2(env, client):
    pair = new_pair(env, twinned_on="2019-05-10")
    r = meeting(env, pair["id"], held_on="2023-07-31", year=2023, quarter=2, place="Lao Bảo",
                attendance=60, topics=["joint production", "culture and sport exchanges",
                                       "self-management of the border line and markers"],
                agreements="keep patrolling the markers together")
    assert r.status_code == 201, r.text
    m = r.json()
    assert (m["year"], m["quarter"], m["held_on"]) == (2023, 2, "2023-07-31")
    assert m["topics"][2] == "self-management of the border line and markers"
    assert r.headers["location"] == f"/api/meetings/{m['id']}"
    assert client.get(f"/api/meetings/{m['id']}").json() == m
    p = client.get(f"/api/village-pairs/{pair['id']}").json()["properties"]
    assert (p["meetings"], p["last_meeting_on"], p["last_meeting_quarter"]) == (1, "2023-07-31", "2023-Q2")


@pytest.mark.parametrize("held_on,year,quarter,expected", [
    ("2023-11-10", None, None, (2023, 4)),
    ("2023-07-31", 2023, 3, (2023, 3)),
    ("2024-01-05", 2023, 4, (2024 - 1, 4)),  # across the new year
    ("2024-02-29", None, None, (2024, 1)),
])
def test_the_quarter_comes_from_the_date_or_may_be_the_previous_one(env, held_on, year, quarter, expected):
    pair = new_pair(env)
    body = {"held_on": held_on} | ({"year": year, "quarter": quarter} if year else {})
    r = meeting(env, pair["id"], **body)
    assert r.status_code == 201, r.text
    assert (r.json()["year"], r.json()["quarter"]) == expected


@pytest.mark.parametrize("body,status,reason", [
    ({"held_on": "2023-07-31", "year": 2023, "quarter": 1}, 422, "can be for 2023-Q3 or"),
    ({"held_on": "2023-07-31", "year": 2023, "quarter": 4}, 422, "not 2023-Q4"),
    ({"held_on": "2024-01-05", "year": 2024, "quarter": 4}, 422, "2023-Q4"),
    ({"held_on": "2023-07-31", "year": 2023}, 422, "both year and quarter"),
    ({"held_on": "2999-01-01"}, 422, "in the future"),
    ({"held_on": "2019-01-01"}, 422, "before the pair was twinned"),
    ({"held_on": "2023-07-31", "quarter": 5, "year": 2023}, 422, "quarter"),
    ({"held_on": "2023-07-31", "attendance": -1}, 422, "attendance"),
    ({"held_on": "2023-07-31", "topics": [""]}, 422, "topics"),
    ({"held_on": "2023-06-30", "year": 2023, "quarter": 2}, 409, "already has its 2023-Q2 meeting"),
    ({"held_on": "2023-05-02"}, 409, "one meeting per quarter"),
    ({}, 422, "held_on"),
])
def test_bad_meetings_are_refused_and_change_nothing(env, body, status, reason):
    pair = new_pair(env, twinned_on="2020-03-01")
    assert meeting(env, pair["id"], held_on="2023-07-31", year=2023, quarter=2).status_code == 201
    refused(env, "POST", f"/api/village-pairs/{pair['id']}/meetings", status, body, reason=reason)


def test_a_meeting_for_an_unknown_pair_is_404(env):
    refused(env, "POST", "/api/village-pairs/999999/meetings", 404, {"held_on": "2023-07-31"},
            reason="village pair 999999 not found")


def test_patch_meeting(env, client):
    pair = new_pair(env)
    m = meeting(env, pair["id"], held_on="2023-07-31", year=2023, quarter=2).json()
    r = client.patch(f"/api/meetings/{m['id']}", json={"place": "Nhà văn hóa khóm", "topics": ["sport"]})
    assert r.status_code == 200, r.text
    assert r.json()["place"] == "Nhà văn hóa khóm" and r.json()["topics"] == ["sport"]
    assert (r.json()["year"], r.json()["quarter"]) == (2023, 2)
    # A new date that still fits the quarter keeps it; giving both moves it.
    r = client.patch(f"/api/meetings/{m['id']}", json={"held_on": "2023-06-20"})
    assert (r.json()["held_on"], r.json()["quarter"]) == ("2023-06-20", 2)
    r = client.patch(f"/api/meetings/{m['id']}", json={"held_on": "2023-08-01", "year": 2023, "quarter": 3})
    assert r.status_code == 200 and r.json()["quarter"] == 3


@pytest.mark.parametrize("body,status,reason", [
    ({"held_on": "2024-01-10"}, 422, "give year and quarter too"),
    ({"year": 2023, "quarter": 1}, 422, "not 2023-Q1"),
    ({"held_on": "2023-04-20", "year": 2023, "quarter": 2}, 409, "already has its 2023-Q2 meeting"),
    ({"held_on": None}, 422, "cannot be cleared"),
    ({"quarter": 3}, 422, "both year and quarter"),
    ({"held_on": "2099-01-01", "year": 2099, "quarter": 1}, 422, "in the future"),
])
def test_bad_meeting_updates_are_refused_and_change_nothing(env, body, status, reason):
    pair = new_pair(env)
    assert meeting(env, pair["id"], held_on="2023-05-10").status_code == 201
    m = meeting(env, pair["id"], held_on="2023-07-31", year=2023, quarter=3).json()
    refused(env, "PATCH", f"/api/meetings/{m['id']}", status, body, reason=reason)


def test_delete_meeting(env, client):
    pair = new_pair(env)
    m = meeting(env, pair["id"], held_on="2023-07-31").json()
    refused(env, "PATCH", "/api/meetings/999999", 404, {"place": "x"}, reason="not found")
    refused(env, "DELETE", "/api/meetings/999999", 404, reason="not found")
    assert client.delete(f"/api/meetings/{m['id']}").status_code == 204
    assert client.get(f"/api/meetings/{m['id']}").status_code == 404


def test_a_meeting_with_attachments_is_not_deleted(env):
    pair = new_pair(env)
    m = meeting(env, pair["id"], held_on="2023-07-31").json()
    sha = "b" * 64
    with env["engine"].begin() as conn:
        conn.execute(text(
            "INSERT INTO attachment (meeting_id, kind, filename, content_type, size_bytes, sha256, "
            "storage_path, actor) VALUES (:m, 'photo', 'giao-ban.jpg', 'image/jpeg', 10, :s, :p, 't')"
        ), {"m": m["id"], "s": sha, "p": f"bb/bb/{sha}"})
    refused(env, "DELETE", f"/api/meetings/{m['id']}", 409, reason="has 1 attachment(s)")


# --- overdue --------------------------------------------------------------------------------

def overdue_ids(env, as_of: str) -> tuple[dict, set[int]]:
    r = env["client"].get("/api/reports/village-pairs/overdue", params={"as_of": as_of})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == len(body["items"])
    return body, {i["id"] for i in body["items"]}


def test_overdue_is_relative_to_the_last_completed_quarter(env):
    met_q2 = new_pair(env, twinned_on="2020-01-01")
    assert meeting(env, met_q2["id"], held_on="2023-07-31", year=2023, quarter=2).status_code == 201
    twinned_late = new_pair(env, twinned_on="2023-05-15")
    body, ids = overdue_ids(env, "2023-08-15")
    assert body["quarter"] == "2023-Q2" and body["as_of"] == "2023-08-15"
    assert met_q2["id"] not in ids          # met for Q2 (on 31/07, in Q3 by date)
    assert twinned_late["id"] not in ids    # twinned during Q2: not expected to meet for it
    body, ids = overdue_ids(env, "2023-10-01")
    assert body["quarter"] == "2023-Q3"
    assert {met_q2["id"], twinned_late["id"]} <= ids
    item = next(i for i in body["items"] if i["id"] == met_q2["id"])
    assert (item["last_meeting_on"], item["last_meeting_quarter"]) == ("2023-07-31", "2023-Q2")
    _, ids = overdue_ids(env, "2024-01-01")  # Q4 of 2023 is the last completed quarter
    assert met_q2["id"] in ids


def test_overdue_report_defaults_to_today_and_checks_its_parameter(env, client):
    year, quarter, _ = last_completed_quarter(dt.date.today())
    body = client.get("/api/reports/village-pairs/overdue").json()
    assert body["as_of"] == dt.date.today().isoformat() and body["quarter"] == f"{year}-Q{quarter}"
    r = client.get("/api/reports/village-pairs/overdue", params={"as_of": "yesterday"})
    assert r.status_code == 422


def test_the_layer_flags_overdue_pairs_and_filters_on_it(env, client):
    year, quarter, last_day = last_completed_quarter(dt.date.today())
    on_time = new_pair(env)
    assert meeting(env, on_time["id"], held_on=last_day.isoformat()).status_code == 201
    late = new_pair(env)
    assert meeting(env, late["id"], held_on="2022-03-01").status_code == 201
    props = client.get(f"/api/village-pairs/{on_time['id']}").json()["properties"]
    assert props["overdue"] is False and props["last_meeting_quarter"] == f"{year}-Q{quarter}"
    props = client.get(f"/api/village-pairs/{late['id']}").json()["properties"]
    assert props["overdue"] is True and props["last_meeting_quarter"] == "2022-Q1"
    flagged = {f["id"] for f in client.get("/api/village-pairs", params={"overdue": "true", "limit": 1000})
               .json()["features"]}
    fine = {f["id"] for f in client.get("/api/village-pairs", params={"overdue": "false", "limit": 1000})
            .json()["features"]}
    assert late["id"] in flagged and on_time["id"] in fine and not flagged & fine
    _, report = overdue_ids(env, dt.date.today().isoformat())
    assert report == flagged
    assert client.get("/api/village-pairs", params={"overdue": "maybe"}).status_code == 422
