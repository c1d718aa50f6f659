"""Attachments: streamed multipart upload, type and size limits, content-addressed storage,
serving, deleting, and a GPX track as a road's as-built line.

Runs on its own database (roads near Lạng Sơn city, an event, a meeting, an inauguration)
and its own attachments directory.
"""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest
from support.api_client import ApiClient
from sqlalchemy import create_engine, text

from geo_api import db
from geo_api.domain import attachments as domain
from geo_api.domain.attachments import StagedUpload, Store
from geo_api.errors import PayloadTooLarge
from geo_api.routes import attachments as routes

LIMIT = 64 * 1024
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + os.urandom(2000)
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(500)
WEBP = b"RIFF\x00\x10\x00\x00WEBPVP8 " + os.urandom(300)
PDF = b"%PDF-1.7\n" + os.urandom(800)

# The planned line of road R-UC runs from (106.760, 21.850) to (106.770, 21.860).
TRACK = [(106.7601, 21.8501), (106.7630, 21.8532), (106.7660, 21.8561), (106.7699, 21.8598)]


def gpx(tracks=(TRACK,), extra: str = "", root: str = "gpx") -> bytes:
    trks = "".join(
        "<trk><name>as built</name><trkseg>"
        + "".join(f'<trkpt lat="{lat}" lon="{lon}"><ele>400</ele></trkpt>' for lon, lat in pts)
        + "</trkseg></trk>" for pts in tracks
    )
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} version="1.1" creator="test" '
            f'xmlns="http://www.topografix.com/GPX/1/1">{extra}{trks}</{root}>').encode()


@pytest.fixture(scope="module")
def env(fresh_database, tmp_path_factory):
    url = fresh_database()
    db.upgrade(url)
    eng = create_engine(url)
    with eng.begin() as conn:
        conn.execute(text("""
            INSERT INTO border_segment (code, neighbour_iso3, name_vi, name_en, geom) VALUES
            ('VN-CN', 'CHN', 'Việt Nam – Trung Quốc', 'Viet Nam – China',
             'SRID=4326;MULTILINESTRING((106.70 22.00, 106.80 22.10))');
            INSERT INTO border_post (code, name, province, geom) VALUES
            ('BN', 'Đồn Biên phòng Bình Nghi', 'Lạng Sơn', 'SRID=4326;POINT(106.76 21.85)');
            INSERT INTO branch_road (code, name, post_id, province, status, geom) SELECT c, n, p.id, 'Lạng Sơn',
                   CAST(s AS road_status), ST_GeomFromText(g, 4326)
            FROM border_post p, (VALUES
                ('R-UC', 'Đường nhánh mốc 1033', 'under_construction', 'LINESTRING(106.760 21.850, 106.770 21.860)'),
                ('R-PROP', 'Đường đề xuất', 'proposed', 'LINESTRING(106.760 21.850, 106.770 21.860)'),
                ('R-FAR', 'Đường xa', 'under_construction', 'LINESTRING(106.30 21.60, 106.31 21.61)')
            ) AS v(c, n, s, g);
            INSERT INTO road_event (road_id, to_status, actor, note)
            SELECT id, 'under_construction', 'binh-nghi', 'khởi công' FROM branch_road WHERE code = 'R-UC';
            INSERT INTO inauguration (title, held_on, place, province)
            VALUES ('Khánh thành 4 đường nhánh', '2022-11-16', 'Đào Viên', 'Lạng Sơn');
            INSERT INTO village (code, name, country, admin1, geom) VALUES
            ('V1', 'Khóm Duy Tân', 'VNM', 'Quảng Trị', 'SRID=4326;POINT(106.59 16.62)'),
            ('V2', 'Bản Phường', 'LAO', 'Savannakhet', 'SRID=4326;POINT(106.55 16.63)');
            INSERT INTO village_pair (vn_village_id, foreign_village_id)
            SELECT a.id, b.id FROM village a, village b WHERE a.code = 'V1' AND b.code = 'V2';
            INSERT INTO pair_meeting (pair_id, held_on, year, quarter) SELECT id, '2023-07-31', 2023, 2
            FROM village_pair;
        """))
        roads = dict(conn.execute(text("SELECT code, id FROM branch_road")).all())
        owners = {
            "road": roads["R-UC"],
            "road_event": conn.execute(text("SELECT id FROM road_event")).scalar(),
            "meeting": conn.execute(text("SELECT id FROM pair_meeting")).scalar(),
            "inauguration": conn.execute(text("SELECT id FROM inauguration")).scalar(),
        }
    store = Store(tmp_path_factory.mktemp("attachments"))
    from geo_api.main import create_app

    app = create_app(url)
    app.dependency_overrides[routes.get_store] = lambda: store
    app.dependency_overrides[routes.get_upload_limit] = lambda: LIMIT
    with ApiClient(app, eng, role="planner", username="binh-nghi") as client:
        yield {"client": client, "engine": eng, "store": store, "roads": roads, "owners": owners}
    eng.dispose()


