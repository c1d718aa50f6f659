"""Attachments: upload (multipart, streamed to disk), metadata, content, delete; GPX as-built.

One upload endpoint for every owner: `POST /api/attachments` with form fields `owner_kind`
(road, road_event, meeting, inauguration), `owner_id`, optional `caption`, and the `file`.
The body is parsed here as it arrives, so the file goes to the staging area chunk by chunk
and the upload stops at the size limit instead of being buffered first.

Planners attach to anything; a post account to its own roads, their events and its pairs'
meetings (and deletes only attachments of those). An upload takes an Idempotency-Key: the
request it stands for is the form fields plus the file's name, type and SHA-256.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from python_multipart.multipart import MultipartParser, parse_options_header

from geo_api import layers
from geo_api.auth import Account, require_own_post
from geo_api.guards import PostOfficerDep
from geo_api.deps import ConnDep, EngineDep, IdempotencyKeyHeader, TxDep, ViewerDep, idempotent_request
from geo_api.domain import attachments
from geo_api.domain.attachments import StagedUpload, Store
from geo_api.domain.idempotency import fingerprint
from geo_api.openapi import media
from geo_api.errors import InvalidInput, PayloadTooLarge, Unauthorized, UnsupportedMediaType
from geo_api.policy import Viewer
from geo_api.routes.writes import AUTH_ERRORS, ERRORS, IfMatch, required_version, respond
from geo_api.settings import get_settings

router = APIRouter(prefix="/api")
AttachmentId = Annotated[int, Path(ge=1, le=2**63 - 1)]
MAX_FIELD_BYTES = 4096          # owner_kind, owner_id, caption
MULTIPART_OVERHEAD = 64 * 1024  # boundaries, part headers and fields around the file


def get_store() -> Store:
    return Store(get_settings().files.attachments_dir)


def get_upload_limit() -> int:
    return get_settings().files.max_upload_bytes


StoreDep = Annotated[Store, Depends(get_store)]
LimitDep = Annotated[int, Depends(get_upload_limit)]


class AttachmentCreate(BaseModel):
    """The form fields of an upload (the file itself is the `file` part)."""

    model_config = ConfigDict(extra="forbid")

    owner_kind: Literal["road", "road_event", "meeting", "inauguration"]
    owner_id: Annotated[int, Field(ge=1, le=2**53)]
    caption: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None


class AttachmentPublic(BaseModel):
    id: int
    owner_kind: str
    owner_id: int
    kind: Literal["photo", "document", "gpx"]
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    caption: str | None
    created_at: str
    actor: str
    content_url: str


class AsBuiltFromGpx(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attachment_id: Annotated[int, Field(ge=1, le=2**53)] = Field(
        description="a GPX attachment of this road or of one of its events")


async def read_upload(content_type: str, stream: AsyncIterator[bytes],
                      staged: StagedUpload) -> dict[str, str]:
    """Parse a multipart/form-data body as it streams: the file part into `staged`, the small
    fields returned. Raises PayloadTooLarge as soon as the file passes the limit."""
    ctype, params = parse_options_header(content_type)
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise UnsupportedMediaType("send the upload as multipart/form-data (fields owner_kind, "
                                   "owner_id, caption and the file in a part named 'file')")
    fields: dict[str, str] = {}
    part: dict = {}
    pending: list[bytes] = []  # file bytes of this chunk, written off the event loop

    def on_part_begin():
        part.clear()
        part.update(headers={}, name=None, data=bytearray(), header=b"", value=b"")

    def on_header_field(data, start, end):
        part["header"] += data[start:end]

    def on_header_value(data, start, end):
        part["value"] += data[start:end]

    def on_header_end():
        part["headers"][part["header"].lower()] = part["value"]
        part["header"], part["value"] = b"", b""

    def on_headers_finished():
        _, opts = parse_options_header(part["headers"].get(b"content-disposition", b""))
        if b"name" not in opts:
            raise InvalidInput("every form part needs a name (Content-Disposition)")
        part["name"] = opts[b"name"].decode("utf-8", "replace")
        if part["name"] == "file":
            filename = opts.get(b"filename", b"").decode("utf-8", "replace").replace("\\", "/")
            filename = filename.rsplit("/", 1)[-1].strip()[:255]
            if not filename:
                raise InvalidInput("the file part needs a filename")
            staged.open(filename, part["headers"].get(b"content-type", b"").decode("latin-1"))
        elif b"filename" in opts:
            raise InvalidInput(f"unexpected file in field {part['name']!r}; send it as 'file'")

    def on_part_data(data, start, end):
        if part["name"] == "file":
            pending.append(bytes(data[start:end]))
        else:
            part["data"] += data[start:end]
            if len(part["data"]) > MAX_FIELD_BYTES:
                raise InvalidInput(f"form field {part['name']!r} is longer than {MAX_FIELD_BYTES} bytes")

    def on_part_end():
        if part["name"] != "file":
            if part["name"] in fields:
                raise InvalidInput(f"form field {part['name']!r} is given twice")
            fields[part["name"]] = part["data"].decode("utf-8", "replace")

    parser = MultipartParser(params[b"boundary"], {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field,
        "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    })
    try:
        async for chunk in stream:
            parser.write(chunk)
            if pending:
                await run_in_threadpool(_write_all, staged, pending[:])
                pending.clear()
        parser.finalize()
    except ValueError as exc:  # python-multipart's parse errors
        raise InvalidInput(f"malformed multipart/form-data body: {exc}") from None
    return fields


def _write_all(staged: StagedUpload, chunks: list[bytes]) -> None:
    for chunk in chunks:
        staged.write(chunk)


def _form(fields: dict[str, str]) -> AttachmentCreate:
    try:
        return AttachmentCreate.model_validate(fields)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None


@router.post(
    "/attachments", status_code=201, tags=["attachments"],
    summary="Upload a photo (JPEG/PNG/WebP), document (PDF) or GPX track to a road, road event, "
            "meeting or inauguration",
    responses={201: {"model": AttachmentPublic}, **AUTH_ERRORS, 404: {"description": "no such owner"},
               413: {"description": "larger than TRACKER_MAX_UPLOAD_BYTES"},
               415: {"description": "type not allowed, or content not of the declared type"}},
    openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["owner_kind", "owner_id", "file"], "additionalProperties": False,
        "properties": {
            "owner_kind": {"type": "string", "enum": list(attachments.OWNERS)},
            "owner_id": {"type": "integer", "minimum": 1, "maximum": 2**53},
            "caption": {"type": "string", "maxLength": 2000},
            "file": {"type": "string", "format": "binary"},
        }}}}}},
)
async def upload(request: Request, engine: EngineDep, store: StoreDep, limit: LimitDep,
                 account: PostOfficerDep, idempotency_key: IdempotencyKeyHeader = None) -> Response:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit + MULTIPART_OVERHEAD:
        raise PayloadTooLarge(
            f"the upload ({int(length):,} bytes) is larger than the limit of {limit:,} bytes "
            f"({limit / 1048576:.1f} MiB)", limit_bytes=limit,
        )
    staged = StagedUpload(store, limit)
    try:
        fields = await read_upload(request.headers.get("content-type", ""), request.stream(), staged)
        form = _form(fields)
        await run_in_threadpool(_check_owner, engine, account, form)
        idem = None
        if idempotency_key is not None:
            what = json.dumps([form.owner_kind, form.owner_id, form.caption, staged.filename,
                               staged.declared_type, staged.sha256]).encode()
            idem = idempotent_request(account.id, idempotency_key, fingerprint("POST", request.url.path, what))
        body = await run_in_threadpool(
            attachments.save_attachment, engine, store, staged, owner_kind=form.owner_kind,
            owner_id=form.owner_id, caption=form.caption or None, actor=account.username,
            idempotency=idem,
        )
    finally:
        staged.discard()
    att_id = AttachmentPublic.model_validate_json(body).id
    replayed = {"Idempotent-Replayed": "true"} if idem is not None and idem.replayed else {}
    return Response(body, status_code=201, media_type="application/json",
                    headers={"Location": f"/api/attachments/{att_id}", **replayed})


def _check_owner(engine, account: Account, form: AttachmentCreate) -> None:
    """A post account attaches to its own post's roads, road events and meetings only."""
    if account.is_planner:
        return
    with engine.begin() as conn:
        require_own_post(conn, account, attachments.OWNERS[form.owner_kind][1], form.owner_id)


