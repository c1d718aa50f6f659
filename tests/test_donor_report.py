"""The printable donor report: a group's roads (members' funding included), money by kind,
progress, inaugurations with photos and a server-drawn map; Vietnamese by default."""

from __future__ import annotations

import base64
import io
import re

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import create_engine, text

from geo_api import db
from geo_api.demo import load_demo
from geo_api.domain.attachments import StagedUpload, Store, save_attachment
from geo_api.settings import Settings, configure

DAO_VIEN_ROADS = ["DN-LS-0001", "DN-LS-0002", "DN-LS-0003", "DN-LS-0004"]


@pytest.fixture(scope="module")
def report_db(fresh_database, tmp_path_factory):
    """A demo database of its own, with a photo of the Đào Viên ceremony in a store of its own."""
    url = fresh_database()
    db.upgrade(url)
    eng = create_engine(url)
    load_demo(eng)
    store = Store(tmp_path_factory.mktemp("attachments"))
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, format="PNG")
    staged = StagedUpload(store, 10**6)
    staged.open("cat-bang-khanh-thanh.png", "image/png")
    staged.write(buf.getvalue())
    with eng.connect() as conn:
        ceremony = conn.execute(text("SELECT i.id FROM inauguration i JOIN inauguration_road ir "
                                     "ON ir.inauguration_id = i.id JOIN branch_road r ON r.id = ir.road_id "
                                     "WHERE r.code = 'DN-LS-0001'")).scalar_one()
        ids = dict(conn.execute(text("SELECT code, id FROM donor")).all())
    save_attachment(eng, store, staged, owner_kind="inauguration", owner_id=ceremony,
                    caption="Cắt băng khánh thành tại Đào Viên", actor="test")
    yield url, eng, store, ids
    eng.dispose()


@pytest.fixture(scope="module")
def report_client(report_db):
    url, _, store, _ = report_db
    from geo_api.main import create_app

    settings = Settings()
    settings.files.attachments_dir = store.root
    with TestClient(create_app(url, settings)) as c:
        yield c
    configure()


def vi_money(n) -> str:
    return f"{int(n):,}".replace(",", ".")


def test_cluster_report_has_the_dao_vien_roads_members_money_photo_and_map(report_client, report_db):
    _, eng, _, ids = report_db
    r = report_client.get(f"/api/reports/donors/{ids['CTD-THTH-LS']}.html")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert '<html lang="vi">' in page and "Báo cáo nhà tài trợ" in page and "@page" in page
    assert "Cụm thi đua các cơ quan tham mưu tổng hợp tỉnh Lạng Sơn" in page
    for code in DAO_VIEN_ROADS:
        assert code in page
    assert "Sở Kế hoạch và Đầu tư tỉnh Lạng Sơn" in page and "Cụm trưởng" in page
    with eng.connect() as conn:
        totals = dict(conn.execute(text("""
            SELECT f.kind::text, sum(f.amount) FROM funding_tx f
            WHERE f.donor_id IN (SELECT member_id FROM donor_member WHERE group_id = :g) OR f.donor_id = :g
            GROUP BY f.kind"""), {"g": ids["CTD-THTH-LS"]}).all())
        roads = conn.execute(text("""
            SELECT DISTINCT r.code FROM branch_road r JOIN funding_tx f ON f.road_id = r.id
            WHERE f.donor_id IN (SELECT member_id FROM donor_member WHERE group_id = :g)"""),
                             {"g": ids["CTD-THTH-LS"]}).scalars().all()
    assert set(DAO_VIEN_ROADS) <= set(roads)
    assert totals["commitment"] > 0
    for kind, label in (("pledge", "Đăng ký ủng hộ"), ("commitment", "Cam kết"),
                        ("disbursement", "Đã trao (giải ngân)")):
        row = re.search(rf"<td>{re.escape(label)}</td><td class=\"n\">([\d.]+)</td>", page)
        assert row and row[1] == vi_money(totals[kind]), kind
    assert "Lễ khánh thành 04 đường nhánh kiểm tra cột mốc quốc giới" in page and "16/11/2022" in page
    assert "Cắt băng khánh thành tại Đào Viên" in page
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 2  # the map and the ceremony photo
    sizes = sorted(Image.open(io.BytesIO(base64.b64decode(b))).size for b in images)
    assert sizes[0] == (64, 48) and sizes[1][0] > 600  # the photo as uploaded; a print-size map


def test_english_report(report_client, report_db):
    _, _, _, ids = report_db
    page = report_client.get(f"/api/reports/donors/{ids['CTD-THTH-LS']}.html", params={"lang": "en"}).text
    assert '<html lang="en">' in page and "Donor report" in page and "Inaugurated" in page
    assert "Department of Planning and Investment, Lạng Sơn" in page  # members' English names
    assert re.search(r"<td class=\"n\">\d{1,3}(,\d{3})+</td>", page)


def test_a_member_report_counts_only_its_own_money(report_client, report_db):
    _, eng, _, ids = report_db
    member = ids["LS-SO-KHDT"]
    with eng.connect() as conn:
        own = conn.execute(text("SELECT sum(amount) FROM funding_tx WHERE donor_id = :d AND kind = 'commitment'"),
                           {"d": member}).scalar_one()
    page = report_client.get(f"/api/reports/donors/{member}.html").text
    row = re.search(r"<td>Cam kết</td><td class=\"n\">([\d.]+)</td>", page)
    assert row[1] == vi_money(own)
    assert "Thành viên" not in page  # not a group
    assert "DN-LS-0001" in page


def test_a_donor_without_money_gets_an_empty_report_without_map(report_client, report_db):
    _, eng, _, _ = report_db
    with eng.connect() as conn:
        idle = conn.execute(text("SELECT d.id FROM donor d WHERE NOT d.is_group AND NOT EXISTS "
                                 "(SELECT 1 FROM funding_tx f WHERE f.donor_id = d.id) "
                                 "AND NOT EXISTS (SELECT 1 FROM inauguration_donor i WHERE i.donor_id = d.id) "
                                 "LIMIT 1")).scalar()
        if idle is None:
            idle = conn.execute(text("INSERT INTO donor (code, name, kind) VALUES ('D-IDLE', 'Nhà hảo tâm', "
                                     "'person') RETURNING id")).scalar_one()
            conn.commit()
    page = report_client.get(f"/api/reports/donors/{idle}.html").text
    assert "Chưa có." in page and "data:image/png" not in page


def test_unknown_donor_and_language(report_client):
    assert report_client.get("/api/reports/donors/999999.html").status_code == 404
    assert report_client.get("/api/reports/donors/1.html", params={"lang": "fr"}).status_code == 422
