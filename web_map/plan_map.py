"""The planner's map page: GET /planner/plan?budget=...&province=...(&lang=en).

Candidates (grey), the optimal set (green, with its new roads) and the greedy set (orange
rings and roads) on one map, each candidate's popup listing the reasons behind its score;
a panel compares the two answers. Vietnamese by default, English with ``?lang=en``.
Leaflet comes from the app's own /static (``web_map.maps.OfflineMap``), so the page works
where the CDNs and the basemap cannot be reached.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

import folium
from branca.element import MacroElement
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from folium.template import Template
from markupsafe import escape
from pydantic import ValidationError
from sqlalchemy import Connection, text

from geo_api.deps import ConnDep, ViewerDep
from geo_api.domain import planner
from geo_api.errors import DomainError, status_for
from geo_api.schemas.planner import PlanCreate
from geo_api.settings import get_settings
from web_map.i18n import Texts
from web_map.pages import signin_page

router = APIRouter(tags=["pages"])


class HtmlPopup(MacroElement):
    """A popup bound with plain Leaflet (folium.Popup needs jQuery, which the pages do not load)."""

    _template = Template("""{% macro script(this, kwargs) %}
{{ this._parent.get_name() }}.bindPopup({{ this.content }}, {maxWidth: {{ this.max_width }}});
{% endmacro %}""")

    def __init__(self, html: str, max_width: int = 460):
        super().__init__()
        self._name = "HtmlPopup"
        # a JS string literal; "</" is escaped so the HTML cannot close the page's <script>
        self.content = (json.dumps(html, ensure_ascii=False).replace("</", "<\\/")
                        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
        self.max_width = max_width

DEFAULT_BUDGET = 5_000_000_000

WORDS = {
    "title": ("Lập kế hoạch làm đường nhánh", "Planning branch roads"),
    "budget": ("Ngân sách (đồng)", "Budget (VND)"),
    "province": ("Tỉnh", "Province"),
    "all_provinces": ("Tất cả các tỉnh", "All provinces"),
    "must_include": ("Bắt buộc chọn (mã mốc, cách nhau bởi dấu phẩy)", "Must include (marker ids, comma-separated)"),
    "go": ("Lập kế hoạch", "Plan"),
    "optimal": ("Tối ưu (quy hoạch nguyên)", "Optimal (integer programming)"),
    "greedy": ("Tham lam (điểm/chi phí)", "Greedy (score per đồng)"),
    "markers": ("Số mốc", "Markers"),
    "score": ("Tổng điểm", "Total score"),
    "cost": ("Tổng chi phí", "Total cost"),
    "remaining": ("Còn lại", "Remaining"),
    "gain": ("Phương án tối ưu hơn phương án tham lam {gain} điểm.",
             "The optimal plan scores {gain} points more than the greedy one."),
    "same": ("Hai phương án cho cùng tổng điểm.", "Both answers reach the same total score."),
    "candidates": ("Mốc ứng viên", "Candidate markers"),
    "chosen": ("Các mốc được chọn (tối ưu)", "Chosen markers (optimal)"),
    "number": ("Mốc", "Marker"),
    "connects": ("Nối từ", "Connects to"),
    "cost_one": ("Chi phí", "Cost"),
    "network": ("mạng đường", "network"),
    "from_marker": ("mốc {n}", "marker {n}"),
    "layer_network": ("Mạng đường hiện có", "Existing road network"),
    "layer_built": ("Đường nhánh đã xây", "Built branch roads"),
    "layer_candidates": ("Ứng viên chưa chọn", "Candidates not chosen"),
    "layer_optimal": ("Phương án tối ưu", "Optimal plan"),
    "layer_greedy": ("Phương án tham lam", "Greedy plan"),
    "popup_score": ("Điểm", "Score"),
    "popup_cost": ("Chi phí ước tính", "Estimated cost"),
    "popup_new_road": ("Đường mới", "New road"),
    "popup_in_optimal": ("Trong phương án tối ưu", "In the optimal plan"),
    "popup_in_greedy": ("Trong phương án tham lam", "In the greedy plan"),
    "yes": ("có", "yes"),
    "no": ("không", "no"),
    "factor": ("Tiêu chí", "Factor"),
    "points": ("Điểm", "Points"),
    "why": ("Lý do", "Reason"),
    "generated": ("Mốc, đường và số liệu là dữ liệu mẫu sinh tự động.",
                  "Markers, roads and figures are generated demo data."),
    "error": ("Không lập được kế hoạch", "No plan could be made"),
    "switch": ("English", "Tiếng Việt"),
    "downloads": ("Tải về", "Download"),
    "none": ("Không có mốc nào được chọn.", "No marker chosen."),
}


def w(key: str, lang: str, **kw) -> str:
    s = WORDS[key][0 if lang == "vi" else 1]
    return s.format(**kw) if kw else s


def money(amount: int, lang: str) -> str:
    return f"{amount:,}".replace(",", ".") + " đ" if lang == "vi" else f"{amount:,} VND"


def num(x: float, lang: str) -> str:
    s = f"{x:,.2f}"
    return s.replace(",", " ").replace(".", ",").replace(" ", ".") if lang == "vi" else s


def _fc(conn: Connection, sql: str, params: dict) -> dict:
    return json.loads(conn.execute(text(f"""
        SELECT json_build_object('type', 'FeatureCollection', 'features', COALESCE(json_agg(
            json_build_object('type', 'Feature', 'geometry', ST_AsGeoJSON(q.geom, 6)::json,
                              'properties', json_build_object('name', q.name))), '[]'::json))::text
        FROM ({sql}) q"""), params).scalar_one())


def network_layers(conn: Connection, bounds: list[list[float]]) -> tuple[dict, dict, dict]:
    (s, wst), (n, e) = bounds
    env = {"x1": wst - 0.05, "y1": s - 0.05, "x2": e + 0.05, "y2": n + 0.05}
    box = "ST_MakeEnvelope(:x1, :y1, :x2, :y2, 4326)"
    net = _fc(conn, f"SELECT geom, COALESCE(name, highway) AS name FROM road_network WHERE geom && {box} "
                    "ORDER BY id LIMIT 20000", env)
    built = _fc(conn, f"SELECT COALESCE(as_built_geom, geom) AS geom, code || ' ' || name AS name FROM branch_road "
                      f"WHERE status IN ('completed', 'inaugurated') AND COALESCE(as_built_geom, geom) && {box}", env)
    border = _fc(conn, "SELECT geom, name_vi AS name FROM border_segment", {})
    return net, built, border


def popup_html(c: planner.Candidate, role: dict, lang: str) -> str:
    rows = "".join(
        f"<tr><td>{escape(b['label'])}</td><td style='text-align:right'>{num(b['points'], lang)}</td>"
        f"<td>{escape(b['reason'])}</td></tr>" for b in c.breakdown(lang))

    def part(key: str) -> str:
        r = role[key]
        if not r:
            return w("no", lang)
        via = w("network", lang) if r["connects_to"] is None else w("from_marker", lang, n=r["connects_to_number"])
        return f"{w('yes', lang)} — {money(r['cost_vnd'], lang)} ({escape(via)})"

    return (
        f"<div class='plan-popup'><b>{escape(w('number', lang))} {escape(c.number)}</b> · {escape(c.province)}"
        f" · #{c.marker_id}<br>{escape(w('popup_score', lang))}: <b>{num(float(c.score), lang)}</b>"
        f" · {escape(w('popup_cost', lang))}: {money(c.cost_vnd, lang)}"
        f" · {escape(w('popup_new_road', lang))}: {num(float(c.new_road_m) / 1000, lang)} km"
        f"<br>{escape(w('popup_in_optimal', lang))}: {part('optimal')}"
        f"<br>{escape(w('popup_in_greedy', lang))}: {part('greedy')}"
        f"<table><tr><th>{escape(w('factor', lang))}</th><th>{escape(w('points', lang))}</th>"
        f"<th>{escape(w('why', lang))}</th></tr>{rows}</table></div>")


def build_map(conn: Connection, plan: planner.Plan, lang: str) -> folium.Map:
    from web_map.maps import OfflineMap

    ranked = plan.ranked
    if ranked:
        lons, lats = [c.lon for c in ranked], [c.lat for c in ranked]
        bounds = [[min(lats) - 0.02, min(lons) - 0.02], [max(lats) + 0.02, max(lons) + 0.02]]
    else:
        bounds = [[8.4, 102.1], [23.4, 109.5]]
    m = OfflineMap(location=None, tiles=None, control_scale=True, zoom_start=7)
    settings = get_settings().maps
    folium.TileLayer(settings.basemap_url, attr=settings.basemap_attribution, name="OSM",
                     max_zoom=19).add_to(m)
    net, built, border = network_layers(conn, bounds)
    folium.GeoJson(border, name="border", control=False, interactive=False,
                   style_function=lambda _: {"color": "#c62828", "weight": 2, "dashArray": "6 4"}).add_to(m)
    for fc, key, style in ((net, "layer_network", {"color": "#757575", "weight": 2, "opacity": 0.7}),
                           (built, "layer_built", {"color": "#1565c0", "weight": 3})):
        if fc["features"]:  # (a tooltip over no features is refused by folium)
            folium.GeoJson(fc, name=w(key, lang), tooltip=folium.GeoJsonTooltip(["name"], labels=False),
                           style_function=lambda _, style=style: style).add_to(m)
    layers = {k: folium.FeatureGroup(name=w(f"layer_{k}", lang)) for k in ("candidates", "greedy", "optimal")}
    for key, sel, color, dash in (("greedy", plan.greedy, "#ef6c00", "4 6"), ("optimal", plan.optimal, "#2e7d32", "8 4")):
        for i, (parent, _) in sel.chosen.items():
            c = ranked[i]
            end = (c.nearest["lat"], c.nearest["lon"]) if parent is None else (ranked[parent].lat, ranked[parent].lon)
            folium.PolyLine([(c.lat, c.lon), end], color=color, weight=4, dash_array=dash).add_to(layers[key])
    for i, c in enumerate(ranked):
        role = plan.role(i)
        popup = popup_html(c, role, lang)
        tip = f"{c.number} · {num(float(c.score), lang)}"
        if role["optimal"]:
            folium.CircleMarker((c.lat, c.lon), radius=8, color="#1b5e20", fill=True, fill_color="#43a047",
                                fill_opacity=0.9, tooltip=tip).add_child(HtmlPopup(popup)).add_to(layers["optimal"])
        elif role["greedy"]:
            folium.CircleMarker((c.lat, c.lon), radius=7, color="#ef6c00", weight=3, fill=True,
                                fill_color="#ffe0b2", fill_opacity=0.9, tooltip=tip).add_child(HtmlPopup(popup)).add_to(layers["greedy"])
        else:
            folium.CircleMarker((c.lat, c.lon), radius=4, color="#616161", fill=True, fill_color="#bdbdbd",
                                fill_opacity=0.8, tooltip=tip).add_child(HtmlPopup(popup)).add_to(layers["candidates"])
        if role["optimal"] and role["greedy"]:
            folium.CircleMarker((c.lat, c.lon), radius=11, color="#ef6c00", weight=2, fill=False,
                                interactive=False).add_to(layers["greedy"])
    for layer in layers.values():
        layer.add_to(m)
    folium.LayerControl(collapsed=True).add_to(m)
    m.fit_bounds(bounds)
    return m


def panel_html(plan: planner.Plan | None, provinces: list[str], q: dict, lang: str, error: str | None = None) -> str:
    other = "en" if lang == "vi" else "vi"
    qs = "&".join(f"{k}={escape(v)}" for k, v in q.items() if v and k != "lang")
    options = "".join(f"<option value='{escape(p)}'{' selected' if p == q.get('province') else ''}>{escape(p)}</option>"
                      for p in provinces)
    html = [
        "<div id='plan-panel'><details open>",
        f"<summary><h1>{escape(w('title', lang))}</h1></summary>",
        f"<a class='lang' href='?{qs}&lang={other}'>{escape(w('switch', lang))}</a>",
        "<form method='get'>",
        f"<label>{escape(w('budget', lang))} <input name='budget' inputmode='numeric' value='{escape(q.get('budget') or '')}'></label>",
        f"<label>{escape(w('province', lang))} <select name='province'><option value=''>{escape(w('all_provinces', lang))}</option>{options}</select></label>",
        f"<label>{escape(w('must_include', lang))} <input name='must_include' value='{escape(q.get('must_include') or '')}'></label>",
        f"<input type='hidden' name='lang' value='{lang}'><button>{escape(w('go', lang))}</button></form>",
    ]
    if error:
        html.append(f"<p class='error' role='alert'><b>{escape(w('error', lang))}:</b> {escape(error)}</p>")
    if plan:
        opt, gr = plan.selection_public(plan.optimal), plan.selection_public(plan.greedy)
        html.append(f"<p>{escape(w('candidates', lang))}: <b>{len(plan.ranked)}</b></p>")
        html.append(f"<table class='cmp'><tr><th></th><th>{escape(w('optimal', lang))}</th><th>{escape(w('greedy', lang))}</th></tr>")
        for key, f in (("markers", str), ("score", lambda v: num(v, lang)), ("cost", lambda v: money(v, lang)),
                       ("remaining", lambda v: money(v, lang))):
            field = {"markers": "markers", "score": "total_score", "cost": "total_cost_vnd",
                     "remaining": "remaining_vnd"}[key]
            html.append(f"<tr><th>{escape(w(key, lang))}</th><td class='opt-{key}'>{f(opt[field])}</td>"
                        f"<td class='greedy-{key}'>{f(gr[field])}</td></tr>")
        html.append("</table>")
        gain = round(opt["total_score"] - gr["total_score"], 2)
        html.append(f"<p>{escape(w('gain', lang, gain=num(gain, lang)) if gain > 0 else w('same', lang))}</p>")
        html.append(f"<h2>{escape(w('chosen', lang))}</h2>")
        if opt["chosen"]:
            html.append(f"<table class='chosen'><tr><th>{escape(w('number', lang))}</th><th>{escape(w('points', lang))}</th>"
                        f"<th>{escape(w('cost_one', lang))}</th><th>{escape(w('connects', lang))}</th></tr>")
            for ch in opt["chosen"]:
                via = w("network", lang) if ch["connects_to"] == "network" else \
                    w("from_marker", lang, n=ch["connects_to_number"])
                html.append(f"<tr><td>{escape(ch['number'])}</td><td>{num(ch['score'], lang)}</td>"
                            f"<td>{money(ch['cost_vnd'], lang)}</td><td>{escape(via)}</td></tr>")
            html.append("</table>")
        else:
            html.append(f"<p>{escape(w('none', lang))}</p>")
        html.append(f"<p class='note'>{escape(w('generated', lang))}</p>")
    html.append("</details></div>")
    return "".join(html)


PANEL_CSS = """
<style>
#plan-panel{position:absolute;top:10px;left:54px;z-index:1000;background:#fff;padding:8px 12px;
  max-width:min(440px,80vw);max-height:calc(100vh - 40px);overflow:auto;font:13px/1.35 system-ui,sans-serif;
  box-shadow:0 1px 6px rgba(0,0,0,.35);border-radius:6px}
