"""GeoJSON input checks: parse, reproject, validate and place a geometry in Viet Nam.

`parse_geometry` turns what a user sent (a GeoJSON object or text, optionally in another
CRS) into a 2-D shapely geometry in EPSG:4326, or raises `InvalidInput` with a reason the
user can act on: wrong type, unknown CRS, self-intersection (and where), empty, too many
vertices, outside Viet Nam plus a margin, or longitude and latitude swapped.

Where a geometry lies relative to the countries uses the outlines shipped in
`data/borders/countries_near_vn.geojson` (OpenStreetMap, ODbL), loaded once. Distances
for margins are measured in UTM zone 48N (EPSG:32648): across Viet Nam (102–110° E) its
scale error stays under 1 %, plenty for kilometre margins. Distances shown to users
for markers and roads are computed in PostGIS on the geography type instead.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from functools import lru_cache
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError, ProjError
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from geo_api import DATA_DIR
from geo_api.errors import InvalidInput
from geo_api.settings import get_settings

COUNTRIES_FILE = DATA_DIR / "borders" / "countries_near_vn.geojson"
COUNTRY_NAMES = {"VNM": "Viet Nam", "CHN": "China", "LAO": "Laos", "KHM": "Cambodia"}
METRIC_CRS = "EPSG:32648"  # UTM 48N

# How many list levels sit above the [lon, lat] positions of each GeoJSON geometry type.
POSITION_DEPTH = {
    "Point": 0, "MultiPoint": 1, "LineString": 1, "MultiLineString": 2,
    "Polygon": 2, "MultiPolygon": 3,
}




# ---------------------------------------------------------------------------- helpers


def _fmt(x: float) -> str:
    return f"{x:.6f}".rstrip("0").rstrip(".")


def fmt_position(xy) -> str:
    return f"[{_fmt(xy[0])}, {_fmt(xy[1])}]"


def fmt_distance(metres: float) -> str:
    """Human distance: '850 m', '2.3 km', '120 km'."""
    if metres < 1000:
        return f"{metres:.0f} m"
    km = metres / 1000
    return f"{km:.1f} km" if km < 100 else f"{km:,.0f} km"


def _label(expected: tuple[str, ...]) -> str:
    def a(t: str) -> str:
        return f"an {t}" if t[0] in "AEIOU" else f"a {t}"
    return " or ".join(a(t) for t in expected)


@lru_cache(maxsize=64)
def _transformer(src: str, dst: str) -> Transformer:
    return Transformer.from_crs(src, dst, always_xy=True)


def transform(geom: BaseGeometry, src: str, dst: str) -> BaseGeometry:
    """Reproject `geom` (x = longitude/easting first) from `src` to `dst`."""
    tr = _transformer(src, dst)

    def f(coords: np.ndarray) -> np.ndarray:
        x, y = tr.transform(coords[:, 0], coords[:, 1], errcheck=False)
        return np.column_stack([x, y])

    return shapely.transform(geom, f)


def to_metric(geom: BaseGeometry) -> BaseGeometry:
    return transform(geom, "EPSG:4326", METRIC_CRS)


def _finite(geom: BaseGeometry) -> bool:
    return bool(np.isfinite(shapely.get_coordinates(geom)).all())


# ---------------------------------------------------------------------------- countries


@lru_cache
def country_outlines() -> dict[str, BaseGeometry]:
    """ISO3 -> outline in EPSG:4326 (VNM whole; CHN/LAO/KHM clipped near Viet Nam)."""
    with COUNTRIES_FILE.open(encoding="utf-8") as fh:
        data = json.load(fh)
    return {f["properties"]["iso3"]: shape(f["geometry"]) for f in data["features"]}


@lru_cache
def _country_metric(iso3: str) -> BaseGeometry:
    geom = to_metric(country_outlines()[iso3])
    shapely.prepare(geom)
    return geom


@lru_cache(maxsize=8)
def _vn_area(margin_m: float) -> BaseGeometry:
    """Viet Nam grown by `margin_m`, in UTM 48N, prepared for fast `covers` tests.

    The outline is simplified by margin/20 before buffering (a 30 km buffer of the full
    outline takes seconds); the margin is therefore exact to within 5 %.
    """
    area = _country_metric("VNM")
    if margin_m > 0:
        area = area.simplify(margin_m / 20).buffer(margin_m, quad_segs=2)
    shapely.prepare(area)
    return area


def country_at(point: BaseGeometry) -> tuple[str | None, dict[str, float]]:
    """Which of the four countries contains `point` (EPSG:4326), and its distance in metres
    to each outline (0 inside)."""
    p = to_metric(point)
    distances = {iso: float(shapely.distance(_country_metric(iso), p)) for iso in COUNTRY_NAMES}
    inside = [iso for iso, d in distances.items() if d == 0]
    return (inside[0] if inside else None), distances


def check_country_side(point: BaseGeometry, country: str, what: str = "village",
                       tolerance_m: float | None = None) -> None:
    """Refuse a point that does not lie on the side of the border its `country` says."""
    tol = get_settings().geometry.village_side_tolerance_m if tolerance_m is None else tolerance_m
    actual, dist = country_at(point)
    if dist[country] <= tol:
        return
    where = (f"in {COUNTRY_NAMES[actual]} ({actual})" if actual else
             "outside Viet Nam, China, Laos and Cambodia as mapped")
    raise InvalidInput(
        f"{what} at {fmt_position(point.coords[0])} lies {where}, {fmt_distance(dist[country])} "
        f"from {COUNTRY_NAMES[country]}, but its country is {country}; "
        f"a {what} must be on its own country's side of the border",
        field="geometry", actual_country=actual, distance_m=round(dist[country]),
    )


def _check_lonlat_range(geom: BaseGeometry, field: str) -> None:
    coords = shapely.get_coordinates(geom)
    bad = ~((np.abs(coords[:, 0]) <= 180) & (np.abs(coords[:, 1]) <= 90))
    if bad.any():
        raise InvalidInput(
            f"{field}: {fmt_position(coords[bad][0])} is not a longitude/latitude position "
            f"(longitude must be within ±180, latitude within ±90)", field=field,
        )


def check_in_viet_nam(geom: BaseGeometry, margin_km: float, *, field: str = "geometry",
                      swap_hint: bool = True) -> None:
    """Refuse a geometry not inside Viet Nam grown by `margin_km`; name swapped lon/lat."""
    area = _vn_area(margin_km * 1000)
    metric = to_metric(geom)
    if _finite(metric) and area.covers(metric):
        return
    if swap_hint:
        swapped = shapely.transform(geom, lambda c: c[:, ::-1])
        sm = to_metric(swapped)
        if _finite(sm) and area.covers(sm):
            first = shapely.get_coordinates(geom)[0]
            raise InvalidInput(
                f"{field}: longitude and latitude look swapped: {fmt_position(first)} lies in Viet Nam "
                f"only when read as [latitude, longitude]; GeoJSON positions are [longitude, latitude], "
                f"e.g. {fmt_position(first[::-1])}",
                field=field,
            )
    _check_lonlat_range(geom, field)
    coords = shapely.get_coordinates(geom)
    points = shapely.points(shapely.get_coordinates(metric))
    outside = ~shapely.covers(area, points)
    margin = f"{_fmt(margin_km)} km" if margin_km else "no"
    if outside.any():
        i = int(np.argmax(outside))
        far = float(shapely.distance(_country_metric("VNM"), points[i]))
        raise InvalidInput(
            f"{field}: {fmt_position(coords[i])} is {fmt_distance(far)} outside Viet Nam; "
            f"geometries must lie in Viet Nam or within a {margin} margin of it",
            field=field, distance_m=round(far),
        )
    raise InvalidInput(
        f"{field}: the line leaves Viet Nam (plus a {margin} margin) between its vertices",
        field=field,
    )


# ---------------------------------------------------------------------------- parsing


def _resolve_crs(value: Any, where: str) -> CRS:
    try:
        return CRS.from_user_input(value)
    except (CRSError, TypeError, ValueError):
        raise InvalidInput(
            f"{where}: unknown CRS {value!r}; give an EPSG code such as 'EPSG:32648' "
            f"(or send EPSG:4326 longitude/latitude)", field=where,
        ) from None


def _member_crs(obj: dict, field: str) -> CRS | None:
    """The legacy GeoJSON (2008) `crs` member: {"type": "name", "properties": {"name": ...}}."""
    member = obj.get("crs")
    if member is None:
        return None
    name = member.get("properties", {}).get("name") if isinstance(member, dict) else None
    if not (isinstance(member, dict) and member.get("type") == "name" and isinstance(name, str)):
        raise InvalidInput(
            f"{field}.crs: only a named CRS is understood, e.g. "
            '{"type": "name", "properties": {"name": "EPSG:32648"}}', field=field,
        )
    return _resolve_crs(name, f"{field}.crs")


def _check_positions(value: Any, depth: int, gtype: str, field: str, counter: list[int],
                     cap: int, path: str = "") -> None:
    """Walk the nested coordinate lists: right nesting, 2-3 finite numbers per position."""
    if depth == 0:
        ok = (isinstance(value, list) and len(value) in (2, 3)
              and all(isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c)
                      for c in value))
        if not ok:
            what = f"position {path}" if path else "the coordinates"
            raise InvalidInput(
                f"{field}: {what} of the {gtype} must be [longitude, latitude] numbers, "
                f"got {json.dumps(value)[:80]}", field=field,
            )
        counter[0] += 1
        if counter[0] > cap:
            raise InvalidInput(
                f"{field}: too many vertices (more than {cap:,}); simplify or thin the geometry first",
                field=field, max_vertices=cap,
            )
        return
    if not isinstance(value, list):
        raise InvalidInput(
            f"{field}: coordinates{path} of the {gtype} must be a list, got {json.dumps(value)[:80]}",
            field=field,
        )
    for i, item in enumerate(value):
        _check_positions(item, depth - 1, gtype, field, counter, cap, f"{path}[{i}]")


def _check_parts(gtype: str, coords: list, field: str) -> None:
    """Minimum sizes GEOS would otherwise reject with an unhelpful message."""
    lines = {"LineString": [coords], "MultiLineString": coords}.get(gtype, [])
    for i, line in enumerate(lines):
        if len(line) < 2:
            where = f" {i}" if gtype.startswith("Multi") else ""
            raise InvalidInput(f"{field}: line{where} needs at least 2 positions, has {len(line)}",
                               field=field)
    rings = {"Polygon": [coords], "MultiPolygon": coords}.get(gtype, [])
    for p, poly in enumerate(rings):
        if not poly:
            raise InvalidInput(f"{field}: polygon {p} has no rings", field=field)
        for r, ring in enumerate(poly):
            if len(ring) < 4 or ring[0] != ring[-1]:
                raise InvalidInput(
                    f"{field}: ring {r} of polygon {p} must be closed (first position repeated "
                    f"last) with at least 4 positions", field=field,
                )


def _self_crossings(geom: BaseGeometry) -> list[tuple[float, float]]:
    """Where a linear geometry touches or crosses itself (nodes shared by 3+ pieces)."""
    noded = shapely.node(geom)
    ends: Counter = Counter()
    for piece in noded.geoms:
        c = piece.coords
        ends[c[0]] += 1
        ends[c[-1]] += 1
    return [xy for xy, n in ends.items() if n >= 3]


def _check_valid(geom: BaseGeometry, field: str) -> None:
    reason = shapely.is_valid_reason(geom)
    if reason != "Valid Geometry":
        m = re.match(r"(.*?)\[([-\d.eE+]+) ([-\d.eE+]+)\]$", reason)
        where = f" at {fmt_position((float(m[2]), float(m[3])))}" if m else ""
        what = (m[1] if m else reason).strip().lower()
        raise InvalidInput(f"{field}: invalid geometry: {what}{where}", field=field, reason=reason)
    if geom.geom_type in ("LineString", "MultiLineString") and not geom.is_simple:
        spots = _self_crossings(geom)
        where = f" at {', '.join(fmt_position(s) for s in spots[:3])}" if spots else ""
        raise InvalidInput(f"{field}: the line crosses or overlaps itself{where}", field=field)


def parse_geometry(
    geojson: dict | str,
    expected: str | tuple[str, ...],
    crs: str | None = None,
    *,
    field: str = "geometry",
    margin_km: float | None = None,
    max_vertices: int | None = None,
) -> BaseGeometry:
    """A user's GeoJSON geometry as a valid 2-D shapely geometry in EPSG:4326.

    `crs` (e.g. "EPSG:32648") or a GeoJSON `crs` member says the coordinates are in another
    CRS; they are reprojected. A Feature is accepted for its geometry. `margin_km=None` uses
    TRACKER_VN_MARGIN_KM; a negative margin skips the Viet Nam check. Raises InvalidInput.
    """
    settings = get_settings().geometry
    expected = (expected,) if isinstance(expected, str) else tuple(expected)
    margin_km = settings.vn_margin_km if margin_km is None else margin_km
    cap = settings.max_vertices if max_vertices is None else max_vertices

    obj: Any = geojson
    if isinstance(obj, (str, bytes)):
        try:
            obj = json.loads(obj)
        except ValueError as exc:
            raise InvalidInput(f"{field}: not valid JSON ({exc})", field=field) from None
    if not isinstance(obj, dict):
        raise InvalidInput(f"{field}: expected a GeoJSON object, got {type(obj).__name__}", field=field)
    member_crs = _member_crs(obj, field)
    if obj.get("type") == "Feature":
        inner = obj.get("geometry")
        if not isinstance(inner, dict):
            raise InvalidInput(f"{field}: the Feature has no geometry", field=field)
        member_crs = member_crs or _member_crs(inner, field)
        obj = inner
    gtype = obj.get("type")
    if gtype is None:
        raise InvalidInput(f"{field}: not GeoJSON: the object has no 'type' member", field=field)
    if gtype not in expected:
        raise InvalidInput(f"{field}: expected {_label(expected)}, got {gtype}",
                           field=field, expected=list(expected), got=str(gtype))
    if gtype not in POSITION_DEPTH:  # e.g. GeometryCollection, if a caller expects it
        raise InvalidInput(f"{field}: {gtype} is not supported here", field=field)
    coords = obj.get("coordinates")
    if coords is None:
        raise InvalidInput(f"{field}: the {gtype} has no 'coordinates' member", field=field)
    if coords == []:
        raise InvalidInput(f"{field}: the {gtype} is empty", field=field)
    _check_positions(coords, POSITION_DEPTH[gtype], gtype, field, [0], cap)
    _check_parts(gtype, coords, field)
    try:
        geom = shapely.force_2d(shape({"type": gtype, "coordinates": coords}))
    except (ValueError, TypeError, shapely.errors.GEOSException) as exc:
        raise InvalidInput(f"{field}: not a valid {gtype} ({exc})", field=field) from None
    if geom.is_empty:
        raise InvalidInput(f"{field}: the {gtype} is empty", field=field)

    src = None
    if crs is not None:
        src = _resolve_crs(crs, "crs")
        if member_crs is not None and not member_crs.equals(src, ignore_axis_order=True):
            raise InvalidInput(
                f"crs {crs!r} disagrees with the GeoJSON crs member ({member_crs.to_string()})",
                field="crs",
            )
    src = src or member_crs
    geographic = src is None or src.is_geographic
    if src is not None and not src.equals(CRS.from_epsg(4326), ignore_axis_order=True):
        if not src.is_geographic and not src.is_projected:
            raise InvalidInput(f"crs: {src.name} is not a horizontal CRS", field="crs")
        try:
            geom = transform(geom, src.to_string(), "EPSG:4326")
        except ProjError as exc:
            raise InvalidInput(f"crs: cannot reproject from {src.name}: {exc}", field="crs") from None
        if not _finite(geom):
            raise InvalidInput(
                f"{field}: the coordinates are outside the area where {src.name} is defined; "
                f"is the crs right?", field=field,
            )

    _check_valid(geom, field)
    if margin_km >= 0:
        check_in_viet_nam(geom, margin_km, field=field, swap_hint=geographic)
    else:
        _check_lonlat_range(geom, field)
    return geom


def to_wkb(geom: BaseGeometry) -> bytes:
    """WKB for `ST_GeomFromWKB(:param, 4326)`."""
    return shapely.to_wkb(geom)
