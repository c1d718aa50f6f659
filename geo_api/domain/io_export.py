"""Export any layer, filtered like `/api/{layer}`, to GeoJSON, GeoPackage, Shapefile, CSV or KML.

The rows come from the layer declarations in `geo_api.layers` (same properties, same
filters), extended with the few columns an import needs to recreate them elsewhere:
natural keys such as `post_code` (ids differ between databases) and the writable fields the
read API leaves out (planned dates, contractor, notes...). GeoJSON is streamed straight
from SQL; GeoPackage and Shapefile are written by GDAL (pyogrio) to a temporary file, KML
and CSV here.

Field types come from the catalogue (`layers.Prop.type`) through one table,
`FIELD_FORMATS`: dates are OGR Date fields, money Integer64, booleans Boolean where the
format has them (GeoPackage, Shapefile's logical fields); KML declares them in a typed
Schema; a CSV's types travel in GDAL's sidecar, `csvt(layer)` (`/api/export/{layer}.csvt`,
and FILE.csvt beside FILE.csv from the CLI).

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
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as xml_escape

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyogrio.raw
import shapely
from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, Engine, text

from geo_api import layers, policy
from geo_api.domain import ogc
from geo_api.errors import InvalidInput, NotFound
from geo_api.layers import Layer
from geo_api.policy import Viewer

FORMATS: dict[str, str] = {
    "geojson": "application/geo+json",
    "gpkg": "application/geopackage+sqlite3",
    "shp": "application/zip",
    "csv": "text/csv; charset=utf-8",
    "kml": "application/vnd.google-earth.kml+xml",
}
EXTENSIONS = {"geojson": "geojson", "gpkg": "gpkg", "shp": "zip", "csv": "csv", "kml": "kml"}

# The label a KML placemark shows, for layers without a `name` property.
KML_LABEL = {"markers": "number", "border-segments": "code", "village-pairs": "vn_village",
             "inaugurations": "title"}

LAYERS_BY_NAME = layers.BY_NAME


def export_layer(name: str) -> Layer:
    """The layer as exported: its declaration plus the import columns."""
    try:
        layer = LAYERS_BY_NAME[name]
    except KeyError:
        raise NotFound(f"no layer {name!r}; layers: {', '.join(LAYERS_BY_NAME)}") from None
    if not layer.exchange:
        return layer
    return dataclasses.replace(layer, properties={**layer.properties, **layer.exchange})


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


def _rows_sql(layer: Layer, query: BaseModel, viewer: Viewer) -> tuple[str, dict[str, Any]]:
    sql, params = layers.matching(layer, query, viewer)
    return f"{sql} ORDER BY t.id", params


# ---------------------------------------------------------------------------- GeoJSON


def geojson_chunks(engine: Engine, layer: Layer, query: BaseModel, viewer: Viewer) -> Iterator[bytes]:
    """The whole export as a GeoJSON FeatureCollection, streamed from a server-side cursor."""
    sql, params = _rows_sql(layer, query, viewer)
    sql = f"SELECT {layers.feature_json(layer)}::text FROM ({sql}) p"
    return ogc.stream_feature_collection(engine, sql, params, {"name": layer.name})


# ---------------------------------------------------------------------------- types


@dataclass(frozen=True)
class FormatTypes:
    """How one catalogue type (layers.Prop.type) is written: the numpy dtype GDAL gets for
    GeoPackage and Shapefile, the KML SimpleField type, the GDAL CSV sidecar (.csvt) type."""

    numpy: str
    kml: str
    csvt: str


# The one mapping from catalogue types to each format. KML has no date type (dates are ISO
# text) and no 64-bit integer: money is `uint`, which GDAL reads as Integer64.
FIELD_FORMATS: dict[str, FormatTypes] = {
    layers.STRING: FormatTypes("object", "string", "String"),
    layers.INTEGER: FormatTypes("int32", "int", "Integer"),
    layers.MONEY: FormatTypes("int64", "uint", "Integer64"),
    layers.NUMBER: FormatTypes("float64", "double", "Real"),
    layers.BOOLEAN: FormatTypes("bool", "bool", "Integer(Boolean)"),
    layers.DATE: FormatTypes("datetime64[D]", "string", "Date"),
    layers.ARRAY: FormatTypes("object", "string", "String"),
    layers.OBJECT: FormatTypes("object", "string", "String"),
}


def column_types(layer: Layer) -> dict[str, str]:
    """Catalogue type of each exported column: `id`, then the properties."""
    return {"id": layers.INTEGER, **{name: prop.type for name, prop in layer.properties.items()}}


def csv_columns(layer: Layer) -> dict[str, str]:
    """The CSV's columns and their .csvt types: point layers end with longitude/latitude,
    other spatial layers with wkt."""
    cols = {name: FIELD_FORMATS[kind].csvt for name, kind in column_types(layer).items()}
    if layer.geometry_type == "Point":
        cols.update(longitude="CoordX", latitude="CoordY")
    elif layer.spatial:
        cols["wkt"] = "WKT"
    return cols


def csvt_path(csv: Path) -> Path:
    """Where GDAL looks for a CSV's types: same name, extension .csvt."""
    return csv.with_suffix(".csvt")


