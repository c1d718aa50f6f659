"""Folium map builders. Everything the maps load comes from the app's own /static.

Folium loads Leaflet and its plugins from CDNs by default; field phones (and this
project's test machines) cannot count on reaching them, so the classes below point
`default_js` / `default_css` at the copies vendored under web_map/static/vendor.

Each map has, from the bottom up: the country outlines shipped in data/borders (in a pane
*below* the basemap, so they show exactly where basemap tiles fail to load), the basemap,
the border line, then the data layers. Styling and popups are done in the browser by
web_map/static/app.js (`BR.*`), from the features' properties, in the page's language.

Data comes either inline (GeoJSON in the page) or, for large datasets, as vector tiles
from /tiles/{layer}/{z}/{x}/{y}.pbf (`mode="tiles"`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import folium
from branca.element import MacroElement
from folium.plugins import MarkerCluster, VectorGridProtobuf
from folium.template import Template
from folium.utilities import JsCode
from markupsafe import escape

from geo_api.policy import Viewer
from geo_api.settings import MapSettings
from web_map import data
from web_map.i18n import Texts
from web_map.static_files import static_url

VENDOR = "vendor"


class OfflineMap(folium.Map):
    default_js = [("leaflet", static_url(f"{VENDOR}/leaflet/leaflet.js"))]
    default_css = [("leaflet_css", static_url(f"{VENDOR}/leaflet/leaflet.css"))]


class OfflineMarkerCluster(MarkerCluster):
    default_js = [("markerclusterjs", static_url(f"{VENDOR}/leaflet.markercluster/leaflet.markercluster.js"))]
    default_css = [
        ("markerclustercss", static_url(f"{VENDOR}/leaflet.markercluster/MarkerCluster.css")),
        ("markerclusterdefaultcss", static_url(f"{VENDOR}/leaflet.markercluster/MarkerCluster.Default.css")),
    ]


class OfflineVectorGrid(VectorGridProtobuf):
    default_js = [("vectorGrid", static_url(f"{VENDOR}/leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js"))]


class Script(MacroElement):
    """Plain JavaScript run in order with the map's other elements."""

    _template = Template("{% macro script(this, kwargs) %}\n{{ this.code }}\n{% endmacro %}")

    def __init__(self, code: str):
        super().__init__()
        self._name = "Script"
        self.code = code


class CompactPoints(folium.map.Layer):
    """Thousands of points as compact rows (see data.Points), drawn by BR.addPoints with
    the same styling and popups as the GeoJSON layers. Add it to a map or a marker cluster."""

    _template = Template("""{% macro script(this, kwargs) %}
var {{ this.get_name() }} = L.featureGroup();
BR.addPoints({{ this.get_name() }}, {{ this.kind|tojson }}, {{ this.columns|tojson }}, {{ this.rows|tojson }});
{% endmacro %}""")

    def __init__(self, points: data.Points, kind: str, name: str, show: bool = True):
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "CompactPoints"
        self.kind = kind
        self.columns = points.columns
        self.rows = points.rows


@dataclass(frozen=True)
class MapParts:
    """A rendered map, cut into the pieces a page template places itself."""

    header: str  # <script>/<link> tags and the map's CSS
    html: str    # the map <div>
    script: str  # the JavaScript that builds the map (without <script> tags)


FOLIUM_ID = re.compile(r"(?<=[a-z]_)[0-9a-f]{32}(?![0-9a-f])")


def render(m: folium.Map) -> MapParts:
    """The map's pieces. Folium names its JavaScript variables with random ids; they are
    renumbered in order of appearance, so the same data gives the same page (and ETag)."""
    fig = m.get_root()
    fig.render()
    header = fig.header.render()
    # Our pages set their own viewport (zoomable, for the panels and tables).
    header = re.sub(r'<meta name="viewport"[^>]*>', "", header)
    header = re.sub(r'<meta http-equiv="content-type"[^>]*>', "", header)
    joined = "\x00".join((header, fig.html.render(), fig.script.render()))
    ids: dict[str, str] = {}
    joined = FOLIUM_ID.sub(lambda mt: ids.setdefault(mt.group(0), str(len(ids) + 1)), joined)
    header, html, script = joined.split("\x00")
    return MapParts(header=header, html=html, script=script)


def new_map(t: Texts, settings: MapSettings, bounds: list[list[float]]) -> tuple[OfflineMap, folium.TileLayer]:
    m = OfflineMap(location=None, tiles=None, control_scale=True, zoom_start=6, min_zoom=4,
                   world_copy_jump=False)
    folium.map.CustomPane("outlines", z_index=150).add_to(m)  # under the basemap (tilePane: 200)
    folium.GeoJson(
        data.country_outlines(), name=t("outlines"), control=False, pane="outlines", interactive=False,
        style=JsCode("BR.outlineStyle"), attribution="© OpenStreetMap contributors (ODbL)",
    ).add_to(m)
    basemap = folium.TileLayer(settings.basemap_url, attr=settings.basemap_attribution, name=t("basemap"),
                               max_zoom=19, max_native_zoom=19)
    basemap.add_to(m)
    # Roads above the marker clusters' icons (markerPane: 600), popups above all (700).
    folium.map.CustomPane("roads", z_index=640, pointer_events=True).add_to(m)
    m.fit_bounds(bounds)
    return m, basemap


