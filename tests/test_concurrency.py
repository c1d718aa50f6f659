"""No lost update: against a real server, many clients writing the same version at once."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine, text

from support.api_client import account_headers
from geo_api import db

N = 50


@pytest.fixture(scope="module")
def server(fresh_database):
    """A uvicorn server on a free loopback port, over its own database."""
    from geo_api.main import create_app

    url = fresh_database()
    db.upgrade(url)
    eng = create_engine(url)
    with eng.begin() as conn:
        post_id = conn.execute(text("""
            INSERT INTO border_post (code, name, province, geom) VALUES
            ('BN', 'Đồn Biên phòng Bình Nghi', 'Lạng Sơn', 'SRID=4326;POINT(106.52 22.45)') RETURNING id
        """)).scalar_one()
        road_id = conn.execute(text("""
            INSERT INTO branch_road (code, name, post_id, province, status, geom, estimated_cost)
            VALUES ('BN-1', 'Đường nhánh', :p, 'Lạng Sơn', 'under_construction',
                    'SRID=4326;LINESTRING(106.52 22.45, 106.53 22.46)', 1000) RETURNING id
        """), {"p": post_id}).scalar_one()
        donor_id = conn.execute(text("INSERT INTO donor (code, name, kind) VALUES ('D1', 'Sở Tài chính', "
                                     "'agency') RETURNING id")).scalar_one()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(create_app(url), host="127.0.0.1", port=port, log_level="warning",
                            limit_concurrency=200)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield {"base": f"http://127.0.0.1:{port}", "engine": eng, "post": post_id, "road": road_id,
           "donor": donor_id, "headers": account_headers(eng, "planner", username="ke-hoach")}
    srv.should_exit = True
    thread.join(10)
    eng.dispose()


def fire(n, request):
    """Send `request(client)` n times at once (all threads released together)."""
    barrier = threading.Barrier(n)
    with httpx.Client(timeout=60, limits=httpx.Limits(max_connections=n)) as client:
        def one(_):
            barrier.wait()
            return request(client)
        with ThreadPoolExecutor(n) as pool:
            return list(pool.map(one, range(n)))


def test_fifty_concurrent_updates_with_one_etag_one_wins(server):
    base, headers, post = server["base"], server["headers"], server["post"]
    etag = httpx.get(f"{base}/api/posts/{post}").headers["etag"]
    responses = fire(N, lambda c: c.patch(f"{base}/api/posts/{post}", headers={**headers, "If-Match": etag},
                                          json={"notes": "cập nhật đồng thời"}))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [412] * (N - 1), codes
    winner = next(r for r in responses if r.status_code == 200)
    assert winner.headers["etag"] == f'"{int(etag.strip(chr(34))) + 1}"'
    loser = next(r for r in responses if r.status_code == 412)
    assert "reload" in loser.json()["message"]
    with server["engine"].connect() as conn:
        version, updates = conn.execute(text(
            "SELECT version, (SELECT count(*) FROM audit_log WHERE target_table = 'border_post' "
            "AND action = 'update') FROM border_post WHERE id = :id"), {"id": post}).one()
    assert (version, updates) == (int(etag.strip('"')) + 1, 1)


def test_concurrent_progress_reports_on_one_version_one_wins(server):
    base, headers, road = server["base"], server["headers"], server["road"]
    etag = httpx.get(f"{base}/api/roads/{road}").headers["etag"]
    responses = fire(20, lambda c: c.post(f"{base}/api/roads/{road}/progress", headers={
        **headers, "If-Match": etag}, json={"progress_pct": 55}))
    assert sorted(r.status_code for r in responses) == [200] + [412] * 19
    with server["engine"].connect() as conn:
        events = conn.execute(text("SELECT count(*) FROM road_event WHERE road_id = :id"), {"id": road}).scalar()
    assert events == 1


def test_if_match_is_required_for_updates_and_transitions(server):
    base, headers, post, road = server["base"], server["headers"], server["post"], server["road"]
    with server["engine"].connect() as conn:
        before = conn.execute(text("SELECT version FROM branch_road WHERE id = :id"), {"id": road}).scalar()
    for method, url, body in (
        ("PATCH", f"/api/posts/{post}", {"notes": "x"}),
        ("DELETE", f"/api/posts/{post}", None),
        ("POST", f"/api/roads/{road}/transitions", {"to_status": "suspended", "note": "mưa lũ"}),
        ("POST", f"/api/roads/{road}/progress", {"progress_pct": 90}),
        ("PATCH", f"/api/roads/{road}", {"name": "y"}),
    ):
        r = httpx.request(method, base + url, headers=headers, json=body)
        assert r.status_code == 428, (method, url, r.text)
        assert "If-Match" in r.json()["message"]
        star = httpx.request(method, base + url, headers={**headers, "If-Match": "*"}, json=body)
        assert star.status_code == 428
        stale = httpx.request(method, base + url, headers={**headers, "If-Match": '"999"'}, json=body)
        assert stale.status_code == 412, (method, url, stale.text)
    with server["engine"].connect() as conn:
        after = conn.execute(text("SELECT version FROM branch_road WHERE id = :id"), {"id": road}).scalar()
    assert after == before


def test_concurrent_retries_with_one_idempotency_key_record_money_once(server):
    base, headers = server["base"], server["headers"]
    body = {"donor_id": server["donor"], "road_id": server["road"], "kind": "pledge",
            "amount": 5_000_000, "tx_date": "2024-01-05"}
    responses = fire(10, lambda c: c.post(f"{base}/api/funding", json=body,
                                          headers={**headers, "Idempotency-Key": "dien-thoai-7"}))
    assert {r.status_code for r in responses} == {201}
    assert len({r.text for r in responses}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 9
    with server["engine"].connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM funding_tx WHERE amount = 5000000")).scalar()
    assert rows == 1
