"""Road lifecycle: the transition table and guards (pure), the endpoints, and the race.

The shared helpers (a fresh database with the real borders, and SQL builders of posts,
markers, roads, donors and ledger rows) are in tests/support/world.py.
"""

from __future__ import annotations

import threading
import time
from datetime import date, datetime, timedelta, timezone

import pytest
from support.api_client import ApiClient
from sqlalchemy import Engine, create_engine, text

from geo_api.domain import lifecycle
from geo_api.domain.lifecycle import ACTIVE, NEEDS, TRANSITIONS, RoadState, check_transition
from geo_api.errors import Conflict, InvalidInput
from geo_api.schemas.lifecycle import TransitionCreate
from support.world import World, migrated_database, snapshot

@pytest.fixture(scope="module")
def lc_url(fresh_database) -> str:
    return migrated_database(fresh_database)


@pytest.fixture(scope="module")
def lc_engine(lc_url):
    eng = create_engine(lc_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def api(lc_url):
    from geo_api.main import create_app

    with ApiClient(create_app(lc_url), lc_url, role="planner", username="binh-nghi-post") as c:
        yield c


@pytest.fixture(scope="module")
def world(lc_engine) -> World:
    return World(lc_engine)


@pytest.fixture
def site(world):
    """A post and a marker of its own, for one test."""
    post = world.post()
    marker = world.marker((106.5905, 22.5492), post_id=post)
    return post, marker


# ---------------------------------------------------------------------------- the table (no database)


def state(status, estimate=1_200_000_000, committed=0, suspended_from=None):
    return RoadState(id=7, code="BN-1033", status=status, estimated_cost=estimate, committed=committed,
                     suspended_from=suspended_from)


def req(to, **kw):
    return TransitionCreate(to_status=to, **kw)


LINE = {"type": "LineString", "coordinates": [[106.5, 22.3], [106.59, 22.549]]}


def reason(road, request) -> str:
    with pytest.raises(InvalidInput) as exc:
        check_transition(road, request, today=date(2024, 1, 1))
    return exc.value.message


def test_table_covers_every_status_and_final_statuses_lead_nowhere():
    from geo_api.vocabulary import ROAD_STATUSES

    assert set(TRANSITIONS) == set(ROAD_STATUSES)
    assert TRANSITIONS["inaugurated"] == TRANSITIONS["cancelled"] == ()
    for s in ACTIVE:
        assert {"suspended", "cancelled"} <= set(TRANSITIONS[s])
    assert set(TRANSITIONS["suspended"]) == set(ACTIVE) | {"cancelled"}
    # the forward chain has no gaps
    chain = ["proposed"]
    while chain[-1] != "inaugurated":
        chain.append(next(t for t, need in NEEDS.items() if need == chain[-1]))
    assert chain == list(ACTIVE) + ["inaugurated"]


@pytest.mark.parametrize("here,to,kw", [
    ("proposed", "surveyed", {"evidence": {"surveyed_line": LINE}}),
    ("proposed", "surveyed", {"note": "planned line confirmed on site"}),
    ("surveyed", "funded", {}),
    ("funded", "under_construction", {}),
    ("under_construction", "completed", {"evidence": {"completed_on": "2022-11-01", "as_built_line": LINE}}),
    ("completed", "suspended", {"note": "landslide"}),
    ("proposed", "cancelled", {"note": "marker reached by another road"}),
    ("suspended", "cancelled", {"note": "abandoned"}),
])
def test_allowed_steps_pass(here, to, kw):
    check_transition(state(here, committed=1_200_000_000, suspended_from="funded" if here == "suspended" else None),
                     req(to, **kw), today=date(2024, 1, 1))


@pytest.mark.parametrize("here,to,expected", [
    ("proposed", "funded", "funded needs a road that is surveyed; road 7 (BN-1033) is proposed"),
    ("surveyed", "under_construction", "under_construction needs a road that is funded; road 7 (BN-1033) is surveyed"),
    ("funded", "completed", "completed needs a road that is under_construction; road 7 (BN-1033) is funded"),
    ("under_construction", "proposed",
     "road 7 (BN-1033) is under_construction; it goes on to completed or suspended or cancelled, not back to proposed"),
    ("inaugurated", "suspended", "road 7 (BN-1033) is inaugurated; that status is final"),
    ("cancelled", "proposed", "road 7 (BN-1033) is cancelled; that status is final"),
    ("funded", "funded", "road 7 (BN-1033) is already funded"),
])
def test_steps_out_of_order_are_refused_with_the_reason(here, to, expected):
    assert expected in reason(state(here, committed=2_000_000_000), req(to, note="n"))


def test_inaugurated_only_through_an_inauguration_record():
    msg = reason(state("completed"), req("inaugurated", note="ribbon cut"))
    assert "only through an inauguration record" in msg and "POST /api/inaugurations" in msg


def test_funded_needs_commitments_covering_the_estimate():
    assert reason(state("surveyed", committed=800_000_000), req("funded")) == (
        "funded needs commitments of 1,200,000,000 VND; 800,000,000 VND committed")
    check_transition(state("surveyed", committed=1_200_000_000), req("funded"))  # exactly enough
    check_transition(state("surveyed", committed=0), req("funded", override_reason="province budget 2023"))
    assert "needs an estimated cost" in reason(state("surveyed", estimate=None), req("funded"))


def test_surveyed_needs_a_line_or_a_note():
    assert reason(state("proposed"), req("surveyed")).startswith("surveyed needs a surveyed line")


def test_completed_names_what_is_missing():
    assert reason(state("under_construction"), req("completed")) == (
        "completed needs a completion date (evidence.completed_on) and an as-built line "
        "(evidence.as_built_line, a GeoJSON LineString)")
    assert reason(state("under_construction"), req("completed", evidence={"completed_on": "2022-11-01"})) == (
        "completed needs an as-built line (evidence.as_built_line, a GeoJSON LineString)")
    assert "in the future" in reason(state("under_construction"), req(
        "completed", evidence={"completed_on": "2024-01-02", "as_built_line": LINE}))


def test_suspending_and_cancelling_need_a_reason():
    assert reason(state("funded"), req("suspended")) == "suspended needs a note saying why"
    assert reason(state("funded"), req("cancelled")) == "cancelled needs a note saying why"


def test_a_suspended_road_resumes_only_where_it_was():
    road = state("suspended", suspended_from="funded")
    assert reason(road, req("under_construction")) == (
        "road 7 (BN-1033) was suspended from funded and resumes only to funded (or is cancelled), "
        "not to under_construction")
    check_transition(state("suspended", committed=0, suspended_from="funded"), req("funded"))  # no guard re-run


def test_evidence_and_override_belong_to_their_step():
    assert reason(state("proposed"), req("surveyed", note="ok", evidence={"as_built_line": LINE})) == (
        "evidence.as_built_line belongs to →completed, not →surveyed")
    assert reason(state("funded"), req("under_construction", override_reason="x")) == (
        "override_reason applies only to →funded, not →under_construction")


def test_occurred_at_may_not_be_in_the_future():
    later = datetime.now(timezone.utc) + timedelta(days=1)
    assert "in the future" in reason(state("proposed"), req("surveyed", note="ok", occurred_at=later))


# ---------------------------------------------------------------------------- through the API


def move(api, road_id, to, **body):
    return api.post(f"/api/roads/{road_id}/transitions", json={"to_status": to, **body})


def test_walk_from_proposed_to_completed_records_each_step(api, world, site, lc_engine):
    post, marker = site
    road = world.road(marker, post, estimate=1_200_000_000)
    surveyed = world.line_to(marker, bend=0.002)

    r = move(api, road, "surveyed", note="khảo sát thực địa", occurred_at="2022-03-10T09:00:00+07:00",
             evidence={"surveyed_line": surveyed, "photos": ["att:11"], "survey_team": "Sở Ngoại vụ"},
             reported_from={"type": "Point", "coordinates": [106.55, 22.45]})
    assert r.status_code == 200, r.text
    feature = r.json()
    assert feature["properties"]["status"] == "surveyed" and feature["properties"]["version"] == 2
    assert feature["geometry"]["coordinates"] == surveyed["coordinates"]  # the surveyed line replaced the plan

    cluster = world.donor("Cụm thi đua", kind="cluster")
    world.fund(cluster, "commitment", 800_000_000, road)
    r = move(api, road, "funded")
    assert r.status_code == 422
    assert r.json()["message"] == "funded needs commitments of 1,200,000,000 VND; 800,000,000 VND committed"
    world.fund(cluster, "commitment", 400_000_000, road)
    assert move(api, road, "funded", note="đủ cam kết").status_code == 200
    assert move(api, road, "under_construction", occurred_at="2022-06-01T08:00:00+07:00").status_code == 200
    for pct in (30, 75):
        assert api.post(f"/api/roads/{road}/progress", json={"progress_pct": pct}).status_code == 200
    as_built = world.line_to(marker, bend=-0.001)
    r = move(api, road, "completed", evidence={"completed_on": "2022-11-01", "as_built_line": as_built})
    assert r.status_code == 200, r.text
    props = r.json()["properties"]
    assert (props["status"], props["progress_pct"], props["completed_on"], props["as_built"]) == (
        "completed", 100, "2022-11-01", True)
    assert r.json()["geometry"]["coordinates"] == as_built["coordinates"]
    with lc_engine.connect() as conn:
        assert conn.execute(text("SELECT actual_start FROM branch_road WHERE id = :id"),
                            {"id": road}).scalar() == date(2022, 6, 1)

    h = api.get(f"/api/roads/{road}/history").json()
    assert h["status"] == "completed"
    assert [(e["from_status"], e["to_status"], e["progress_pct"]) for e in h["items"]] == [
        ("proposed", "surveyed", 0), ("surveyed", "funded", 0), ("funded", "under_construction", 0),
        ("under_construction", "under_construction", 30), ("under_construction", "under_construction", 75),
        ("under_construction", "completed", 100),
    ]
    first = h["items"][0]
    assert first["actor"] == "binh-nghi-post" and first["note"] == "khảo sát thực địa"
    assert first["occurred_at"].startswith("2022-03-10T02:00:00")
    assert first["evidence"]["photos"] == ["att:11"] and first["evidence"]["survey_team"] == "Sở Ngoại vụ"
    assert first["reported_from"] == {"type": "Point", "coordinates": [106.55, 22.45]}
    with lc_engine.connect() as conn:
        audits = conn.execute(text("SELECT count(*) FROM audit_log WHERE target_table = 'branch_road' "
                                   "AND target_id = :id"), {"id": str(road)}).scalar()
    assert audits == 6


def test_surveyed_with_a_note_keeps_the_planned_line(api, world, site):
    post, marker = site
    road = world.road(marker, post)
    before = api.get(f"/api/roads/{road}").json()["geometry"]
    r = move(api, road, "surveyed", note="tuyến dự kiến phù hợp")
    assert r.status_code == 200 and r.json()["geometry"] == before


def test_override_funds_before_commitments_and_is_recorded(api, world, site):
    post, marker = site
    road = world.road(marker, post, status="surveyed")
    r = move(api, road, "funded", override_reason="ngân sách tỉnh bảo lãnh", note="quyết định 12/QĐ")
    assert r.status_code == 200
    ev = api.get(f"/api/roads/{road}/history").json()["items"][-1]["evidence"]
    assert ev == {"override_reason": "ngân sách tỉnh bảo lãnh", "estimated_cost": 1_200_000_000, "committed": 0}


@pytest.mark.parametrize("status,to,body,expected", [
    ("completed", "inaugurated", {"note": "cắt băng"}, "only through an inauguration record"),
    ("surveyed", "funded", {}, "funded needs commitments of 1,200,000,000 VND; 0 VND committed"),
    ("funded", "completed", {}, "completed needs a road that is under_construction"),
    ("under_construction", "completed", {"evidence": {"completed_on": "2022-11-01"}},
     "completed needs an as-built line"),
    ("proposed", "surveyed", {"evidence": {"surveyed_line": {"type": "LineString",
                                                             "coordinates": [[22.3, 106.5], [22.54, 106.59]]}}},
     "longitude and latitude look swapped"),
    ("proposed", "surveyed", {"evidence": {"surveyed_line": {"type": "Point", "coordinates": [106.5, 22.3]}}},
     "expected a LineString, got Point"),
    ("proposed", "surveyed", {"evidence": {"surveyed_line": {
        "type": "LineString", "coordinates": [[106.40, 22.30], [106.45, 22.35]]}}},
     "the line does not reach marker"),
    ("funded", "suspended", {}, "suspended needs a note saying why"),
    ("funded", "under_construction", {"occurred_at": "2022-06-01T08:00:00"}, "occurred_at"),
])
def test_refused_transitions_leave_the_data_as_it_was(api, world, site, lc_engine, status, to, body, expected):
    post, marker = site
    road = world.road(marker, post, status=status)
    before = snapshot(lc_engine)
    r = move(api, road, to, **body)
    assert r.status_code == 422
    assert expected in r.json()["message"]
    assert snapshot(lc_engine) == before


def test_unknown_road_is_404(api):
    assert move(api, 999_999, "surveyed", note="x").status_code == 404
    assert api.get("/api/roads/999999/history").status_code == 404
    assert api.post("/api/roads/999999/progress", json={"progress_pct": 5}).status_code == 404


def test_suspend_and_resume_to_where_it_was(api, world, site):
    post, marker = site
    road = world.road(marker, post, status="funded")
    assert move(api, road, "suspended", note="mùa mưa, sạt lở").status_code == 200
    r = move(api, road, "under_construction")
    assert r.status_code == 422 and "resumes only to funded" in r.json()["message"]
    r = move(api, road, "funded", note="hết mùa mưa")
    assert r.status_code == 200 and r.json()["properties"]["status"] == "funded"
    assert world.events(road) == [("funded", "suspended"), ("suspended", "funded")]
    assert api.get(f"/api/roads/{road}/history").json()["items"][-1]["evidence"] == {"resumed": True}
    # suspended twice: it resumes to the latest status it was suspended from
    assert move(api, road, "under_construction").status_code == 200
    assert move(api, road, "suspended", note="thiếu vật liệu").status_code == 200
    assert move(api, road, "funded").status_code == 422
    assert move(api, road, "under_construction").status_code == 200


def test_a_suspended_road_without_history_resumes_through_the_guards(api, world, site):
    post, marker = site
    road = world.road(marker, post, status="suspended")  # imported as suspended: no history
    r = move(api, road, "completed")
    assert r.status_code == 422 and r.json()["message"].startswith("completed needs a completion date")
    assert move(api, road, "surveyed", note="tuyến dự kiến").status_code == 200


def test_cancelled_is_final(api, world, site):
    post, marker = site
    road = world.road(marker, post, status="under_construction")
    assert move(api, road, "cancelled", note="tuyến khác thay thế").status_code == 200
    r = move(api, road, "suspended", note="x")
    assert r.status_code == 422 and r.json()["message"].endswith("is cancelled; that status is final")


def test_progress_only_under_construction_and_forward(api, world, site, lc_engine):
    post, marker = site
    road = world.road(marker, post, status="funded")
    before = snapshot(lc_engine)
    r = api.post(f"/api/roads/{road}/progress", json={"progress_pct": 10})
    assert r.status_code == 422 and "only while a road is under_construction" in r.json()["message"]
    assert snapshot(lc_engine) == before

    assert move(api, road, "under_construction").status_code == 200
    assert api.post(f"/api/roads/{road}/progress", json={"progress_pct": 60, "note": "đổ bê tông"}).status_code == 200
    before = snapshot(lc_engine)
    for body, expected in [
        ({"progress_pct": 40}, "below the last reported 60%"),
        ({"progress_pct": 40, "correction": True}, "a correction needs a note"),
        ({"progress_pct": 101}, "progress_pct"),
        ({"progress_pct": -1}, "progress_pct"),
        ({"progress_pct": "nhiều"}, "progress_pct"),
    ]:
        r = api.post(f"/api/roads/{road}/progress", json=body)
        assert r.status_code == 422
        assert expected in r.json()["message"]
        assert snapshot(lc_engine) == before
    r = api.post(f"/api/roads/{road}/progress", json={"progress_pct": 45, "correction": True,
                                                      "note": "báo cáo trước tính nhầm"})
    assert r.status_code == 200 and r.json()["properties"]["progress_pct"] == 45
    last = api.get(f"/api/roads/{road}/history").json()["items"][-1]
    assert last["progress_pct"] == 45 and last["evidence"] == {"correction": True, "previous_pct": 60}


# ---------------------------------------------------------------------------- no lost race


def _waiting_on_lock(engine: Engine, pid: int) -> bool:
    with engine.connect() as conn:
        return conn.execute(text("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = :p"),
                            {"p": pid}).scalar() is True


def test_two_concurrent_transitions_one_wins_one_gets_409(world, site, lc_engine):
    """A applies its transition and holds the row; B read the same status and tries too.
    B's conditional UPDATE waits for A, then matches no row: 409, nothing written by B."""
    post, marker = site
    road = world.road(marker, post, status="funded")
    outcome = {}

    with lc_engine.connect() as conn_a, lc_engine.connect() as conn_b:
        pid_b = conn_b.execute(text("SELECT pg_backend_pid()")).scalar()
        conn_b.commit()
        tx_a = conn_a.begin()
        lifecycle.apply_transition(conn_a, road, req("under_construction"), "A")

        def b():
            try:
                with conn_b.begin():
                    lifecycle.apply_transition(conn_b, road, req("suspended", note="B"), "B")
                outcome["b"] = "ok"
            except Conflict as exc:
                outcome["b"] = exc.message

        thread = threading.Thread(target=b)
        thread.start()
        deadline = time.monotonic() + 10
        while not _waiting_on_lock(lc_engine, pid_b) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _waiting_on_lock(lc_engine, pid_b), "B should be waiting for A's row lock"
        tx_a.commit()
        thread.join(10)

    assert outcome["b"] == "the road's status changed meanwhile, now under_construction"
    assert world.status(road) == "under_construction"
    assert world.events(road) == [("funded", "under_construction")]


def test_two_requests_at_once_through_the_api(api, world, site, lc_engine):
    """Both requests fire together; whatever the timing, exactly one moves the road."""
    post, marker = site
    for _ in range(3):
        road = world.road(marker, post, status="funded")
        barrier = threading.Barrier(2)
        codes = []

        def fire(to, note):
            barrier.wait()
            codes.append(move(api, road, to, note=note).status_code)

        threads = [threading.Thread(target=fire, args=("under_construction", who)) for who in "AB"]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        # the loser gets 412 if its If-Match named the version the winner replaced, 409 if it
        # read `funded` before the winner committed, else 422 "already"
        assert sorted(codes)[0] == 200 and sorted(codes)[1] in (409, 412, 422)
        assert world.events(road) == [("funded", "under_construction")]


def test_a_failure_after_the_write_rolls_the_whole_request_back(api, world, site, lc_engine, monkeypatch):
    """The status change, its history row and the audit row share the request's transaction."""
    post, marker = site
    road = world.road(marker, post, status="funded")

    def broken_audit(*args, **kwargs):
        raise InvalidInput("audit unavailable")

    monkeypatch.setattr(lifecycle, "audit", broken_audit)
    before = snapshot(lc_engine)
    r = move(api, road, "under_construction")
    assert r.status_code == 422 and r.json()["message"] == "audit unavailable"
    assert snapshot(lc_engine) == before
    assert world.status(road) == "funded" and world.events(road) == []
