"""A printable report for one donor or a group of donors (Vietnamese by default, or English).

For a group (an emulation cluster), the members' funding counts as the group's: the report
covers every ledger row of the group and of its members. Sections: who the donor is (and
its members), money by kind (per member for a group), progress of the roads funded, the
roads one by one, the inaugurations of those roads with their photos, and a map.

The figures come from SQL; the map is drawn server-side with matplotlib from the roads,
markers and the shipped border and country outlines (no tiles, no network) and embedded as
a PNG data URI, as are the photos, so the HTML file stands alone and prints as is.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import math
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import shapely
from jinja2 import Environment
from shapely.geometry import box, shape
from sqlalchemy import Connection, text

from geo_api.vocabulary import FUNDING_KINDS, ROAD_STATUSES
from geo_api import DATA_DIR, layers
from geo_api.domain.geometry import country_outlines
from geo_api.errors import NotFound
from geo_api.policy import Viewer

KINDS = FUNDING_KINDS
STATUSES = ROAD_STATUSES
STATUS_COLOURS = {
    "proposed": "#9e9e9e", "surveyed": "#8d6e63", "funded": "#f9a825", "under_construction": "#ef6c00",
    "completed": "#2e7d32", "inaugurated": "#1565c0", "suspended": "#6a1b9a", "cancelled": "#c62828",
}
FRAME_RATIO = 0.66               # height / width of the map's axes
MAX_PHOTOS = 6                    # per ceremony
MAX_EMBEDDED_PHOTO = 3 * 2**20    # larger photos are linked, not embedded

LABELS: dict[str, dict[str, Any]] = {
    "vi": {
        "title": "Báo cáo nhà tài trợ", "generated": "Lập ngày", "donor": "Nhà tài trợ",
        "group": "Nhóm / cụm thi đua", "members": "Thành viên", "role": "Vai trò", "code": "Mã",
        "money": "Kinh phí theo loại", "kind": "Loại", "amount": "Số tiền (đồng)", "count": "Số giao dịch",
        "total_by_member": "Kinh phí theo thành viên (đồng)", "progress": "Tiến độ", "roads": "Các đường nhánh được tài trợ",
        "road": "Đường nhánh", "status": "Trạng thái", "where": "Địa bàn", "markers": "Mốc",
        "length": "Chiều dài (m)", "progress_pct": "Tiến độ (%)", "estimate": "Dự toán (đồng)",
        "this_donor": "Của nhà tài trợ (đồng)", "inaugurated_on": "Khánh thành",
        "inaugurations": "Lễ khánh thành", "officials": "Thành phần", "photos": "Ảnh",
        "no_photos": "Chưa có ảnh.", "map": "Bản đồ", "none": "Chưa có.", "roads_funded": "Số đường được tài trợ",
        "km_built": "Đã hoàn thành (km)", "avg_progress": "Tiến độ bình quân (%)", "total": "Tổng",
        "kinds": {"pledge": "Đăng ký ủng hộ", "commitment": "Cam kết", "disbursement": "Đã trao (giải ngân)",
                  "expenditure": "Đã chi"},
        "statuses": {"proposed": "Đề xuất", "surveyed": "Đã khảo sát", "funded": "Đủ kinh phí",
                     "under_construction": "Đang thi công", "completed": "Hoàn thành",
                     "inaugurated": "Đã khánh thành", "suspended": "Tạm dừng", "cancelled": "Hủy bỏ"},
        "donor_kinds": {"agency": "Cơ quan", "cluster": "Cụm thi đua", "company": "Doanh nghiệp",
                        "person": "Cá nhân", "organisation": "Tổ chức"},
        "legend_marker": "Cột mốc", "legend_ceremony": "Lễ khánh thành", "legend_border": "Đường biên giới",
        "generated_note": "Số liệu từ sổ theo dõi kinh phí; dữ liệu mẫu được đánh dấu là sinh tự động.",
        "currency": "đ",
    },
    "en": {
        "title": "Donor report", "generated": "Generated on", "donor": "Donor",
        "group": "Group / emulation cluster", "members": "Members", "role": "Role", "code": "Code",
        "money": "Money by kind", "kind": "Kind", "amount": "Amount (VND)", "count": "Transactions",
        "total_by_member": "Money by member (VND)", "progress": "Progress", "roads": "Branch roads funded",
        "road": "Branch road", "status": "Status", "where": "Location", "markers": "Markers",
        "length": "Length (m)", "progress_pct": "Progress (%)", "estimate": "Estimate (VND)",
        "this_donor": "From this donor (VND)", "inaugurated_on": "Inaugurated",
        "inaugurations": "Inaugurations", "officials": "Officials", "photos": "Photos",
        "no_photos": "No photos yet.", "map": "Map", "none": "None yet.", "roads_funded": "Roads funded",
        "km_built": "Completed (km)", "avg_progress": "Average progress (%)", "total": "Total",
        "kinds": {"pledge": "Pledged", "commitment": "Committed", "disbursement": "Handed over (disbursed)",
                  "expenditure": "Spent"},
        "statuses": {"proposed": "Proposed", "surveyed": "Surveyed", "funded": "Funded",
                     "under_construction": "Under construction", "completed": "Completed",
                     "inaugurated": "Inaugurated", "suspended": "Suspended", "cancelled": "Cancelled"},
        "donor_kinds": {"agency": "Agency", "cluster": "Emulation cluster", "company": "Company",
                        "person": "Person", "organisation": "Organisation"},
        "legend_marker": "Boundary marker", "legend_ceremony": "Inauguration", "legend_border": "Border line",
        "generated_note": "Figures from the funding ledger; demo data is labelled as generated.",
        "currency": "VND",
    },
}


# ---------------------------------------------------------------------------- data


def _rows(conn: Connection, sql: str, **params) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(text(sql), params).mappings()]


def report_data(conn: Connection, donor_id: int, store_root: Path | None = None) -> dict[str, Any]:
    """Everything the report shows, from SQL; photos read from the attachments store."""
    donor = conn.execute(text("SELECT id, code, name, name_en, kind::text AS kind, is_group, province "
                              "FROM donor WHERE id = :id"), {"id": donor_id}).mappings().first()
    if donor is None:
        raise NotFound(f"donor {donor_id} not found")
    members = _rows(conn, """
        SELECT d.id, d.code, d.name, d.name_en, dm.role FROM donor_member dm JOIN donor d ON d.id = dm.member_id
        WHERE dm.group_id = :id ORDER BY dm.role NULLS LAST, d.name""", id=donor_id)
    ids = [donor_id, *(m["id"] for m in members)]

    money = _rows(conn, """
        SELECT k.kind, COALESCE(sum(f.amount), 0) AS amount, count(f.id) AS n
        FROM unnest(CAST(:kinds AS text[])) WITH ORDINALITY AS k(kind, ord)
        LEFT JOIN funding_tx f ON f.kind::text = k.kind AND f.donor_id = ANY(:ids)
        GROUP BY k.kind, k.ord ORDER BY k.ord""", kinds=list(KINDS), ids=ids)
    by_member = _rows(conn, f"""
        SELECT d.id, d.name, d.name_en, {", ".join(
            f"COALESCE(sum(f.amount) FILTER (WHERE f.kind = '{k}'), 0) AS {k}" for k in KINDS)}
        FROM donor d LEFT JOIN funding_tx f ON f.donor_id = d.id
        WHERE d.id = ANY(:ids) GROUP BY d.id ORDER BY d.id = :id DESC, d.name""", ids=ids, id=donor_id)
    roads = _rows(conn, f"""
        SELECT r.id, r.code, r.name, r.status::text AS status, r.province, r.district, r.commune,
               r.length_m, r.progress_pct, r.estimated_cost, r.completed_on,
               (SELECT i.held_on FROM inauguration_road ir JOIN inauguration i ON i.id = ir.inauguration_id
                WHERE ir.road_id = r.id) AS inaugurated_on,
               (SELECT string_agg(m.number, ', ' ORDER BY m.number) FROM road_marker rm
                JOIN marker m ON m.id = rm.marker_id WHERE rm.road_id = r.id) AS markers,
               {", ".join(f"COALESCE(sum(f.amount) FILTER (WHERE f.kind = '{k}'), 0) AS {k}" for k in KINDS)}
        FROM branch_road r JOIN funding_tx f ON f.road_id = r.id AND f.donor_id = ANY(:ids)
        GROUP BY r.id ORDER BY r.province, r.code""", ids=ids)
    road_ids = [r["id"] for r in roads]
    progress = conn.execute(text("""
        SELECT count(*) AS roads,
               round(COALESCE(sum(length_m) FILTER (WHERE status IN ('completed', 'inaugurated')), 0) / 1000, 2) AS km,
               round(COALESCE(avg(progress_pct) FILTER (WHERE status <> 'cancelled'), 0)) AS avg_progress
        FROM branch_road WHERE id = ANY(:rids)"""), {"rids": road_ids}).mappings().one()
    by_status = dict(conn.execute(text(
        "SELECT status::text, count(*) FROM branch_road WHERE id = ANY(:rids) GROUP BY status"),
        {"rids": road_ids}).all())
    ceremonies = _rows(conn, """
        SELECT i.id, i.title, i.held_on, i.place, i.commune, i.district, i.province, i.officials,
               (SELECT string_agg(r.code || ' – ' || r.name, '; ' ORDER BY r.code) FROM inauguration_road ir
                JOIN branch_road r ON r.id = ir.road_id WHERE ir.inauguration_id = i.id) AS roads
        FROM inauguration i
        WHERE EXISTS (SELECT 1 FROM inauguration_road ir WHERE ir.inauguration_id = i.id AND ir.road_id = ANY(:rids))
           OR EXISTS (SELECT 1 FROM inauguration_donor idn WHERE idn.inauguration_id = i.id AND idn.donor_id = ANY(:ids))
        ORDER BY i.held_on, i.id""", rids=road_ids, ids=ids)
    photos = _photos(conn, [c["id"] for c in ceremonies], store_root)
    for c in ceremonies:
        c["photos"] = photos.get(c["id"], [])
    return {"donor": dict(donor), "members": members, "money": money, "by_member": by_member,
            "roads": roads, "progress": dict(progress), "by_status": by_status, "ceremonies": ceremonies,
            "donor_ids": ids}


def _photos(conn: Connection, ceremony_ids: list[int], store_root: Path | None) -> dict[int, list[dict]]:
    """Photos of the ceremonies: embedded (data URI) when the file is at hand and small."""
    if not ceremony_ids or conn.execute(text("SELECT to_regclass('attachment')")).scalar() is None:
        return {}
    rows = _rows(conn, """
        SELECT id, inauguration_id, filename, content_type, size_bytes, sha256, storage_path, caption
        FROM (SELECT a.*, row_number() OVER (PARTITION BY inauguration_id ORDER BY id) AS n FROM attachment a
              WHERE a.kind = 'photo' AND a.inauguration_id = ANY(:ids)) x
        WHERE n <= :cap ORDER BY inauguration_id, id""", ids=ceremony_ids, cap=MAX_PHOTOS)
    out: dict[int, list[dict]] = {}
    for r in rows:
        src = f"/api/attachments/{r['id']}/content"
        path = store_root / r["storage_path"] if store_root else None
        if path is not None and path.is_file() and r["size_bytes"] <= MAX_EMBEDDED_PHOTO:
            src = f"data:{r['content_type']};base64,{base64.b64encode(path.read_bytes()).decode()}"
        out.setdefault(r["inauguration_id"], []).append({"src": src, "caption": r["caption"] or r["filename"]})
    return out


# ---------------------------------------------------------------------------- map


@lru_cache
def _border_lines() -> list:
    data = json.loads((DATA_DIR / "borders" / "vn_land_borders.geojson").read_text(encoding="utf-8"))
    return [shape(f["geometry"]) for f in data["features"]]


def _plot(ax, geom, **style) -> None:
    if geom.is_empty:
        return
    kind = geom.geom_type
    if kind in ("Polygon", "MultiPolygon"):
        for poly in getattr(geom, "geoms", [geom]):
            x, y = poly.exterior.xy
            ax.fill(x, y, **style)
    elif kind in ("LineString", "MultiLineString"):
        for line in getattr(geom, "geoms", [geom]):
            x, y = line.xy
            ax.plot(x, y, **style)
    elif kind == "GeometryCollection":
        for g in geom.geoms:
            _plot(ax, g, **style)


def map_png(conn: Connection, donor_ids: list[int], viewer: Viewer, lang: str = "vi") -> bytes | None:
    """A PNG map of the roads funded by `donor_ids`, their markers and ceremonies, as
    `viewer` may see them (geo_api.policy)."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    road_geom = layers.geometry_sql(layers.ROADS, viewer).replace("t.", "r.")
    rows = conn.execute(text(f"""
        SELECT DISTINCT r.id, r.code, r.status::text AS status, ST_AsBinary({road_geom}) AS line
        FROM branch_road r JOIN funding_tx f ON f.road_id = r.id
        WHERE f.donor_id = ANY(:ids) AND {road_geom} IS NOT NULL
    """), {"ids": donor_ids}).all()
    if not rows:
        return None
    road_ids = [r.id for r in rows]
    seen = layers.geometry_sql(layers.MARKERS, viewer).replace("t.geom", "m.geom")
    markers = conn.execute(text(f"""
        SELECT DISTINCT m.number, ST_X({seen}) AS x, ST_Y({seen}) AS y FROM road_marker rm
        JOIN marker m ON m.id = rm.marker_id WHERE rm.road_id = ANY(:rids)"""), {"rids": road_ids}).all()
    ceremonies = conn.execute(text("""
        SELECT DISTINCT ST_X(i.geom) AS x, ST_Y(i.geom) AS y FROM inauguration_road ir
        JOIN inauguration i ON i.id = ir.inauguration_id WHERE ir.road_id = ANY(:rids) AND i.geom IS NOT NULL
    """), {"rids": road_ids}).all()
    lines = [(r, shapely.from_wkb(r.line)) for r in rows]
    x1, y1, x2, y2 = shapely.total_bounds([g for _, g in lines] + [shapely.Point(m.x, m.y) for m in markers])
    pad = max(0.03, 0.12 * max(x2 - x1, y2 - y1))
    x1, y1, x2, y2 = x1 - pad, y1 - pad, x2 + pad, y2 + pad
    side = max(x2 - x1, y2 - y1)  # outlines drawn beyond the roads' box: the aspect widens the view
    view = box(x1 - side, y1 - side, x2 + side, y2 + side)

    fig = Figure(figsize=(7.5, 5.2), dpi=150)
    ax = fig.subplots()
    ax.set_facecolor("#dcecf5")
    for iso, outline in country_outlines().items():
        _plot(ax, outline.intersection(view), color="#f4f1e8" if iso == "VNM" else "#e3e0d8",
              edgecolor="#b0a99a", linewidth=0.4)
    for border in _border_lines():
        _plot(ax, border.intersection(view), color="#c62828", linewidth=1.2, linestyle=(0, (4, 2)))
    for r, g in lines:
        _plot(ax, g, color=STATUS_COLOURS[r.status], linewidth=2.4, solid_capstyle="round")
        if len(lines) <= 15:
            x, y = g.coords[len(g.coords) // 2]
            ax.annotate(r.code, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    if markers:
        ax.scatter([m.x for m in markers], [m.y for m in markers], marker="^", s=22, color="#212121", zorder=5)
    if ceremonies:
        ax.scatter([c.x for c in ceremonies], [c.y for c in ceremonies], marker="*", s=90, color="#ffb300",
                   edgecolor="#5d4037", linewidth=0.5, zorder=6)
    # Degrees of longitude shrink northwards: fix the aspect, then widen the view to the frame.
    aspect = 1 / math.cos(math.radians((y1 + y2) / 2))
    cx, cy, dx, dy = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
    if dy * aspect / dx < FRAME_RATIO:
        dy = FRAME_RATIO * dx / aspect
    else:
        dx = dy * aspect / FRAME_RATIO
    ax.set_xlim(cx - dx / 2, cx + dx / 2)
    ax.set_ylim(cy - dy / 2, cy + dy / 2)
    ax.set_aspect(aspect)
    ax.tick_params(labelsize=6)
    ax.ticklabel_format(useOffset=False)
    labels = LABELS[lang]
    present = sorted({r.status for r, _ in lines}, key=STATUSES.index)
    handles = [Line2D([], [], color=STATUS_COLOURS[s], linewidth=2.4, label=labels["statuses"][s]) for s in present]
    handles += [Line2D([], [], color="#212121", marker="^", linestyle="", label=labels["legend_marker"]),
                Line2D([], [], color="#c62828", linestyle="--", label=labels["legend_border"])]
    if ceremonies:
        handles.append(Line2D([], [], color="#ffb300", marker="*", markersize=9, linestyle="",
                              label=labels["legend_ceremony"]))
    ax.legend(handles=handles, fontsize=6, loc="best", framealpha=0.9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


# ---------------------------------------------------------------------------- HTML


def _money(value: Any, lang: str) -> str:
    """Whole đồng with thousands separators (the unit is in the column heading)."""
    text_ = f"{int(Decimal(value or 0)):,}"
    return text_.replace(",", ".") if lang == "vi" else text_


def _date(value: dt.date | None, lang: str) -> str:
    if value is None:
        return ""
    return value.strftime("%d/%m/%Y") if lang == "vi" else value.strftime("%d %b %Y")


def _name(row: dict, lang: str) -> str:
    return (row.get("name_en") or row["name"]) if lang == "en" else row["name"]


TEMPLATE = """<!doctype html>
<html lang="{{ lang }}"><head><meta charset="utf-8">
<title>{{ L.title }} – {{ name(donor) }}</title>
<style>
@page { size: A4; margin: 15mm 14mm; }
body { font-family: "Noto Sans", "DejaVu Sans", Arial, sans-serif; font-size: 10.5pt; color: #222; margin: 0 auto; max-width: 190mm; }
h1 { font-size: 17pt; margin: 0 0 2mm; } h2 { font-size: 13pt; margin: 7mm 0 2mm; border-bottom: 1px solid #999; }
table { border-collapse: collapse; width: 100%; margin: 2mm 0; }
th, td { border: 1px solid #bbb; padding: 1mm 1.5mm; text-align: left; vertical-align: top; }
th { background: #eee; } td.n, th.n { text-align: right; } td.n { white-space: nowrap; }
tr, img, figure { page-break-inside: avoid; break-inside: avoid; }
thead { display: table-header-group; }
.meta { color: #555; } .map img { width: 100%; border: 1px solid #bbb; }
.photos { display: flex; flex-wrap: wrap; gap: 3mm; } .photos figure { margin: 0; width: 58mm; }
.photos img { width: 100%; } figcaption { font-size: 8.5pt; color: #555; }
table.roads, table.members { font-size: 8.5pt; } table.roads td:first-child, table.members td:first-child { width: 34%; }
.dot { display: inline-block; width: 8pt; height: 8pt; border-radius: 50%; vertical-align: middle; }
@media print { a { color: inherit; text-decoration: none; } .noprint { display: none; } }
</style></head><body>
<p class="noprint"><a href="?lang={{ 'en' if lang == 'vi' else 'vi' }}">{{ 'English' if lang == 'vi' else 'Tiếng Việt' }}</a></p>
<h1>{{ L.title }}: {{ name(donor) }}</h1>
<p class="meta">{{ L.code }}: {{ donor.code }} · {{ L.donor_kinds[donor.kind] }}{% if donor.province %} · {{ donor.province }}{% endif %}
 · {{ L.generated }} {{ today }}</p>
{% if members %}<h2>{{ L.members }}</h2>
<table><thead><tr><th>{{ L.donor }}</th><th>{{ L.role }}</th></tr></thead><tbody>
{% for m in members %}<tr><td>{{ name(m) }}</td><td>{{ m.role or '' }}</td></tr>{% endfor %}
</tbody></table>{% endif %}

<h2>{{ L.money }}</h2>
<table><thead><tr><th>{{ L.kind }}</th><th class="n">{{ L.amount }}</th><th class="n">{{ L.count }}</th></tr></thead><tbody>
{% for k in money %}<tr><td>{{ L.kinds[k.kind] }}</td><td class="n">{{ vnd(k.amount) }}</td><td class="n">{{ k.n }}</td></tr>{% endfor %}
</tbody></table>
{% if members %}<h3>{{ L.total_by_member }}</h3>
<table class="members"><thead><tr><th>{{ L.donor }}</th>{% for k in kinds %}<th class="n">{{ L.kinds[k] }}</th>{% endfor %}</tr></thead><tbody>
{% for m in by_member %}<tr><td>{{ name(m) }}</td>{% for k in kinds %}<td class="n">{{ vnd(m[k]) }}</td>{% endfor %}</tr>{% endfor %}
</tbody></table>{% endif %}

<h2>{{ L.progress }}</h2>
<table><tbody>
<tr><th>{{ L.roads_funded }}</th><td class="n">{{ progress.roads }}</td></tr>
<tr><th>{{ L.km_built }}</th><td class="n">{{ progress.km }}</td></tr>
<tr><th>{{ L.avg_progress }}</th><td class="n">{{ progress.avg_progress }}</td></tr>
{% for s in statuses if by_status.get(s) %}<tr><th><span class="dot" style="background: {{ colours[s] }}"></span>
 {{ L.statuses[s] }}</th><td class="n">{{ by_status[s] }}</td></tr>{% endfor %}
</tbody></table>

{% if map %}<h2>{{ L.map }}</h2><figure class="map"><img alt="{{ L.map }}" src="data:image/png;base64,{{ map }}"></figure>{% endif %}

<h2>{{ L.roads }}</h2>
{% if roads %}<table class="roads"><thead><tr><th>{{ L.road }}</th><th>{{ L.markers }}</th><th>{{ L.status }}</th>
<th class="n">{{ L.length }}</th><th class="n">{{ L.progress_pct }}</th><th class="n">{{ L.estimate }}</th>
<th class="n">{{ L.this_donor }}: {{ L.kinds.commitment }}</th><th class="n">{{ L.kinds.disbursement }}</th></tr></thead><tbody>
{% for r in roads %}<tr><td><b>{{ r.code }}</b> {{ r.name }}<br><span class="meta">{{ [r.commune, r.district, r.province] | select | join(', ') }}</span></td>
<td>{{ r.markers or '' }}</td>
<td><span class="dot" style="background: {{ colours[r.status] }}"></span> {{ L.statuses[r.status] }}
{% if r.inaugurated_on %}<br>{{ date(r.inaugurated_on) }}{% endif %}</td>
<td class="n">{{ r.length_m }}</td><td class="n">{{ r.progress_pct }}</td><td class="n">{{ vnd(r.estimated_cost) if r.estimated_cost is not none else '' }}</td>
<td class="n">{{ vnd(r.commitment) }}</td><td class="n">{{ vnd(r.disbursement) }}</td></tr>{% endfor %}
</tbody></table>{% else %}<p>{{ L.none }}</p>{% endif %}

<h2>{{ L.inaugurations }}</h2>
{% for c in ceremonies %}<section><h3>{{ c.title }} – {{ date(c.held_on) }}</h3>
<p>{{ c.place }}{% if c.province %}, {{ c.province }}{% endif %}</p>
{% if c.roads %}<p><b>{{ L.roads }}:</b> {{ c.roads }}</p>{% endif %}
{% if c.officials %}<p><b>{{ L.officials }}:</b> {{ c.officials }}</p>{% endif %}
{% if c.photos %}<div class="photos">{% for p in c.photos %}<figure><img src="{{ p.src }}" alt="{{ p.caption }}"><figcaption>{{ p.caption }}</figcaption></figure>{% endfor %}</div>
{% else %}<p class="meta">{{ L.no_photos }}</p>{% endif %}</section>
{% else %}<p>{{ L.none }}</p>{% endfor %}
<p class="meta">{{ L.generated_note }}</p>
</body></html>
"""

_env = Environment(autoescape=True)
_template = _env.from_string(TEMPLATE)


def render_html(data: dict[str, Any], map_png_bytes: bytes | None, lang: str = "vi",
                today: dt.date | None = None) -> str:
    labels = LABELS[lang]
    return _template.render(
        lang=lang, L=labels, kinds=KINDS, statuses=STATUSES, colours=STATUS_COLOURS,
        today=_date(today or dt.date.today(), lang),
        name=lambda row: _name(row, lang), vnd=lambda v: _money(v, lang), date=lambda d: _date(d, lang),
        map=base64.b64encode(map_png_bytes).decode() if map_png_bytes else None,
        **{k: v for k, v in data.items() if k != "donor_ids"},
    )


def report_html(conn: Connection, donor_id: int, viewer: Viewer, lang: str = "vi",
                store_root: Path | None = None) -> str:
    """The whole printable report of one donor or group."""
    data = report_data(conn, donor_id, store_root)
    return render_html(data, map_png(conn, data["donor_ids"], viewer, lang), lang)