#plan-panel h1{font-size:16px;margin:0 0 4px;display:inline}#plan-panel summary{cursor:pointer}#plan-panel h2{font-size:14px;margin:8px 0 4px}
#plan-panel label{display:block;margin:3px 0}#plan-panel input,#plan-panel select{width:100%;box-sizing:border-box}
#plan-panel .lang{float:right}#plan-panel table{border-collapse:collapse;width:100%}
#plan-panel td,#plan-panel th{border-bottom:1px solid #eee;padding:2px 4px;text-align:left}
#plan-panel .error{color:#b71c1c}#plan-panel .note{color:#666;font-size:11px}
.plan-popup table{border-collapse:collapse;font-size:12px}.plan-popup td,.plan-popup th{border-bottom:1px solid #eee;padding:1px 3px}
</style>
"""


def page(m: folium.Map, panel: str, lang: str) -> str:
    root = m.get_root()
    root.header.add_child(folium.Element(PANEL_CSS))
    root.html.add_child(folium.Element(panel))
    html = root.render()
    return html.replace("<html>", f"<html lang='{lang}'>", 1).replace(
        "<head>", f"<head><title>{escape(w('title', lang))}</title>", 1)


@router.get("/planner/plan", response_class=HTMLResponse,
            summary="Planner map: candidates, the optimal and greedy sets, and each marker's reasons",
            responses={s: {"content": {"text/html": {}}, "description": d} for s, d in (  # the page, with its reason
                (401, "sign in (a planner or admin)"), (403, "not a planner or admin account"),
                (404, "a must-include marker that does not exist"), (412, "no road network loaded"),
                (422, "a bad budget, province or marker list"))})
def plan_page(request: Request, conn: ConnDep, viewer: ViewerDep,
              budget: Annotated[str | None, Query(max_length=40)] = None,
              province: Annotated[str | None, Query(max_length=100)] = None,
              must_include: Annotated[str | None, Query(max_length=2000)] = None,
              min_distance_m: Annotated[str | None, Query(max_length=20)] = None,
              lang: Literal["vi", "en"] = "vi") -> HTMLResponse:
    if not viewer.is_planner:
        t = Texts(lang)
        return signin_page(request, t, viewer, t("nav_planner"))
    q = {"budget": budget or str(DEFAULT_BUDGET), "province": province or "", "must_include": must_include or "",
         "lang": lang}
    provinces = [r[0] for r in conn.execute(text("SELECT DISTINCT province FROM marker ORDER BY 1"))]
    try:
        must = [s.strip() for s in (must_include or "").split(",") if s.strip()]
        body = PlanCreate(budget=q["budget"], province=province or None, must_include=must,
                          min_distance_m=min_distance_m or None)
        plan = planner.make_plan(conn, body)
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
                            for e in exc.errors())
        return error_page(provinces, q, lang, reasons, 422)
    except DomainError as exc:
        return error_page(provinces, q, lang, exc.message, status_for(exc))
    return HTMLResponse(page(build_map(conn, plan, lang), panel_html(plan, provinces, q, lang), lang))


def error_page(provinces: list[str], q: dict, lang: str, message: str, status: int) -> HTMLResponse:
    from web_map.maps import OfflineMap

    m = OfflineMap(location=(16.0, 106.0), tiles=None, zoom_start=5)
    return HTMLResponse(page(m, panel_html(None, provinces, q, lang, message), lang), status_code=status)
