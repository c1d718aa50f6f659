"""Mapbox Vector Tiles of the map layers, built by PostGIS (`ST_AsMVT`).

One tile layer per map layer (markers, roads, posts, villages). A tile is one SQL
statement: select the rows whose geometry meets the tile (plus a small margin so
symbols and strokes are not cut at tile edges), project them to Web Mercator, reduce
them for the zoom level, clip and quantise them with `ST_AsMVTGeom`, encode with
`ST_AsMVT`.

Reduction per zoom:
- below the layer's `aggregate_below` zoom, features are gathered into a grid of cells
  `GRID_PX` screen pixels wide: one point per cell at the mean position (of the points,
  or of the lines' middles), with `count` (how many it stands for) and the cell's most
  common category (markers: access, roads: status). A branch road is a few kilometres
  long: below zoom 8 it is a pixel or two, and 30,000 of them as lines weigh ~900 KB per
  tile, as cells a few KB. From that zoom on every point is its own feature with `count`
  1 (clients style both alike), and every road a line;
- lines are simplified (Douglas-Peucker, in lon/lat before they are projected) with a
  tolerance of at most half a screen pixel at that zoom, and not at all from
  `DETAIL_ZOOM` on.

Each tile layer is a view of a catalogue layer (`geo_api.layers`, same name), and the
read policy applies as it does to the read API (`geo_api.policy`): anonymous callers get
markers' positions snapped to about 100 m (a point is put in the tile of its snapped
position) and roads kept clear of the markers.

The pages use these tiles instead of inline GeoJSON when the data is too large to embed
(see the `maps` settings); GIS clients can use them too (TileJSON at /tiles/{layer}.json).

Rendered tiles are kept in memory (`cached_tile`, `TRACKER_TILE_CACHE_MB`) with the
database snapshot they were rendered in, and served again while a request's statement
sees the very same snapshot, as OGC numberMatched is (`ogc.count`): the check and, when
it fails, the rendering are one statement, so a tile is never older than the data.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model
from sqlalchemy import Connection, text

from geo_api import db
from geo_api.errors import InvalidInput
from geo_api import layers as catalogue
from geo_api import policy
from geo_api.layers import many_validator
from geo_api.policy import Viewer

EXTENT = 4096          # tile coordinate space
BUFFER = 64            # extent units kept beyond the edge (1 px at 256 px tiles = 16 units)
MAX_ZOOM = 22
DETAIL_ZOOM = 14       # from here on lines are not simplified
GRID_PX = 24           # point aggregation cell, in screen pixels of a 256 px tile
WEB_MERCATOR_HALF = 20037508.342789244
R = 6378137.0  # the Web Mercator sphere's radius, metres


@dataclass(frozen=True)
class TileFilter:
    """A query parameter: `sql` is a condition on the bound value `:v`."""

    sql: str
    kind: Any = str
    description: str = ""
    many: tuple[str, ...] | None = None  # allowed values of a comma-separated list


@dataclass(frozen=True)
class TileLayer:
    name: str
    title: str
    source: str                   # FROM ... (alias t)
    geom: str                     # EPSG:4326 geometry expression
    columns: dict[str, str]       # attribute -> SQL expression
    kind: Literal["point", "line"]
    aggregate_below: int = 0      # points: zoom below which they are gridded
    category: str | None = None   # points: attribute summarised per cell (most common value)
    filters: dict[str, TileFilter] = field(default_factory=dict)
    min_zoom: int = 0
    # Indexed geometry columns that `geom` is built from (COALESCE of two): a tile also
    # tests them, so the GiST indexes find the rows instead of a scan of the whole table.
    indexed: tuple[str, ...] = ()


def tile_layer(layer: catalogue.Layer) -> TileLayer:
    """The tile view of a catalogue layer (its `tiles` declaration)."""
    spec = layer.tiles
    columns = {}
    for attribute, prop_name in spec.attributes.items():
        prop = layer.properties[prop_name]
        columns[attribute] = f"{prop.sql}::text" if prop.enum else prop.sql  # MVT values: text, not enums
    filters = {}
    for name in spec.filters:
        flt = layer.filters[name]
        filters[name] = TileFilter(flt.sql, str if flt.many else flt.kind, flt.description,
                                   many=flt.kind if flt.many else None)
    return TileLayer(
        name=layer.name, title=spec.title, source=spec.source or f"{layer.table} t {layer.joins}",
        geom=layer.geometry, columns=columns, kind="point" if layer.geometry_type == "Point" else "line",
        aggregate_below=spec.aggregate_below, category=spec.category, filters=filters, indexed=spec.indexed,
    )


TILE_LAYERS: dict[str, TileLayer] = {layer.name: tile_layer(layer) for layer in catalogue.LAYERS if layer.tiles}


class TileQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")


def query_model(layer: TileLayer) -> type[TileQuery]:
    """The filters a layer's tiles accept, as a pydantic model (unknown parameters refused)."""
    fields: dict[str, Any] = {}
    validators: dict[str, Any] = {}
    for name, flt in layer.filters.items():
        kind = str if flt.many else flt.kind
        extra = {"ge": 1, "le": 2**31 - 1} if kind is int else {}
        fields[name] = (kind | None, Field(default=None, description=flt.description, **extra))
        if flt.many:
            validators[f"_check_{name}"] = many_validator(name, flt.many)
    return create_model(f"{layer.name.title()}TileQuery", __base__=TileQuery,
                        __validators__=validators, **fields)


