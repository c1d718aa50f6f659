"""OGC API – Features Part 1 (Core, GeoJSON, HTML), Part 3 queryables and Part 5 schemas under /ogc.

A real uvicorn server on a free loopback port serves the demo database, and a standard
client (OWSLib) reads every layer from it; plain HTTP checks cover links, paging, filters,
media types and the 400s the standard asks for.
"""

from __future__ import annotations

import pytest
import requests
import shapely
from shapely.geometry import box, shape
from sqlalchemy import text

from geo_api import layers, policy
from geo_api.domain import ogc
from geo_api.vocabulary import MARKER_KINDS, ROAD_STATUSES
from support.live import serve

CORE = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"
GEOJSON_CLASS = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson"
HTML_CLASS = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html"
SPATIAL = list(ogc.COLLECTIONS)
PART_3 = {"http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
          "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters"}
PART_5 = {"http://www.opengis.net/spec/ogcapi-features-5/1.0/conf/schemas",
          "http://www.opengis.net/spec/ogcapi-features-5/1.0/conf/core-roles-features"}


@pytest.fixture(scope="module")
def live(database_url, demo_counts):
    """The app served by uvicorn on 127.0.0.1:<free port> for this module's tests."""
    from geo_api.main import create_app

    with serve(create_app(database_url)) as url:
        yield url


def get(url: str, **params) -> requests.Response:
    return requests.get(url, params=params, timeout=30)


