"""Offline queue sync: applied in client order, once, and never over someone else's change."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from support.api_client import ApiClient, account_headers
from geo_api import db
from geo_api.settings import configure

TABLES = ("branch_road", "road_event", "audit_log", "sync_item")


@pytest.fixture(scope="module")
def env(fresh_database):
    from geo_api.main import create_app

    url = fresh_database()
    db.upgrade(url)
    eng = create_engine(url)
    with eng.begin() as conn:
        conn.execute(text("""
            INSERT INTO border_post (code, name, province, geom) VALUES
            ('BN', 'Đồn Biên phòng Bình Nghi', 'Lạng Sơn', 'SRID=4326;POINT(106.52 22.45)'),
            ('NS', 'Đồn Biên phòng Na Sầm', 'Lạng Sơn', 'SRID=4326;POINT(106.60 22.05)')
        """))
        posts = dict(conn.execute(text("SELECT code, id FROM border_post")).all())
        segment = conn.execute(text("""
            INSERT INTO border_segment (code, neighbour_iso3, name_vi, name_en, geom) VALUES
            ('VN-CN', 'CHN', 'Việt Nam – Trung Quốc', 'Viet Nam – China',
             'SRID=4326;MULTILINESTRING((106.50 22.46, 106.56 22.46))') RETURNING id
        """)).scalar_one()
    app = create_app(url)
    with ApiClient(app, eng, role="planner", username="ke-hoach") as client:
        yield {"client": client, "engine": eng, "posts": posts, "segment": segment,
               "officer": account_headers(eng, "post", username="can-bo-bn", post_id=posts["BN"])}
    eng.dispose()


def road(env, post="BN", status="under_construction") -> int:
    """A road of the post to a marker of its own at the road's end."""
    with env["engine"].begin() as conn:
        road_id = conn.execute(text("""
            INSERT INTO branch_road (code, name, post_id, province, status, geom)
            VALUES ('R-' || (SELECT count(*) + 1 FROM branch_road), 'Đường nhánh', :p, 'Lạng Sơn',
                    CAST(:s AS road_status), 'SRID=4326;LINESTRING(106.52 22.45, 106.53 22.46)')
            RETURNING id
        """), {"p": env["posts"][post], "s": status}).scalar_one()
        conn.execute(text("""
            WITH m AS (INSERT INTO marker (segment_id, number, geom, province, post_id)
                       VALUES (:seg, CAST(1000 + :r AS text), 'SRID=4326;POINT(106.53 22.46)', 'Lạng Sơn', :p)
                       RETURNING id)
            INSERT INTO road_marker (road_id, marker_id) SELECT :r, id FROM m
        """), {"seg": env["segment"], "r": road_id, "p": env["posts"][post]})
    return road_id


def snapshot(engine) -> dict:
    parts = ", ".join(
        f"'{t}', (SELECT json_build_array(count(*), md5(COALESCE(string_agg(to_jsonb(x)::text, '|' "
        f"ORDER BY to_jsonb(x)::text), ''))) FROM {t} x)" for t in TABLES)
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT json_build_object({parts})")).scalar_one()


def state(env, road_id):
    with env["engine"].connect() as conn:
        r = conn.execute(text("SELECT status::text, progress_pct, version, name FROM branch_road WHERE id = :id"),
                         {"id": road_id}).one()
        events = conn.execute(text("SELECT to_status::text, progress_pct, actor, occurred_at FROM road_event "
                                   "WHERE road_id = :id ORDER BY id"), {"id": road_id}).all()
    return tuple(r), [tuple(e) for e in events]


def item(cid, hour, road_id, action, payload, base=1):
    return {"client_id": cid, "client_time": f"2024-05-20T{hour:02d}:00:00+07:00", "road_id": road_id,
            "base_version": base, "action": action, "payload": payload}


def sync(env, items, headers=None):
    r = env["client"].post("/api/sync", json={"items": items}, headers=headers or env["officer"])
    assert r.status_code == 200, r.text
    return r.json()


def queue(prefix, ra, rp, rb):
    """What an officer recorded offline on 20/05 (base versions as last read: 1)."""
    return [
        item(f"{prefix}1", 8, ra, "progress", {"progress_pct": 30, "note": "đổ móng"}),
        item(f"{prefix}2", 9, ra, "progress", {"progress_pct": 60}),
        item(f"{prefix}3", 10, ra, "transition", {"to_status": "suspended", "note": "mưa lũ"}),
        item(f"{prefix}4", 8, rp, "update", {"name": "Đường nhánh lên mốc 1033"}),
        item(f"{prefix}5", 11, rb, "progress", {"progress_pct": 10}),                      # another post's
        item(f"{prefix}6", 12, ra, "transition", {"to_status": "cancelled", "note": "x"}),  # a planner's call
        item(f"{prefix}7", 13, rp, "update", {"estimated_cost": 5}),                         # a planner's field
        item(f"{prefix}8", 14, ra, "progress", {"progress_pct": 150}),                       # impossible
    ]