def tile_width_m(z: int) -> float:
    return 2 * WEB_MERCATOR_HALF / (1 << z)


def check_tile(z: int, x: int, y: int) -> None:
    if not 0 <= z <= MAX_ZOOM:
        raise InvalidInput(f"zoom {z} is outside 0..{MAX_ZOOM}", field="z")
    n = 1 << z
    for name, v in (("x", x), ("y", y)):
        if not 0 <= v < n:
            raise InvalidInput(f"{name} {v} is outside 0..{n - 1} at zoom {z}", field=name)


def conditions(layer: TileLayer, query: BaseModel | dict) -> tuple[list[str], dict[str, Any]]:
    """SQL conditions and bound values for the filters set in `query`."""
    values = query if isinstance(query, dict) else query.model_dump()
    conds: list[str] = []
    params: dict[str, Any] = {}
    for i, (name, flt) in enumerate(layer.filters.items()):
        value = values.get(name)
        if value is None:
            continue
        if flt.many:
            value = [s for s in str(value).split(",") if s]
        key = f"f{i}"
        conds.append("(" + flt.sql.replace(":v", f":{key}") + ")")
        params[key] = value
    return conds, params


def visible(layer: TileLayer, viewer: Viewer) -> tuple[str, dict[str, str], int | None]:
    """The layer's geometry and columns as `viewer` may see them (the catalogue layer's read
    rule, geo_api.policy), and the snapping grid's decimals (None: not snapped)."""
    source = catalogue.BY_NAME[layer.name]
    rule = policy.rule(source, viewer)
    if rule is None:
        return layer.geom, dict(layer.columns), None
    geom = rule.geometry or layer.geom
    if rule.snap_decimals is not None:
        geom = f"ST_SnapToGrid({geom}, 1e-{rule.snap_decimals})"
    return geom, {k: "NULL" if k in rule.hidden else v for k, v in layer.columns.items()}, rule.snap_decimals


