"""Export any layer, filtered like `/api/{layer}`, to GeoJSON, GeoPackage, Shapefile, CSV or KML.

The rows come from the layer declarations in `geo_api.layers` (same properties, same
filters), extended with the few columns an import needs to recreate them elsewhere:
natural keys such as `post_code` (ids differ between databases) and the writable fields the
read API leaves out (planned dates, contractor, notes...). GeoJSON is streamed straight
from SQL; the other formats are written by GDAL (pyogrio) to a temporary file.

Format notes: Shapefile field names are cut to 10 characters by the format (the importer
maps them back) and the files are zipped; lists (a road's markers) become comma-separated
text outside GeoJSON; CSV carries `longitude`/`latitude` columns for point layers and a
`wkt` column otherwise, UTF-8 with a byte-order mark so spreadsheet programs read
Vietnamese correctly.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely
from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, Engine, text

from geo_api import layers
from geo_api.domain import ogc
from geo_api.errors import InvalidInput, NotFound
from geo_api.layers import Layer

FORMATS: dict[str, str] = {
    "geojson": "application/geo+json",
    "gpkg": "application/geopackage+sqlite3",
    "shp": "application/zip",
    "csv": "text/csv; charset=utf-8",
    "kml": "application/vnd.google-earth.kml+xml",
}
EXTENSIONS = {"geojson": "geojson", "gpkg": "gpkg", "shp": "zip", "csv": "csv", "kml": "kml"}

# Columns added to the /api properties so that an export can be imported into another database.
EXTRA_COLUMNS: dict[str, dict[str, str]] = {
    "markers": {"post_code": "bp.code", "notes": "t.notes"},
    "posts": {"notes": "t.notes"},
    "roads": {"post_code": "bp.code", "surface": "t.surface", "width_m": "t.width_m",
              "planned_start": "t.planned_start", "planned_end": "t.planned_end",
              "contractor": "t.contractor", "notes": "t.notes"},
}
# The label a KML placemark shows, for layers without a `name` property.
KML_LABEL = {"markers": "number", "border-segments": "code", "village-pairs": "vn_village",
             "inaugurations": "title"}

LAYERS_BY_NAME = {layer.name: layer for layer in layers.LAYERS}


def export_layer(name: str) -> Layer:
    """The layer as exported: its declaration plus the import columns."""
    try:
        layer = LAYERS_BY_NAME[name]
    except KeyError:
        raise NotFound(f"no layer {name!r}; layers: {', '.join(LAYERS_BY_NAME)}") from None
    extra = EXTRA_COLUMNS.get(name)
    return dataclasses.replace(layer, properties={**layer.properties, **extra}) if extra else layer


def parse_filters(layer: Layer, fmt: str, filters: Mapping[str, str]) -> BaseModel:
    """The layer's /api query model from `filters` (every row: no limit, no cursor)."""
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}", field="format")
    if not layer.spatial and fmt != "csv":
        raise InvalidInput(f"{layer.name} have no geometry: export them as csv", field="format")
    allowed = [*layer.filters, *(["bbox"] if layer.spatial else [])]
    unknown = [k for k in filters if k not in allowed]
    if unknown:
        raise InvalidInput(
            f"unknown filter {', '.join(map(repr, unknown))} for {layer.name}; filters: "
            f"{', '.join(allowed) or '(none)'} (an export has every matching row: no limit or after)",
            field=unknown[0],
        )
    try:
        return layers.query_model(layer).model_validate(dict(filters))
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
                            for e in exc.errors())
        raise InvalidInput(reasons) from None


def _rows_sql(layer: Layer, query: BaseModel) -> tuple[str, dict[str, Any]]:
    sql, params = layers.matching(layer, query)
    return f"{sql} ORDER BY t.id", params


# ---------------------------------------------------------------------------- GeoJSON


def geojson_chunks(engine: Engine, layer: Layer, query: BaseModel) -> Iterator[bytes]:
    """The whole export as a GeoJSON FeatureCollection, streamed from a server-side cursor."""
    sql, params = _rows_sql(layer, query)
    sql = f"SELECT {layers.feature_json(layer)}::text FROM ({sql}) p"
    return ogc.stream_feature_collection(engine, sql, params, {"name": layer.name})


# ---------------------------------------------------------------------------- GDAL formats