def csvt(layer: Layer) -> str:
    """GDAL's CSV type sidecar for the layer's CSV export (one line, a type per column)."""
    return ",".join(f'"{t}"' for t in csv_columns(layer).values()) + "\n"


# ---------------------------------------------------------------------------- GDAL formats


def _number(value: Any) -> Any:
    """JSON numbers arrive as Decimal (money stays exact); floats elsewhere."""
    return float(value) if isinstance(value, Decimal) else value


def _flat(value: Any) -> Any:
    if isinstance(value, list):
        if all(isinstance(v, (str, int, float, Decimal)) and not isinstance(v, bool) for v in value):
            return ", ".join(map(str, value))
        return json.dumps(value, ensure_ascii=False, default=_number)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, default=_number)
    return value


def _typed(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == layers.MONEY:  # whole VND (the database refuses fractions): never rounded here
        if value != int(value):
            raise ValueError(f"money with a fraction: {value}")
        return int(value)
    if kind == layers.NUMBER:
        return float(value)
    return _flat(value)


PANDAS_DTYPES = {layers.INTEGER: "Int64", layers.MONEY: "Int64", layers.BOOLEAN: "boolean",
                 layers.NUMBER: "float64"}


def frame(conn: Connection, layer: Layer, query: BaseModel, viewer: Viewer) -> gpd.GeoDataFrame | pd.DataFrame:
    """The export as a (Geo)DataFrame: `id`, the properties, typed by the catalogue (money
    and ids whole, booleans, dates as ISO text), lists flattened for flat formats."""
    sql, params = _rows_sql(layer, query, viewer)
    geom = "ST_AsBinary(p._geom)" if layer.spatial else "NULL"
    rows = conn.execute(text(f"SELECT p._id, {geom}, p._props::text FROM ({sql}) p"), params).all()
    types = column_types(layer)
    records = []
    for r in rows:
        props = json.loads(r[2], parse_float=Decimal)
        records.append({"id": r[0], **{k: _typed(props.get(k), types[k]) for k in layer.properties}})
    df = pd.DataFrame.from_records(records, columns=list(types))
    for col, kind in types.items():
        if kind in PANDAS_DTYPES:
            df[col] = pd.array([r[col] for r in records], dtype=PANDAS_DTYPES[kind])
    if not layer.spatial:
        return df
    return gpd.GeoDataFrame(df, geometry=shapely.from_wkb([r[1] for r in rows]), crs="EPSG:4326")


MULTI = {"Point": "MultiPoint", "LineString": "MultiLineString", "Polygon": "MultiPolygon"}


def _geometry(df: gpd.GeoDataFrame, layer: Layer) -> tuple[np.ndarray, str]:
    """WKB of the geometries and the layer's geometry type; single parts are promoted where
    multi-part ones of the same kind are present (a road cut back near a marker)."""
    geoms = np.asarray(df.geometry.values, dtype=object)
    kinds = {g.geom_type for g in geoms if g is not None and not g.is_empty}
    if not kinds:
        return shapely.to_wkb(geoms), layer.geometry_type or "Unknown"
    if len(kinds) == 1:
        return shapely.to_wkb(geoms), kinds.pop()
    single = next((s for s, m in MULTI.items() if kinds == {s, m}), None)
    if single is None:
        return shapely.to_wkb(geoms), "Unknown"
    promote = {"Point": shapely.multipoints, "LineString": shapely.multilinestrings,
               "Polygon": shapely.multipolygons}[single]
    geoms = np.array([promote([g]) if g is not None and g.geom_type == single else g for g in geoms],
                     dtype=object)
    return shapely.to_wkb(geoms), MULTI[single]


def _field_array(series: pd.Series, kind: str) -> tuple[np.ndarray, np.ndarray | None]:
    """One column as GDAL gets it (values, null mask), typed as the catalogue says."""
    dtype = FIELD_FORMATS[kind].numpy
    missing = series.isna().to_numpy()
    values = series.to_numpy(dtype=object)
    if dtype == "object":
        return np.array([None if m else str(v) for v, m in zip(values, missing)], dtype=object), None
    if dtype == "datetime64[D]":  # ISO dates; None becomes NaT, which GDAL writes as null
        return np.array([None if m else v for v, m in zip(values, missing)], dtype=dtype), None
    if dtype == "float64":
        return np.array([np.nan if m else v for v, m in zip(values, missing)], dtype=dtype), None
    present = [v for v, m in zip(values, missing) if not m]
    if dtype == "int32" and any(not -2**31 <= v < 2**31 for v in present):
        dtype = "int64"  # never wrap: a larger whole number gets 64 bits
    return np.array([0 if m else v for v, m in zip(values, missing)], dtype=dtype), missing


def _write(df: gpd.GeoDataFrame, path: Path, driver: str, layer: Layer, layer_name: str, **kwargs) -> None:
    """Write with GDAL, each field typed by the catalogue (Date, Integer64, Boolean...)."""
    types = column_types(layer)
    fields = [c for c in df.columns if c != df.geometry.name]
    arrays = [_field_array(df[c], types.get(c, layers.STRING)) for c in fields]
    wkb, geometry_type = _geometry(df, layer)
    with warnings.catch_warnings():  # shapefile field-name truncation is expected and documented
        warnings.simplefilter("ignore", RuntimeWarning)
        pyogrio.raw.write(path, wkb, [a[0] for a in arrays], fields, field_mask=[a[1] for a in arrays],
                          layer=layer_name, driver=driver, geometry_type=geometry_type, crs="EPSG:4326",
                          **kwargs)


def _csv(df: pd.DataFrame, path: Path, layer: Layer) -> None:
    if isinstance(df, gpd.GeoDataFrame):
        geoms = df.geometry
        out = pd.DataFrame(df.drop(columns=df.geometry.name))
        if layer.geometry_type == "Point":
            out["longitude"] = [None if g is None or g.is_empty else round(g.x, 7) for g in geoms]
            out["latitude"] = [None if g is None or g.is_empty else round(g.y, 7) for g in geoms]
        else:
            out["wkt"] = [None if g is None else shapely.to_wkt(g, rounding_precision=7) for g in geoms]
        df = out
    assert list(df.columns) == list(csv_columns(layer)), "the .csvt must describe these columns"
    df.to_csv(path, index=False, encoding="utf-8-sig")


# ---------------------------------------------------------------------------- KML


def _kml_coords(coords: Any) -> str:
    return " ".join(f"{round(x, 7)},{round(y, 7)}" for x, y, *_ in coords)


def _kml_geometry(g: Any) -> str:
    if g is None or g.is_empty:
        return ""
    if g.geom_type == "Point":
        return f"<Point><coordinates>{_kml_coords(g.coords)}</coordinates></Point>"
    if g.geom_type in ("LineString", "LinearRing"):
        return f"<LineString><coordinates>{_kml_coords(g.coords)}</coordinates></LineString>"
    if g.geom_type == "Polygon":
        rings = [f"<outerBoundaryIs><LinearRing><coordinates>{_kml_coords(g.exterior.coords)}"
                 f"</coordinates></LinearRing></outerBoundaryIs>"]
        rings += [f"<innerBoundaryIs><LinearRing><coordinates>{_kml_coords(r.coords)}"
                  f"</coordinates></LinearRing></innerBoundaryIs>" for r in g.interiors]
        return f"<Polygon>{''.join(rings)}</Polygon>"
    return f"<MultiGeometry>{''.join(_kml_geometry(part) for part in g.geoms)}</MultiGeometry>"


def _kml_value(value: Any, kind: str) -> str:
    if kind == layers.BOOLEAN:
        return "1" if value else "0"  # xsd:boolean; GDAL up to 3.6 reads "true" as 0
    return xml_escape(str(value))


def _kml(df: gpd.GeoDataFrame, path: Path, layer: Layer, layer_name: str) -> None:
    """KML with a typed Schema: GDAL reads `id`, whole numbers, money (Integer64) and
    booleans back as such. The placemark label is `name` (or KML_LABEL), kept out of the
    extended data as GDAL's own `Name` field. Newer GDAL (3.12) reports the placemark id
    (`<layer>.<id>`) as `id` of its own, and then the declared id as `id2`."""
    types = column_types(layer)
    label = "name" if "name" in df.columns else KML_LABEL.get(layer.name)
    fields = [c for c in df.columns if c not in (df.geometry.name, "name")]
    schema = "".join(f'<SimpleField name="{c}" type="{FIELD_FORMATS[types[c]].kml}"/>' for c in fields)
    out = [f'<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="http://www.opengis.net/kml/2.2">'
           f'<Document id="root_doc"><Schema name="{layer_name}" id="{layer_name}.schema">{schema}</Schema>'
           f'<Folder id="{layer_name}"><name>{layer_name}</name>']
    for row in df.itertuples(index=False):
        rec = dict(zip(df.columns, row))
        name = rec.get(label) if label else None
        data = "".join(f'<SimpleData name="{c}">{_kml_value(rec[c], types[c])}</SimpleData>'
                       for c in fields if not pd.isna(rec[c]))
        out.append(f'<Placemark id="{layer_name}.{rec["id"]}">'
                   + (f"<name>{xml_escape(str(name))}</name>" if not pd.isna(name) else "")
                   + f'<ExtendedData><SchemaData schemaUrl="#{layer_name}.schema">{data}</SchemaData>'
                   f"</ExtendedData>{_kml_geometry(rec[df.geometry.name])}</Placemark>")
    out.append("</Folder></Document></kml>\n")
    path.write_text("\n".join(out), encoding="utf-8")


# ---------------------------------------------------------------------------- files


def write_export(conn: Connection, layer: Layer, query: BaseModel, fmt: str, out_dir: Path,
                 viewer: Viewer) -> Path:
    """Write the export in `fmt` (not geojson, which streams) into `out_dir`; returns the file."""
    df = frame(conn, layer, query, viewer)
    base = layer.name.replace("-", "_")
    path = out_dir / f"{base}.{EXTENSIONS[fmt]}"
    if fmt == "csv":
        _csv(df, path, layer)
    elif fmt == "gpkg":
        _write(df, path, "GPKG", layer, base)
    elif fmt == "kml":
        _kml(df, path, layer, base)
    elif fmt == "shp":
        shp_dir = out_dir / "shp"
        shp_dir.mkdir()
        _write(df, shp_dir / f"{base}.shp", "ESRI Shapefile", layer, base, encoding="UTF-8")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for part in sorted(shp_dir.iterdir()):
                zf.write(part, part.name)
        shutil.rmtree(shp_dir)
    else:  # geojson through GDAL too, for callers that want a file
        _write(df, path, "GeoJSON", layer, base)
    return path


def export_to_file(engine: Engine, name: str, fmt: str, filters: Mapping[str, str], out: Path,
                   viewer: Viewer = policy.SYSTEM) -> int:
    """Export layer `name` to the file `out` (the CLI, run by whoever holds the database:
    exact by default), a CSV with its GDAL type sidecar `csvt_path(out)`; returns the number
    of rows."""
    layer = export_layer(name)
    query = parse_filters(layer, fmt, filters)
    if fmt == "csv":
        csvt_path(out).write_text(csvt(layer), encoding="utf-8")
    if fmt == "geojson":
        with out.open("wb") as fh:
            for chunk in geojson_chunks(engine, layer, query, viewer):
                fh.write(chunk)
        with engine.connect() as conn:
            sql, params = layers.matching(layer, query, viewer)
            return conn.execute(text(f"SELECT count(*) FROM ({sql}) m"), params).scalar_one()
    with engine.connect() as conn, tempfile.TemporaryDirectory() as tmp:
        written = write_export(conn, layer, query, fmt, Path(tmp), viewer)
        shutil.copyfile(written, out)
        sql, params = layers.matching(layer, query, viewer)
        return conn.execute(text(f"SELECT count(*) FROM ({sql}) m"), params).scalar_one()
