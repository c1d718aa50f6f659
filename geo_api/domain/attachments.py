"""Attachments: photos, documents and GPX tracks kept on disk, described by a row.

Storage is content-addressed: a file lives at ``<root>/ab/cd/<sha256>`` so identical uploads
share one file. An upload is first streamed to ``<root>/tmp`` (hashing and counting as it
goes, stopping at the size limit), its type is checked from its bytes, and only then is it
renamed into place and its row inserted.

Files and rows must never disagree, even with concurrent uploads and deletes of the same
content. Both take a session-level advisory lock on the SHA-256 and hold it until their
transaction has committed *and* the file operation is done, so a delete can never remove a
file that an upload has just decided to reuse. That is why `save_attachment` and
`delete_attachment` take an Engine and own their transaction.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import xml.parsers.expat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from shapely.geometry import LineString
from sqlalchemy import Connection, Engine, text

from geo_api import layers
from geo_api.domain.geometry import parse_geometry
from geo_api.domain.idempotency import IdempotentRequest
from geo_api.domain.resources import audit, lock_row
from geo_api.errors import (
    Conflict, InvalidInput, NotFound, PayloadTooLarge, UnsupportedMediaType,
)

# owner kind -> (attachment column, table, what users call it)
OWNERS: dict[str, tuple[str, str, str]] = {
    "road": ("road_id", "branch_road", "branch road"),
    "road_event": ("road_event_id", "road_event", "road event"),
    "meeting": ("meeting_id", "pair_meeting", "meeting"),
    "inauguration": ("inauguration_id", "inauguration", "inauguration"),
}
PHOTO_TYPES = ("image/jpeg", "image/png", "image/webp")
DOCUMENT_TYPES = ("application/pdf",)
GPX_TYPE = "application/gpx+xml"
ALLOWED_TYPES = (
    "image/jpeg, image/png, image/webp (photos); application/pdf (documents); "
    "application/gpx+xml or a .gpx file (GPS tracks)"
)
# Types clients send when they do not know better: then the bytes decide.
GENERIC_TYPES = ("", "application/octet-stream", "binary/octet-stream")
XML_TYPES = ("application/xml", "text/xml")

# Roads whose construction has started may get an as-built line.
AS_BUILT_STATUSES = ("under_construction", "completed", "inaugurated", "suspended")
# A GPX track farther than this from the planned line is almost surely the wrong file.
MAX_AS_BUILT_OFFSET_KM = 2.0

ATTACHMENT_JSON = """json_build_object(
    'id', a.id, 'owner_kind', a.owner_kind, 'owner_id', a.owner_id, 'kind', a.kind,
    'filename', a.filename, 'content_type', a.content_type, 'size_bytes', a.size_bytes,
    'sha256', a.sha256, 'caption', a.caption, 'created_at', a.created_at, 'actor', a.actor,
    'content_url', '/api/attachments/' || a.id || '/content')"""


@dataclass(frozen=True)
class Store:
    """The attachments directory: ``ab/cd/<sha256>`` files plus a ``tmp`` staging area."""

    root: Path

    def relative(self, sha256: str) -> str:
        return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"

    def path(self, sha256: str) -> Path:
        return self.root / self.relative(sha256)

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"


@dataclass
class StagedUpload:
    """An upload being written to the staging area; raises PayloadTooLarge past `limit` bytes."""

    store: Store
    limit: int
    filename: str = ""
    declared_type: str = ""
    size: int = 0
    head: bytes = b""
    _hash: "hashlib._Hash" = field(default_factory=hashlib.sha256)
    _file: object = None
    path: Path | None = None

    def open(self, filename: str, declared_type: str) -> None:
        if self._file is not None:
            raise InvalidInput("send exactly one file per upload")
        self.store.tmp.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.store.tmp, prefix="upload-")
        self._file = os.fdopen(fd, "wb")
        self.path = Path(name)
        self.filename = filename
        self.declared_type = declared_type.split(";")[0].strip().lower()

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise PayloadTooLarge(
                f"the file is larger than the upload limit of {self.limit:,} bytes "
                f"({self.limit / 1048576:.1f} MiB)", limit_bytes=self.limit,
            )
        if len(self.head) < 64:
            self.head += chunk[: 64 - len(self.head)]
        self._hash.update(chunk)
        self._file.write(chunk)

    def finish(self) -> str:
        """Close the staged file and return its SHA-256."""
        if self._file is None:
            raise InvalidInput("the upload has no file part (a form field named 'file')")
        self._file.close()
        if self.size == 0:
            raise InvalidInput("the file is empty")
        return self._hash.hexdigest()

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)


# --- what a file is, from its bytes -------------------------------------------------------

def sniff(head: bytes) -> str | None:
    """The media type the first bytes prove, for the binary types we accept."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def classify(staged: StagedUpload) -> tuple[str, str]:
    """(kind, content type) of a staged upload, or 415 naming what is allowed.

    A specific declared type must agree with the bytes; a generic one (octet-stream or
    none) lets the bytes decide. GPX is recognised by type or a .gpx name, then parsed.
    """
    declared, sniffed = staged.declared_type, sniff(staged.head)
    is_gpx_name = staged.filename.lower().endswith(".gpx")
    if declared == GPX_TYPE or (is_gpx_name and declared in GENERIC_TYPES + XML_TYPES):
        try:
            parse_gpx(staged.path)
        except GpxError as exc:
            raise UnsupportedMediaType(f"not a GPX file: {exc}; allowed: {ALLOWED_TYPES}") from None
        return "gpx", GPX_TYPE
    if declared in PHOTO_TYPES + DOCUMENT_TYPES:
        if sniffed != declared:
            found = f"the content is {sniffed}" if sniffed else "the content is not of that type"
            raise UnsupportedMediaType(
                f"the file is declared as {declared} but {found}; allowed: {ALLOWED_TYPES}"
            )
    elif declared in GENERIC_TYPES and sniffed:
        pass
    else:
        shown = declared or "no type"
        raise UnsupportedMediaType(f"{shown} is not accepted; allowed: {ALLOWED_TYPES}")
    return ("photo" if sniffed in PHOTO_TYPES else "document"), sniffed