def _flat(value: Any) -> Any:
    if isinstance(value, list):
        if all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
            return ", ".join(map(str, value))
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return value


def frame(conn: Connection, layer: Layer, query: BaseModel) -> gpd.GeoDataFrame | pd.DataFrame:
    """The export as a (Geo)DataFrame: `id`, the properties, flattened for flat formats."""
    sql, params = _rows_sql(layer, query)
    geom = "ST_AsBinary(p._geom)" if layer.spatial else "NULL"
    rows = conn.execute(text(f"SELECT p._id, {geom}, p._props::text FROM ({sql}) p"), params).all()
    records = [{"id": r[0], **{k: _flat(v) for k, v in json.loads(r[2]).items()}} for r in rows]
    columns = ["id", *layer.properties]
    df = pd.DataFrame.from_records(records, columns=columns)
    for col in columns:  # whole numbers with gaps stay whole (VND, ids), not floats
        values = [r.get(col) for r in records]
        present = [v for v in values if v is not None]
        if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
            df[col] = pd.array(values, dtype="Int64")
    if not layer.spatial:
        return df
    return gpd.GeoDataFrame(df, geometry=shapely.from_wkb([r[1] for r in rows]), crs="EPSG:4326")


def _write(df: gpd.GeoDataFrame, path: Path, driver: str, layer_name: str, **kwargs) -> None:
    with warnings.catch_warnings():  # shapefile field-name truncation is expected and documented
        warnings.simplefilter("ignore", RuntimeWarning)
        pyogrio.write_dataframe(df, path, driver=driver, layer=layer_name, **kwargs)


def _csv(df: pd.DataFrame, path: Path) -> None:
    if isinstance(df, gpd.GeoDataFrame):
        geoms = df.geometry
        out = pd.DataFrame(df.drop(columns=df.geometry.name))
        if len(geoms) and all(g is None or g.geom_type == "Point" for g in geoms):
            out["longitude"] = [None if g is None else round(g.x, 7) for g in geoms]
            out["latitude"] = [None if g is None else round(g.y, 7) for g in geoms]
        else:
            out["wkt"] = [None if g is None else shapely.to_wkt(g, rounding_precision=7) for g in geoms]
        df = out
    df.to_csv(path, index=False, encoding="utf-8-sig")


def write_export(conn: Connection, layer: Layer, query: BaseModel, fmt: str, out_dir: Path) -> Path:
    """Write the export in `fmt` (not geojson, which streams) into `out_dir`; returns the file."""
    df = frame(conn, layer, query)
    base = layer.name.replace("-", "_")
    path = out_dir / f"{base}.{EXTENSIONS[fmt]}"
    if fmt == "csv":
        _csv(df, path)
    elif fmt == "gpkg":
        _write(df, path, "GPKG", base)
    elif fmt == "kml":
        label = KML_LABEL.get(layer.name)
        if label and "name" not in df.columns:
            df.insert(1, "name", df[label].astype("string"))
        _write(df, path, "LIBKML", base)
    elif fmt == "shp":
        shp_dir = out_dir / "shp"
        shp_dir.mkdir()
        _write(df, shp_dir / f"{base}.shp", "ESRI Shapefile", base, encoding="UTF-8")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for part in sorted(shp_dir.iterdir()):
                zf.write(part, part.name)
        shutil.rmtree(shp_dir)
    else:  # geojson through GDAL too, for callers that want a file
        _write(df, path, "GeoJSON", base)
    return path


def export_to_file(engine: Engine, name: str, fmt: str, filters: Mapping[str, str], out: Path) -> int:
    """Export layer `name` to the file `out` (the CLI); returns the number of rows."""
    layer = export_layer(name)
    query = parse_filters(layer, fmt, filters)
    if fmt == "geojson":
        with out.open("wb") as fh:
            for chunk in geojson_chunks(engine, layer, query):
                fh.write(chunk)
        with engine.connect() as conn:
            sql, params = layers.matching(layer, query)
            return conn.execute(text(f"SELECT count(*) FROM ({sql}) m"), params).scalar_one()
    with engine.connect() as conn, tempfile.TemporaryDirectory() as tmp:
        written = write_export(conn, layer, query, fmt, Path(tmp))
        shutil.copyfile(written, out)
        sql, params = layers.matching(layer, query)
        return conn.execute(text(f"SELECT count(*) FROM ({sql}) m"), params).scalar_one()
