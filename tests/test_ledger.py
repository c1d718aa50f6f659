"""The funding ledger: amounts, ledger rules, idempotency, concurrency and the summaries."""

from __future__ import annotations

import csv
import io
import threading
import time
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient

from support.api_client import ApiClient
from sqlalchemy import create_engine, text

from geo_api.domain import ledger
from geo_api.errors import InvalidInput
from geo_api.schemas.ledger import MAX_VND, FundingCreate
from support.world import World, migrated_database, snapshot

TABLES = ("funding_tx", "audit_log")


@pytest.fixture(scope="module")
def ledger_url(fresh_database):
    return migrated_database(fresh_database)


@pytest.fixture(scope="module")
def ledger_engine(ledger_url):
    eng = create_engine(ledger_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def api(ledger_url):
    from geo_api.main import create_app

    with ApiClient(create_app(ledger_url), ledger_url, role="planner", username="so-tai-chinh") as c:
        yield c


@pytest.fixture(scope="module")
def world(ledger_engine):
    return World(ledger_engine)


@pytest.fixture
def road(world):
    post = world.post()
    marker = world.marker((106.5905, 22.5492), post_id=post)
    return world.road(marker, post, estimate=1_200_000_000)


@pytest.fixture(scope="module")
def donor(world):
    return world.donor("Văn phòng UBND tỉnh")


def tx(**kw):
    body = {"kind": "pledge", "amount": 100_000_000, "tx_date": "2022-03-01"}
    body.update(kw)
    return body


# ---------------------------------------------------------------------------- amounts


@pytest.mark.parametrize("amount", [
    1.5, 1_200_000_000.25, -5, 0, "abc", "1,000,000", "1e9", "", "-100", True, None, [1],
    10**15 + 1, "1000000000000001", "NaN", {"amount": 5},
], ids=repr)
def test_bad_amounts_are_refused_and_nothing_is_written(api, ledger_engine, road, donor, amount):
    before = snapshot(ledger_engine, TABLES)
    body = tx(donor_id=donor, road_id=road, amount=amount)
    r = api.post("/api/funding", content=_json(body), headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["message"].startswith("amount: ")
    assert snapshot(ledger_engine, TABLES) == before


def _json(body):
    import json

    return json.dumps(body, allow_nan=True)


@pytest.mark.parametrize("amount,stored", [
    (1_200_000_000, 1_200_000_000), ("1200000000", 1_200_000_000), (1_200_000_000.0, 1_200_000_000),
    (" 500000 ", 500_000), (10**15, 10**15), ("999999999999999", 999_999_999_999_999), (1, 1),
], ids=repr)
def test_whole_amounts_are_stored_exactly(api, road, donor, amount, stored):
    r = api.post("/api/funding", json=tx(donor_id=donor, road_id=road, amount=amount))
    assert r.status_code == 201, r.text
    assert r.json()["amount"] == stored
    again = api.get(r.headers["Location"]).json()
    assert again == r.json()


def test_money_reasons_are_specific(api, road, donor):
    def said(amount):
        return api.post("/api/funding", json=tx(donor_id=donor, road_id=road, amount=amount)).json()["message"]

    assert "fractional part" in said(0.5)
    assert "must be positive" in said(-1)
    assert "at most 10^15" in said(2 * MAX_VND)
    assert "digits only" in said("một tỷ")


# ---------------------------------------------------------------------------- ledger rules


def refused(api, ledger_engine, body, expected: str):
    before = snapshot(ledger_engine, TABLES)
    r = api.post("/api/funding", json=body)
    assert r.status_code == 422, r.text
    said = r.json()["message"]
    assert expected in said, said
    assert snapshot(ledger_engine, TABLES) == before
    return said


def test_request_shape_is_checked(api, ledger_engine, road, donor, world):
    refused(api, ledger_engine, tx(donor_id=donor), "needs road_id or campaign_id")
    refused(api, ledger_engine, tx(donor_id=donor, road_id=road, kind="gift"), "kind")
    refused(api, ledger_engine, tx(donor_id=donor, road_id=road, tx_date="16/11/2022"), "tx_date")
    refused(api, ledger_engine, tx(donor_id=donor, road_id=road, amout=5), "amout")
    refused(api, ledger_engine, tx(donor_id=999_999, road_id=road), "donor 999999 does not exist")
    refused(api, ledger_engine, tx(donor_id=donor, road_id=999_999), "branch road 999999 does not exist")
    refused(api, ledger_engine, tx(donor_id=donor, campaign_id=999_999), "campaign 999999 does not exist")
    tomorrow = (date.today() + timedelta(days=2)).isoformat()
    refused(api, ledger_engine, tx(donor_id=donor, road_id=road, tx_date=tomorrow), "is in the future")


def test_expenditure_needs_a_road_and_cannot_exceed_disbursements(api, ledger_engine, road, donor, world):
    campaign = world.campaign()
    refused(api, ledger_engine, tx(donor_id=donor, campaign_id=campaign, kind="expenditure"),
            "an expenditure names the road")
    world.fund(donor, "commitment", 500_000_000, road)
    world.fund(donor, "disbursement", 300_000_000, road)
    world.fund(donor, "expenditure", 100_000_000, road)
    said = refused(api, ledger_engine, tx(donor_id=donor, road_id=road, kind="expenditure", amount=250_000_000),
                   "would exceed what was disbursed")
    assert said.endswith("300,000,000 VND disbursed, 100,000,000 VND already spent")
    ok = api.post("/api/funding", json=tx(donor_id=donor, road_id=road, kind="expenditure", amount=200_000_000))
    assert ok.status_code == 201  # exactly what was disbursed


def test_disbursement_must_be_covered_by_the_donors_commitment(api, ledger_engine, road, world):
    a, b = world.donor("Sở Tư pháp"), world.donor("Sở Nội vụ")
    said = refused(api, ledger_engine, tx(donor_id=a, road_id=road, kind="disbursement"),
                   "not covered by its commitments")
    assert "0 VND committed" in said and "record the commitment first" in said
    world.fund(b, "commitment", 1_000_000_000, road)
    refused(api, ledger_engine, tx(donor_id=a, road_id=road, kind="disbursement"), "not covered")  # b's, not a's
    world.fund(a, "commitment", 150_000_000, road)
    assert api.post("/api/funding", json=tx(donor_id=a, road_id=road, kind="disbursement")).status_code == 201
    refused(api, ledger_engine, tx(donor_id=a, road_id=road, kind="disbursement"),
            "150,000,000 VND committed by the donor (with its group), 100,000,000 VND already disbursed")


def test_a_clusters_commitment_can_be_paid_by_its_members(api, ledger_engine, road, world):
    m1, m2, outsider = world.donor("Sở KH&ĐT"), world.donor("Sở Ngoại vụ"), world.donor("Công ty A")
    cluster = world.donor("Cụm thi đua", kind="cluster", members=(m1, m2))
    world.fund(cluster, "commitment", 600_000_000, road)
    assert api.post("/api/funding", json=tx(donor_id=m1, road_id=road, kind="disbursement",
                                            amount=400_000_000)).status_code == 201
    refused(api, ledger_engine, tx(donor_id=m2, road_id=road, kind="disbursement", amount=300_000_000), "not covered")
    assert api.post("/api/funding", json=tx(donor_id=m2, road_id=road, kind="disbursement",
                                            amount=200_000_000)).status_code == 201
    refused(api, ledger_engine, tx(donor_id=outsider, road_id=road, kind="disbursement", amount=1), "not covered")
    # nested: a bloc containing the cluster commits; a member of the cluster pays
    bloc = world.donor("Khối thi đua", kind="cluster", members=(cluster,))
    world.fund(bloc, "commitment", 50_000_000, road)
    assert api.post("/api/funding", json=tx(donor_id=m2, road_id=road, kind="disbursement",
                                            amount=50_000_000)).status_code == 201


def test_campaign_wide_money_follows_the_same_rule(api, ledger_engine, world):
    campaign, d = world.campaign(), world.donor("Ban Dân vận")
    refused(api, ledger_engine, tx(donor_id=d, campaign_id=campaign, kind="disbursement"), "not covered")
    world.fund(d, "commitment", 100_000_000, campaign_id=campaign)
    assert api.post("/api/funding", json=tx(donor_id=d, campaign_id=campaign, kind="disbursement")).status_code == 201


def test_a_cancelled_road_takes_no_new_money_but_past_spending_may_be_recorded(api, ledger_engine, world):
    post = world.post()
    road = world.road(world.marker((106.5905, 22.5492), post_id=post), post, status="cancelled")
    d = world.donor("Hội Chữ thập đỏ")
    world.fund(d, "commitment", 100_000_000, road)
    world.fund(d, "disbursement", 100_000_000, road)
    for kind in ("pledge", "commitment", "disbursement"):
        refused(api, ledger_engine, tx(donor_id=d, road_id=road, kind=kind), "is cancelled; it takes no new")
    assert api.post("/api/funding", json=tx(donor_id=d, road_id=road, kind="expenditure")).status_code == 201


def test_idempotency_key_records_money_once(api, ledger_engine, road, donor):
    body = tx(donor_id=donor, road_id=road, amount=77_000_000, reference="séc 01")
    first = api.post("/api/funding", json=body, headers={"Idempotency-Key": "phone-42"})
    assert first.status_code == 201
    before = snapshot(ledger_engine, TABLES)
    again = api.post("/api/funding", json=body, headers={"Idempotency-Key": "phone-42"})
    assert again.status_code == 201 and again.json() == first.json()  # the first response, again
    assert again.headers["location"] == first.headers["location"]
    other = api.post("/api/funding", json={**body, "amount": 78_000_000}, headers={"Idempotency-Key": "phone-42"})
    assert other.status_code == 422 and "already used" in other.json()["message"]
    assert snapshot(ledger_engine, TABLES) == before


def test_each_recorded_row_is_audited_with_its_actor(api, ledger_engine, road, donor):
    r = api.post("/api/funding", json=tx(donor_id=donor, road_id=road, amount=5_000_000))
    with ledger_engine.connect() as conn:
        actor, after = conn.execute(text("SELECT actor, after FROM audit_log WHERE target_table = 'funding_tx' "
                                         "AND target_id = :id"), {"id": str(r.json()["id"])}).one()
    assert actor == "so-tai-chinh" and after["amount"] == 5_000_000


def test_concurrent_disbursements_cannot_both_use_one_commitment(ledger_engine, road, world):
    """A holds the road locked; B's check waits, then sees A's row and is refused."""
    d = world.donor("Sở Tài chính")
    world.fund(d, "commitment", 1_000_000_000, road)
    body = FundingCreate(donor_id=d, road_id=road, kind="disbursement", amount=600_000_000, tx_date="2022-05-02")
    outcome = {}
    with ledger_engine.connect() as conn_a, ledger_engine.connect() as conn_b:
        pid_b = conn_b.execute(text("SELECT pg_backend_pid()")).scalar()
        conn_b.commit()
        tx_a = conn_a.begin()
        ledger.record(conn_a, body, "A")

        def b():
            try:
                with conn_b.begin():
                    ledger.record(conn_b, body, "B")
                outcome["b"] = "ok"
            except InvalidInput as exc:
                outcome["b"] = exc.message

        thread = threading.Thread(target=b)
        thread.start()
        waited = False
        for _ in range(500):
            with ledger_engine.connect() as c:
                waited = c.execute(text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :p"),
                                   {"p": pid_b}).scalar() == "Lock"
            if waited:
                break
            time.sleep(0.02)
        tx_a.commit()
        thread.join(10)
    assert waited, "B should have waited for A's lock on the road"
    assert "not covered by its commitments" in outcome["b"]
    with ledger_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM funding_tx WHERE donor_id = :d AND kind = 'disbursement'"),
                            {"d": d}).scalar() == 1


# ---------------------------------------------------------------------------- summaries


@pytest.fixture(scope="module")
def books(fresh_database):
    """A separate database with known books, so the summaries can be checked exactly."""
    url = migrated_database(fresh_database)
    eng = create_engine(url)
    w = World(eng)
    post_ls, post_cb = w.post(), w.post("Đồn Biên phòng Trà Lĩnh", province="Cao Bằng")
    r1 = w.road(w.marker((106.5905, 22.5492), post_id=post_ls), post_ls, estimate=1_200_000_000,
                status="under_construction", progress=20, code="LS-1")
    r2 = w.road(w.marker((106.45, 22.75), post_id=post_ls), post_ls, estimate=800_000_000, code="LS-2")
    r3 = w.road(w.marker((106.30, 22.86), province="Cao Bằng", post_id=post_cb), post_cb,
                estimate=500_000_000, status="completed", province="Cao Bằng", code="CB-1")
    m1, m2 = w.donor("Sở KH&ĐT"), w.donor("Sở Ngoại vụ")
    cluster = w.donor("Cụm thi đua", kind="cluster", members=(m1, m2))
    bloc = w.donor("Khối thi đua", kind="cluster", members=(cluster,))  # a group of groups
    other = w.donor("Công ty B", kind="company")
    camp = w.campaign(target=3_000_000_000)
    w.fund(cluster, "pledge", 1_500_000_000, r1, camp)
    w.fund(m1, "commitment", 700_000_000, r1, camp)
    w.fund(m2, "commitment", 500_000_000, r1, camp)
    w.fund(m1, "disbursement", 700_000_000, r1, camp)
    w.fund(m2, "disbursement", 300_000_000, r1, camp)
    w.fund(m1, "expenditure", 400_000_000, r1)
    w.fund(cluster, "commitment", 100_000_000, r2)
    w.fund(other, "commitment", 500_000_000, r3)
    w.fund(other, "disbursement", 500_000_000, r3)
    w.fund(other, "expenditure", 450_000_000, r3)
    w.fund(other, "pledge", 50_000_000, campaign_id=camp)
    from geo_api.main import create_app

    with TestClient(create_app(url)) as c:
        yield c, dict(r1=r1, r2=r2, r3=r3, m1=m1, m2=m2, cluster=cluster, bloc=bloc, other=other,
                       camp=camp)
    eng.dispose()


MONEY = ("pledged", "committed", "disbursed", "spent")


def pick(item, keys):
    return tuple(item[k] for k in keys)


def test_per_road_summary(books):
    c, ids = books
    items = {i["code"]: i for i in c.get("/api/reports/funding/roads").json()["items"]}
    assert pick(items["LS-1"], ("estimate",) + MONEY + ("gap", "progress_pct")) == (
        1_200_000_000, 1_500_000_000, 1_200_000_000, 1_000_000_000, 400_000_000, 0, 20)
    assert pick(items["LS-2"], ("estimate", "committed", "gap")) == (800_000_000, 100_000_000, 700_000_000)
    assert pick(items["CB-1"], MONEY + ("gap",)) == (0, 500_000_000, 500_000_000, 450_000_000, 0)
    only = c.get("/api/reports/funding/roads", params={"province": "Cao Bằng"}).json()["items"]
    assert [i["code"] for i in only] == ["CB-1"]
    assert c.get("/api/reports/funding/roads", params={"status": "built"}).status_code == 422


def test_per_donor_summary_includes_a_groups_members(books):
    c, ids = books
    items = {i["donor_id"]: i for i in c.get("/api/reports/funding/donors").json()["items"]}
    cluster = items[ids["cluster"]]
    assert cluster["is_group"] and cluster["members"] == 2
    assert pick(cluster, ("own_pledged", "own_committed", "own_disbursed", "own_spent")) == (
        1_500_000_000, 100_000_000, 0, 0)
    assert pick(cluster, MONEY) == (1_500_000_000, 1_300_000_000, 1_000_000_000, 400_000_000)
    assert pick(items[ids["m1"]], MONEY) == (0, 700_000_000, 700_000_000, 400_000_000)
    assert pick(items[ids["m1"]], MONEY) == pick(items[ids["m1"]], tuple("own_" + k for k in MONEY))
    assert cluster["roads"] == 2
    bloc = items[ids["bloc"]]
    assert pick(bloc, MONEY) == pick(cluster, MONEY) and pick(bloc, ("own_pledged", "members")) == (0, 1)
    one = c.get("/api/reports/funding/donors", params={"donor_id": ids["other"]}).json()["items"]
    assert [i["donor_id"] for i in one] == [ids["other"]]


def test_per_campaign_and_per_province_summaries(books):
    c, ids = books
    (camp,) = c.get("/api/reports/funding/campaigns").json()["items"]
    assert pick(camp, ("target_amount",) + MONEY + ("donors", "roads")) == (
        3_000_000_000, 1_550_000_000, 1_200_000_000, 1_000_000_000, 0, 4, 1)
    prov = {i["province"]: i for i in c.get("/api/reports/funding/provinces").json()["items"]}
    assert pick(prov["Lạng Sơn"], ("roads", "estimate") + MONEY + ("gap",)) == (
        2, 2_000_000_000, 1_550_000_000, 1_300_000_000, 1_000_000_000, 400_000_000, 700_000_000)
    assert pick(prov["Cao Bằng"], ("roads", "estimate", "committed", "gap")) == (1, 500_000_000, 500_000_000, 0)


def test_warnings_flag_money_ahead_of_progress(books):
    c, ids = books
    body = c.get("/api/reports/funding/warnings").json()
    # LS-1: 1,000,000,000 / 1,200,000,000 = 0.833 disbursed at 20 % progress -> lead 0.633
    assert body["threshold"] == 0.3
    assert [(i["code"], i["lead"]) for i in body["items"]] == [("LS-1", 0.633)]
    assert c.get("/api/reports/funding/warnings", params={"threshold": 0.7}).json()["items"] == []
    assert c.get("/api/reports/funding/warnings", params={"threshold": 1.5}).status_code == 422


def test_summaries_as_csv(books):
    c, _ = books
    r = c.get("/api/reports/funding/donors", params={"format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8"))))
    assert {"donor_id", "name", "pledged", "own_pledged"} <= set(rows[0])
    assert "Cụm thi đua" in {row["name"] for row in rows}
    assert c.get("/api/reports/funding/roads", params={"format": "xml"}).status_code == 422