def rels(doc: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for link in doc["links"]:
        out.setdefault(link["rel"], []).append(link)
    return out


# ---------------------------------------------------------------------------- OWSLib


def test_owslib_lists_and_reads_every_layer(live, engine):
    from owslib.ogcapi.features import Features

    api = Features(f"{live}/ogc/")
    assert {CORE, GEOJSON_CLASS} <= set(api.conformance()["conformsTo"])
    assert api.feature_collections() == SPATIAL
    with engine.connect() as conn:
        for name in SPATIAL:
            table = ogc.COLLECTIONS[name].table
            total = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            meta = api.collection(name)
            assert meta["id"] == name and meta["itemType"] == "feature"
            page = api.collection_items(name, limit=7)
            assert page["type"] == "FeatureCollection"
            assert page["numberMatched"] == total
            assert page["numberReturned"] == len(page["features"]) == min(7, total)
            first = page["features"][0]
            one = api.collection_item(name, str(first["id"]))
            assert one["id"] == first["id"] and one["properties"] == first["properties"]
            assert one["geometry"] == first["geometry"]


def test_owslib_bbox_offset_and_property_filter(live):
    from owslib.ogcapi.features import Features

    api = Features(f"{live}/ogc/")
    bbox = [106.3, 22.2, 106.8, 22.6]  # Tràng Định, around marker 1033
    page = api.collection_items("markers", bbox=bbox, limit=1000)
    assert page["numberMatched"] == page["numberReturned"] > 0
    area = box(*bbox)
    assert all(area.intersects(shape(f["geometry"])) for f in page["features"])
    second = api.collection_items("markers", bbox=bbox, limit=5, offset=5)
    assert [f["id"] for f in second["features"]] == [f["id"] for f in page["features"][5:10]]
    inaugurated = api.collection_items("roads", status="inaugurated", limit=100)
    assert inaugurated["numberReturned"] > 0
    assert {f["properties"]["status"] for f in inaugurated["features"]} == {"inaugurated"}


# ---------------------------------------------------------------------------- landing, conformance, collections


def test_landing_page_links_resolve_with_their_media_types(live):
    r = get(f"{live}/ogc")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    links = rels(r.json())
    for rel in ("self", "alternate", "service-desc", "service-doc", "conformance", "data"):
        assert rel in links, rel
    for link in r.json()["links"]:
        target = get(link["href"])
        assert target.status_code == 200, link
        media = link["type"].split(";")[0]
        if media == ogc.OPENAPI.split(";")[0]:
            assert target.json()["openapi"].startswith("3.1")
        else:
            assert target.headers["content-type"].startswith(media), link
    assert get(f"{live}/ogc/").json() == r.json()  # base URL with a trailing slash (OWSLib)


def test_conformance_declares_parts_1_3_and_5(live):
    body = get(f"{live}/ogc/conformance").json()
    assert set(body["conformsTo"]) == {CORE, GEOJSON_CLASS, HTML_CLASS, *PART_3, *PART_5}


def test_collections_have_items_links_extents_and_crs(live, engine):
    r = get(f"{live}/ogc/collections")
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert {"self", "alternate"} <= set(rels(body))
    assert [c["id"] for c in body["collections"]] == SPATIAL
    for c in body["collections"]:
        links = rels(c)
        assert {link["type"] for link in links["items"]} == {ogc.GEOJSON, ogc.HTML}
        assert links["self"][0]["href"].endswith(f"/ogc/collections/{c['id']}")
        assert c["crs"] == [ogc.CRS84]
        x1, y1, x2, y2 = c["extent"]["spatial"]["bbox"][0]
        assert 100 < x1 < x2 < 112 and 8 < y1 < y2 < 24
        assert get(f"{live}/ogc/collections/{c['id']}").json() == c
    roads = next(c for c in body["collections"] if c["id"] == "roads")
    start, end = roads["extent"]["temporal"]["interval"][0]
    with engine.connect() as conn:
        first, last = conn.execute(text("SELECT min(completed_on), max(completed_on) FROM branch_road")).one()
    assert (start, end) == (f"{first}T00:00:00Z", f"{last}T00:00:00Z")
    assert "extent" in next(c for c in body["collections"] if c["id"] == "posts")
    assert "temporal" not in next(c for c in body["collections"] if c["id"] == "posts")["extent"]


# ---------------------------------------------------------------------------- items


def test_items_page_members_media_type_and_links(live):
    r = get(f"{live}/ogc/collections/roads/items", limit=5, offset=10)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    body = r.json()
    assert body["type"] == "FeatureCollection"
    assert body["numberReturned"] == len(body["features"]) == 5
    assert body["numberMatched"] >= 15
    assert body["timeStamp"].endswith("Z")
    links = rels(body)
    assert links["self"][0]["type"] == ogc.GEOJSON and "offset=10" in links["self"][0]["href"]
    assert links["alternate"][0]["type"] == ogc.HTML
    assert "offset=15" in links["next"][0]["href"] and "limit=5" in links["next"][0]["href"]
    assert "offset=5" in links["prev"][0]["href"]
    prev = get(links["prev"][0]["href"]).json()
    nxt = get(links["next"][0]["href"]).json()
    assert prev["features"][-1]["id"] < body["features"][0]["id"]
    assert body["features"][-1]["id"] < nxt["features"][0]["id"]


def test_next_links_walk_the_whole_layer_once(live, engine):
    with engine.connect() as conn:
        expected = list(conn.execute(text("SELECT id FROM border_post ORDER BY id")).scalars())
    url, seen, pages = f"{live}/ogc/collections/posts/items?limit=50", [], 0
    while url:
        body = get(url).json()
        assert body["numberMatched"] == len(expected)
        seen += [f["id"] for f in body["features"]]
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
        pages += 1
    assert seen == expected
    assert pages == -(-len(expected) // 50)


def test_first_page_has_no_prev_and_last_has_no_next(live):
    first = rels(get(f"{live}/ogc/collections/posts/items", limit=10).json())
    assert "prev" not in first and "next" in first
    total = get(f"{live}/ogc/collections/posts/items", limit=1).json()["numberMatched"]
    last = get(f"{live}/ogc/collections/posts/items", limit=10, offset=total - 3).json()
    assert last["numberReturned"] == 3 and "next" not in rels(last)
    beyond = get(f"{live}/ogc/collections/posts/items", offset=total + 100).json()
    assert beyond["features"] == [] and beyond["numberReturned"] == 0


def test_default_limit_is_10_and_large_limits_are_clamped_not_refused(live, engine):
    assert get(f"{live}/ogc/collections/markers/items").json()["numberReturned"] == 10
    r = get(f"{live}/ogc/collections/markers/items", limit=50_000)
    assert r.status_code == 200
    body = r.json()  # streamed: all markers in one valid document
    with engine.connect() as conn:
        total = conn.execute(text("SELECT count(*) FROM marker")).scalar_one()
    assert total < ogc.MAX_LIMIT
    assert body["numberReturned"] == len(body["features"]) == total
    assert len({f["id"] for f in body["features"]}) == total


def test_items_show_the_same_features_as_the_rest_api(live, client):
    ogc_page = get(f"{live}/ogc/collections/roads/items", limit=20).json()
    api_page = client.get("/api/roads", params={"limit": 20}).json()
    assert ogc_page["features"] == api_page["features"]


def test_property_filters_match_the_database(live, engine):
    with engine.connect() as conn:
        n_ls = conn.execute(text("SELECT count(*) FROM marker WHERE province = 'Lạng Sơn'")).scalar_one()
        n_both = conn.execute(text(
            "SELECT count(*) FROM branch_road WHERE status IN ('completed', 'inaugurated')")).scalar_one()
    body = get(f"{live}/ogc/collections/markers/items", province="Lạng Sơn", limit=1).json()
    assert body["numberMatched"] == n_ls > 0
    body = get(f"{live}/ogc/collections/roads/items", status="completed,inaugurated", limit=1000).json()
    assert body["numberMatched"] == body["numberReturned"] == n_both
    assert {f["properties"]["status"] for f in body["features"]} == {"completed", "inaugurated"}
    body = get(f"{live}/ogc/collections/roads/items", marker="1033").json()
    assert [f["properties"]["code"] for f in body["features"]] == ["DN-LS-0001"]


def test_bbox_returns_exactly_the_intersecting_features(live, engine):
    bbox = (104.0, 22.3, 105.0, 23.0)
    body = get(f"{live}/ogc/collections/roads/items", bbox=",".join(map(str, bbox)), limit=1000).json()
    with engine.connect() as conn:
        expected = set(conn.execute(text(
            "SELECT id FROM branch_road WHERE ST_Intersects(COALESCE(as_built_geom, geom), "
            "ST_MakeEnvelope(104.0, 22.3, 105.0, 23.0, 4326))")).scalars())
    assert expected and {f["id"] for f in body["features"]} == expected
    area = box(*bbox)
    assert all(shapely.intersects(area, shape(f["geometry"])) for f in body["features"])
    six = get(f"{live}/ogc/collections/roads/items", bbox="104.0,22.3,0,105.0,23.0,100", limit=1000).json()
    assert {f["id"] for f in six["features"]} == expected


def test_datetime_instants_and_intervals(live, engine):
    with engine.connect() as conn:
        n_2022 = conn.execute(text("SELECT count(*) FROM branch_road WHERE completed_on "
                                   "BETWEEN '2022-01-01' AND '2022-12-31'")).scalar_one()
        n_after = conn.execute(text("SELECT count(*) FROM branch_road WHERE completed_on >= '2024-01-01'"
                                    )).scalar_one()
    url = f"{live}/ogc/collections/roads/items"
    assert get(url, datetime="2022-01-01/2022-12-31").json()["numberMatched"] == n_2022 > 0
    assert get(url, datetime="2024-01-01T00:00:00Z/..").json()["numberMatched"] == n_after > 0
    ceremony = get(f"{live}/ogc/collections/inaugurations/items", datetime="2022-11-16").json()
    assert ceremony["numberMatched"] >= 1
    assert {f["properties"]["held_on"] for f in ceremony["features"]} == {"2022-11-16"}


@pytest.mark.parametrize("query, reason", [
    ("foo=1", "unknown query parameter 'foo'"),
    ("limit=0", "limit must be at least 1"),
    ("limit=ten", "limit must be a whole number"),
    ("offset=-1", "offset must be at least 0"),
    ("bbox=1,2,3", "bbox"),
    ("bbox=106,23,105,22", "minimum must not exceed maximum"),
    ("datetime=2022-13-01", "not an RFC 3339 date"),
    ("datetime=2023-01-01/2022-01-01", "ends (2022-01-01) before it starts"),
    ("datetime=../..", "at least one bound"),
    ("status=paved", "unknown status 'paved'"),
    ("post_id=abc", "post_id"),
    ("limit=5&limit=6", "more than once"),
    ("f=xml", "f must be json, geojson or html"),
])
def test_bad_item_queries_are_400_with_a_reason(live, query, reason):
    r = requests.get(f"{live}/ogc/collections/roads/items?{query}", timeout=30)
    assert r.status_code == 400
    assert r.json()["code"] == "InvalidParameterValue"
    assert reason in r.json()["description"]


def test_datetime_on_a_layer_without_dates_is_400(live):
    r = get(f"{live}/ogc/collections/posts/items", datetime="2022-01-01")
    assert r.status_code == 400 and "has no dates" in r.json()["description"]


def test_unknown_collection_and_feature_are_404(live):
    assert get(f"{live}/ogc/collections/nothing").status_code == 404
    assert get(f"{live}/ogc/collections/nothing/items").status_code == 404
    assert get(f"{live}/ogc/collections/roads/items/99999999").status_code == 404
    assert get(f"{live}/ogc/collections/roads/items/abc").status_code == 404


def test_feature_has_self_and_collection_links(live):
    first = get(f"{live}/ogc/collections/villages/items", limit=1).json()["features"][0]
    r = get(f"{live}/ogc/collections/villages/items/{first['id']}")
    assert r.headers["content-type"].startswith("application/geo+json")
    links = rels(r.json())
    assert links["self"][0]["href"].endswith(f"/villages/items/{first['id']}")
    assert links["collection"][0]["href"].endswith("/ogc/collections/villages")
    assert links["alternate"][0]["type"] == ogc.HTML


def test_html_for_browsers_and_f_html(live):
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    for path in ("/ogc", "/ogc/conformance", "/ogc/collections", "/ogc/collections/roads",
                 "/ogc/collections/roads/items", "/ogc/collections/roads/items/1"):
        r = requests.get(f"{live}{path}", headers=browser, timeout=30)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), path
    page = get(f"{live}/ogc/collections/roads/items", f="html", marker="1033").text
    assert "DN-LS-0001" in page and "Đường nhánh lên mốc 1033" in page
    assert get(f"{live}/ogc/collections/roads/items", f="json").headers["content-type"].startswith(
        "application/geo+json")


# ---------------------------------------------------------------------------- Part 3 queryables, Part 5 schemas


def test_collections_link_their_queryables_and_schemas(live):
    for c in get(f"{live}/ogc/collections").json()["collections"]:
        links = rels(c)
        href = f"{live}/ogc/collections/{c['id']}"
        assert [(x["href"], x["type"]) for x in links[ogc.REL_QUERYABLES]] == [(f"{href}/queryables", ogc.SCHEMA_JSON)]
        assert [(x["href"], x["type"]) for x in links[ogc.REL_SCHEMA]] == [(f"{href}/schema", ogc.SCHEMA_JSON)]
        assert [(x["href"], x["type"]) for x in links["describedby"]] == [(f"{href}/schema", ogc.SCHEMA_JSON)]
        # the GML application schema GDAL types its fields from (it matches "describedBy")
        assert [(x["href"], x["type"]) for x in links["describedBy"]] == [(f"{href}/schema.xsd", ogc.XML)]
        for rel in (ogc.REL_QUERYABLES, ogc.REL_SCHEMA, "describedby", "describedBy"):
            r = get(links[rel][0]["href"])
            assert r.status_code == 200 and r.headers["content-type"].startswith(links[rel][0]["type"]), rel


def test_schema_is_built_from_the_catalogue_types(live):
    body = get(f"{live}/ogc/collections/roads/schema").json()
    assert body["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert body["$id"] == f"{live}/ogc/collections/roads/schema" and body["type"] == "object"
    props = body["properties"]
    assert list(props) == ["id", "geometry", *layers.ROADS.properties]
    assert props["id"]["x-ogc-role"] == "id" and props["id"]["type"] == "integer"
    assert props["geometry"]["x-ogc-role"] == "primary-geometry"
    for money in ("actual_cost", "estimated_cost"):
        assert (props[money]["type"], props[money]["format"]) == ("integer", "int64")
        assert props[money]["description"] == "VND"
    assert props["completed_on"] == {"type": "string", "format": "date", "x-ogc-role": "primary-instant",
                                     "x-ogc-propertySeq": props["completed_on"]["x-ogc-propertySeq"]}
    assert props["inaugurated_on"]["format"] == "date" and "x-ogc-role" not in props["inaugurated_on"]
    assert props["status"]["enum"] == list(ROAD_STATUSES)
    assert props["markers"]["type"] == "array" and props["markers"]["items"] == {"type": "string"}
    assert props["as_built"]["type"] == "boolean" and props["length_m"]["type"] == "number"
    assert [p["x-ogc-propertySeq"] for p in props.values()] == list(range(1, len(props) + 1))
    markers = get(f"{live}/ogc/collections/markers/schema").json()["properties"]
    assert markers["geometry"]["format"] == "geometry-point"
    assert markers["kind"]["enum"] == list(MARKER_KINDS)
    inaugurations = get(f"{live}/ogc/collections/inaugurations/schema").json()["properties"]
    assert inaugurations["road_ids"]["items"] == {"type": "integer"}
    assert inaugurations["donors"]["items"] == {"type": "object"}


@pytest.mark.parametrize("name", SPATIAL)
def test_every_feature_is_valid_against_its_schema(live, name):
    """The schema tells the truth: every property of the served features, typed as it says
    (money whole, dates as dates, enums within their values); null means unknown."""
    from jsonschema import Draft202012Validator

    schema = get(f"{live}/ogc/collections/{name}/schema").json()
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    features = get(f"{live}/ogc/collections/{name}/items", limit=1000).json()["features"]
    assert features
    for f in features:
        assert set(f["properties"]) | {"id", "geometry"} == set(schema["properties"])
        present = {k: v for k, v in f["properties"].items() if v is not None}
        validator.validate({"id": f["id"], **present})
    if name == "roads":  # money above 2^31 is an integer, not a float
        assert max(f["properties"]["actual_cost"] or 0 for f in features) > 2**31


def test_the_date_format_is_checked():
    from jsonschema import Draft202012Validator, ValidationError

    schema = ogc.feature_schema(layers.ROADS, "http://test/ogc", policy.ANONYMOUS)
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    with pytest.raises(ValidationError):
        validator.validate({"completed_on": "16/11/2022"})
    with pytest.raises(ValidationError):
        validator.validate({"actual_cost": 2179000000.5})


def test_anonymous_roads_may_come_in_parts_signed_in_ones_are_lines():
    """Roads cut back near markers for anonymous readers: their geometry type is left open."""
    anonymous = ogc.feature_schema(layers.ROADS, "http://test/ogc", policy.ANONYMOUS)
    assert anonymous["properties"]["geometry"]["format"] == "geometry-any"
    assert 'type="gml:GeometryPropertyType"' in ogc.gml_schema(layers.ROADS, "http://test/ogc", policy.ANONYMOUS)
    signed_in = ogc.feature_schema(layers.ROADS, "http://test/ogc", policy.SYSTEM)
    assert signed_in["properties"]["geometry"]["format"] == "geometry-linestring"
    assert 'type="gml:LineStringPropertyType"' in ogc.gml_schema(layers.ROADS, "http://test/ogc", policy.SYSTEM)


def test_gml_schema_types_money_as_long_and_dates_as_dates(live):
    import xml.etree.ElementTree as ET

    xs = "{http://www.w3.org/2001/XMLSchema}"
    r = get(f"{live}/ogc/collections/markers/schema.xsd")
    assert r.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(r.content)
    (feature,) = root.findall(f"{xs}element")
    assert feature.get("name") == "markers" and feature.get("substitutionGroup") == "gml:AbstractFeature"
    elements = {e.get("name"): e for e in root.iter(f"{xs}element") if e is not feature}
    assert list(elements) == ["geometry", *layers.MARKERS.properties]
    assert elements["geometry"].get("type") == "gml:PointPropertyType"
    assert elements["last_inspected_on"].get("type") == "xs:date"
    assert elements["requested_by_post"].get("type") == "xs:boolean"
    assert elements["terrain_difficulty"].get("type") == "xs:int"
    roads = ET.fromstring(get(f"{live}/ogc/collections/roads/schema.xsd").content)
    types = {e.get("name"): (e.get("type"), e.get("maxOccurs")) for e in roads.iter(f"{xs}element")}
    assert types["actual_cost"] == types["estimated_cost"] == ("xs:long", None)
    assert types["markers"] == ("xs:string", "unbounded")


def test_queryables_are_the_filters_the_date_and_the_geometry(live):
    for name, layer in ogc.COLLECTIONS.items():
        body = get(f"{live}/ogc/collections/{name}/queryables").json()
        assert body["$id"] == f"{live}/ogc/collections/{name}/queryables"
        assert body["additionalProperties"] is False
        expected = [*layer.filters, *([layer.temporal] if layer.temporal else []), "geometry"]
        assert list(body["properties"]) == expected
        assert body["properties"]["geometry"]["x-ogc-role"] == "primary-geometry"
    roads = get(f"{live}/ogc/collections/roads/queryables").json()["properties"]
    assert roads["status"]["enum"] == list(ROAD_STATUSES)
    assert roads["donor_id"]["type"] == roads["post_id"]["type"] == "integer"
    assert roads["completed_on"] == {"type": "string", "format": "date", "x-ogc-role": "primary-instant",
                                     "description": roads["completed_on"]["description"]}
    markers = get(f"{live}/ogc/collections/markers/queryables").json()["properties"]
    assert markers["requested_by_post"]["type"] == "boolean"
    assert markers["kind"]["enum"] == list(MARKER_KINDS)


def test_each_simple_queryable_is_a_query_parameter(live, engine):
    """Part 3 (queryables as query parameters): a value of each simple queryable selects the
    features having it."""
    queryables = get(f"{live}/ogc/collections/markers/queryables").json()["properties"]
    first = get(f"{live}/ogc/collections/markers/items", limit=1).json()["features"][0]["properties"]
    for name, schema in queryables.items():
        if schema.get("type") not in ("string", "integer", "boolean") or name not in first:
            continue
        value = first[name]
        if value is None:
            continue
        body = get(f"{live}/ogc/collections/markers/items", limit=1000,
                   **{name: str(value).lower() if isinstance(value, bool) else value}).json()
        assert body["numberReturned"] > 0, name
        assert {f["properties"][name] for f in body["features"]} == {value}, name


def test_the_date_queryable_selects_that_day(live, engine):
    with engine.connect() as conn:
        day, n = conn.execute(text("SELECT completed_on, count(*) FROM branch_road WHERE completed_on IS NOT NULL "
                                   "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1")).one()
    url = f"{live}/ogc/collections/roads/items"
    body = get(url, completed_on=day.isoformat(), limit=1000).json()
    assert body["numberMatched"] == n
    assert {f["properties"]["completed_on"] for f in body["features"]} == {day.isoformat()}
    within = get(url, completed_on=day.isoformat(), datetime=f"{day.year}-01-01/{day.year}-12-31").json()
    assert within["numberMatched"] == n
    outside = get(url, completed_on=day.isoformat(), datetime=f"{day.year + 1}-01-01/..").json()
    assert outside["numberMatched"] == 0
    bad = get(url, completed_on="16/11/2022")
    assert bad.status_code == 400 and "completed_on must be a date" in bad.json()["description"]


def test_owslib_reads_queryables_and_schema(live):
    from owslib.ogcapi.features import Features

    api = Features(f"{live}/ogc/")
    assert "completed_on" in api.collection_queryables("roads")["properties"]
    assert api.collection_schema("roads")["properties"]["actual_cost"]["format"] == "int64"


def test_schema_documents_refusals_and_html(live):
    assert get(f"{live}/ogc/collections/nothing/schema").status_code == 404
    assert get(f"{live}/ogc/collections/nothing/queryables").status_code == 404
    assert get(f"{live}/ogc/collections/nothing/schema.xsd").status_code == 404
    r = get(f"{live}/ogc/collections/roads/schema", f="xml")
    assert r.status_code == 400 and "f must be" in r.json()["description"]
    page = get(f"{live}/ogc/collections/roads/schema", f="html")
    assert page.headers["content-type"].startswith("text/html") and "actual_cost" in page.text
    assert "int64" in page.text
    page = get(f"{live}/ogc/collections/roads/queryables", f="html")
    assert page.headers["content-type"].startswith("text/html") and "completed_on" in page.text