class GpxError(ValueError):
    pass


@dataclass
class Gpx:
    tracks: list[list[tuple[float, float]]]  # per <trk>, (lon, lat) of all its <trkpt>


def parse_gpx(path: Path) -> Gpx:
    """Stream-parse a GPX file with expat: well-formed XML, a <gpx> root, no DTD/entities."""
    parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")
    stack: list[str] = []
    gpx = Gpx(tracks=[])

    def forbid_dtd(*_):
        raise GpxError("a DOCTYPE or entity declaration is not allowed")

    def start(name: str, attrs: dict[str, str]) -> None:
        local = name.rsplit(" ", 1)[-1]
        if not stack and local != "gpx":
            raise GpxError(f"the XML root element is <{local}>, not <gpx>")
        if local == "trk" and stack == ["gpx"]:
            gpx.tracks.append([])
        elif local == "trkpt" and stack == ["gpx", "trk", "trkseg"]:
            try:
                lat, lon = float(attrs["lat"]), float(attrs["lon"])
            except (KeyError, ValueError):
                raise GpxError(f"a track point on line {parser.CurrentLineNumber} lacks a numeric "
                               "lat/lon") from None
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise GpxError(f"track point on line {parser.CurrentLineNumber} is out of range "
                               f"(lat {lat}, lon {lon})")
            gpx.tracks[-1].append((lon, lat))
        stack.append(local)

    parser.StartDoctypeDeclHandler = forbid_dtd
    parser.EntityDeclHandler = forbid_dtd
    parser.StartElementHandler = start
    parser.EndElementHandler = lambda _name: stack.pop()
    try:
        with open(path, "rb") as f:
            parser.ParseFile(f)
    except xml.parsers.expat.ExpatError as exc:
        raise GpxError(f"not well-formed XML ({xml.parsers.expat.ErrorString(exc.code)} "
                       f"at line {exc.lineno})") from None
    return gpx


def gpx_line(gpx: Gpx) -> LineString:
    """The first track with two or more distinct points, its segments joined in order."""
    for points in gpx.tracks:
        distinct = [p for i, p in enumerate(points) if i == 0 or p != points[i - 1]]
        if len(distinct) >= 2:
            return LineString(distinct)
    if not gpx.tracks:
        raise InvalidInput("the GPX file has no track (<trk>); record the road as a track, not "
                           "waypoints or a route")
    raise InvalidInput("the GPX track has fewer than two distinct points")


