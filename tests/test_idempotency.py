"""Safe retries: the same Idempotency-Key gets the first response back and creates nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from support.api_client import ApiClient, account_headers
from geo_api import db
from geo_api.domain.attachments import Store
from geo_api.domain.idempotency import purge_expired
from geo_api.routes import attachments as attachment_routes
from geo_api.settings import get_settings

TABLES = ("funding_tx", "road_event", "branch_road", "attachment", "pair_meeting", "inauguration",
          "inauguration_road", "audit_log", "idempotency_key")
JPEG = b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF" + bytes(range(256)) * 4


@pytest.fixture(scope="module")
def env(fresh_database, tmp_path_factory):
    from geo_api.main import create_app

    url = fresh_database()
    db.upgrade(url)
    eng = create_engine(url)
    with eng.begin() as conn:
        conn.execute(text("""
            INSERT INTO border_post (code, name, province, geom) VALUES
            ('BN', 'Đồn Biên phòng Bình Nghi', 'Lạng Sơn', 'SRID=4326;POINT(106.52 22.45)');
            INSERT INTO branch_road (code, name, post_id, province, status, geom, completed_on)
            SELECT c, 'Đường nhánh ' || c, p.id, 'Lạng Sơn', CAST(s AS road_status),
                   'SRID=4326;LINESTRING(106.52 22.45, 106.53 22.46)', CAST(d AS date)
            FROM border_post p, (VALUES ('R-UC', 'under_construction', NULL), ('R-DONE', 'completed', '2022-10-01'))
                 AS v(c, s, d);
            INSERT INTO donor (code, name, kind) VALUES ('D1', 'Sở Tài chính', 'agency'), ('D2', 'Công ty A', 'company');
            INSERT INTO village (code, name, country, admin1, geom) VALUES
            ('V1', 'Khóm Duy Tân', 'VNM', 'Quảng Trị', 'SRID=4326;POINT(106.59 16.62)'),
            ('V2', 'Bản Phường', 'LAO', 'Savannakhet', 'SRID=4326;POINT(106.55 16.63)');
            INSERT INTO village_pair (vn_village_id, foreign_village_id, post_id, twinned_on)
            SELECT a.id, b.id, (SELECT id FROM border_post), '2019-05-10'
            FROM village a, village b WHERE a.code = 'V1' AND b.code = 'V2';
        """))
        ids = {
            "roads": dict(conn.execute(text("SELECT code, id FROM branch_road")).all()),
            "donors": dict(conn.execute(text("SELECT code, id FROM donor")).all()),
            "pair": conn.execute(text("SELECT id FROM village_pair")).scalar(),
            "post": conn.execute(text("SELECT id FROM border_post")).scalar(),
        }
    store = Store(tmp_path_factory.mktemp("attachments"))
    app = create_app(url)
    app.dependency_overrides[attachment_routes.get_store] = lambda: store
    with ApiClient(app, eng, role="planner", username="ke-hoach") as client:
        yield {"client": client, "engine": eng, "store": store, **ids}
    eng.dispose()


def snapshot(engine) -> dict:
    parts = ", ".join(
        f"'{t}', (SELECT json_build_array(count(*), md5(COALESCE(string_agg(to_jsonb(x)::text, '|' "
        f"ORDER BY to_jsonb(x)::text), ''))) FROM {t} x)" for t in TABLES)
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT json_build_object({parts})")).scalar_one()


def files(store: Store) -> set[str]:
    return {str(p.relative_to(store.root)) for p in store.root.rglob("*") if p.is_file()}


def retried(env, send, *, key: str, status: int):
    """Send once (fresh), then again with the same key: same answer, nothing new written."""
    first = send({"Idempotency-Key": key})
    assert first.status_code == status, first.text
    assert "idempotent-replayed" not in first.headers
    before, stored = snapshot(env["engine"]), files(env["store"])
    again = send({"Idempotency-Key": key})
    assert again.status_code == status and again.content == first.content
    assert again.headers.get("location") == first.headers.get("location")
    assert again.headers.get("etag") == first.headers.get("etag")
    assert again.headers["idempotent-replayed"] == "true"
    assert snapshot(env["engine"]) == before and files(env["store"]) == stored
    return first


def refused_as_other_request(env, send, *, key: str):
    before = snapshot(env["engine"])
    r = send({"Idempotency-Key": key})
    assert r.status_code == 422, r.text
    assert "already used for a different request" in r.json()["message"]
    assert snapshot(env["engine"]) == before


def test_a_transition_retried_is_applied_once(env):
    api, road = env["client"], env["roads"]["R-UC"]

    def send(body):
        return lambda h: api.post(f"/api/roads/{road}/transitions", json=body, headers=h)

    first = retried(env, send({"to_status": "suspended", "note": "mưa lũ"}), key="t-1", status=200)
    assert first.json()["properties"]["status"] == "suspended"
    # the retry carried the old If-Match (a phone resends what it sent): still the first answer
    version = int(first.headers["etag"].strip('"'))
    stale = api.post(f"/api/roads/{road}/transitions", json={"to_status": "suspended", "note": "mưa lũ"},
                     headers={"Idempotency-Key": "t-1", "If-Match": f'"{version - 1}"'})
    assert stale.status_code == 200 and stale.content == first.content
    refused_as_other_request(env, send({"to_status": "cancelled", "note": "bỏ"}), key="t-1")
    resumed = api.post(f"/api/roads/{road}/transitions", json={"to_status": "under_construction"},
                       headers={"Idempotency-Key": "t-2"})
    assert resumed.status_code == 200 and resumed.json()["properties"]["status"] == "under_construction"


def test_progress_retried_is_recorded_once(env):
    road = env["roads"]["R-UC"]
    retried(env, lambda h: env["client"].post(f"/api/roads/{road}/progress", json={"progress_pct": 35},
                                              headers=h), key="p-1", status=200)


def test_a_funding_transaction_retried_is_recorded_once(env):
    api, body = env["client"], {"donor_id": env["donors"]["D1"], "road_id": env["roads"]["R-UC"],
                                "kind": "pledge", "amount": 120_000_000, "tx_date": "2024-03-01"}
    first = retried(env, lambda h: api.post("/api/funding", json=body, headers=h), key="f-1", status=201)
    # the same content with keys in another order and other spacing is the same request
    again = api.post("/api/funding", content=(
        '{"tx_date": "2024-03-01", "amount": 120000000, "kind": "pledge", '
        f'"road_id": {body["road_id"]},   "donor_id": {body["donor_id"]}}}'),
        headers={"Idempotency-Key": "f-1", "Content-Type": "application/json"})
    assert again.status_code == 201 and again.content == first.content
    refused_as_other_request(env, lambda h: api.post("/api/funding", json={**body, "amount": 130_000_000},
                                                     headers=h), key="f-1")
    # the key is the account's: the same key from another account is another request
    donor = account_headers(env["engine"], "donor", username="cong-ty-a", donor_id=env["donors"]["D2"])
    other = api.post("/api/funding", json={**body, "donor_id": env["donors"]["D2"]},
                     headers={**donor, "Idempotency-Key": "f-1"})
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]


def test_an_attachment_retried_is_stored_once(env):
    api, road = env["client"], env["roads"]["R-UC"]

    def send(caption):
        return lambda h: api.post("/api/attachments", headers=h,
                                  data={"owner_kind": "road", "owner_id": str(road), "caption": caption},
                                  files={"file": ("hien-truong.jpg", JPEG, "image/jpeg")})

    first = retried(env, send("ảnh hiện trường"), key="a-1", status=201)
    assert first.json()["sha256"]
    refused_as_other_request(env, send("một chú thích khác"), key="a-1")


def test_a_meeting_retried_is_recorded_once(env):
    api, pair = env["client"], env["pair"]
    body = {"held_on": "2023-07-31", "year": 2023, "quarter": 2, "place": "Nhà văn hóa khóm Duy Tân"}
    first = retried(env, lambda h: api.post(f"/api/village-pairs/{pair}/meetings", json=body, headers=h),
                    key="m-1", status=201)
    assert first.headers["etag"] == '"1"'
    refused_as_other_request(env, lambda h: api.post(f"/api/village-pairs/{pair}/meetings",
                                                     json={**body, "place": "Bản Phường"}, headers=h), key="m-1")


def test_an_inauguration_retried_is_recorded_once(env):
    body = {"title": "Khánh thành", "held_on": "2022-11-16", "place": "Đào Viên", "province": "Lạng Sơn",
            "road_ids": [env["roads"]["R-DONE"]]}
    retried(env, lambda h: env["client"].post("/api/inaugurations", json=body, headers=h), key="i-1", status=201)


def test_a_failed_request_stores_nothing_so_a_fixed_retry_may_use_the_key(env):
    api, body = env["client"], {"donor_id": env["donors"]["D1"], "road_id": env["roads"]["R-UC"],
                                "kind": "disbursement", "amount": 10**12, "tx_date": "2024-03-01"}
    bad = api.post("/api/funding", json=body, headers={"Idempotency-Key": "f-fix"})
    assert bad.status_code == 422
    ok = api.post("/api/funding", json={**body, "kind": "commitment"}, headers={"Idempotency-Key": "f-fix"})
    assert ok.status_code == 201


def test_keys_are_kept_for_the_retention_then_purged(env):
    api, body = env["client"], {"donor_id": env["donors"]["D1"], "campaign_id": None,
                                "road_id": env["roads"]["R-UC"], "kind": "pledge", "amount": 7_000,
                                "tx_date": "2024-03-02"}
    assert api.post("/api/funding", json=body, headers={"Idempotency-Key": "old-1"}).status_code == 201
    keep = get_settings().security.idempotency_retention_hours
    assert keep == 168
    with env["engine"].begin() as conn:
        conn.execute(text("UPDATE idempotency_key SET created_at = now() - make_interval(hours => :h + 1) "
                          "WHERE key = 'old-1'"), {"h": keep})
    # past its retention the key starts afresh: a new request, recorded
    again = api.post("/api/funding", json={**body, "amount": 8_000}, headers={"Idempotency-Key": "old-1"})
    assert again.status_code == 201 and "idempotent-replayed" not in again.headers
    with env["engine"].begin() as conn:
        conn.execute(text("UPDATE idempotency_key SET created_at = now() - make_interval(hours => :h + 1) "
                          "WHERE key = 'old-1'"), {"h": keep})
        assert purge_expired(conn, keep) == 1
        assert conn.execute(text("SELECT count(*) FROM idempotency_key WHERE key = 'old-1'")).scalar() == 0


@pytest.mark.parametrize("key", ["", "with space", "x" * 201, "ключ"])
def test_malformed_keys_are_refused(env, key):
    before = snapshot(env["engine"])
    r = env["client"].post("/api/funding", json={"donor_id": 1, "road_id": 1, "kind": "pledge", "amount": 1,
                                                 "tx_date": "2024-01-01"},
                           headers={"Idempotency-Key": key.encode("utf-8")})
    assert r.status_code == 422
    assert snapshot(env["engine"]) == before