@router.get("/attachments", tags=["attachments"], summary="List attachments, e.g. of one owner",
            responses={404: {"description": "no such owner"}})
def list_attachments(
    conn: ConnDep,
    owner_kind: Literal["road", "road_event", "meeting", "inauguration"] | None = None,
    owner_id: Annotated[int | None, Query(ge=1, le=2**53)] = None,
    kind: Literal["photo", "document", "gpx"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
) -> Response:
    body = attachments.list_attachments(conn, owner_kind=owner_kind, owner_id=owner_id, kind=kind,
                                         limit=limit, after=after)
    return Response(body, media_type="application/json")


@router.get("/attachments/{attachment_id}", tags=["attachments"], summary="An attachment's metadata",
            responses={200: {"model": AttachmentPublic}})
def get_attachment(conn: ConnDep, attachment_id: AttachmentId) -> Response:
    return Response(attachments.get_attachment(conn, attachment_id), media_type="application/json")


@router.get("/attachments/{attachment_id}/content", tags=["attachments"],
            summary="The file itself (ETag: its SHA-256)", response_class=Response,
            responses={200: media(*attachments.PHOTO_TYPES, *attachments.DOCUMENT_TYPES, attachments.GPX_TYPE,
                                  description="the file, in the type it was stored as"),
                       304: {"description": "unchanged since the ETag in If-None-Match"}})
def get_content(request: Request, conn: ConnDep, store: StoreDep, viewer: ViewerDep,
                attachment_id: AttachmentId) -> Response:
    """Anonymous callers (geo_api.policy) get no GPS tracks, and photos without their
    embedded metadata (the phone's GPS position)."""
    f = attachments.attachment_file(conn, store, attachment_id)
    if viewer.anonymous and f.kind == "gpx":
        raise Unauthorized("sign in to download GPS tracks: they show where the markers are")
    public_copy = viewer.anonymous and f.kind == "photo"
    etag = f'"{f.sha256}-public"' if public_copy else f'"{f.sha256}"'
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers={"ETag": etag})
    if public_copy:
        return Response(attachments.without_metadata(f.path.read_bytes(), f.content_type),
                        media_type=f.content_type, headers={
                            "ETag": etag, "Cache-Control": "public, max-age=86400, immutable",
                            "Content-Disposition": "inline"})
    return FileResponse(
        f.path, media_type=f.content_type, filename=f.filename,
        content_disposition_type="attachment" if f.kind == "gpx" else "inline",
        headers={"ETag": etag, "Cache-Control": "private, max-age=86400, immutable"},
    )


