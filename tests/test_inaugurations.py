"""Inaugurations: all roads move to inaugurated in one transaction, or none does."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from support.api_client import ApiClient
from sqlalchemy import create_engine, text

from support.world import World, migrated_database, snapshot


@pytest.fixture(scope="module")
def inaug_url(fresh_database):
    return migrated_database(fresh_database)


@pytest.fixture(scope="module")
def inaug_engine(inaug_url):
    eng = create_engine(inaug_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def api(inaug_url):
    from geo_api.main import create_app

    with ApiClient(create_app(inaug_url), inaug_url, role="planner", username="bchq-bdbp-lang-son") as c:
        yield c


@pytest.fixture(scope="module")
def world(inaug_engine):
    return World(inaug_engine)


@pytest.fixture
def roads(world):
    """A factory of roads of one post, each to its own marker."""
    post = world.post()

    def make(status="completed", **kw):
        marker = world.marker((106.45 + world.n * 0.01, 22.70), post_id=post)
        return world.road(marker, post, status=status, **kw)

    return make


def ceremony(road_ids, donor_ids=(), **kw):
    body = {
        "title": "Khánh thành 4 tuyến đường nhánh tuần tra biên giới", "held_on": "2022-11-16",
        "place": "UBND xã Đào Viên", "commune": "Đào Viên", "district": "Tràng Định", "province": "Lạng Sơn",
        "geometry": {"type": "Point", "coordinates": [106.55, 22.50]},
        "officials": "Lãnh đạo Sở Ngoại vụ; Bộ Chỉ huy BĐBP tỉnh", "notes": "cắt băng khánh thành",
        "road_ids": list(road_ids), "donor_ids": list(donor_ids),
    }
    body.update(kw)
    return body


def test_one_ceremony_inaugurates_all_its_roads(api, world, roads, inaug_engine):
    ids = [roads(completed_on=date(2022, 10, 20)), roads(completed_on=date(2022, 11, 16))]
    donors = [world.donor("Cụm thi đua", kind="cluster"), world.donor("Sở Ngoại vụ")]
    r = api.post("/api/inaugurations", json=ceremony(ids, donors))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body == api.get(r.headers["Location"]).json()
    assert body["properties"]["road_ids"] == sorted(ids)
    assert [d["id"] for d in body["properties"]["donors"]] == sorted(donors)
    assert body["properties"]["held_on"] == "2022-11-16"
    assert body["geometry"] == {"type": "Point", "coordinates": [106.55, 22.5]}
    for road in ids:
        assert world.status(road) == "inaugurated"
        assert world.events(road) == [("completed", "inaugurated")]
        road_json = api.get(f"/api/roads/{road}").json()["properties"]
        assert road_json["inaugurated_on"] == "2022-11-16"
        event = api.get(f"/api/roads/{road}/history").json()["items"][-1]
        assert event["occurred_at"].startswith("2022-11-15T17:00:00")  # 16/11/2022 00:00 in Viet Nam
        assert event["actor"] == "bchq-bdbp-lang-son"
        assert event["evidence"]["inauguration_id"] == body["id"]
    with inaug_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log WHERE target_table = 'inauguration'")).scalar() == 1


def test_any_road_not_ready_refuses_the_whole_ceremony_naming_each(api, world, roads, inaug_engine):
    ready = roads()
    building = roads(status="under_construction")
    done = roads()
    assert api.post("/api/inaugurations", json=ceremony([done], held_on="2022-11-01")).status_code == 201
    before = snapshot(inaug_engine)
    r = api.post("/api/inaugurations", json=ceremony([ready, building, 999_999, done]))
    assert r.status_code == 422
    detail = r.json()["message"]
    assert detail.startswith("cannot inaugurate: ")
    assert f"road {building} (ROAD-" in detail and "is under_construction, not completed" in detail
    assert "road 999999 does not exist" in detail
    assert f"road {done} (" in detail and "is already inaugurated (inauguration" in detail
    assert str(ready) not in detail.split("cannot inaugurate: ")[1].split(" (")[0]
    assert len(r.json()["detail"]["roads"]) == 3
    assert snapshot(inaug_engine) == before
    assert world.status(ready) == "completed"


@pytest.mark.parametrize("change,expected", [
    ({"held_on": "2022-09-30"}, "after the ceremony on 2022-09-30"),
    ({"held_on": (date.today() + timedelta(days=3)).isoformat()}, "is in the future"),
    ({"road_ids": []}, "road_ids"),
    ({"donor_ids": [999_998]}, "donor(s) 999998 do not exist"),
    ({"title": "  "}, "title: must not be blank"),
    ({"geometry": {"type": "Point", "coordinates": [22.5, 106.55]}}, "longitude and latitude look swapped"),
    ({"geometry": {"type": "LineString", "coordinates": [[106.5, 22.5], [106.6, 22.6]]}}, "expected a Point"),
    ({"held_on": "16/11/2022"}, "held_on"),
    ({"ribbon": True}, "ribbon"),
])
def test_bad_ceremonies_are_refused_and_nothing_is_written(api, roads, inaug_engine, change, expected):
    road = roads(completed_on=date(2022, 10, 1))
    before = snapshot(inaug_engine)
    r = api.post("/api/inaugurations", json={**ceremony([road]), **change})
    assert r.status_code == 422, r.text
    said = r.json()["message"]
    assert expected in said
    assert snapshot(inaug_engine) == before


def test_a_road_listed_twice_is_refused(api, roads, inaug_engine):
    road = roads()
    before = snapshot(inaug_engine)
    r = api.post("/api/inaugurations", json=ceremony([road, road]))
    assert r.status_code == 422 and f"listed more than once: {road}" in r.json()["message"]
    assert snapshot(inaug_engine) == before


def test_the_transition_endpoint_will_not_inaugurate(api, roads, inaug_engine):
    road = roads()
    before = snapshot(inaug_engine)
    r = api.post(f"/api/roads/{road}/transitions", json={"to_status": "inaugurated", "note": "x"})
    assert r.status_code == 422 and "POST /api/inaugurations" in r.json()["message"]
    assert snapshot(inaug_engine) == before
