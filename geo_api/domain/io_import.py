"""Import markers, posts, branch roads and villages from GIS files, all or nothing.

Formats: GeoJSON, GeoPackage, Shapefile (zipped, or a .shp beside its sidecar files), CSV
with coordinate columns (longitude/latitude, lon/lat, lng/lat, x/y) or a WKT column, KML/KMZ
and GPX (waypoints for points, tracks or routes for roads), read with pyogrio (GDAL).
Any CRS: the file's own (.prj, GeoPackage or GeoJSON metadata) or `crs` for files that
carry none; a `crs` that contradicts the file is refused. Coordinates are reprojected to
EPSG:4326 before the checks.

Every row goes through the same schema (`XCreate`) and the same domain function
(`geo_api.domain.resources.create_*`) as a POST to /api/{layer}, each inside its own
SAVEPOINT so that one bad row does not hide the next: the report lists every bad row
with its row number (1-based, in file order; for CSV the header is not counted), the
field and the reason. Then the whole import (one more SAVEPOINT around all rows) is
rolled back on a dry run or when any row is bad, else released: nothing or everything.

Columns are matched to fields by name, case-insensitively; Shapefile's 10-character
names are matched back (`terrain_di` -> `terrain_difficulty`). Natural keys travel
between databases better than ids and win over them: `segment` (code) over
`segment_id`, `post_code` over `post_id`, `markers` (marker numbers, looked up among the
markers in the care of the road's post) over `marker_ids`. Columns that are not fields
(status, length_m, ids...) are listed as ignored: read-only values change only through
their own workflows.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pydantic import BaseModel, ValidationError
from pyproj import CRS
from pyproj.exceptions import CRSError
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from geo_api.domain import resources
from geo_api.errors import SQLSTATE_STATUS, DomainError, InvalidInput, NotFound, UnsupportedMediaType
from geo_api.schemas.resources import MarkerCreate, PostCreate, RoadCreate, VillageCreate

FORMATS_BY_SUFFIX = {
    ".geojson": "geojson", ".json": "geojson", ".gpkg": "gpkg", ".shp": "shp", ".zip": "zip",
    ".csv": "csv", ".txt": "csv", ".kml": "kml", ".kmz": "kml", ".gpx": "gpx",
}
COORDINATE_COLUMNS = [("longitude", "latitude"), ("lon", "lat"), ("lng", "lat"), ("long", "lat"),
                      ("x", "y"), ("easting", "northing"), ("kinh_do", "vi_do")]
WKT_COLUMNS = ("wkt", "geometry", "geom", "the_geom")
GEOMETRY_INPUTS = {"geometry", "crs", "area"}
SHAPEFILE_NAME_LENGTH = 10
NATURAL_KEYS = {"segment": "segment_id", "post_code": "post_id", "markers": "marker_ids"}


@dataclass(frozen=True)
class Target:
    """An importable layer: its create schema and domain function, its geometry type."""

    layer: str
    model: type[BaseModel]
    create: Callable[[Connection, Any, str], int]
    geometry: str
    natural_keys: tuple[str, ...] = ()
    aliases: Mapping[str, str] = field(default_factory=dict)  # other column names -> field

    @property
    def fields(self) -> list[str]:
        return [f for f in self.model.model_fields if f not in GEOMETRY_INPUTS]


TARGETS: dict[str, Target] = {
    "markers": Target("markers", MarkerCreate, resources.create_marker, "Point", ("segment", "post_code"),
                      {"name": "number", "marker": "number", "desc": "notes", "description": "notes"}),
    "posts": Target("posts", PostCreate, resources.create_post, "Point", ("segment",),
                    {"desc": "notes", "description": "notes"}),
    "roads": Target("roads", RoadCreate, resources.create_road, "LineString", ("post_code", "markers"),
                    {"desc": "notes", "description": "notes"}),
    "villages": Target("villages", VillageCreate, resources.create_village, "Point"),
}


def get_target(layer: str) -> Target:
    try:
        return TARGETS[layer]
    except KeyError:
        raise NotFound(f"layer {layer!r} cannot be imported; importable layers: {', '.join(TARGETS)}") from None


# ---------------------------------------------------------------------------- report


class RowError(BaseModel):
    row: int
    field: str | None
    reason: str


class ImportReport(BaseModel):
    """What an import found and did. `committed` is true only when every row was written."""

    layer: str
    source: str
    format: str
    source_crs: str
    rows: int
    valid_rows: int
    bad_rows: int
    errors: list[RowError]
    ignored_columns: list[str]
    dry_run: bool
    committed: bool
    created: int
    message: str


# ---------------------------------------------------------------------------- reading


@dataclass
class Source:
    """The rows of a file: raw values per column and geometries in EPSG:4326 (or a reason)."""

    format: str
    columns: list[str]
    records: list[dict[str, Any]]
    geometries: list[BaseGeometry | str | None]
    crs: str


def _clean(value: Any) -> Any:
    """A cell as a plain Python value; blanks and NaN as None."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat() if value == value.normalize() else value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _resolve_crs(value: Any, what: str) -> CRS:
    try:
        return CRS.from_user_input(value)
    except (CRSError, TypeError, ValueError):
        raise InvalidInput(f"{what}: unknown CRS {value!r}; give an EPSG code such as EPSG:32648",
                           field="crs") from None


