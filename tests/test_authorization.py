"""Authorization on every route, per role: who may call it, whose rows, which fields.

The route matrix is generated from the app's routes: a write route without a role guard,
or one that lets a viewer write, fails here. Every refused call is checked to change nothing.
"""

from __future__ import annotations

import re

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from support.api_client import account_headers
from geo_api import db
from geo_api.auth import ROLES

ANY = frozenset(ROLES)
ADMIN = frozenset({"admin"})
PLANNERS = frozenset({"planner", "admin"})
POSTS = frozenset({"post", "planner", "admin"})
FUNDERS = frozenset({"donor", "post", "planner", "admin"})

# The policy of this project's own routes (other routes only need some guard).
EXPECTED = {
    **{("POST", f"/api/{n}"): PLANNERS for n in ("markers", "posts", "villages", "donors", "campaigns",
                                                 "inaugurations", "village-pairs")},
    **{(m, f"/api/{n}/{{item_id}}"): PLANNERS for m in ("PATCH", "DELETE")
       for n in ("posts", "villages", "donors", "campaigns", "village-pairs")},
    ("PATCH", "/api/markers/{item_id}"): POSTS, ("DELETE", "/api/markers/{item_id}"): PLANNERS,
    ("POST", "/api/roads"): POSTS, ("PATCH", "/api/roads/{item_id}"): POSTS,
    ("DELETE", "/api/roads/{item_id}"): PLANNERS,
    ("POST", "/api/donors/{item_id}/members"): PLANNERS,
    ("DELETE", "/api/donors/{item_id}/members/{member_id}"): PLANNERS,
    ("POST", "/api/roads/{road_id}/transitions"): POSTS, ("POST", "/api/roads/{road_id}/progress"): POSTS,
    ("POST", "/api/roads/{road_id}/as-built-from-gpx"): POSTS,
    ("POST", "/api/funding"): FUNDERS,
    ("POST", "/api/attachments"): POSTS, ("DELETE", "/api/attachments/{attachment_id}"): POSTS,
    ("POST", "/api/village-pairs/{pair_id}/meetings"): POSTS,
    ("PATCH", "/api/meetings/{item_id}"): POSTS, ("DELETE", "/api/meetings/{item_id}"): POSTS,
    ("POST", "/api/sync"): POSTS,
    ("POST", "/api/auth/logout"): ANY, ("GET", "/api/auth/me"): ANY,
    ("GET", "/api/accounts"): ADMIN, ("POST", "/api/accounts"): ADMIN,
    ("PATCH", "/api/accounts/{account_id}"): ADMIN,
    ("GET", "/api/audit-log"): PLANNERS,
}
PUBLIC_WRITES = {("POST", "/api/auth/login")}
ANY_ACCOUNT_WRITES = {("POST", "/api/auth/logout")}
TABLES = ("border_post", "marker", "branch_road", "road_marker", "road_event", "donor", "donor_member",
          "campaign", "funding_tx", "inauguration", "village", "village_pair", "pair_meeting", "attachment",
          "audit_log", "account")


def _roles(dependant) -> list[frozenset[str]]:
    found = []
    for dep in dependant.dependencies:
        if hasattr(dep.call, "roles"):
            found.append(frozenset(dep.call.roles))
        found += _roles(dep)
    return found


def route_policies(app) -> dict[tuple[str, str], frozenset[str] | None]:
    """(method, path) -> the roles the route lets through (None: no guard at all)."""
    out = {}
    for route in iter_route_contexts(app.routes):
        dependant = getattr(route, "dependant", None)
        if dependant is None or not route.methods:
            continue
        guards = _roles(dependant)
        allowed = frozenset.intersection(*guards) if guards else None
        for method in route.methods - {"HEAD", "OPTIONS"}:
            out[(method, route.path)] = allowed
    return out