@router.delete("/attachments/{attachment_id}", status_code=204, tags=["attachments"],
               summary="Delete an attachment (its file goes when no other attachment shares it)",
               responses={**AUTH_ERRORS, 404: ERRORS[404]})
def delete_attachment(engine: EngineDep, store: StoreDep, account: PostOfficerDep,
                      attachment_id: AttachmentId) -> Response:
    if not account.is_planner:
        with engine.begin() as conn:
            require_own_post(conn, account, "attachment", attachment_id)
    attachments.delete_attachment(engine, store, attachment_id, account.username)
    return Response(status_code=204)


@router.post("/roads/{road_id}/as-built-from-gpx", tags=["attachments", "roads"],
             summary="Make a GPX attachment's track the road's as-built line",
             responses={**AUTH_ERRORS, 404: {"description": "no such road"},
                        409: {"description": "construction has not started"},
                        412: {"description": "If-Match version is stale"},
                        422: {"description": "not a GPX of this road, no track, invalid line"},
                        428: {"description": "If-Match is required"}})
def as_built_from_gpx(conn: TxDep, store: StoreDep, account: PostOfficerDep,
                      road_id: Annotated[int, Path(ge=1, le=2**31 - 1)], body: AsBuiltFromGpx,
                      if_match: IfMatch = None) -> Response:
    version = required_version(if_match)
    require_own_post(conn, account, "branch_road", road_id)
    attachments.set_as_built_from_gpx(conn, store, road_id, body.attachment_id, actor=account.username,
                                      expected_version=version)
    return respond(conn, layers.ROADS, road_id, Viewer.of(account))