def tile_sql(layer: TileLayer, z: int, conds: list[str], viewer: Viewer) -> str:
    geom, columns, decimals = visible(layer, viewer)
    envelope = "ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => :margin), 4326)"
    if decimals is None:
        meets = [f"{geom} && {envelope}"]
    else:  # which tile a point falls in must not tell more than the snapped point does
        meets = [f"{layer.geom} && ST_Expand({envelope}, 1e-{decimals})", f"{geom} && {envelope}"]
    if layer.indexed:  # implied by `meets`: the row's geometry is one of these
        meets.insert(0, "(" + " OR ".join(f"{c} && {envelope}" for c in layer.indexed) + ")")
    where = " AND ".join([*meets, *conds])
    cols = ", ".join(f"{sql} AS {name}" for name, sql in columns.items())
    if z < layer.aggregate_below:
        # One point per grid cell: the mean position of what falls in it (points; lines by
        # their middle), how many, and the most common category.
        # (a line kept clear of the markers may come in pieces: the first one's middle)
        anchor = f"ST_LineInterpolatePoint(ST_GeometryN({geom}, 1), 0.5)" if layer.kind == "line" else geom
        category = (f", mode() WITHIN GROUP (ORDER BY p.{layer.category}) AS {layer.category}"
                    if layer.category else "")
        # Web Mercator by its formula: per point, PROJ (ST_Transform) costs ten times more.
        rows = f"""
            SELECT min(p.id) AS id, ST_SetSRID(ST_MakePoint(avg(p.mx), avg(p.my)), 3857) AS g,
                   count(*)::int AS count{category}
            FROM (SELECT t.id, {R} * radians(ST_X(a.pt)) AS mx,
                         {R} * ln(tan(radians(45 + least(greatest(ST_Y(a.pt), -85.0511), 85.0511) / 2))) AS my,
                         {cols}
                  FROM {layer.source} CROSS JOIN LATERAL (SELECT {anchor} AS pt) a WHERE {where}) p
            GROUP BY floor(p.mx / :cell), floor(p.my / :cell)"""
        attrs = "count" + (f", {layer.category}" if layer.category else "")
    elif layer.kind == "line":
        g = f"ST_Transform({geom}, 3857)"
        if z < DETAIL_ZOOM:  # simplified before it is projected: fewer vertices to project
            g = f"ST_Transform(ST_Simplify({geom}, :tol_deg, true), 3857)"
        rows = f"SELECT t.id, {g} AS g, {cols} FROM {layer.source} WHERE {where}"
        attrs = ", ".join(layer.columns)
    else:
        rows = f"SELECT t.id, ST_Transform({geom}, 3857) AS g, 1 AS count, {cols} " \
               f"FROM {layer.source} WHERE {where}"
        attrs = "count, " + ", ".join(layer.columns)
    return f"""
        SELECT ST_AsMVT(q, :layer, {EXTENT}, 'geom', 'id') FROM (
            SELECT r.id, ST_AsMVTGeom(r.g, ST_TileEnvelope(:z, :x, :y), {EXTENT}, {BUFFER}, true) AS geom,
                   {attrs}
            FROM ({rows}) r
        ) q WHERE q.geom IS NOT NULL
    """


def without_jit(conn: Connection) -> None:
    """Turn PostgreSQL's JIT off for the rest of this transaction. Queries whose estimated
    cost passes jit_above_cost (a low-zoom tile at 100× the demo data, the per-province
    report at 10×) otherwise spend about a second compiling to save milliseconds."""
    conn.execute(text("SET LOCAL jit = off"))


def _statement(layer_name: str, z: int, x: int, y: int, query: BaseModel | dict | None,
               viewer: Viewer) -> tuple[str, dict]:
    layer = TILE_LAYERS.get(layer_name)
    if layer is None:
        raise InvalidInput(f"unknown tile layer {layer_name!r}; layers: {', '.join(TILE_LAYERS)}")
    check_tile(z, x, y)
    conds, params = conditions(layer, query or {})
    width = tile_width_m(z)
    params.update(z=z, x=x, y=y, layer=layer.name, margin=BUFFER / EXTENT,
                  tol_deg=simplify_tolerance_deg(z, y), cell=width * GRID_PX / 256)
    return tile_sql(layer, z, conds, viewer), params


def simplify_tolerance_deg(z: int, y: int) -> float:
    """Half a screen pixel of tile row y at zoom z, as a tolerance in degrees that moves no
    vertex more than that in Web Mercator anywhere in the tile: a degree of longitude is
    111,319.49 Mercator units everywhere, one of latitude 1/cos(latitude) times that, so
    the tile's latitude farthest from the equator bounds it."""
    n = 1 << z
    lats = [math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n)))) for row in (y, y + 1)]
    return tile_width_m(z) / 512 * math.cos(math.radians(max(abs(v) for v in lats))) / (R * math.pi / 180)


def tile(conn: Connection, layer_name: str, z: int, x: int, y: int, viewer: Viewer,
         query: BaseModel | dict | None = None) -> bytes:
    """The encoded tile (empty bytes when nothing falls in it), in `conn`'s transaction."""
    sql, params = _statement(layer_name, z, x, y, query, viewer)
    without_jit(conn)
    data = conn.execute(text(sql), params).scalar()
    return bytes(data or b"")


@dataclass(frozen=True)
class Tile:
    data: bytes
    digest: str  # of `data`: the ETag

    @cached_property
    def gzipped(self) -> bytes:
        """The gzip form, made once per kept tile."""
        import gzip

        return gzip.compress(self.data, compresslevel=5)