def _pick_layer(path: str, fmt: str, target: Target) -> list[str]:
    """Which layer(s) of a multi-layer source hold the rows."""
    names = [str(n) for n, _ in pyogrio.list_layers(path)]
    if fmt == "gpx":
        wanted = ["waypoints"] if target.geometry == "Point" else ["tracks", "routes"]
        for name in wanted:
            if name in names and pyogrio.read_info(path, layer=name, force_feature_count=True)["features"] > 0:
                return [name]
        raise InvalidInput(f"the GPX file has no {' or '.join(wanted)} to import as {target.layer}")
    if fmt == "kml":
        return names  # folders: all of them
    if len(names) <= 1:
        return names
    for name in (target.layer, target.layer.replace("-", "_")):
        if name in names:
            return [name]
    raise InvalidInput(f"the file has several layers ({', '.join(names)}); name one {target.layer!r}")


def _unzip(path: Path, workdir: Path) -> tuple[Path, str]:
    """The one data file inside a zip (a zipped Shapefile, usually), extracted."""
    try:
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.namelist() if not m.endswith("/") and "__MACOSX" not in m]
            data = [m for m in members if Path(m).suffix.lower() in FORMATS_BY_SUFFIX
                    and Path(m).suffix.lower() not in (".zip", ".txt", ".json")]
            if len(data) != 1:
                raise InvalidInput(
                    f"the zip must hold exactly one data file (.shp with its .dbf/.shx/.prj, or "
                    f".gpkg, .geojson, .csv, .kml, .gpx); it holds: {', '.join(members) or 'nothing'}")
            for m in members:
                if Path(m).name and not Path(m).is_absolute() and ".." not in Path(m).parts:
                    zf.extract(m, workdir)
    except zipfile.BadZipFile:
        raise InvalidInput("the file is not a valid zip archive") from None
    inner = workdir / data[0]
    return inner, FORMATS_BY_SUFFIX[inner.suffix.lower()]


def _read_gdal(path: Path, fmt: str, target: Target) -> tuple[pd.DataFrame, list, CRS | None]:
    src = str(path)
    try:
        frames = []
        for name in _pick_layer(src, fmt, target):
            df = pyogrio.read_dataframe(src, layer=name)
            if len(df):
                frames.append(df)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise InvalidInput(f"cannot read the {fmt} file: {str(exc).splitlines()[0]}") from None
    if not frames:
        return pd.DataFrame(), [], None
    crs = frames[0].crs
    df = pd.concat(frames, ignore_index=True)
    geoms = list(df.geometry) if "geometry" in df else [None] * len(df)
    return pd.DataFrame(df.drop(columns="geometry", errors="ignore")), geoms, crs


def _read_csv(path: Path) -> tuple[pd.DataFrame, list, None]:
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig", sep=None,
                         engine="python")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InvalidInput(f"cannot read the CSV file (UTF-8, comma- or semicolon-separated): {exc}") from None
    lower = {c.strip().lower(): c for c in df.columns}
    geoms: list[Any] = []
    for xname, yname in COORDINATE_COLUMNS:
        if xname in lower and yname in lower:
            xs, ys = df.pop(lower[xname]), df.pop(lower[yname])
            for x, y in zip(xs, ys):
                try:
                    geoms.append(shapely.Point(float(x.replace(",", ".")), float(y.replace(",", "."))))
                except ValueError:
                    geoms.append(f"{xname}/{yname}: {x!r}, {y!r} are not numbers" if (x or y)
                                 else None)
            return df, geoms, None
    for name in WKT_COLUMNS:
        if name in lower:
            for wkt in df.pop(lower[name]):
                try:
                    geoms.append(shapely.from_wkt(wkt) if wkt.strip() else None)
                except shapely.errors.GEOSException as exc:
                    geoms.append(f"{name}: not valid WKT ({exc})")
            return df, geoms, None
    raise InvalidInput(
        "the CSV has no coordinate columns: give longitude,latitude (or lon/lat, x/y) for points, "
        f"or a wkt column; its columns are: {', '.join(df.columns)}")


