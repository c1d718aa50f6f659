"""Files in and out: layer import (multipart upload) and export, OC4IDS, donor reports.

- `POST /api/import/{layer}?dry_run=true|false[&crs=EPSG:xxxx][&set=field=value...]`: the
  report of every bad row (200 for a dry run; 422 when a real import found bad rows and
  wrote nothing; 200 with `committed: true` when every row was written).
- `GET /api/export/{layer}.{fmt}?<the filters of /api/{layer}>`: geojson, gpkg, shp (zipped),
  csv or kml, as a download; `{layer}.csvt` is the CSV's GDAL type sidecar.
- `GET /api/export/oc4ids`: the branch roads as an OC4IDS project package.
- `GET /api/reports/donors/{id}.html` (and `.pdf`): a printable donor report.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, File, Path as PathParam, Query, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from geo_api import layers, middleware, policy
from geo_api.guards import PlannerDep
from geo_api.deps import ConnDep, TxDep, ViewerDep
from geo_api.domain import donor_report, io_export, io_import, oc4ids, ogc
from geo_api.errors import InvalidInput, PayloadTooLarge
from geo_api.openapi import model_bounds
from geo_api.settings import get_settings

router = APIRouter(prefix="/api", tags=["files"])

CHUNK = 1 << 20
# Uploads stream to disk and stop at TRACKER_MAX_UPLOAD_BYTES; the general body limit would
# refuse files that are fine. The slack is for the multipart envelope.
middleware.allow_large_body("POST", "/api/import/", get_settings().files.max_upload_bytes + CHUNK)


def parse_assignments(items: list[str] | None, what: str = "set") -> dict[str, str]:
    """['field=value', ...] -> {field: value}."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"{what}: expected FIELD=VALUE, got {item!r}", field=what)
        out[key.strip()] = value.strip()
    return out


def _save_upload(upload: UploadFile, folder: Path) -> Path:
    """The upload on disk (GDAL reads files), refused past TRACKER_MAX_UPLOAD_BYTES."""
    cap = get_settings().files.max_upload_bytes
    suffix = Path(upload.filename or "").suffix.lower()
    path = folder / f"upload{suffix}"
    size = 0
    with path.open("wb") as fh:
        while chunk := upload.file.read(CHUNK):
            size += len(chunk)
            if size > cap:
                raise PayloadTooLarge(f"the file is larger than {cap:,} bytes", max_bytes=cap)
            fh.write(chunk)
    if size == 0:
        raise InvalidInput("the uploaded file is empty", field="file")
    return path


@router.post(
    "/import/{layer}", summary="Import markers, posts, roads or villages from a file (all or nothing)",
    response_model=io_import.ImportReport,
    responses={
        401: {"description": "not logged in"}, 403: {"description": "needs a planner or admin account"},
        404: {"description": "the layer cannot be imported"},
        413: {"description": "the file is too large"},
        415: {"description": "unsupported file type"},
        422: {"description": "bad rows (the report lists each) or an unreadable file; nothing written",
              "content": {"application/json": {"schema": {"anyOf": [  # a real import's report, or an Error
                  {"$ref": "#/components/schemas/ImportReport"}, {"$ref": "#/components/schemas/Error"}]}}}},
    },
)
def import_layer(
    conn: TxDep, importer: PlannerDep,
    layer: Annotated[str, PathParam(description="markers, posts, roads or villages")],
    file: Annotated[UploadFile, File(description=".geojson, .gpkg, .zip (Shapefile), .csv, .kml/.kmz or .gpx")],
    dry_run: Annotated[bool, Query(description="check every row and write nothing")] = True,
    crs: Annotated[str | None, Query(max_length=200, description="CRS of a file that names none, e.g. EPSG:32648")] = None,
    set_: Annotated[list[str] | None, Query(alias="set", description="FIELD=VALUE for every row lacking FIELD")] = None,
) -> Response:
    io_import.get_target(layer)
    defaults = parse_assignments(set_)
    with tempfile.TemporaryDirectory() as tmp:
        path = _save_upload(file, Path(tmp))
        report = io_import.import_file(conn, layer, path, dry_run=dry_run, actor=importer.username, crs=crs,
                                       defaults=defaults, name=Path(file.filename or path.name).name)
    status = 422 if (not dry_run and not report.committed) else 200
    return JSONResponse(report.model_dump(), status_code=status)


def _export_parameters(layer: layers.Layer) -> list[dict]:
    """The query parameters an export of `layer` reads itself: the layer's filters (typed
    from the catalogue, as in its OGC queryables) and bbox, for the OpenAPI description and
    the unknown-parameter guard (geo_api.openapi)."""
    model = layers.query_model(layer)  # what parse_filters enforces, bounds included
    params = [{"name": name, "in": "query", "required": False,
               "schema": {**ogc.filter_schema(layer, name, flt), **model_bounds(model, name)},
               "description": flt.description} for name, flt in layer.filters.items()]
    if layer.spatial:
        params.append({"name": "bbox", "in": "query", "required": False, "schema": {"type": "string"},
                       "description": "minLon,minLat,maxLon,maxLat in EPSG:4326"})
    return params