def add_border(m: folium.Map, t: Texts, lines: dict) -> folium.GeoJson:
    layer = folium.GeoJson(lines, name=t("border_line"), style=JsCode("BR.borderStyle"), interactive=False)
    layer.add_to(m)
    return layer


def finish(m: folium.Map, basemap: folium.TileLayer, layers: dict[str, object], legend_html: str,
           tile_layers: dict[str, object] | None = None) -> None:
    """Layer control, legend, and BR.start(): counts, basemap watch, ready mark."""
    folium.LayerControl(collapsed=True).add_to(m)
    names = ", ".join(f"{json.dumps(k)}: {v.get_name()}" for k, v in layers.items())
    tnames = ", ".join(f"{json.dumps(k)}: {v.get_name()}" for k, v in (tile_layers or {}).items())
    Script(f"BR.start({m.get_name()}, {basemap.get_name()}, {{{names}}}, {{{tnames}}}, "
           f"{json.dumps(legend_html)});").add_to(m)


POINT_KINDS = ("marker", "access", "post", "inauguration", "village")


def _inline(fc: dict, name: str, kind: str, show: bool = True, pane: str | None = None) -> folium.GeoJson:
    """A GeoJSON layer styled and given popups by BR.style.<kind> (or BR.point.<kind>) and BR.on.<kind>."""
    opts = {"on_each_feature": JsCode(f"BR.on.{kind}")}
    if pane:
        opts["pane"] = pane
    if kind in POINT_KINDS:
        opts["pointToLayer"] = JsCode(f"BR.point.{kind}")
    else:
        opts["style"] = JsCode(f"BR.style.{kind}")
    return folium.GeoJson(fc, name=name, show=show, **opts)


def _tiles(layer: str, name: str, query: str = "", show: bool = True) -> OfflineVectorGrid:
    url = f"/tiles/{layer}/{{z}}/{{x}}/{{y}}.pbf" + (f"?{query}" if query else "")
    return OfflineVectorGrid(url, name=name, show=show, options=f"BR.tileOptions({json.dumps(layer)})")


def donor_map(t: Texts, settings: MapSettings, conn, viewer: Viewer, filters: dict, mode: str,
              query: str) -> tuple[folium.Map, dict]:
    """Roads by status (+ markers clustered, posts, inaugurations); returns the map and what
    it drew (feature counts, for the page and the tests)."""
    m, basemap = new_map(t, settings, data.data_bounds(conn, viewer))
    add_border(m, t, data.border_lines(conn))
    layers: dict[str, object] = {}
    tile_layers: dict[str, object] = {}
    drawn: dict[str, int] = {}
    if mode == "tiles":
        tile_layers["markers"] = _tiles("markers", t("layer_markers")).add_to(m)
        tile_layers["posts"] = _tiles("posts", t("layer_posts"), show=False).add_to(m)
        tile_layers["roads"] = _tiles("roads", t("layer_roads"), query).add_to(m)
    else:
        markers = data.marker_points(conn, viewer)
        cluster = OfflineMarkerCluster(name=t("layer_markers"), icon_create_function="BR.clusterIcon", options={
            "disableClusteringAtZoom": 13, "maxClusterRadius": 60, "chunkedLoading": True,
            "showCoverageOnHover": False, "spiderfyOnMaxZoom": False})
        cluster.add_to(m)
        CompactPoints(markers, "marker", t("layer_markers")).add_to(cluster)
        layers["markers"] = cluster
        posts = data.post_points(conn, viewer)
        layers["posts"] = CompactPoints(posts, "post", t("layer_posts"), show=False).add_to(m)
        roads = data.road_features(conn, viewer, filters)
        layers["roads"] = _inline(roads, t("layer_roads"), "road", pane="roads").add_to(m)
        drawn.update(markers=len(markers), posts=len(posts), roads=len(roads["features"]))
    inaugurations = data.inauguration_features(conn)
    layers["inaugurations"] = _inline(inaugurations, t("layer_inaugurations"), "inauguration").add_to(m)
    drawn["inaugurations"] = len(inaugurations["features"])
    finish(m, basemap, layers, legend(t, "status"), tile_layers)
    return m, drawn


def post_map(t: Texts, settings: MapSettings, conn, viewer: Viewer, post: dict, markers: data.Points,
             roads: dict) -> folium.Map:
    bounds = data.data_bounds(conn, viewer, post["id"]) if len(markers) else \
        [[post["lat"] - 0.05, post["lon"] - 0.05], [post["lat"] + 0.05, post["lon"] + 0.05]]
    m, basemap = new_map(t, settings, bounds)
    add_border(m, t, data.border_lines(conn))
    point = {"type": "FeatureCollection", "features": [{
        "type": "Feature", "id": post["id"], "geometry": {"type": "Point", "coordinates": [post["lon"], post["lat"]]},
        "properties": {"code": post["code"], "name": post["name"], "province": post["province"],
                       "district": post["district"]}}]}
    layers = {
        "markers": CompactPoints(markers, "marker", t("layer_markers")).add_to(m),
        "roads": _inline(roads, t("layer_roads"), "road", pane="roads").add_to(m),
        "posts": _inline(point, t("layer_posts"), "post").add_to(m),
    }
    finish(m, basemap, layers, legend(t, "status"))
    return m


