"""GeoJSON input checks (no database): types, CRS, validity, Viet Nam, swapped axes."""

import json
import math

import pytest
from shapely.geometry import MultiPolygon, Point

from geo_api.settings import GeometrySettings
from geo_api.domain.geometry import (
    check_country_side, country_at, fmt_distance, parse_geometry,
)
from geo_api.errors import InvalidInput

# A vertex of the VN-CN line near Lạng Sơn, and points ~1 km either side of it.
ON_LINE = [106.88017, 21.98204]
IN_VN = [106.88017, 21.97204]
IN_CN = [106.88017, 21.99204]
IN_LAOS = [106.5603, 16.62344]


def point(xy):
    return {"type": "Point", "coordinates": list(xy)}


def line(*xys):
    return {"type": "LineString", "coordinates": [list(p) for p in xys]}


def refused(geojson, expected="Point", crs=None, **kw) -> str:
    with pytest.raises(InvalidInput) as err:
        parse_geometry(geojson, expected, crs, **kw)
    return err.value.message


def test_a_valid_point_comes_back_as_shapely_in_4326():
    g = parse_geometry(point(ON_LINE), "Point")
    assert (g.geom_type, g.x, g.y) == ("Point", *ON_LINE)


def test_text_and_features_are_accepted_and_z_is_dropped():
    g = parse_geometry(json.dumps({"type": "Feature", "properties": {},
                                   "geometry": point(ON_LINE + [350.0])}), "Point")
    assert not g.has_z and (g.x, g.y) == tuple(ON_LINE)


@pytest.mark.parametrize("geojson, expected, reason", [
    ({"type": "Polygon", "coordinates": [[IN_VN, ON_LINE, [106.87, 21.975], IN_VN]]}, "LineString",
     "expected a LineString, got Polygon"),
    (point(ON_LINE), ("Polygon", "MultiPolygon"), "expected a Polygon or a MultiPolygon, got Point"),
    ({"type": "FeatureCollection", "features": []}, "Point", "expected a Point, got FeatureCollection"),
    ("{not json", "Point", "not valid JSON"),
    ([106.5, 22.4], "Point", "expected a GeoJSON object, got list"),
    ({"coordinates": ON_LINE}, "Point", "has no 'type' member"),
    ({"type": "Point"}, "Point", "has no 'coordinates' member"),
    ({"type": "LineString", "coordinates": []}, "LineString", "the LineString is empty"),
    ({"type": "Point", "coordinates": []}, "Point", "the Point is empty"),
    (line(IN_VN), "LineString", "line needs at least 2 positions, has 1"),
    (line(IN_VN, [106.9, "22"]), "LineString", "position [1] of the LineString must be [longitude, latitude]"),
    (point([106.9]), "Point", "the coordinates of the Point must be [longitude, latitude]"),
    ({"type": "Point", "coordinates": [True, 22.0]}, "Point", "must be [longitude, latitude]"),
    ({"type": "Polygon", "coordinates": [[IN_VN, ON_LINE, [106.87, 21.975]]]}, "Polygon",
     "ring 0 of polygon 0 must be closed"),
    ({"type": "Feature", "geometry": None}, "Point", "the Feature has no geometry"),
])
def test_malformed_or_mistyped_geojson_is_refused_with_the_reason(geojson, expected, reason):
    assert reason in refused(geojson, expected)


def test_a_self_intersecting_line_is_refused_and_the_crossing_located():
    bowtie = line([106.50, 22.40], [106.52, 22.42], [106.52, 22.40], [106.50, 22.42])
    assert "the line crosses or overlaps itself at [106.51, 22.41]" in refused(bowtie, "LineString")


def test_a_line_that_doubles_back_over_itself_is_refused():
    back = line([106.50, 22.40], [106.52, 22.40], [106.51, 22.40], [106.51, 22.41])
    assert "crosses or overlaps itself" in refused(back, "LineString")


def test_a_line_with_repeated_points_only_is_invalid():
    assert "invalid geometry: too few points" in refused(line(IN_VN, IN_VN), "LineString")


