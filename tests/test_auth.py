"""Accounts, logins, tokens, throttling, privacy of anonymous reads, limits, CORS, DB roles."""

from __future__ import annotations

import json

import io
import sys

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from geo_api import auth, cli, db
from geo_api.errors import TooManyRequests
from geo_api.settings import configure

PASSWORD = "núi-đá-1033-Đào-Viên"


@pytest.fixture(scope="module")
def app(database_url, demo_counts):
    from geo_api.main import create_app

    return create_app(database_url)


@pytest.fixture(scope="module")
def anon(app):
    with TestClient(app) as c:
        yield c


@pytest.fixture
def fresh_settings(monkeypatch):
    """Settings read again from the environment (and again after the test)."""
    def clear():
        configure()
    clear()
    yield monkeypatch
    monkeypatch.undo()
    clear()


def make_account(engine, username, role="planner", password=PASSWORD, **scope):
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM login_attempt WHERE username = :u"), {"u": username})
        if conn.execute(text("SELECT 1 FROM account WHERE username = :u"), {"u": username}).first():
            auth.set_password(conn, username, password)
            return
        auth.create_account(conn, username=username, role=role, password=password, **scope)


def login(client, username, password=PASSWORD):
    return client.post("/api/auth/login", json={"username": username, "password": password})


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


# ---------------------------------------------------------------------------- passwords, tokens


def test_passwords_are_argon2_hashes_and_tokens_are_stored_hashed(anon, engine):
    make_account(engine, "ke-hoach")
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT password_hash FROM account WHERE username = 'ke-hoach'")).scalar()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    r = login(anon, "Ke-Hoach ")  # usernames are case- and space-insensitive
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer" and body["account"]["role"] == "planner"
    assert r.headers["cache-control"] == "no-store"
    token = body["access_token"]
    with engine.connect() as conn:
        hashes = conn.execute(text("SELECT t.token_hash, t.expires_at - t.created_at FROM auth_token t "
                                   "JOIN account a ON a.id = t.account_id WHERE a.username = 'ke-hoach'")).all()
    assert auth.token_digest(token) in {h for h, _ in hashes}
    assert token not in {h for h, _ in hashes}
    assert all(abs(ttl.total_seconds() - 12 * 3600) < 5 for _, ttl in hashes)  # TRACKER_TOKEN_TTL_HOURS
    me = anon.get("/api/auth/me", headers=bearer(token))
    assert me.status_code == 200 and me.json()["username"] == "ke-hoach"