@pytest.fixture
def client(env):
    return env["client"]


def files_in(store: Store) -> list[str]:
    return sorted(str(p.relative_to(store.root)) for p in store.root.rglob("*") if p.is_file())


def snapshot(env) -> tuple:
    """Attachment rows, road rows, road events, meetings, the audit count and the files."""
    with env["engine"].connect() as conn:
        rows = conn.execute(text("""
            SELECT (SELECT md5(COALESCE(string_agg(to_jsonb(a)::text, ',' ORDER BY id), '')) FROM attachment a),
                   (SELECT md5(string_agg(to_jsonb(r)::text, ',' ORDER BY id)) FROM branch_road r),
                   (SELECT count(*) FROM road_event), (SELECT count(*) FROM pair_meeting),
                   (SELECT count(*) FROM audit_log)
        """)).one()
    return (*rows, files_in(env["store"]))


def upload(client, content: bytes, ctype: str | None, filename: str = "x.jpg", owner_kind: str = "road",
           owner_id: int | None = None, caption: str | None = "ảnh hiện trường", env=None, **headers):
    data = {"owner_kind": owner_kind, "owner_id": str(owner_id if owner_id is not None
                                                       else env["owners"][owner_kind])}
    if caption is not None:
        data["caption"] = caption
    file = (filename, content, ctype) if ctype is not None else (filename, content)
    return client.post("/api/attachments", data=data, files={"file": file},
                       headers={"X-Actor": "binh-nghi", **headers})


def refused(env, status: int, reason: str, send) -> dict:
    """`send()` is refused with `status` and a reason, and nothing changed (rows or files)."""
    before = snapshot(env)
    r = send()
    assert r.status_code == status, r.text
    body = r.json()
    message = body["message"]
    assert reason.lower() in message.lower(), message
    assert snapshot(env) == before
    return body


# --- upload and serve -------------------------------------------------------------------------

def test_a_photo_is_stored_by_checksum_and_served_back(env, client):
    r = upload(client, JPEG, "image/jpeg", "mốc 1033.jpg", env=env)
    assert r.status_code == 201, r.text
    a = r.json()
    sha = hashlib.sha256(JPEG).hexdigest()
    assert r.headers["location"] == f"/api/attachments/{a['id']}"
    assert (a["owner_kind"], a["owner_id"], a["kind"]) == ("road", env["roads"]["R-UC"], "photo")
    assert (a["filename"], a["content_type"], a["size_bytes"]) == ("mốc 1033.jpg", "image/jpeg", len(JPEG))
    assert (a["sha256"], a["caption"], a["actor"]) == (sha, "ảnh hiện trường", "binh-nghi")
    assert (env["store"].root / sha[:2] / sha[2:4] / sha).read_bytes() == JPEG
    assert client.get(f"/api/attachments/{a['id']}").json() == a
    content = client.get(a["content_url"])
    assert content.status_code == 200 and content.content == JPEG
    assert content.headers["content-type"] == "image/jpeg"
    assert content.headers["etag"] == f'"{sha}"'
    assert content.headers["content-disposition"].startswith("inline")
    again = client.get(a["content_url"], headers={"If-None-Match": f'"{sha}"'})
    assert again.status_code == 304 and again.content == b""