@router.get(
    "/export/oc4ids", summary="The branch roads as an OC4IDS 0.9 project package",
    description="Filters as /api/roads: status, province, post_id, marker, donor_id, bbox.",
    responses={404: {"description": "no road matches"}, 422: {"description": "bad filter"}},
    openapi_extra={"parameters": _export_parameters(layers.ROADS)},
)
def export_oc4ids(request: Request, conn: ConnDep, viewer: ViewerDep) -> Response:
    body = oc4ids.package(conn, dict(request.query_params), str(request.url), viewer)
    return Response(body, media_type="application/json",
                    headers={"Content-Disposition": 'inline; filename="oc4ids-branch-roads.json"'})


@router.get(
    "/reports/donors/{donor_id}.html", tags=["reports"],
    summary="Printable report of one donor or group (members included): roads, money, progress, "
            "inaugurations with photos, map",
    response_class=HTMLResponse, responses={404: {"description": "no such donor"}},
)
def donor_report_html(
    conn: ConnDep, viewer: ViewerDep, donor_id: Annotated[int, PathParam(ge=1, le=2**31 - 1)],
    lang: Annotated[Literal["vi", "en"], Query(description="vi (default) or en")] = "vi",
) -> HTMLResponse:
    html = donor_report.report_html(conn, donor_id, viewer, lang, store_root=get_settings().files.attachments_dir)
    return HTMLResponse(html)


def export_response(request: Request, conn: ConnDep, viewer: ViewerDep, layer: str, fmt: str) -> Response:
    exported = io_export.export_layer(layer)
    filters = dict(request.query_params)
    if len(filters) != len(request.query_params.multi_items()):
        raise InvalidInput("each filter may be given once (a list of statuses is comma-separated)")
    if fmt == "csvt":  # the CSV's field types, the same whatever the filters
        policy.rule(exported, viewer)
        io_export.parse_filters(exported, "csv", filters)
        filename = f"{exported.name.replace('-', '_')}.csvt"
        return Response(io_export.csvt(exported), media_type=io_export.FORMATS["csv"],
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})
    query = io_export.parse_filters(exported, fmt, filters)
    filename = f"{exported.name.replace('-', '_')}.{io_export.EXTENSIONS[fmt]}"
    disposition = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if fmt == "geojson":
        return StreamingResponse(io_export.geojson_chunks(request.app.state.engine, exported, query, viewer),
                                 media_type=io_export.FORMATS[fmt], headers=disposition)
    tmp = tempfile.mkdtemp(prefix="export-")
    try:
        path = io_export.write_export(conn, exported, query, fmt, Path(tmp), viewer)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return FileResponse(path, media_type=io_export.FORMATS[fmt], filename=filename,
                        background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True))


def _export_route(layer: layers.Layer):
    def export(request: Request, conn: ConnDep, viewer: ViewerDep,
               fmt: Annotated[str, PathParam(description="geojson, gpkg, shp, csv, kml or csvt")]) -> Response:
        return export_response(request, conn, viewer, layer.name, fmt)
    # declared as the layer's own formats (an enum in the description; 422 for any other)
    formats = (*io_export.FORMATS, "csvt") if layer.spatial else ("csv", "csvt")
    export.__annotations__["fmt"] = Annotated[Literal[formats], PathParam(description=", ".join(formats))]
    return export


EXPORT_FORMATS_DOC = ("Formats: geojson, gpkg, shp (zipped Shapefile), csv, kml; csvt is GDAL's type "
                      "sidecar of the csv (save it beside the .csv, same name). Query parameters: the "
                      "filters of /api/{layer} (and bbox), without limit/after: every matching row.")
EXPORT_RESPONSES = {200: {"content": {m: {} for m in io_export.FORMATS.values()}},
                    422: {"description": "bad format or filter"}}

# One route per layer, so that each declares exactly its own filters.
for _layer in layers.LAYERS:
    router.add_api_route(
        f"/export/{_layer.name}.{{fmt}}", _export_route(_layer), methods=["GET"],
        name=f"export_{_layer.name.replace('-', '_')}", description=EXPORT_FORMATS_DOC,
        summary=f"Export {_layer.title}s, filtered like /api/{_layer.name}",
        responses=EXPORT_RESPONSES, openapi_extra={"parameters": _export_parameters(_layer)})


@router.get("/export/{layer}.{fmt}", include_in_schema=False)
def export_unknown_layer(request: Request, conn: ConnDep, viewer: ViewerDep, layer: str, fmt: str) -> Response:
    """Any other layer: 404 naming the layers (io_export.export_layer)."""
    return export_response(request, conn, viewer, layer, fmt)