@pytest.fixture(scope="module")
def env(fresh_database):
    from geo_api.main import create_app

    url = fresh_database()
    db.upgrade(url)
    eng = create_engine(url)
    with eng.begin() as conn:
        conn.execute(text("""
            INSERT INTO border_segment (code, neighbour_iso3, name_vi, name_en, geom) VALUES
            ('VN-CN', 'CHN', 'Việt Nam – Trung Quốc', 'Viet Nam – China',
             'SRID=4326;MULTILINESTRING((106.50 22.46, 106.60 22.46))');
            INSERT INTO border_post (code, name, province, geom) VALUES
            ('A', 'Đồn Biên phòng Bình Nghi', 'Lạng Sơn', 'SRID=4326;POINT(106.52 22.45)'),
            ('B', 'Đồn Biên phòng Na Sầm', 'Lạng Sơn', 'SRID=4326;POINT(106.56 22.45)');
            INSERT INTO marker (segment_id, number, geom, province, post_id)
            SELECT s.id, v.n, ST_SetSRID(ST_MakePoint(v.x, 22.46), 4326), 'Lạng Sơn', p.id
            FROM border_segment s, (VALUES ('1033', 106.53, 'A'), ('1040', 106.57, 'B')) AS v(n, x, post)
            JOIN border_post p ON p.code = v.post;
            INSERT INTO branch_road (code, name, post_id, province, status, geom, estimated_cost)
            SELECT v.c, 'Đường nhánh ' || v.c, p.id, 'Lạng Sơn', CAST(v.s AS road_status),
                   ST_SetSRID(ST_MakeLine(ST_MakePoint(v.x, 22.45), ST_MakePoint(v.x, 22.46)), 4326), 1000000
            FROM (VALUES ('RA', 'A', 106.53, 'under_construction'), ('RB', 'B', 106.57, 'under_construction'),
                         ('RBP', 'B', 106.57, 'proposed')) AS v(c, post, x, s)
            JOIN border_post p ON p.code = v.post;
            INSERT INTO road_marker (road_id, marker_id)
            SELECT r.id, m.id FROM branch_road r JOIN marker m ON m.post_id = r.post_id;
            INSERT INTO road_event (road_id, from_status, to_status, actor)
            SELECT id, 'funded', 'under_construction', 'seed' FROM branch_road WHERE code = 'RB';
            INSERT INTO donor (code, name, kind) VALUES ('DA', 'Sở Ngoại vụ', 'agency'), ('DB', 'Công ty B', 'company');
            INSERT INTO village (code, name, country, admin1, geom) VALUES
            ('VA', 'Bản A', 'VNM', 'Lạng Sơn', 'SRID=4326;POINT(106.53 22.44)'),
            ('FA', 'Làng A', 'CHN', 'Guangxi', 'SRID=4326;POINT(106.53 22.48)'),
            ('VB', 'Bản B', 'VNM', 'Lạng Sơn', 'SRID=4326;POINT(106.57 22.44)'),
            ('FB', 'Làng B', 'CHN', 'Guangxi', 'SRID=4326;POINT(106.57 22.48)');
            INSERT INTO village_pair (vn_village_id, foreign_village_id, post_id)
            SELECT vn.id, fv.id, p.id FROM (VALUES ('VA', 'FA', 'A'), ('VB', 'FB', 'B')) AS v(a, b, post)
            JOIN village vn ON vn.code = v.a JOIN village fv ON fv.code = v.b JOIN border_post p ON p.code = v.post;
            INSERT INTO pair_meeting (pair_id, held_on, year, quarter)
            SELECT id, '2023-07-31', 2023, 2 FROM village_pair;
            INSERT INTO inauguration (title, held_on, place, province)
            VALUES ('Khánh thành', '2022-11-16', 'Đào Viên', 'Lạng Sơn');
            INSERT INTO attachment (road_id, kind, filename, content_type, size_bytes, sha256, storage_path, actor)
            SELECT id, 'photo', 'x.jpg', 'image/jpeg', 10, repeat('a', 64),
                   'aa/aa/' || repeat('a', 64), 'seed' FROM branch_road WHERE code = 'RB';
        """))
        q = lambda sql: dict(conn.execute(text(sql)).all())  # noqa: E731
        ids = {
            "post": q("SELECT code, id FROM border_post"),
            "marker": q("SELECT p.code, m.id FROM marker m JOIN border_post p ON p.id = m.post_id"),
            "road": q("SELECT code, id FROM branch_road"),
            "donor": q("SELECT code, id FROM donor"),
            "pair": q("SELECT p.code, v.id FROM village_pair v JOIN border_post p ON p.id = v.post_id"),
            "meeting": q("SELECT p.code, m.id FROM pair_meeting m JOIN village_pair v ON v.id = m.pair_id "
                         "JOIN border_post p ON p.id = v.post_id"),
        }
        ids["event_b"] = conn.execute(text("SELECT id FROM road_event")).scalar()
        ids["attachment_b"] = conn.execute(text("SELECT id FROM attachment")).scalar()
        ids["inauguration"] = conn.execute(text("SELECT id FROM inauguration")).scalar()
    p = ids["post"]
    accounts = {
        "admin": account_headers(eng, "admin", username="quan-tri"),
        "planner": account_headers(eng, "planner", username="ke-hoach"),
        "post": account_headers(eng, "post", username="don-a", post_id=p["A"]),
        "donor": account_headers(eng, "donor", username="nha-tai-tro-a", donor_id=ids["donor"]["DA"]),
        "viewer": account_headers(eng, "viewer", username="xem"),
    }
    with TestClient(create_app(url)) as client:
        yield {"client": client, "engine": eng, "as": accounts, **ids}
    eng.dispose()