@pytest.mark.parametrize("owner_kind", ["road", "road_event", "meeting", "inauguration"])
@pytest.mark.parametrize("content,ctype,name,kind", [
    (PNG, "image/png", "a.png", "photo"),
    (WEBP, "image/webp", "a.webp", "photo"),
    (PDF, "application/pdf", "biên bản.pdf", "document"),
    (gpx(), "application/gpx+xml", "track.gpx", "gpx"),
    (gpx(), "application/octet-stream", "track.gpx", "gpx"),  # browsers rarely know GPX
    (PNG, "application/octet-stream", "a.bin", "photo"),       # generic type: the bytes decide
])
def test_every_owner_kind_takes_every_allowed_type(env, client, owner_kind, content, ctype, name, kind):
    r = upload(client, content, ctype, name, owner_kind=owner_kind, env=env)
    assert r.status_code == 201, r.text
    a = r.json()
    assert (a["owner_kind"], a["owner_id"], a["kind"]) == (owner_kind, env["owners"][owner_kind], kind)
    served = client.get(a["content_url"])
    assert served.content == content and served.headers["content-type"] == a["content_type"]
    listed = client.get("/api/attachments", params={"owner_kind": owner_kind,
                                                    "owner_id": env["owners"][owner_kind]}).json()
    assert a in listed["items"]
    assert all(i["owner_kind"] == owner_kind for i in listed["items"])


def test_identical_content_is_stored_once(env, client):
    content = b"\xff\xd8\xff" + os.urandom(1000)
    first = upload(client, content, "image/jpeg", "a.jpg", env=env).json()
    second = upload(client, content, "image/jpeg", "b.jpg", owner_kind="inauguration", env=env).json()
    assert first["id"] != second["id"] and first["sha256"] == second["sha256"]
    sha = first["sha256"]
    assert [f for f in files_in(env["store"]) if f.endswith(sha)] == [f"{sha[:2]}/{sha[2:4]}/{sha}"]


ALLOWED = "image/jpeg, image/png, image/webp (photos); application/pdf (documents)"


@pytest.mark.parametrize("content,ctype,name,reason", [
    (b"GIF89a" + os.urandom(100), "image/gif", "a.gif", "image/gif is not accepted"),
    (JPEG, "image/png", "a.png", "declared as image/png but the content is image/jpeg"),
    (b"just some text", "image/jpeg", "a.jpg", "not of that type"),
    (b"<html><body>hi</body></html>", "text/html", "a.html", "text/html is not accepted"),
    (os.urandom(100), "application/octet-stream", "a.bin", "application/octet-stream is not accepted"),
    (PDF, "image/webp", "a.webp", "content is application/pdf"),
    (gpx(root="kml"), "application/gpx+xml", "a.gpx", "root element is <kml>"),
    (b"<gpx><trk></gpx>", "application/gpx+xml", "a.gpx", "not well-formed"),
    (b'<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY a "aaaa">]><gpx>&a;</gpx>',
     "application/gpx+xml", "a.gpx", "DOCTYPE"),
    (JPEG, "application/gpx+xml", "a.gpx", "not a GPX file"),
])
def test_types_are_checked_from_the_bytes(env, client, content, ctype, name, reason):
    body = refused(env, 415, reason, lambda: upload(client, content, ctype, name, env=env))
    assert ALLOWED in body["message"]


def test_too_large_a_file_is_refused_with_the_limit_and_leaves_nothing(env, client):
    big = b"\xff\xd8\xff" + b"\0" * LIMIT
    body = refused(env, 413, "limit of 65,536 bytes", lambda: upload(client, big, "image/jpeg", env=env))
    assert body["detail"]["limit_bytes"] == LIMIT
    assert not list(env["store"].tmp.iterdir())
    # A declared length far over the limit is refused before the body is read.
    refused(env, 413, "limit of 65,536 bytes", lambda: client.post(
        "/api/attachments", content=b"x", headers={
            "Content-Length": str(10 * LIMIT), "Content-Type": "multipart/form-data; boundary=b"}))


def test_the_upload_is_streamed_and_stops_at_the_limit(tmp_path):
    """A 1 GiB body is not read past the limit: the parser gives up after ~limit bytes."""
    boundary = b"XyZ"
    pulled = []

    async def body():
        yield (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
               b"Content-Type: image/jpeg\r\n\r\n\xff\xd8\xff")
        for _ in range(16 * 1024):  # 16 Ki chunks of 64 KiB
            pulled.append(1)
            yield b"\0" * 65536

    staged = StagedUpload(Store(tmp_path), limit=1024 * 1024)
    with pytest.raises(PayloadTooLarge, match="1,048,576 bytes"):
        asyncio.run(routes.read_upload(f"multipart/form-data; boundary={boundary.decode()}", body(), staged))
    assert len(pulled) <= 17
    staged.discard()
    assert not list((tmp_path / "tmp").iterdir())