def _single(geom: BaseGeometry) -> BaseGeometry:
    """A one-part MultiPoint/MultiLineString (GPX tracks, some shapefiles) as its part."""
    if geom.geom_type in ("MultiPoint", "MultiLineString") and len(geom.geoms) == 1:
        return geom.geoms[0]
    return geom


def read_source(path: Path, target: Target, crs: str | None = None) -> Source:
    """Read `path` and reproject its geometries to EPSG:4326; raises InvalidInput for files
    that cannot be read at all (row problems are reported per row later)."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS_BY_SUFFIX:
        raise UnsupportedMediaType(
            f"unsupported file type {suffix or '(none)'!r}; give .geojson, .gpkg, .zip (Shapefile), "
            f".shp, .csv, .kml/.kmz or .gpx")
    fmt = FORMATS_BY_SUFFIX[suffix]
    with tempfile.TemporaryDirectory() as tmp:
        if fmt == "zip":
            path, fmt = _unzip(path, Path(tmp))
        if fmt == "csv":
            df, geoms, file_crs = _read_csv(path)
        else:
            df, geoms, file_crs = _read_gdal(path, fmt, target)

    given = _resolve_crs(crs, "crs") if crs else None
    if given is not None and file_crs is not None and not given.equals(file_crs, ignore_axis_order=True):
        raise InvalidInput(
            f"crs: the file says its CRS is {file_crs.to_string()} but {given.to_string()} was given; "
            f"leave crs out (it is for files without CRS metadata) or fix the file", field="crs")
    src = given or file_crs
    shapes = [g if isinstance(g, BaseGeometry) and not g.is_empty else None for g in geoms]
    present = [g for g in shapes if g is not None]
    if src is None:
        coords = shapely.get_coordinates(present) if present else np.empty((0, 2))
        if len(coords) and not ((np.abs(coords[:, 0]) <= 180) & (np.abs(coords[:, 1]) <= 90)).all():
            x, y = coords[np.argmax((np.abs(coords[:, 0]) > 180) | (np.abs(coords[:, 1]) > 90))]
            raise InvalidInput(
                f"crs: the file says nothing about its CRS and its coordinates (e.g. {x:.0f}, {y:.0f}) "
                f"are not longitude/latitude; give the CRS, e.g. crs=EPSG:32648 (UTM 48N)", field="crs")
        crs_label = "EPSG:4326 (assumed: the file names no CRS)"
        src = CRS.from_epsg(4326)
    else:
        crs_label = src.to_string() if src.to_epsg() is None else f"EPSG:{src.to_epsg()}"
    if present and not src.equals(CRS.from_epsg(4326), ignore_axis_order=True):
        try:
            reprojected = iter(gpd.GeoSeries(present, crs=src).to_crs(4326))
        except Exception as exc:  # pyproj raises several types
            raise InvalidInput(f"crs: cannot reproject from {crs_label}: {exc}", field="crs") from None
        shapes = [next(reprojected) if g is not None else None for g in shapes]

    out_geoms: list[BaseGeometry | str | None] = []
    for raw, g in zip(geoms, shapes):
        out_geoms.append(raw if isinstance(raw, str) else (_single(g) if g is not None else None))
    records = [{c: _clean(v) for c, v in row.items()} for row in df.to_dict("records")]
    return Source(fmt, [str(c) for c in df.columns], records, out_geoms, crs_label)


# ---------------------------------------------------------------------------- columns


def map_columns(columns: Iterable[str], target: Target) -> tuple[dict[str, str], list[str]]:
    """column -> field (or natural key), and the columns that are ignored."""
    names = [*target.fields, *target.natural_keys]
    mapping_: dict[str, str] = {}
    ignored: list[str] = []
    for col in columns:
        key = col.strip().lower()
        match = key if key in names else None
        if match is None and len(key) == SHAPEFILE_NAME_LENGTH:
            candidates = [n for n in names if n.startswith(key)]
            match = candidates[0] if len(candidates) == 1 else None
        if match is not None and match not in mapping_.values():
            mapping_[col] = match
        else:
            ignored.append(col)
    for col in list(ignored):  # aliases fill fields that no column named directly
        alias = target.aliases.get(col.strip().lower())
        if alias in names and alias not in mapping_.values():
            mapping_[col] = alias
            ignored.remove(col)
    return mapping_, ignored


# ---------------------------------------------------------------------------- rows


def _split_list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    text_ = str(value).strip()
    if text_.startswith("["):
        text_ = text_.strip("[]").replace('"', "").replace("'", "")
    return [p.strip() for p in re.split(r"[;,]", text_) if p.strip()]


class _Lookups:
    """Natural keys -> ids, read once per import (markers per road)."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.segments = dict(conn.execute(text("SELECT code, id FROM border_segment")).all())
        self.posts = dict(conn.execute(text("SELECT code, id FROM border_post")).all())

    def markers(self, numbers: list[str], post_id: Any) -> tuple[list[int], str | None]:
        rows = self.conn.execute(text("""
            SELECT m.number, array_agg(m.id ORDER BY m.id) AS ids FROM marker m
            WHERE m.number = ANY(CAST(:nums AS text[]))
              AND (m.post_id IS NULL OR m.post_id = CAST(:post AS integer))
            GROUP BY m.number
        """), {"nums": numbers, "post": post_id}).all()
        found = {r.number: r.ids for r in rows}
        missing = [n for n in numbers if n not in found]
        if missing:
            return [], (f"no marker {', '.join(missing)} in the care of post {post_id} (or of no post); "
                        f"a branch road serves markers of its own post")
        ambiguous = [f"{n} (ids {', '.join(map(str, found[n]))})" for n in numbers if len(found[n]) > 1]
        if ambiguous:
            return [], f"marker number {', '.join(ambiguous)} is ambiguous; give marker_ids instead"
        return [found[n][0] for n in numbers], None