def planner_map(t: Texts, settings: MapSettings, conn, viewer: Viewer, mode: str) -> tuple[folium.Map, dict]:
    m, basemap = new_map(t, settings, data.data_bounds(conn, viewer))
    add_border(m, t, data.border_lines(conn))
    layers: dict[str, object] = {}
    tile_layers: dict[str, object] = {}
    drawn: dict[str, int] = {}
    if mode == "tiles":
        tile_layers["markers"] = _tiles("markers", t("layer_markers")).add_to(m)
        tile_layers["roads"] = _tiles("roads", t("layer_roads")).add_to(m)
    else:
        markers = data.marker_points(conn, viewer)
        roads = data.road_features(conn, viewer, donors=None)
        layers["markers"] = CompactPoints(markers, "access", t("layer_markers")).add_to(m)
        layers["roads"] = _inline(roads, t("layer_roads"), "road", pane="roads").add_to(m)
        drawn.update(markers=len(markers), roads=len(roads["features"]))
    finish(m, basemap, layers, legend(t, "status", "access"), tile_layers)
    return m, drawn


def villages_map(t: Texts, settings: MapSettings, conn, viewer: Viewer, mode: str) -> tuple[folium.Map, dict, dict]:
    """Pairs joined by a line across the border (red when overdue). Returns the map, what it
    drew inline, and the pairs (for the list beside it)."""
    m, basemap = new_map(t, settings, data.data_bounds(conn, viewer))
    add_border(m, t, data.border_lines(conn))
    pairs = data.pair_features(conn, viewer)
    layers: dict[str, object] = {}
    tile_layers: dict[str, object] = {}
    if mode == "tiles":
        tile_layers["villages"] = _tiles("villages", t("layer_villages"), "paired=true").add_to(m)
        tile_layers["village-pairs"] = _tiles("village-pairs", t("layer_pairs")).add_to(m)
        drawn = {}
    else:
        villages = data.village_points(conn, viewer, paired=True)
        layers["villages"] = CompactPoints(villages, "village", t("layer_villages")).add_to(m)
        layers["pairs"] = _inline(pairs, t("layer_pairs"), "pair").add_to(m)
        drawn = {"pairs": len(pairs["features"]), "villages": len(villages)}
    finish(m, basemap, layers, legend(t, "pairs"), tile_layers)
    return m, drawn, pairs


STATUS_COLORS = {
    "proposed": "#8e8e8e", "surveyed": "#a1887f", "funded": "#1e88e5", "under_construction": "#fb8c00",
    "completed": "#2e7d32", "inaugurated": "#8e24aa", "suspended": "#e53935", "cancelled": "#37474f",
}
ACCESS_COLORS = {"none": "#d32f2f", "footpath": "#f9a825", "earth": "#8d6e63", "concrete": "#2e7d32"}


def legend(t: Texts, *parts: str) -> str:
    """The legend's HTML (escaped here: it is handed to the browser as a string)."""
    html = [f'<div class="br-legend"><strong>{escape(t("legend"))}</strong>']
    if "status" in parts:
        html.append(f'<div class="br-legend-title">{escape(t("layer_roads"))}</div>')
        for s, c in STATUS_COLORS.items():
            dash = ' br-dash' if s == "cancelled" else ""
            html.append(f'<div class="br-legend-row"><span class="br-swatch-line{dash}" style="background:{c}">'
                        f'</span>{escape(t("status_" + s))}</div>')
    if "access" in parts:
        html.append(f'<div class="br-legend-title">{escape(t("markers_by_access"))}</div>')
        for a, c in ACCESS_COLORS.items():
            html.append(f'<div class="br-legend-row"><span class="br-swatch-dot" style="background:{c}">'
                        f'</span>{escape(t("access_" + a))}</div>')
    if "pairs" in parts:
        html.append(f'<div class="br-legend-row"><span class="br-swatch-line" style="background:#2e7d32">'
                    f'</span>{escape(t("on_time"))}</div>')
        html.append(f'<div class="br-legend-row"><span class="br-swatch-line br-dash" style="background:#d32f2f">'
                    f'</span>{escape(t("overdue"))}</div>')
        html.append(f'<div class="br-legend-row"><span class="br-swatch-dot" style="background:#1565c0">'
                    f'</span>{escape(t("vn_side"))}</div>')
        html.append(f'<div class="br-legend-row"><span class="br-swatch-dot" style="background:#ef6c00">'
                    f'</span>{escape(t("other_side"))}</div>')
    html.append("</div>")
    return "".join(html)