@pytest.mark.parametrize("owner_kind,owner_id,status,reason", [
    ("road", 999999, 404, "branch road 999999 not found"),
    ("road_event", 999999, 404, "road event 999999 not found"),
    ("meeting", 999999, 404, "meeting 999999 not found"),
    ("inauguration", 999999, 404, "inauguration 999999 not found"),
    ("donor", 1, 422, "owner_kind"),
    ("road", 0, 422, "owner_id"),
])
def test_the_owner_must_exist(env, client, owner_kind, owner_id, status, reason):
    refused(env, status, reason, lambda: upload(client, JPEG, "image/jpeg", owner_kind=owner_kind,
                                                owner_id=owner_id, env=env))


def test_malformed_uploads_are_refused(env, client):
    owner = str(env["owners"]["road"])
    refused(env, 422, "no file part", lambda: client.post(
        "/api/attachments", data={"owner_kind": "road", "owner_id": owner}, files={"caption": (None, "x")}))
    refused(env, 422, "owner_id", lambda: client.post(
        "/api/attachments", data={"owner_kind": "road"}, files={"file": ("a.jpg", JPEG, "image/jpeg")}))
    refused(env, 422, "unexpected file", lambda: client.post(
        "/api/attachments", data={"owner_kind": "road", "owner_id": owner},
        files={"photo": ("a.jpg", JPEG, "image/jpeg")}))
    refused(env, 422, "extra", lambda: client.post(
        "/api/attachments", data={"owner_kind": "road", "owner_id": owner, "kind": "photo"},
        files={"file": ("a.jpg", JPEG, "image/jpeg")}))
    refused(env, 422, "empty", lambda: upload(client, b"", "image/jpeg", env=env))
    refused(env, 415, "multipart/form-data", lambda: client.post(
        "/api/attachments", json={"owner_kind": "road", "owner_id": owner}))