def _body(record: Mapping[str, Any], cols: Mapping[str, str], defaults: Mapping[str, Any],
          lookups: _Lookups) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The create body of one row (natural keys resolved) and the problems found on the way."""
    values: dict[str, Any] = {k: v for k, v in defaults.items()}
    for col, name in cols.items():
        if record.get(col) is not None:
            values[name] = record[col]
    problems: list[tuple[str, str]] = []
    if "segment" in values:
        code = str(values.pop("segment"))
        if code in lookups.segments:
            values["segment_id"] = lookups.segments[code]
        else:
            problems.append(("segment", f"no border segment {code!r}; segments: {', '.join(lookups.segments)}"))
    if "post_code" in values:
        code = str(values.pop("post_code"))
        if code in lookups.posts:
            values["post_id"] = lookups.posts[code]
        else:
            problems.append(("post_code", f"no post with code {code!r}"))
    if "marker_ids" in values and not isinstance(values["marker_ids"], list):
        try:
            values["marker_ids"] = [int(float(v)) for v in _split_list(values["marker_ids"])]
        except ValueError:
            problems.append(("marker_ids", f"{values.pop('marker_ids')!r} is not a list of marker ids"))
    if "markers" in values:
        numbers = _split_list(values.pop("markers"))
        if "post_id" not in values:
            if not any(f == "post_code" for f, _ in problems):
                problems.append(("markers", "marker numbers are looked up among the post's markers: "
                                            "give post_code (or post_id)"))
        elif numbers:
            ids, why = lookups.markers(numbers, values["post_id"])
            if why:
                problems.append(("markers", why))
            else:
                values["marker_ids"] = ids
    return values, problems


def _domain_field(exc: DomainError) -> tuple[str | None, str]:
    name = exc.context.get("field")
    message = exc.message
    prefix = re.match(r"^([a-z_]+): ", message)
    if prefix and (name is None or prefix[1] == name):
        name = prefix[1]
        message = message[prefix.end():]
    return name, message


def _db_reason(exc: DBAPIError) -> tuple[str | None, str]:
    sqlstate = getattr(exc.orig, "sqlstate", None)
    diag = getattr(exc.orig, "diag", None)
    constraint = getattr(diag, "constraint_name", None)
    column = getattr(diag, "column_name", None)
    what = SQLSTATE_STATUS.get(sqlstate, (None, None, "was refused by the database"))[2]
    return column, f"the row {what}" + (f" ({constraint})" if constraint else "")


# ---------------------------------------------------------------------------- import


def check_defaults(target: Target, defaults: Mapping[str, Any] | None) -> dict[str, Any]:
    """Values given for every row (`--set`) must name fields of the layer."""
    defaults = dict(defaults or {})
    known = [*target.fields, *target.natural_keys]
    unknown = [k for k in defaults if k not in known]
    if unknown:
        raise InvalidInput(f"cannot set {', '.join(unknown)}: {target.layer} fields are {', '.join(known)}",
                           field=unknown[0])
    return defaults


def import_source(conn: Connection, target: Target, source: Source, *, name: str, dry_run: bool,
                  actor: str, defaults: Mapping[str, Any] | None = None,
                  progress: Callable[[int], None] | None = None) -> ImportReport:
    """Check (and unless `dry_run`, write) every row of `source` in one SAVEPOINT of `conn`'s
    transaction: rolled back on a dry run or if any row is bad."""
    cols, ignored = map_columns(source.columns, target)
    defaults = check_defaults(target, defaults)
    lookups = _Lookups(conn)
    errors: list[RowError] = []
    created_rows: dict[int, int] = {}  # new id -> row number
    outer = conn.begin_nested()
    try:
        for i, (record, geom) in enumerate(zip(source.records, source.geometries), start=1):
            row_errors = _import_row(conn, target, record, geom, cols, defaults, lookups, actor, i,
                                     created_rows)
            errors += row_errors
            if progress:
                progress(1)
        bad = len({e.row for e in errors})
        commit = not dry_run and not errors and bool(source.records)
        if commit:
            outer.commit()
        else:
            outer.rollback()
    except BaseException:
        if outer.is_active:
            outer.rollback()
        raise
    rows = len(source.records)
    if not rows:
        message = "the file has no rows: nothing to import"
    elif errors:
        message = (f"{bad} of {rows} rows are bad: nothing was written; fix them and import the file again"
                   if not dry_run else f"dry run: {bad} of {rows} rows are bad; nothing would be written")
    else:
        message = (f"dry run: all {rows} rows are valid; import again without dry run to write them"
                   if dry_run else f"imported {rows} {target.layer}")
    return ImportReport(
        layer=target.layer, source=name, format=source.format, source_crs=source.crs, rows=rows,
        valid_rows=rows - bad, bad_rows=bad, errors=errors, ignored_columns=ignored, dry_run=dry_run,
        committed=commit, created=rows if commit else 0, message=message,
    )


def _import_row(conn: Connection, target: Target, record: dict, geom: Any, cols: Mapping[str, str],
                defaults: Mapping[str, Any], lookups: _Lookups, actor: str, row: int,
                created_rows: dict[int, int]) -> list[RowError]:
    values, problems = _body(record, cols, defaults, lookups)
    errors = [RowError(row=row, field=f, reason=r) for f, r in problems]
    if isinstance(geom, str):
        errors.append(RowError(row=row, field="geometry", reason=geom))
    elif geom is None:
        errors.append(RowError(row=row, field="geometry", reason="the row has no geometry"))
    else:
        values["geometry"] = json.loads(shapely.to_geojson(geom))
    try:
        body = target.model.model_validate(values)
    except ValidationError as exc:
        reported = {NATURAL_KEYS.get(e.field, e.field) for e in errors}
        for err in exc.errors():
            where = str(err["loc"][0]) if err["loc"] else None
            if where in reported:  # already explained (a natural key or the geometry)
                continue
            shown = err.get("input")
            got = f" (got {shown!r})" if err["type"] != "missing" and not isinstance(shown, dict) else ""
            errors.append(RowError(row=row, field=where, reason=err["msg"].removeprefix("Value error, ") + got))
        return errors
    if errors:
        return errors
    savepoint = conn.begin_nested()
    try:
        new_id = target.create(conn, body, actor)
        savepoint.commit()
        created_rows[new_id] = row
    except DomainError as exc:
        savepoint.rollback()
        name, reason = _domain_field(exc)
        existing = exc.context.get("existing_id")
        if existing in created_rows:
            reason += f" — the same as row {created_rows[existing]} of this file"
        errors.append(RowError(row=row, field=name, reason=reason))
    except DBAPIError as exc:
        savepoint.rollback()
        name, reason = _db_reason(exc)
        errors.append(RowError(row=row, field=name, reason=reason))
    return errors


def import_file(conn: Connection, layer: str, path: Path, *, dry_run: bool, actor: str,
                crs: str | None = None, defaults: Mapping[str, Any] | None = None,
                name: str | None = None, progress: Callable[[int], None] | None = None,
                on_read: Callable[[int], None] | None = None) -> ImportReport:
    """Read `path` and import its rows into `layer` (see the module docstring)."""
    target = get_target(layer)
    check_defaults(target, defaults)
    source = read_source(path, target, crs)
    if on_read:
        on_read(len(source.records))
    return import_source(conn, target, source, name=name or path.name, dry_run=dry_run, actor=actor,
                         defaults=defaults, progress=progress)