def test_a_queue_replayed_reversed_and_with_duplicates_is_applied_once_in_client_order(env):
    ra, rp, rb = road(env), road(env, status="proposed"), road(env, "NS")
    items = queue("q-", ra, rp, rb)
    rb_before = state(env, rb)
    sent = list(reversed(items)) + [items[0], items[1]]  # reversed, plus two repeats
    body = sync(env, sent)
    results = body["results"]
    assert [r["client_id"] for r in results] == [i["client_id"] for i in sent]  # in the order sent
    by_id = {r["client_id"]: r for r in results[:len(items)]}
    assert {k: (v["outcome"], v["status"]) for k, v in by_id.items()} == {
        "q-1": ("applied", 200), "q-2": ("applied", 200), "q-3": ("applied", 200), "q-4": ("applied", 200),
        "q-5": ("forbidden", 403), "q-6": ("forbidden", 403), "q-7": ("forbidden", 403),
        "q-8": ("rejected", 422),
    }
    assert [r["duplicate"] for r in results] == [False] * len(items) + [True, True]
    assert results[-2] == {**by_id["q-1"], "duplicate": True}
    assert (body["applied"], body["duplicates"], body["conflicts"], body["failed"]) == (4, 2, 0, 4)
    assert "estimated_cost" in by_id["q-7"]["detail"] and "progress_pct" in by_id["q-8"]["detail"]

    (status, pct, version, _), events = state(env, ra)
    assert (status, pct, version) == ("suspended", 60, 4)
    assert [(e[0], e[1]) for e in events] == [("under_construction", 30), ("under_construction", 60),
                                              ("suspended", 60)]
    assert [e[3].hour for e in events] == [1, 2, 3]  # occurred_at: the client times (UTC)
    assert {e[2] for e in events} == {"can-bo-bn"}
    assert by_id["q-3"]["road"] == {"status": "suspended", "progress_pct": 60, "version": 4}
    assert state(env, rp)[0][3] == "Đường nhánh lên mốc 1033"
    assert state(env, rb) == rb_before

    # the whole queue again (the phone never heard back): nothing changes
    before = snapshot(env["engine"])
    again = sync(env, items)
    assert all(r["duplicate"] for r in again["results"])
    assert [(r["outcome"], r["status"]) for r in again["results"]] == [
        (by_id[i["client_id"]]["outcome"], by_id[i["client_id"]]["status"]) for i in items]
    assert snapshot(env["engine"]) == before


def test_reversed_and_in_order_end_the_same(env):
    forward, backward = road(env), road(env)
    sync(env, [i for i in queue("f-", forward, road(env, status="proposed"), road(env, "NS"))])
    sync(env, list(reversed(queue("b-", backward, road(env, status="proposed"), road(env, "NS")))))
    (fs, fp, fv, _), fe = state(env, forward)
    (bs, bp, bv, _), be = state(env, backward)
    assert (fs, fp, fv) == (bs, bp, bv) and [e[:2] for e in fe] == [e[:2] for e in be]


def test_a_change_by_someone_else_is_a_conflict_reported_never_overwritten(env):
    ra = road(env)
    sync(env, [item("c-1", 8, ra, "progress", {"progress_pct": 20})])  # own change: v1 -> v2
    # the planner edits the road meanwhile (v2 -> v3)
    assert env["client"].patch(f"/api/roads/{ra}", json={"notes": "nhà thầu đổi"}).status_code == 200
    before, state_before = snapshot(env["engine"]), state(env, ra)
    body = sync(env, [item("c-2", 9, ra, "progress", {"progress_pct": 50}, base=1),
                      item("c-3", 10, ra, "transition", {"to_status": "suspended", "note": "lũ"}, base=2)])
    assert [(r["outcome"], r["status"]) for r in body["results"]] == [("conflict", 412)] * 2
    assert body["results"][1]["road"] == {"status": "under_construction", "progress_pct": 20, "version": 3}
    assert "changed by someone else" in body["results"][1]["detail"]
    assert state(env, ra) == state_before
    changed = snapshot(env["engine"])
    assert {t: changed[t] for t in TABLES if t != "sync_item"} == {t: before[t] for t in TABLES if t != "sync_item"}
    # re-based on what the server has now, it goes through
    ok = sync(env, [item("c-4", 11, ra, "progress", {"progress_pct": 50}, base=3)])
    assert ok["results"][0]["outcome"] == "applied" and state(env, ra)[0][1] == 50


def test_who_may_sync(env):
    ra = road(env)
    one = {"items": [item("w-1", 8, ra, "progress", {"progress_pct": 5})]}
    assert env["client"].post("/api/sync", json=one, headers={"Authorization": ""}).status_code == 401
    donor = account_headers(env["engine"], "viewer", username="xem")
    assert env["client"].post("/api/sync", json=one, headers=donor).status_code == 403
    planner = env["client"].post("/api/sync", json=one)  # a planner may sync any road
    assert planner.json()["results"][0]["outcome"] == "applied"


@pytest.mark.parametrize("bad, reason", [
    ({"items": []}, "items"),
    ({"items": [{**item("x", 8, 1, "progress", {}), "action": "delete"}]}, "action"),
    ({"items": [{**item("x", 8, 1, "progress", {}), "client_time": "2024-05-20T08:00:00"}]}, "client_time"),
    ({"items": [{**item("x y", 8, 1, "progress", {})}]}, "client_id"),
])
def test_malformed_syncs_are_refused_whole(env, bad, reason):
    before = snapshot(env["engine"])
    r = env["client"].post("/api/sync", json=bad, headers=env["officer"])
    assert r.status_code == 422 and reason in r.json()["message"]
    assert snapshot(env["engine"]) == before


def test_too_long_a_queue_is_refused(env, monkeypatch):
    monkeypatch.setenv("TRACKER_SYNC_MAX_ITEMS", "2")
    configure()
    try:
        ra = road(env)
        r = env["client"].post("/api/sync", headers=env["officer"], json={"items": [
            item(f"l-{i}", 8, ra, "progress", {"progress_pct": i}) for i in range(3)]})
        assert r.status_code == 422 and "at most 2" in r.json()["message"]
    finally:
        monkeypatch.undo()
        configure()