class TileCache:
    """Rendered tiles by (statement, bound values), each with the snapshot it was rendered
    in; least recently used first out once over `max_bytes`."""

    def __init__(self, max_bytes: int):
        self.max_bytes, self.bytes = max_bytes, 0
        self.hits = self.misses = 0
        self._tiles: OrderedDict[tuple, tuple[str, Tile]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> tuple[str, Tile] | None:
        with self._lock:
            found = self._tiles.get(key)
            if found is not None:
                self._tiles.move_to_end(key)
            return found

    def put(self, key: tuple, snap: str, t: Tile) -> None:
        size = len(t.data) + len(repr(key))
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._tiles.pop(key, None)
            if old is not None:
                self.bytes -= len(old[1].data) + len(repr(key))
            self._tiles[key] = (snap, t)
            self.bytes += size
            while self.bytes > self.max_bytes:
                k, (_, dropped) = self._tiles.popitem(last=False)
                self.bytes -= len(dropped.data) + len(repr(k))


_caches: dict[int, TileCache] = {}


def tile_cache(max_mb: int) -> TileCache | None:
    if max_mb <= 0:
        return None
    return _caches.setdefault(max_mb, TileCache(max_mb * 1024 * 1024))


def cached_tile(engine, layer_name: str, z: int, x: int, y: int, viewer: Viewer,
                query: BaseModel | dict | None = None, cache: TileCache | None = None) -> Tile:
    """The tile, by one statement on the read pool. With a cache: the statement renders the
    tile only when the database snapshot differs from the one the cached copy was rendered
    in (``pg_current_snapshot()``: no transaction has begun writing or finished since, so
    the same rows are visible and the tile would be the same); otherwise it returns the
    snapshot alone and the copy is served. The key is the statement with its values, so
    what differs by caller (anonymous callers' snapped positions, hidden columns) differs
    in the key too."""
    sql, params = _statement(layer_name, z, x, y, query, viewer)
    key = db.statement_key(sql, params)
    known = cache.get(key) if cache is not None else None
    statement = f"""
        SELECT x.snap, x.writing,
               CASE WHEN x.snap = CAST(:known_snap AS text) AND NOT x.writing THEN NULL
                    ELSE COALESCE(({sql}), ''::bytea) END AS tile
        FROM {db.SNAPSHOT}
    """
    snap, writing, data = db.read_pool(engine).fetchone(
        db.psycopg_sql(statement), {**params, "known_snap": known[0] if known else None})
    if data is None and known is not None:
        cache.hits += 1
        return known[1]
    data = bytes(data)
    t = Tile(data, hashlib.sha256(data).hexdigest()[:32])
    if cache is not None:
        cache.misses += 1
        if not writing:
            cache.put(key, snap, t)
    return t


def tilejson(layer_name: str, base_url: str, query_string: str = "") -> dict[str, Any]:
    """TileJSON 3.0.0 for one layer, with the tile URL under `base_url`."""
    layer = TILE_LAYERS[layer_name]
    suffix = f"?{query_string}" if query_string else ""
    source = catalogue.BY_NAME[layer_name]
    kinds = {catalogue.INTEGER: "Number", catalogue.MONEY: "Number", catalogue.NUMBER: "Number",
             catalogue.BOOLEAN: "Boolean"}
    fields = {attribute: kinds.get(source.properties[prop].type, "String")
              for attribute, prop in source.tiles.attributes.items()}
    if layer.aggregate_below:
        fields["count"] = (f"Number: below zoom {layer.aggregate_below} a feature is a grid cell (a point) "
                           f"standing for `count` {layer.name}, with only `count` and "
                           f"{layer.category or 'no other attribute'}")
    return {
        "tilejson": "3.0.0",
        "name": layer.name,
        "description": layer.title,
        "scheme": "xyz",
        "tiles": [f"{base_url.rstrip('/')}/tiles/{layer.name}/{{z}}/{{x}}/{{y}}.pbf{suffix}"],
        "minzoom": layer.min_zoom,
        "maxzoom": MAX_ZOOM,
        "bounds": [100.0, 8.0, 112.0, 24.0],
        "vector_layers": [{"id": layer.name, "description": layer.title, "fields": fields,
                           "minzoom": layer.min_zoom, "maxzoom": MAX_ZOOM}],
        "attribution": "Border roads tracker; borders © OpenStreetMap contributors (ODbL)",
    }


def tile_range(bounds: tuple[float, float, float, float], z: int) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 of the tiles covering lon/lat bounds at zoom z (for seeding, benchmarks)."""
    def xy(lon: float, lat: float) -> tuple[int, int]:
        n = 1 << z
        lat = max(min(lat, 85.0511), -85.0511)
        x = int((lon + 180) / 360 * n)
        y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
        return min(max(x, 0), n - 1), min(max(y, 0), n - 1)
    x0, y1 = xy(bounds[0], bounds[1])
    x1, y0 = xy(bounds[2], bounds[3])
    return x0, y0, x1, y1