def snapshot(engine) -> dict:
    parts = ", ".join(
        f"'{t}', (SELECT json_build_array(count(*), md5(COALESCE(string_agg(to_jsonb(x)::text, '|' "
        f"ORDER BY to_jsonb(x)::text), ''))) FROM {t} x)" for t in TABLES)
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT json_build_object({parts})")).scalar_one()


def etag(env, url) -> dict[str, str]:
    return {"If-Match": env["client"].get(url).headers["etag"]}


# ---------------------------------------------------------------------------- the route matrix


def test_every_write_route_has_a_role_guard_and_none_lets_a_viewer_write(env):
    policies = route_policies(env["client"].app)
    writes = {k: v for k, v in policies.items() if k[0] != "GET"}
    assert len(writes) >= len([k for k in EXPECTED if k[0] != "GET"])
    unguarded = sorted(k for k, v in writes.items() if v is None and k not in PUBLIC_WRITES)
    assert unguarded == [], f"write routes without a role guard: {unguarded}"
    open_to_viewers = sorted(k for k, v in writes.items()
                             if v is not None and "viewer" in v and k not in ANY_ACCOUNT_WRITES)
    assert open_to_viewers == [], f"write routes a viewer may call: {open_to_viewers}"


def test_this_projects_routes_follow_the_policy(env):
    policies = route_policies(env["client"].app)
    missing = sorted(set(EXPECTED) - set(policies))
    assert missing == []
    assert {k: policies[k] for k in EXPECTED} == EXPECTED