def _check_line(line: LineString) -> LineString:
    """The shared geometry rules: valid, simple, in Viet Nam (within the margin)."""
    coords = [list(p) for p in line.coords]
    return parse_geometry({"type": "LineString", "coordinates": coords}, "LineString",
                          field="GPX track")


# --- rows and files -------------------------------------------------------------------------

@contextmanager
def _content_lock(conn: Connection, sha256: str) -> Iterator[None]:
    """A session advisory lock on one content hash, held across commit and file work."""
    key = {"k": sha256}
    conn.execute(text("SELECT pg_advisory_lock(hashtextextended(:k, 0))"), key)
    conn.commit()
    try:
        yield
    finally:
        try:
            if conn.in_transaction():
                conn.rollback()
            conn.execute(text("SELECT pg_advisory_unlock(hashtextextended(:k, 0))"), key)
            conn.commit()
        except Exception:  # a broken connection is discarded, which frees the lock too
            conn.invalidate()


def require_owner(conn: Connection, owner_kind: str, owner_id: int) -> None:
    if owner_kind not in OWNERS:
        raise InvalidInput(f"owner_kind must be one of: {', '.join(OWNERS)}")
    _, table, title = OWNERS[owner_kind]
    if conn.execute(text(f"SELECT 1 FROM {table} WHERE id = :id"), {"id": owner_id}).first() is None:
        raise NotFound(f"{title} {owner_id} not found")


def save_attachment(
    engine: Engine, store: Store, staged: StagedUpload, *, owner_kind: str, owner_id: int,
    caption: str | None, actor: str, idempotency: IdempotentRequest | None = None,
) -> str:
    """Check the type, move the staged file into the store and insert its row; JSON of the row.

    On any failure nothing is left: no row, no new file (the staged file is the caller's to
    discard). With `idempotency`, a retry of an upload already made returns the first
    answer (`idempotency.replayed` is then True) and stores nothing.
    """
    if owner_kind not in OWNERS:
        raise InvalidInput(f"owner_kind must be one of: {', '.join(OWNERS)}")
    sha256 = staged.finish()
    kind, content_type = classify(staged)
    target = store.path(sha256)
    with engine.connect() as conn, _content_lock(conn, sha256):
        created = False
        try:
            with conn.begin():
                if idempotency is not None and (stored := idempotency.claim(conn)) is not None:
                    return stored.body.decode()
                require_owner(conn, owner_kind, owner_id)
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(staged.path, target)
                    staged.path, created = None, True
                column = OWNERS[owner_kind][0]
                att_id = conn.execute(text(f"""
                    INSERT INTO attachment ({column}, kind, filename, content_type, size_bytes,
                                            sha256, storage_path, caption, actor)
                    VALUES (:owner, :kind, :filename, :ctype, :size, :sha, :path, :caption, :actor)
                    RETURNING id
                """), {
                    "owner": owner_id, "kind": kind, "filename": staged.filename, "ctype": content_type,
                    "size": staged.size, "sha": sha256, "path": store.relative(sha256),
                    "caption": caption, "actor": actor,
                }).scalar_one()
                audit(conn, actor, "create", "attachment", att_id)
                body = get_attachment(conn, att_id)
                if idempotency is not None:
                    idempotency.remember(conn, 201, {"Location": f"/api/attachments/{att_id}",
                                                     "Content-Type": "application/json"}, body.encode())
            return body
        except BaseException:
            if created:
                target.unlink(missing_ok=True)
            raise


def get_attachment(conn: Connection, att_id: int) -> str:
    body = conn.execute(text(f"SELECT {ATTACHMENT_JSON}::text FROM attachment a WHERE a.id = :id"),
                        {"id": att_id}).scalar_one_or_none()
    if body is None:
        raise NotFound(f"attachment {att_id} not found")
    return body


@dataclass(frozen=True)
class StoredFile:
    path: Path
    content_type: str
    sha256: str
    filename: str
    kind: str