def test_a_failure_after_the_file_is_placed_leaves_no_orphan(env, client, monkeypatch):
    shared = upload(client, PDF, "application/pdf", "kept.pdf", env=env).json()

    def broken_audit(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(domain, "audit", broken_audit)
    before = snapshot(env)
    fresh = b"%PDF-1.4\n" + os.urandom(300)
    with pytest.raises(RuntimeError):
        upload(client, fresh, "application/pdf", env=env)
    with pytest.raises(RuntimeError):
        upload(client, PDF, "application/pdf", env=env)  # its file is shared: it must stay
    assert snapshot(env) == before
    assert (env["store"].path(shared["sha256"])).is_file()


def test_missing_attachments_are_404(env, client):
    for url in ("/api/attachments/999999", "/api/attachments/999999/content"):
        assert client.get(url).status_code == 404
    refused(env, 404, "branch road 999999", lambda: client.get(
        "/api/attachments", params={"owner_kind": "road", "owner_id": 999999}))


def test_delete_keeps_a_shared_file_until_its_last_attachment_goes(env, client):
    content = b"\x89PNG\r\n\x1a\n" + os.urandom(700)
    a = upload(client, content, "image/png", env=env).json()
    b = upload(client, content, "image/png", owner_kind="meeting", env=env).json()
    path = env["store"].path(a["sha256"])
    assert client.delete(f"/api/attachments/{a['id']}").status_code == 204
    assert path.is_file() and client.get(b["content_url"]).content == content
    assert client.delete(f"/api/attachments/{b['id']}").status_code == 204
    assert not path.exists()
    assert client.get(f"/api/attachments/{b['id']}").status_code == 404
    refused(env, 404, "attachment 999999 not found", lambda: client.delete("/api/attachments/999999"))


def test_a_meeting_with_an_attachment_is_not_deleted(env, client):
    upload(client, JPEG, "image/jpeg", owner_kind="meeting", env=env)
    refused(env, 409, "attachment(s); delete them first",
            lambda: client.delete(f"/api/meetings/{env['owners']['meeting']}"))


# --- GPX as-built ------------------------------------------------------------------------------

def gpx_attachment(env, content: bytes, owner_kind: str = "road", owner_id: int | None = None) -> int:
    r = upload(env["client"], content, "application/gpx+xml", "track.gpx", owner_kind=owner_kind,
               owner_id=owner_id, env=env)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def as_built(env, road: str, attachment_id: int, **headers):
    return env["client"].post(f"/api/roads/{env['roads'][road]}/as-built-from-gpx",
                              json={"attachment_id": attachment_id}, headers=headers)


def test_a_gpx_track_becomes_the_as_built_line(env, client):
    road_id = env["roads"]["R-UC"]
    before = client.get(f"/api/roads/{road_id}").json()
    # A track uploaded to one of the road's events counts as the road's; segments are joined.
    att = gpx_attachment(env, gpx(tracks=(TRACK[:2] + TRACK[1:2],)).replace(
        b"</trkseg><", b"</trkseg><trkseg>" + b"".join(
            f'<trkpt lat="{lat}" lon="{lon}"/>'.encode() for lon, lat in TRACK[2:]) + b"</trkseg><", 1),
        owner_kind="road_event")
    r = as_built(env, "R-UC", att, **{"X-Actor": "binh-nghi", "If-Match": f'"{before["properties"]["version"]}"'})
    assert r.status_code == 200, r.text
    f = r.json()
    assert f["properties"]["as_built"] is True
    assert f["properties"]["version"] == before["properties"]["version"] + 1
    assert r.headers["etag"] == f'"{f["properties"]["version"]}"'
    assert [tuple(c) for c in f["geometry"]["coordinates"]] == TRACK
    assert f["properties"]["length_m"] != before["properties"]["length_m"]
    with env["engine"].connect() as conn:
        event = conn.execute(text("SELECT from_status, to_status, actor, note, evidence FROM road_event "
                                  "WHERE road_id = :id ORDER BY id DESC LIMIT 1"), {"id": road_id}).one()
        planned = conn.execute(text("SELECT ST_AsText(geom) FROM branch_road WHERE id = :id"),
                               {"id": road_id}).scalar()
    assert event.from_status == event.to_status == "under_construction"
    assert event.actor == "binh-nghi" and f"GPX attachment {att}" in event.note
    assert event.evidence == {"as_built_from_gpx": att, "points": 4}
    assert planned == "LINESTRING(106.76 21.85,106.77 21.86)"  # the planned line is kept


@pytest.mark.parametrize("case,status,reason", [
    ("no_track", 422, "no track"),
    ("one_point", 422, "fewer than two distinct points"),
    ("self_crossing", 422, "crosses or overlaps itself"),
    ("far_away", 422, "km from the planned line"),
    ("photo", 422, "is a photo, not a GPX track"),
    ("other_road", 422, "not to branch road"),
    ("unknown_attachment", 422, "attachment 999999 does not exist"),
    ("proposed_road", 409, "once construction has started"),
    ("stale_version", 412, "version"),
    ("unknown_road", 404, "branch road 999999 not found"),
])
def test_unusable_tracks_are_refused_and_change_nothing(env, client, case, status, reason):
    road, headers = "R-UC", {}
    good = TRACK
    if case == "no_track":
        att = gpx_attachment(env, gpx(tracks=(), extra='<wpt lat="21.85" lon="106.76"/>'))
    elif case == "one_point":
        att = gpx_attachment(env, gpx(tracks=([TRACK[0], TRACK[0]], [TRACK[1]])))
    elif case == "self_crossing":
        att = gpx_attachment(env, gpx(tracks=([(106.760, 21.850), (106.765, 21.855), (106.765, 21.850),
                                               (106.760, 21.855)],)))
    elif case == "far_away":
        att = gpx_attachment(env, gpx(tracks=([(106.70, 21.80), (106.71, 21.81)],)))
    elif case == "photo":
        att = upload(client, JPEG, "image/jpeg", env=env).json()["id"]
    elif case == "other_road":
        att = gpx_attachment(env, gpx(), owner_id=env["roads"]["R-PROP"])
    elif case == "unknown_attachment":
        att = 999999
    elif case == "proposed_road":
        road = "R-PROP"
        att = gpx_attachment(env, gpx(), owner_id=env["roads"]["R-PROP"])
    elif case == "stale_version":
        att, headers = gpx_attachment(env, gpx(tracks=(good,))), {"If-Match": '"999"'}
    else:
        att = gpx_attachment(env, gpx())
        refused(env, status, reason, lambda: client.post("/api/roads/999999/as-built-from-gpx",
                                                         json={"attachment_id": att}))
        return
    refused(env, status, reason, lambda: as_built(env, road, att, **headers))