def test_every_guarded_route_refuses_anonymous_and_other_roles_and_changes_nothing(env):
    client, policies = env["client"], route_policies(env["client"].app)
    before = snapshot(env["engine"])
    checked = 0
    for (method, path), allowed in sorted(policies.items()):
        if allowed is None:
            continue
        url = re.sub(r"\{(\w+)\}", lambda m: "markers" if m[1] == "layer" else "1", path)
        body = None if method in ("GET", "DELETE") else {}
        r = client.request(method, url, json=body)
        assert r.status_code == 401, (method, path, r.status_code, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
        for role in sorted(ANY - allowed):
            r = client.request(method, url, json=body, headers=env["as"][role])
            assert r.status_code == 403, (method, path, role, r.status_code, r.text)
            assert role in r.json()["message"]
            checked += 1
    assert checked >= 60
    assert snapshot(env["engine"]) == before


# ---------------------------------------------------------------------------- a post's own rows only


def scoped_attempts(env):
    """Requests of post A's officer on post B's rows (method, url, body, extra headers)."""
    road, pair, meeting = env["road"]["RB"], env["pair"]["B"], env["meeting"]["B"]
    return [
        ("PATCH", f"/api/markers/{env['marker']['B']}", {"notes": "đã kiểm tra"},
         etag(env, f"/api/markers/{env['marker']['B']}")),
        ("PATCH", f"/api/roads/{road}", {"name": "đổi tên"}, etag(env, f"/api/roads/{road}")),
        ("POST", "/api/roads", {"code": "RX", "name": "x", "post_id": env["post"]["B"],
                                "marker_ids": [env["marker"]["B"]],
                                "geometry": {"type": "LineString", "coordinates": [[106.57, 22.45], [106.57, 22.46]]}},
         {}),
        ("POST", f"/api/roads/{road}/transitions", {"to_status": "suspended", "note": "lũ"},
         etag(env, f"/api/roads/{road}")),
        ("POST", f"/api/roads/{road}/progress", {"progress_pct": 50}, etag(env, f"/api/roads/{road}")),
        ("POST", f"/api/roads/{road}/as-built-from-gpx", {"attachment_id": env["attachment_b"]},
         etag(env, f"/api/roads/{road}")),
        ("POST", f"/api/village-pairs/{pair}/meetings", {"held_on": "2023-10-05"}, {}),
        ("PATCH", f"/api/meetings/{meeting}", {"place": "x"}, etag(env, f"/api/meetings/{meeting}")),
        ("DELETE", f"/api/meetings/{meeting}", None, etag(env, f"/api/meetings/{meeting}")),
        ("DELETE", f"/api/attachments/{env['attachment_b']}", None, {}),
        ("POST", "/api/funding", {"donor_id": env["donor"]["DA"], "road_id": road, "kind": "expenditure",
                                  "amount": 1000, "tx_date": "2024-01-01"}, {}),
    ]


def test_a_post_changing_another_posts_rows_gets_403_and_nothing_changes(env):
    client, officer = env["client"], env["as"]["post"]
    before = snapshot(env["engine"])
    for method, url, body, extra in scoped_attempts(env):
        r = client.request(method, url, json=body, headers={**officer, **extra})
        assert r.status_code == 403, (method, url, r.status_code, r.text)
        assert "your post" in r.json()["message"] or "own post" in r.json()["message"], r.text
    assert snapshot(env["engine"]) == before


@pytest.mark.parametrize("owner", ["road", "road_event", "meeting", "inauguration"])
def test_a_post_attaches_files_to_its_own_rows_only(env, owner):
    owner_id = {"road": env["road"]["RB"], "road_event": env["event_b"], "meeting": env["meeting"]["B"],
                "inauguration": env["inauguration"]}[owner]
    before = snapshot(env["engine"])
    r = env["client"].post("/api/attachments", headers=env["as"]["post"],
                           data={"owner_kind": owner, "owner_id": str(owner_id)},
                           files={"file": ("a.jpg", b"\xff\xd8\xff" + b"0" * 100, "image/jpeg")})
    assert r.status_code == 403, r.text
    assert snapshot(env["engine"]) == before


def test_the_same_requests_on_its_own_rows_go_through(env):
    client, officer = env["client"], env["as"]["post"]
    road, marker = env["road"]["RA"], env["marker"]["A"]
    assert client.patch(f"/api/markers/{marker}", json={"notes": "đường mòn sạt lở", "access": "footpath"},
                        headers={**officer, **etag(env, f"/api/markers/{marker}")}).status_code == 200
    assert client.post(f"/api/roads/{road}/progress", json={"progress_pct": 40},
                       headers={**officer, **etag(env, f"/api/roads/{road}")}).status_code == 200
    assert client.post(f"/api/roads/{road}/transitions", json={"to_status": "suspended", "note": "lũ"},
                       headers={**officer, **etag(env, f"/api/roads/{road}")}).status_code == 200
    r = client.post(f"/api/village-pairs/{env['pair']['A']}/meetings", json={"held_on": "2023-10-05"},
                    headers=officer)
    assert r.status_code == 201, r.text
    r = client.post("/api/roads", headers=officer, json={
        "code": "RA-2", "name": "Đường nhánh mới", "post_id": env["post"]["A"], "marker_ids": [marker],
        "geometry": {"type": "LineString", "coordinates": [[106.53, 22.45], [106.5301, 22.4599]]}})
    assert r.status_code == 201 and r.json()["properties"]["status"] == "proposed", r.text
    pledge = client.post("/api/funding", headers=env["as"]["donor"], json={
        "donor_id": env["donor"]["DA"], "road_id": road, "kind": "pledge", "amount": 5_000_000,
        "tx_date": "2024-01-01"})
    assert pledge.status_code == 201, pledge.text


# ---------------------------------------------------------------------------- fields a role may not set


def field_attempts(env):
    """(role, method, url, body, If-Match url or None, expected status, words in the reason)."""
    ra, ma = env["road"]["RA"], env["marker"]["A"]
    line = {"type": "LineString", "coordinates": [[106.53, 22.45], [106.5301, 22.4599]]}
    return [
        ("post", "PATCH", f"/api/markers/{ma}", {"post_id": env["post"]["B"]}, f"/api/markers/{ma}", 403, "post_id"),
        ("post", "PATCH", f"/api/markers/{ma}", {"number": "1099"}, f"/api/markers/{ma}", 403, "number"),
        ("post", "PATCH", f"/api/markers/{ma}", {"geometry": {"type": "Point", "coordinates": [106.53, 22.461]}},
         f"/api/markers/{ma}", 403, "geometry"),
        ("post", "PATCH", f"/api/roads/{ra}", {"post_id": env["post"]["B"]}, f"/api/roads/{ra}", 403, "post_id"),
        ("post", "PATCH", f"/api/roads/{ra}", {"estimated_cost": 1}, f"/api/roads/{ra}", 403, "estimated_cost"),
        ("post", "PATCH", f"/api/roads/{ra}", {"contractor": "Công ty X"}, f"/api/roads/{ra}", 403, "contractor"),
        ("post", "POST", "/api/roads", {"code": "RA-3", "name": "x", "post_id": env["post"]["A"],
                                        "marker_ids": [ma], "geometry": line, "estimated_cost": 9},
         None, 403, "estimated_cost"),
        ("post", "POST", f"/api/roads/{ra}/transitions", {"to_status": "cancelled", "note": "x"},
         f"/api/roads/{ra}", 403, "planner"),
        ("post", "POST", f"/api/roads/{ra}/transitions", {"to_status": "funded", "override_reason": "gấp"},
         f"/api/roads/{ra}", 403, "override_reason"),
        ("donor", "POST", "/api/funding", {"donor_id": env["donor"]["DB"], "road_id": ra, "kind": "pledge",
                                           "amount": 1000, "tx_date": "2024-01-01"}, None, 403, "donor_id"),
        ("donor", "POST", "/api/funding", {"donor_id": env["donor"]["DA"], "road_id": ra, "kind": "disbursement",
                                           "amount": 1000, "tx_date": "2024-01-01"}, None, 403, "kind"),
        ("post", "POST", "/api/funding", {"donor_id": env["donor"]["DA"], "road_id": ra, "kind": "pledge",
                                          "amount": 1000, "tx_date": "2024-01-01"}, None, 403, "expenditure"),
        # fields nobody sets through these routes
        ("planner", "PATCH", f"/api/roads/{ra}", {"status": "completed"}, f"/api/roads/{ra}", 422, "status"),
        ("planner", "PATCH", f"/api/roads/{ra}", {"version": 99}, f"/api/roads/{ra}", 422, "version"),
        ("planner", "PATCH", f"/api/markers/{ma}", {"approved": True}, f"/api/markers/{ma}", 422, "approved"),
        ("post", "PATCH", f"/api/roads/{ra}", {"progress_pct": 100}, f"/api/roads/{ra}", 422, "progress_pct"),
        ("planner", "POST", f"/api/village-pairs/{env['pair']['A']}/meetings",
         {"held_on": "2023-04-05", "version": 3}, None, 422, "version"),
    ]


def test_fields_a_role_may_not_set_are_refused_not_ignored(env):
    client = env["client"]
    before = snapshot(env["engine"])
    for role, method, url, body, versioned, status, words in field_attempts(env):
        extra = etag(env, versioned) if versioned else {}
        r = client.request(method, url, json=body, headers={**env["as"][role], **extra})
        assert r.status_code == status, (role, method, url, body, r.text)
        reason = r.json()["message"]
        assert words in str(reason), (words, reason)
    assert snapshot(env["engine"]) == before