def attachment_file(conn: Connection, store: Store, att_id: int) -> StoredFile:
    row = conn.execute(text(
        "SELECT content_type, sha256, filename, kind FROM attachment WHERE id = :id"
    ), {"id": att_id}).first()
    if row is None:
        raise NotFound(f"attachment {att_id} not found")
    path = store.path(row.sha256)
    if not path.is_file():
        raise NotFound(f"the file of attachment {att_id} is missing from the store ({row.sha256})")
    return StoredFile(path, row.content_type, row.sha256, row.filename, row.kind)


def list_attachments(
    conn: Connection, *, owner_kind: str | None, owner_id: int | None, kind: str | None,
    limit: int, after: int | None,
) -> str:
    """A page of attachments, optionally of one owner, as JSON text."""
    if owner_kind is not None and owner_id is not None:
        require_owner(conn, owner_kind, owner_id)
    sql = f"""
        WITH p AS (
            SELECT a.id, {ATTACHMENT_JSON} AS j FROM attachment a
            WHERE (CAST(:ok AS text) IS NULL OR a.owner_kind = :ok)
              AND (CAST(:oid AS bigint) IS NULL OR a.owner_id = :oid)
              AND (CAST(:kind AS text) IS NULL OR a.kind = :kind)
              AND a.id > COALESCE(CAST(:after AS bigint), 0)
            ORDER BY a.id LIMIT :limit)
        SELECT json_build_object('items', COALESCE(json_agg(p.j ORDER BY p.id), '[]'),
                                 'numberReturned', count(*))::text FROM p
    """
    return conn.execute(text(sql), {"ok": owner_kind, "oid": owner_id, "kind": kind,
                                    "after": after, "limit": limit}).scalar_one()


def delete_attachment(engine: Engine, store: Store, att_id: int, actor: str) -> None:
    """Delete the row; remove the file once no other attachment shares its content."""
    with engine.connect() as conn:
        sha256 = conn.execute(text("SELECT sha256 FROM attachment WHERE id = :id"),
                              {"id": att_id}).scalar_one_or_none()
        conn.rollback()
        if sha256 is None:
            raise NotFound(f"attachment {att_id} not found")
        with _content_lock(conn, sha256):
            with conn.begin():
                before = conn.execute(text(
                    "DELETE FROM attachment a WHERE id = :id RETURNING to_jsonb(a)::text"
                ), {"id": att_id}).scalar_one_or_none()
                if before is None:
                    raise NotFound(f"attachment {att_id} not found")
                audit(conn, actor, "delete", "attachment", att_id, before)
                shared = conn.execute(text("SELECT count(*) FROM attachment WHERE sha256 = :s"),
                                      {"s": sha256}).scalar_one()
            if shared == 0:
                store.path(sha256).unlink(missing_ok=True)


def count_for_owner(conn: Connection, owner_kind: str, owner_id: int) -> int:
    column = OWNERS[owner_kind][0]
    return conn.execute(text(f"SELECT count(*) FROM attachment WHERE {column} = :id"),
                        {"id": owner_id}).scalar_one()


# --- a GPX track as a road's as-built line ----------------------------------------------------