def test_a_self_intersecting_polygon_is_refused_with_the_place():
    ring = [[106.50, 22.40], [106.52, 22.42], [106.52, 22.40], [106.50, 22.42], [106.50, 22.40]]
    reason = refused({"type": "Polygon", "coordinates": [ring]}, "Polygon")
    assert "invalid geometry: self-intersection at [106.51, 22.41]" in reason


def test_a_closed_simple_loop_is_accepted():
    loop = line([106.50, 22.40], [106.51, 22.41], [106.52, 22.40], [106.50, 22.40])
    assert parse_geometry(loop, "LineString").is_ring


def test_too_many_vertices_are_refused_before_any_work():
    coords = [[106.5 + i * 1e-5, 22.4] for i in range(11)]
    assert "too many vertices (more than 10)" in refused(line(*coords), "LineString", max_vertices=10)
    assert parse_geometry(line(*coords), "LineString", max_vertices=11).geom_type == "LineString"


def test_default_vertex_cap_is_ten_thousand():
    assert GeometrySettings().max_vertices == 10_000
    coords = [[106.5 + i * 1e-6, 22.4] for i in range(10_001)]
    assert "more than 10,000" in refused(line(*coords), "LineString")


# ---------------------------------------------------------------------------- CRS


def _utm48_northing_on_central_meridian(lat_deg: float) -> float:
    """k0 × the WGS84 meridian arc: independent of pyproj, to check the reprojection."""
    a, f, k0 = 6378137.0, 1 / 298.257223563, 0.9996
    e2 = f * (2 - f)
    e4, e6 = e2 * e2, e2 ** 3
    p = math.radians(lat_deg)
    m = a * ((1 - e2 / 4 - 3 * e4 / 64 - 5 * e6 / 256) * p
             - (3 * e2 / 8 + 3 * e4 / 32 + 45 * e6 / 1024) * math.sin(2 * p)
             + (15 * e4 / 256 + 45 * e6 / 1024) * math.sin(4 * p)
             - (35 * e6 / 3072) * math.sin(6 * p))
    return k0 * m


def test_utm_48n_coordinates_are_reprojected_to_the_right_lon_lat():
    # Easting 500 000 is the zone's central meridian, 105° E; the northing of 22° N is k0·M(22°).
    g = parse_geometry(point([500000.0, _utm48_northing_on_central_meridian(22.0)]), "Point", "EPSG:32648")
    assert g.x == pytest.approx(105.0, abs=1e-7)
    assert g.y == pytest.approx(22.0, abs=1e-7)


def test_the_geojson_crs_member_is_honoured_too():
    geo = {**point([600000, 2480000]),
           "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32648"}}}
    g = parse_geometry(geo, "Point")
    assert g.x == pytest.approx(105.9717, abs=1e-4) and g.y == pytest.approx(22.4233, abs=1e-4)
    # the same CRS given both ways is fine
    assert parse_geometry(geo, "Point", "EPSG:32648").equals(g)


def test_a_reprojected_line_keeps_its_shape_and_is_checked_in_4326():
    utm = line([600000, 2480000], [600500, 2480500])
    g = parse_geometry(utm, "LineString", "EPSG:32648")
    assert g.geom_type == "LineString" and len(g.coords) == 2
    assert all(105.9 < x < 106.0 and 22.4 < y < 22.5 for x, y in g.coords)


def test_explicit_epsg_4326_is_not_transformed():
    assert parse_geometry(point(ON_LINE), "Point", "EPSG:4326").coords[0] == tuple(ON_LINE)


@pytest.mark.parametrize("crs, geo, reason", [
    ("EPSG:999999", point(ON_LINE), "unknown CRS 'EPSG:999999'"),
    ("not a crs", point(ON_LINE), "unknown CRS"),
    (None, {**point(ON_LINE), "crs": {"type": "link", "properties": {"href": "x"}}}, "only a named CRS"),
    (None, {**point(ON_LINE), "crs": {"type": "name", "properties": {"name": "EPSG:0"}}}, "unknown CRS"),
    ("EPSG:4326", {**point([600000, 2480000]), "crs": {"type": "name", "properties": {"name": "EPSG:32648"}}},
     "disagrees with the GeoJSON crs member"),
])
def test_unknown_or_conflicting_crs_is_refused(crs, geo, reason):
    assert reason in refused(geo, "Point", crs)