def test_wrong_or_unknown_logins_get_one_answer(anon, engine):
    make_account(engine, "ke-hoach-2")
    wrong = login(anon, "ke-hoach-2", "not the password")
    unknown = login(anon, "nobody-here", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["message"] == unknown.json()["message"]
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert "access_token" not in wrong.text


@pytest.mark.parametrize("headers", [
    {"Authorization": "Bearer not-a-real-token"},
    {"Authorization": "Basic a2U6aG9hY2g="},
    {"Authorization": "Bearer "},
])
def test_bad_tokens_are_401_even_on_public_reads(anon, headers):
    r = anon.get("/api/markers", params={"limit": 1}, headers=headers)
    assert r.status_code == 401 and "WWW-Authenticate" in r.headers
    assert "log in" in r.json()["message"] or "Bearer" in r.json()["message"]


def test_expired_tokens_and_logged_out_tokens_stop_working(anon, engine):
    make_account(engine, "het-han")
    token = login(anon, "het-han").json()["access_token"]
    assert anon.get("/api/auth/me", headers=bearer(token)).status_code == 200
    with engine.begin() as conn:
        conn.execute(text("UPDATE auth_token SET created_at = now() - interval '2 days', "
                          "expires_at = now() - interval '1 second' WHERE token_hash = :h"),
                     {"h": auth.token_digest(token)})
    assert anon.get("/api/auth/me", headers=bearer(token)).status_code == 401
    token = login(anon, "het-han").json()["access_token"]
    assert anon.post("/api/auth/logout", headers=bearer(token)).status_code == 204
    assert anon.get("/api/auth/me", headers=bearer(token)).status_code == 401


def test_throttling_per_username_and_address_with_retry_after(anon, engine, database_url, fresh_settings):
    fresh_settings.setenv("TRACKER_LOGIN_MAX_FAILURES", "3")
    configure()
    make_account(engine, "bi-chan")
    for _ in range(3):
        assert login(anon, "bi-chan", "wrong-password-x").status_code == 401
    r = login(anon, "bi-chan")  # even the right password waits now
    assert r.status_code == 429
    wait = int(r.headers["retry-after"])
    assert 1 <= wait <= 900 and f"{wait} s" in r.json()["message"]
    with engine.connect() as conn:
        recorded = conn.execute(text("SELECT count(*) FROM login_attempt WHERE username = 'bi-chan'")).scalar()
    assert recorded == 3  # throttled attempts are not counted again
    app_engine = db.get_engine(database_url)
    # another address is not throttled for this username
    token, _, account = auth.login(app_engine, "bi-chan", PASSWORD, "10.0.0.2")
    assert account.username == "bi-chan" and token
    with pytest.raises(TooManyRequests):
        auth.login(app_engine, "bi-chan", PASSWORD, "testclient")
    # once the window has passed, the right password works again
    with engine.begin() as conn:
        conn.execute(text("UPDATE login_attempt SET at = at - interval '1 hour' WHERE username = 'bi-chan'"))
    assert login(anon, "bi-chan").status_code == 200


def test_a_disabled_account_loses_its_tokens_and_cannot_log_in(anon, engine, auth_headers):
    make_account(engine, "tam-nghi", role="viewer")
    token = login(anon, "tam-nghi").json()["access_token"]
    admin = auth_headers("admin")
    accounts = anon.get("/api/accounts", headers=admin).json()
    target = next(a for a in accounts if a["username"] == "tam-nghi")
    r = anon.patch(f"/api/accounts/{target['id']}", headers=admin, json={"is_active": False})
    assert r.status_code == 200 and r.json()["is_active"] is False
    assert anon.get("/api/auth/me", headers=bearer(token)).status_code == 401
    assert login(anon, "tam-nghi").status_code == 401
    anon.patch(f"/api/accounts/{target['id']}", headers=admin, json={"is_active": True})
    assert login(anon, "tam-nghi").status_code == 200


def test_accounts_are_managed_by_admins_only(anon, auth_headers, engine):
    body = {"username": "don-bn-moi", "role": "post", "post": "1", "password": "mat-khau-rat-dai-9"}
    assert anon.post("/api/accounts", json=body).status_code == 401
    assert anon.post("/api/accounts", json=body, headers=auth_headers("planner")).status_code == 403
    r = anon.post("/api/accounts", json=body, headers=auth_headers("admin"))
    assert r.status_code == 201 and r.json()["post_id"] == 1 and "password" not in r.text
    assert anon.post("/api/accounts", json=body, headers=auth_headers("admin")).status_code == 409
    bad = anon.post("/api/accounts", json={**body, "username": "don-x", "post": None},
                    headers=auth_headers("admin"))
    assert bad.status_code == 422 and "post account needs a post" in bad.json()["message"]
    weak = anon.post("/api/accounts", json={**body, "username": "don-y", "password": "aaaaaaaaaaaa"},
                     headers=auth_headers("admin"))
    assert weak.status_code == 422 and "password" in weak.json()["message"]
    with engine.connect() as conn:
        audited = conn.execute(text("SELECT after FROM audit_log WHERE target_table = 'account' "
                                    "AND after->>'username' = 'don-bn-moi'")).scalar()
    assert audited["role"] == "post" and "password_hash" not in audited


def test_cli_creates_accounts_and_resets_passwords(anon, database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    configure()
    try:
        monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
        assert cli.main(["account", "create", "--username", "so-ngoai-vu", "--role", "donor",
                         "--donor-code", "1", "--password-stdin"]) == 0
        assert "so-ngoai-vu (donor, donor 1) created" in capsys.readouterr().out
        assert login(anon, "so-ngoai-vu").json()["account"]["donor_id"] == 1
        monkeypatch.setattr(sys, "stdin", io.StringIO("mot-mat-khau-moi-2024\n"))
        assert cli.main(["account", "reset-password", "--username", "so-ngoai-vu", "--password-stdin"]) == 0
        assert login(anon, "so-ngoai-vu").status_code == 401
        assert login(anon, "so-ngoai-vu", "mot-mat-khau-moi-2024").status_code == 200
        assert cli.main(["account", "create", "--username", "don-khong-co", "--role", "post",
                         "--post-code", "NO-SUCH-POST"]) == 1
        assert "does not exist" in capsys.readouterr().err
    finally:
        monkeypatch.undo()
        configure()


# ---------------------------------------------------------------------------- privacy


def test_anonymous_readers_get_rounded_marker_positions(anon, auth_headers, engine):
    exact = anon.get("/api/markers", params={"number": "1033", "segment": "VN-CN"},
                     headers=auth_headers("viewer")).json()["features"][0]
    public = anon.get("/api/markers", params={"number": "1033", "segment": "VN-CN"}).json()["features"][0]
    assert public["id"] == exact["id"]
    x, y = exact["geometry"]["coordinates"]
    assert public["geometry"]["coordinates"] != [x, y]
    for seen, true in zip(public["geometry"]["coordinates"], (x, y)):
        assert abs(seen - true) <= 0.0005 + 1e-9 and abs(seen * 1000 - round(seen * 1000)) < 1e-6
    assert public["properties"]["chainage_km"] is None
    assert anon.get(f"/api/markers/{exact['id']}").json() == public
    with engine.connect() as conn:
        chainage = conn.execute(text("SELECT chainage_km FROM marker WHERE id = :id"), {"id": exact["id"]}).scalar()
    assert exact["properties"]["chainage_km"] == (None if chainage is None else float(chainage))
    # a bbox around the exact point but off the rounded one does not find it anonymously
    box = f"{x - 1e-5},{y - 1e-5},{x + 1e-5},{y + 1e-5}"
    if abs(x - round(x, 3)) > 1e-5 or abs(y - round(y, 3)) > 1e-5:
        assert anon.get("/api/markers", params={"bbox": box}).json()["numberReturned"] == 0
    assert exact["id"] in [f["id"] for f in anon.get("/api/markers", params={"bbox": box},
                                                     headers=auth_headers("viewer")).json()["features"]]
    # posts are exact for everyone (the catalogue declares them public)
    post = anon.get("/api/posts", params={"limit": 1}).json()["features"][0]
    assert post == anon.get("/api/posts", params={"limit": 1}, headers=auth_headers("viewer")).json()["features"][0]


def test_anonymous_roads_stop_short_of_the_markers(anon, auth_headers, engine):
    """A road ends at its marker: anonymous readers get it cut back 100 m around every
    marker, signed-in readers the whole line."""
    exact = {f["id"]: f for f in anon.get("/api/roads", params={"limit": 1000},
                                          headers=auth_headers("viewer")).json()["features"]}
    public = {f["id"]: f for f in anon.get("/api/roads", params={"limit": 1000}).json()["features"]}
    assert exact.keys() == public.keys()
    changed = [i for i in exact if exact[i]["geometry"] != public[i]["geometry"]]
    assert len(changed) > len(exact) / 2  # almost every road reaches a marker
    with engine.connect() as conn:
        nearest = conn.execute(text("""
            SELECT min(ST_Distance(m.geom::geography, ST_GeomFromGeoJSON(:g)::geography))
            FROM marker m WHERE ST_DWithin(m.geom::geography, ST_GeomFromGeoJSON(:g)::geography, 500)
        """), {"g": json.dumps(public[changed[0]]["geometry"])}).scalar()
        ends = conn.execute(text("""
            SELECT min(ST_Distance(m.geom::geography, ST_GeomFromGeoJSON(:g)::geography))
            FROM marker m WHERE ST_DWithin(m.geom::geography, ST_GeomFromGeoJSON(:g)::geography, 500)
        """), {"g": json.dumps(exact[changed[0]]["geometry"])}).scalar()
    assert ends < 20 and (nearest is None or nearest >= 100)


# ---------------------------------------------------------------------------- limits, errors, CORS


def test_a_body_over_the_limit_is_refused_before_it_is_read(anon, auth_headers, fresh_settings, database_url):
    r = anon.post("/api/posts", content=b"x" * 10, headers={
        **auth_headers("planner"), "Content-Type": "application/json", "Content-Length": str(50 * 1024 * 1024)})
    assert r.status_code == 413 and "limit" in r.json()["message"]

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(40):
            yield b" " * 65536

    r = anon.post("/api/posts", content=chunks(), headers={**auth_headers("planner"),
                                                          "Content-Type": "application/json"})
    assert r.status_code == 413


def test_unexpected_errors_are_logged_not_shown(database_url, caplog):
    from geo_api.main import create_app

    app = create_app(database_url)

    @app.get("/api/boom")
    def boom():
        raise RuntimeError("secret internals at /srv/app.py line 42")

    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/api/boom")
    assert r.status_code == 500
    assert r.json() == {"message": "internal error; it has been logged", "code": "internal_error"}
    assert "secret" not in r.text and "Traceback" not in r.text
    assert "secret internals" in caplog.text


def test_cors_is_closed_unless_origins_are_configured(anon, database_url, fresh_settings):
    from geo_api.main import create_app

    origin = {"Origin": "https://evil.example"}
    assert "access-control-allow-origin" not in anon.get("/api/health", headers=origin).headers
    pre = anon.options("/api/roads", headers={**origin, "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in pre.headers
    fresh_settings.setenv("TRACKER_CORS_ORIGINS", "https://bandobiengioi.vn")
    configure()
    with TestClient(create_app(database_url)) as c:
        ok = c.get("/api/health", headers={"Origin": "https://bandobiengioi.vn"})
        other = c.get("/api/health", headers=origin)
    assert ok.headers["access-control-allow-origin"] == "https://bandobiengioi.vn"
    assert "access-control-allow-origin" not in other.headers


# ---------------------------------------------------------------------------- database roles


def _as_app_role(database_url):
    """A connection of the app's engine: SET ROLE tracker_app on connect."""
    eng = create_engine(database_url)
    db.run_as_app_role(eng)
    return eng


def test_the_app_role_cannot_change_or_delete_audit_rows(engine, database_url, demo_counts):
    eng = _as_app_role(database_url)
    try:
        with eng.begin() as conn:
            assert conn.execute(text("SELECT current_user")).scalar() == "tracker_app"
            conn.execute(text("INSERT INTO audit_log (actor, action, target_table) VALUES ('t', 'probe', 'x')"))
            assert conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'probe'")).scalar() >= 1
        for statement in ("UPDATE audit_log SET actor = 'someone else'",
                          "DELETE FROM audit_log WHERE action = 'probe'",
                          "TRUNCATE audit_log",
                          "ALTER TABLE audit_log DISABLE TRIGGER ALL",
                          "DROP TABLE audit_log"):
            with pytest.raises(Exception) as err, eng.begin() as conn:
                conn.execute(text(statement))
            assert isinstance(err.value.orig, (psycopg.errors.InsufficientPrivilege,)), statement
        with eng.begin() as conn:  # ordinary tables: full DML
            conn.execute(text("UPDATE border_post SET notes = notes WHERE id = 1"))
    finally:
        eng.dispose()
    with engine.connect() as conn:
        owners = set(conn.execute(text("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public' "
                                       "AND tablename <> 'spatial_ref_sys'")).scalars())
        me = conn.execute(text("SELECT current_user")).scalar()
        can_login = conn.execute(text("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'tracker_app'")).scalar()
    assert owners == {me} and can_login is False


def test_the_app_engine_runs_as_the_app_role(client):
    """The app's own engine: whatever DATABASE_URL logs in as, the session is tracker_app."""
    engine = client.app.state.engine
    with engine.connect() as conn:
        assert conn.execute(text("SELECT current_user")).scalar() == "tracker_app"


def test_audit_rows_name_the_account(engine, auth_headers, client):
    headers = auth_headers("planner", username="ghi-nhat-ky")
    r = client.post("/api/campaigns", headers=headers, json={"code": "AUDIT-1", "name": "Thử nhật ký"})
    assert r.status_code == 201, r.text
    with engine.connect() as conn:
        row = conn.execute(text("""
            SELECT l.actor, a.username FROM audit_log l JOIN account a ON a.id = l.account_id
            WHERE l.target_table = 'campaign' AND l.target_id = :id"""), {"id": str(r.json()["id"])}).one()
    assert tuple(row) == ("ghi-nhat-ky", "ghi-nhat-ky")
    log = client.get("/api/audit-log", params={"target_table": "campaign", "target_id": str(r.json()["id"])},
                     headers=headers).json()
    assert [(e["actor"], e["action"]) for e in log["items"]] == [("ghi-nhat-ky", "create")]
    assert client.get("/api/audit-log").status_code == 401


def test_downgrade_revokes_but_keeps_the_shared_role(fresh_database):
    url = fresh_database()
    db.upgrade(url)
    db.downgrade(url, "0003_road_network")
    eng = create_engine(url)
    try:
        with eng.connect() as conn:
            exists = conn.execute(text("SELECT count(*) FROM pg_roles WHERE rolname = 'tracker_app'")).scalar()
            grants = conn.execute(text("SELECT count(*) FROM information_schema.role_table_grants "
                                       "WHERE grantee = 'tracker_app'")).scalar()
            defaults = conn.execute(text("SELECT count(*) FROM pg_default_acl")).scalar()
    finally:
        eng.dispose()
    assert exists == 1 and grants == 0 and defaults == 0
    db.upgrade(url)


def test_settings_built_in_code_are_passed_to_the_app(database_url, demo_counts, engine):
    """One settings object, a section per area, given to create_app (no environment)."""
    from geo_api.main import create_app
    from geo_api.settings import SecuritySettings, Settings

    settings = Settings(security=SecuritySettings(login_max_failures=2, token_ttl_hours=1))
    make_account(engine, "cai-dat-rieng")
    try:
        with TestClient(create_app(database_url, settings)) as c:
            assert c.app.state.settings is settings
            ok = login(c, "cai-dat-rieng")
            assert "Max-Age=3600" in ok.headers["set-cookie"]
            assert [login(c, "cai-dat-rieng", "sai-mat-khau-x").status_code for _ in range(2)] == [401, 401]
            assert login(c, "cai-dat-rieng").status_code == 429
    finally:
        configure()
    assert Settings().security.login_max_failures == 5