def set_as_built_from_gpx(
    conn: Connection, store: Store, road_id: int, attachment_id: int, *, actor: str,
    expected_version: int | None = None,
) -> None:
    """Parse a GPX attachment of this road (or of one of its events) into its as-built line.

    Bumps the road's version and writes a road_event (status unchanged) naming the file, so
    the history explains where the line came from.
    """
    road = lock_row(conn, layers.ROADS, road_id, expected_version)
    att = conn.execute(text("""
        SELECT a.id, a.kind, a.filename, a.sha256, a.owner_kind, a.owner_id,
               COALESCE(a.road_id, e.road_id) AS road_id
        FROM attachment a LEFT JOIN road_event e ON e.id = a.road_event_id WHERE a.id = :id
    """), {"id": attachment_id}).first()
    if att is None:
        raise InvalidInput(f"attachment {attachment_id} does not exist")
    if att.kind != "gpx":
        raise InvalidInput(f"attachment {attachment_id} is a {att.kind}, not a GPX track")
    if att.road_id != road_id:
        raise InvalidInput(f"attachment {attachment_id} belongs to {att.owner_kind.replace('_', ' ')} "
                           f"{att.owner_id}, not to branch road {road_id} or its events; "
                           "upload the track to this road first")
    if road["status"] not in AS_BUILT_STATUSES:
        raise Conflict(f"branch road {road['code']} is {road['status']}; an as-built line can be recorded "
                       f"once construction has started ({', '.join(AS_BUILT_STATUSES)})")
    try:
        gpx = parse_gpx(store.path(att.sha256))
    except (GpxError, OSError) as exc:
        raise InvalidInput(f"attachment {attachment_id} is not a usable GPX file: {exc}") from None
    line = _check_line(gpx_line(gpx))
    offset_km = conn.execute(text(
        "SELECT ST_Distance(geom::geography, ST_GeomFromText(:wkt, 4326)::geography) / 1000 "
        "FROM branch_road WHERE id = :id"
    ), {"wkt": line.wkt, "id": road_id}).scalar_one()
    if offset_km > MAX_AS_BUILT_OFFSET_KM:
        raise InvalidInput(
            f"the GPX track is {offset_km:.1f} km from the planned line of branch road {road['code']} "
            f"(at most {MAX_AS_BUILT_OFFSET_KM:g} km); is it the right file?", distance_km=round(offset_km, 1)
        )
    conn.execute(text("""
        UPDATE branch_road SET as_built_geom = ST_GeomFromText(:wkt, 4326),
               version = version + 1, updated_at = now()
        WHERE id = :id
    """), {"wkt": line.wkt, "id": road_id})
    conn.execute(text("""
        INSERT INTO road_event (road_id, from_status, to_status, actor, note, evidence)
        VALUES (:id, CAST(:s AS road_status), CAST(:s AS road_status), :actor, :note, CAST(:ev AS jsonb))
    """), {
        "id": road_id, "s": road["status"], "actor": actor,
        "note": f"as-built line set from GPX attachment {attachment_id} ({att.filename})",
        "ev": json.dumps({"as_built_from_gpx": attachment_id, "points": len(line.coords)}),
    })
    audit(conn, actor, "as_built_from_gpx", "branch_road", road_id, road["_json"])


# ---------------------------------------------------------------------------- public copies


def without_metadata(data: bytes, content_type: str) -> bytes:
    """A photo without its embedded metadata (EXIF, where phones write the GPS position,
    and XMP), the picture bytes untouched: JPEG APP1 segments, PNG eXIf/tEXt/iTXt/zTXt
    chunks and WebP EXIF/XMP chunks are dropped. Other types come back as they are."""
    if content_type == "image/jpeg" and data[:2] == b"\xff\xd8":
        return _jpeg_without_app1(data)
    if content_type == "image/png" and data[:8] == b"\x89PNG\r\n\x1a\n":
        return _png_without(data, {b"eXIf", b"tEXt", b"iTXt", b"zTXt"})
    if content_type == "image/webp" and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_without(data, {b"EXIF", b"XMP "})
    return data


def _jpeg_without_app1(data: bytes) -> bytes:
    out, i = bytearray(data[:2]), 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xDA:  # start of scan: the picture itself follows
            break
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if marker != 0xE1:  # APP1: EXIF or XMP
            out += data[i:i + 2 + length]
        i += 2 + length
    return bytes(out + data[i:])


def _png_without(data: bytes, dropped: set[bytes]) -> bytes:
    out, i = bytearray(data[:8]), 8
    while i + 12 <= len(data):
        length = int.from_bytes(data[i:i + 4], "big")
        kind = data[i + 4:i + 8]
        end = i + 12 + length
        if kind not in dropped:
            out += data[i:end]
        i = end
    return bytes(out)


def _webp_without(data: bytes, dropped: set[bytes]) -> bytes:
    body, i = bytearray(), 12
    while i + 8 <= len(data):
        kind, size = data[i:i + 4], int.from_bytes(data[i + 4:i + 8], "little")
        end = i + 8 + size + (size & 1)
        if kind not in dropped:
            chunk = bytearray(data[i:end])
            if kind == b"VP8X":  # its flags must no longer announce EXIF (0x08) or XMP (0x04)
                chunk[8] &= ~0x0C & 0xFF
            body += chunk
        i = end
    return b"RIFF" + (len(body) + 4).to_bytes(4, "little") + b"WEBP" + bytes(body)