def test_utm_coordinates_sent_without_a_crs_are_not_lon_lat():
    assert "is not a longitude/latitude position" in refused(point([600000, 2480000]))


# ---------------------------------------------------------------------------- Viet Nam


def test_swapped_longitude_and_latitude_are_named():
    reason = refused(point([22.4, 106.5]))
    assert "longitude and latitude look swapped" in reason
    assert "[106.5, 22.4]" in reason  # the suggested fix


def test_a_line_with_swapped_axes_is_named_too():
    assert "look swapped" in refused(line(IN_VN[::-1], ON_LINE[::-1]), "LineString")


def test_points_outside_viet_nam_are_refused_with_the_distance():
    reason = refused(point([2.35, 48.85]))
    assert "[2.35, 48.85] is 9,8" in reason and "km outside Viet Nam" in reason and "5 km margin" in reason


def test_the_margin_is_configurable():
    # IN_CN is ~1 km inside China: accepted with the default 5 km margin, refused with none.
    assert parse_geometry(point(IN_CN), "Point").x == IN_CN[0]
    reason = refused(point(IN_CN), margin_km=0.2)
    assert "outside Viet Nam" in reason and "0.2 km margin" in reason
    assert parse_geometry(point(IN_LAOS), "Point", margin_km=-1).y == IN_LAOS[1]  # check skipped


def test_a_line_leaving_viet_nam_between_its_vertices_is_refused():
    across_the_gulf = line([107.0, 21.0], [105.7, 18.8])
    assert "leaves Viet Nam" in refused(across_the_gulf, "LineString")


def test_latitude_beyond_90_that_is_not_a_swap_is_out_of_range():
    assert "is not a longitude/latitude position" in refused(point([170.0, 95.0]))


def test_a_polygon_area_is_accepted_and_stays_a_polygon():
    ring = [IN_VN, [106.89, 21.972], [106.885, 21.965], IN_VN]
    g = parse_geometry({"type": "MultiPolygon", "coordinates": [[ring]]}, ("Polygon", "MultiPolygon"))
    assert isinstance(g, MultiPolygon) and g.is_valid


# ---------------------------------------------------------------------------- sides


def test_country_at_tells_the_side_of_the_border():
    assert country_at(Point(IN_VN))[0] == "VNM"
    assert country_at(Point(IN_CN))[0] == "CHN"
    assert country_at(Point(IN_LAOS))[0] == "LAO"
    assert country_at(Point(112.0, 5.0))[0] is None


def test_a_village_on_the_wrong_side_is_refused_naming_where_it_is():
    check_country_side(Point(IN_VN), "VNM")
    check_country_side(Point(IN_CN), "CHN")
    with pytest.raises(InvalidInput) as err:
        check_country_side(Point(IN_VN), "CHN")
    assert "lies in Viet Nam (VNM)" in err.value.message and "its country is CHN" in err.value.message
    with pytest.raises(InvalidInput) as err:
        check_country_side(Point(IN_LAOS), "VNM")
    assert "lies in Laos (LAO)" in err.value.message


def test_the_side_tolerance_absorbs_the_generalised_outline():
    # ON_LINE sits on the border line: within 100 m of both sides.
    check_country_side(Point(ON_LINE), "VNM")
    check_country_side(Point(ON_LINE), "CHN")
    with pytest.raises(InvalidInput):
        check_country_side(Point(IN_CN), "VNM", tolerance_m=100)


def test_distances_read_well():
    assert [fmt_distance(d) for d in (12.4, 850, 2345, 123456)] == ["12 m", "850 m", "2.3 km", "123 km"]
