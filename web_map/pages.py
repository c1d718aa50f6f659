"""The web pages: `/` (donor map), `/post`, `/planner`, `/villages`, `/charts`, their
static files, and the popup data the vector-tile maps fetch on click.

Vietnamese by default, English with `?lang=en` (the switch in the top bar keeps the rest
of the URL). Thin like the API routes: validate the query, read the data (web_map.data),
build the map (web_map.maps), render the template. Pages are sent gzip-compressed when
the browser accepts it, with an ETag so a reload of an unchanged page costs a 304.

No `from __future__ import annotations` here: FastAPI must see the query models.
"""

import gzip
import hashlib
import unicodedata
from collections.abc import Iterator
from functools import lru_cache
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from sqlalchemy import Connection, text

from geo_api.auth import POST_TRANSITIONS
from geo_api.domain import lifecycle
from geo_api.domain.tiles import without_jit
from geo_api.deps import ViewerDep
from geo_api.errors import InvalidInput
from geo_api.policy import Viewer
from geo_api.settings import MapSettings
from geo_api.vocabulary import ROAD_STATUSES
from web_map import charts, data, maps, static_files
from web_map.i18n import Texts

router = APIRouter(include_in_schema=False)

TEMPLATES_DIR = static_files.STATIC_DIR.parent / "templates"
NAV = (("donor", "/"), ("post", "/post"), ("planner", "/planner"), ("villages", "/villages"),
       ("charts", "/charts"))
GZIP_MIN_BYTES = 1024
LIST_MAX = 200  # pairs listed beside the villages map (overdue first); the map shows all


def page_conn(request: Request) -> Iterator[Connection]:
    """A read connection for a page: its queries are many and small, JIT only slows them."""
    with request.app.state.engine.connect() as conn:
        without_jit(conn)
        yield conn


ConnDep = Annotated[Connection, Depends(page_conn)]


def _blank_is_none(v: Any) -> Any:
    return None if isinstance(v, str) and not v.strip() else v


OptionalId = Annotated[Annotated[int, Field(ge=1, le=2**31 - 1)] | None, BeforeValidator(_blank_is_none)]
OptionalText = Annotated[Annotated[str, Field(max_length=200)] | None, BeforeValidator(_blank_is_none)]
Lang = Literal["vi", "en"]
Mode = Literal["auto", "inline", "tiles"]


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lang: Lang = Field(default="vi", description="vi (default) or en")


class MapQuery(PageQuery):
    mode: Mode = Field(default="auto", description="inline GeoJSON, vector tiles, or auto (by data size)")


class DonorMapQuery(MapQuery):
    donor_id: OptionalId = None
    campaign_id: OptionalId = None
    province: OptionalText = None
    status: list[Literal[ROAD_STATUSES]] = Field(default_factory=list)  # type: ignore[valid-type]

    def filters(self) -> dict[str, Any]:
        return {"donor_id": self.donor_id, "campaign_id": self.campaign_id, "province": self.province,
                "status": ",".join(self.status) or None}


class PostPageQuery(PageQuery):
    post_id: OptionalId = None
    province: OptionalText = None


class ChartsQuery(PageQuery):
    donor_id: OptionalId = None


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=select_autoescape(["html"]),
                      trim_blocks=False, lstrip_blocks=False)
    env.globals["static"] = static_files.static_url
    env.policies["json.dumps_kwargs"] = {"sort_keys": True, "ensure_ascii": False}
    return env


def page_response(request: Request, body: str) -> Response:
    raw = body.encode("utf-8")
    etag = f'"{hashlib.sha256(raw).hexdigest()[:24]}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    if len(raw) >= GZIP_MIN_BYTES and "gzip" in request.headers.get("accept-encoding", ""):
        raw = gzip.compress(raw, 6)
        headers["Content-Encoding"] = "gzip"
    return Response(raw, media_type="text/html; charset=utf-8", headers=headers)


def render(request: Request, template: str, t: Texts, page: str, title: str, *,
           map_parts: maps.MapParts | None = None, layout: str = "side", js: dict | None = None,
           **context: Any) -> Response:
    def url(path: str, **params: Any) -> str:
        params = {k: v for k, v in params.items() if v is not None}
        if t.lang != "vi":
            params["lang"] = t.lang
        return path + ("?" + urlencode(params, doseq=True) if params else "")

    others = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    if t.other_lang != "vi":
        others.append(("lang", t.other_lang))
    switch_url = request.url.path + ("?" + urlencode(others) if others else "")
    js_config = {"lang": t.lang, "page": page, "words": t.js_words(), **(js or {})}
    html = environment().get_template(template).render(
        t=t, page=page, title=title, nav=NAV, url=url, switch_url=switch_url, map=map_parts,
        layout=layout, js_config=js_config, colors=maps.STATUS_COLORS, access_colors=maps.ACCESS_COLORS,
        statuses=ROAD_STATUSES, **context,
    )
    return page_response(request, html)


def signin_page(request: Request, t: Texts, viewer: Viewer, title: str) -> Response:
    """A page that needs a planner, asked by someone else: a sign-in form (401, or 403 for a
    signed-in account of another role). Signing in sets the page session cookie."""
    response = render(request, "signin.html", t, "planner", title, layout="text", signed_in=not viewer.anonymous)
    response.status_code = 401 if viewer.anonymous else 403
    return response


def settings_for(request: Request) -> MapSettings:
    """The map settings the app was created with."""
    return request.app.state.settings.maps


def resolve_mode(request: Request, requested: str, counts: data.Counts, page: str) -> str:
    """Inline GeoJSON while the page's data is small enough, vector tiles above that;
    `mode=inline` is honoured up to `inline_hard_factor` times the limits."""
    s = settings_for(request)
    if page == "villages":
        over = counts.villages / s.inline_max_villages
    else:
        over = max(counts.markers / s.inline_max_markers, counts.roads / s.inline_max_roads)
    if requested == "inline" and over > s.inline_hard_factor:
        raise InvalidInput(f"mode=inline: {counts.markers:,} markers, {counts.roads:,} roads and "
                           f"{counts.villages:,} villages are too many to put in one page; use mode=tiles "
                           f"(or leave mode out)", field="mode")
    if requested != "auto":
        return requested
    return "tiles" if over > 1 else "inline"


def sort_key(name: str | None) -> tuple:
    """Vietnamese alphabetical order, near enough: Đ after D, accents after the bare letter."""
    name = name or "\uffff"
    base = unicodedata.normalize("NFD", name.replace("Đ", "D\uffff").replace("đ", "d\uffff"))
    return ("".join(c for c in base if not unicodedata.combining(c)).casefold(), name)


def _tile_query(filters: dict[str, Any]) -> str:
    return urlencode({k: v for k, v in filters.items() if v is not None})


# --------------------------------------------------------------------------------- pages


@router.get("/")
def donor_page(request: Request, conn: ConnDep, viewer: ViewerDep, q: Annotated[DonorMapQuery, Query()]) -> Response:
    t = Texts(q.lang)
    filters = q.filters()
    data.require_filter_targets(conn, filters)
    mode = resolve_mode(request, q.mode, data.counts(conn), "donor")
    m, drawn = maps.donor_map(t, settings_for(request), conn, viewer, filters, mode, _tile_query(filters))
    return render(
        request, "donor.html", t, "donor", t("nav_donor"), map_parts=maps.render(m),
        js={"mode": mode, "drawn": drawn, "lookup": data.lookups(conn) if mode == "inline" else {}},
        q=q, mode=mode, mode_param=q.mode if q.mode != "auto" else None,
        options=data.filter_options(conn), summary=data.road_summary(conn, filters),
        filters_set=any(v is not None for v in filters.values()),
    )


@router.get("/post")
def post_page(request: Request, conn: ConnDep, viewer: ViewerDep, q: Annotated[PostPageQuery, Query()]) -> Response:
    """A border post's markers and roads, and the form to move a road to its next status.
    Anyone may look; sending needs signing in (POST /api/auth/login, from the page). The
    post is chosen with `?post_id=`; a post officer who signs in on /post is sent to theirs."""
    t = Texts(q.lang)
    post = data.post_detail(conn, q.post_id) if q.post_id else None
    province = post["province"] if post else q.province
    choices = data.post_choices(conn, province)
    posts = choices["posts"]
    base_config = {"post_id": q.post_id, "transitions": lifecycle.TRANSITIONS,
                   "post_transitions": sorted(POST_TRANSITIONS), "roads": []}
    if post is None:
        return render(request, "post.html", t, "post", t("nav_post"), layout="text", posts=posts, post=None,
                      provinces=choices["provinces"], province=province, post_config=base_config)
    markers = data.marker_points(conn, viewer, q.post_id)
    roads = data.post_roads(conn, viewer, q.post_id)
    m = maps.post_map(t, settings_for(request), conn, viewer, post, markers, roads)
    post_config = {
        **base_config,
        "roads": [{"id": f["id"], **{k: f["properties"][k] for k in (
            "code", "name", "status", "version", "progress", "suspended_from")}} for f in roads["features"]],
    }
    return render(
        request, "post.html", t, "post", f"{post['name']} · {t('nav_post')}", map_parts=maps.render(m),
        js={"post_id": post["id"], "drawn": {"markers": len(markers), "roads": len(roads["features"])},
            "lookup": data.lookups(conn, post_ids=[post["id"]], donors=False)},
        posts=posts, post=post, roads=roads, marker_count=len(markers), post_config=post_config,
        provinces=choices["provinces"], province=province,
    )


@router.get("/planner")
def planner_page(request: Request, conn: ConnDep, viewer: ViewerDep, q: Annotated[MapQuery, Query()]) -> Response:
    t = Texts(q.lang)
    if not viewer.is_planner:
        return signin_page(request, t, viewer, t("nav_planner"))
    mode = resolve_mode(request, q.mode, data.counts(conn), "planner")
    m, drawn = maps.planner_map(t, settings_for(request), conn, viewer, mode)
    provinces = sorted(data.province_table(conn), key=lambda r: sort_key(r["province"]))
    keys = [k for k in (provinces[0] if provinces else {}) if k != "province"]
    totals = {k: sum(float(r[k] or 0) for r in provinces) for k in keys}
    access = [dict(r._mapping) for r in conn.execute(text(
        "SELECT a.access, count(m.id) AS markers FROM unnest(enum_range(NULL::marker_access)) a(access) "
        "LEFT JOIN marker m ON m.access = a.access GROUP BY a.access ORDER BY a.access"))]
    return render(
        request, "planner.html", t, "planner", t("nav_planner"), map_parts=maps.render(m), layout="stack",
        js={"mode": mode, "drawn": drawn, "lookup": data.lookups(conn, donors=False) if mode == "inline" else {}},
        mode=mode, provinces=provinces, totals=totals, access=access,
    )


@router.get("/villages")
def villages_page(request: Request, conn: ConnDep, viewer: ViewerDep, q: Annotated[MapQuery, Query()]) -> Response:
    t = Texts(q.lang)
    mode = resolve_mode(request, q.mode, data.counts(conn), "villages")
    m, drawn, pairs = maps.villages_map(t, settings_for(request), conn, viewer, mode)
    features = sorted(pairs["features"], key=lambda f: (not f["properties"]["overdue"],
                                                        f["properties"]["vn_province"], f["id"]))
    due = features[0]["properties"]["due_quarter"] if features else None
    return render(
        request, "villages.html", t, "villages", t("nav_villages"), map_parts=maps.render(m),
        js={"mode": mode, "drawn": drawn}, mode=mode, pairs=features[:LIST_MAX], total=len(features),
        due_quarter=due, overdue=sum(1 for f in features if f["properties"]["overdue"]),
    )


@router.get("/charts")
def charts_page(request: Request, conn: ConnDep, q: Annotated[ChartsQuery, Query()]) -> Response:
    t = Texts(q.lang)
    data.require_filter_targets(conn, {"donor_id": q.donor_id})
    kinds = [charts.Series(k, t(k), c) for k, c in (
        ("pledged", "#90caf9"), ("committed", "#1e88e5"), ("disbursed", "#2e7d32"), ("spent", "#fb8c00"))]
    years = data.money_by_year(conn, q.donor_id)
    money_year = charts.column_chart(
        t, t("year"), [str(r["year"]) for r in years], kinds, {str(r["year"]): r for r in years}, t.money_short)
    top_n = 12
    donors = data.money_by_donor(conn, top_n)
    name = (lambda d: d["name_en"] or d["name"]) if t.lang == "en" else (lambda d: d["name"])
    money_donor = charts.bar_chart(
        t, t("donor"), [name(d) for d in donors], [kinds[0], kinds[2]], {name(d): d for d in donors},
        t.money_short)
    provinces = sorted((r for r in data.province_table(conn) if r["roads"]), key=lambda r: sort_key(r["province"]))
    statuses = [charts.Series(f"roads_{s}", t(f"status_{s}"), maps.STATUS_COLORS[s]) for s in ROAD_STATUSES]
    roads_province = charts.bar_chart(
        t, t("province"), [r["province"] for r in provinces], statuses, {r["province"]: r for r in provinces},
        lambda v: t.num(v), stacked=True)
    return render(
        request, "charts.html", t, "charts", t("nav_charts"), layout="text",
        donors=data.filter_options(conn)["donors"], donor_id=q.donor_id, top_n=top_n,
        money_year=money_year, money_donor=money_donor, roads_province=roads_province,
    )


# ------------------------------------------------------------------------ data and files


@router.get("/map/roads/{road_id}.json")
def road_popup(conn: ConnDep, road_id: Annotated[int, Path(ge=1, le=2**31 - 1)]) -> dict:
    """What a road's popup shows (maps drawn from vector tiles fetch it on click)."""
    return data.road_popup(conn, road_id)


@router.get("/map/village-pairs/{pair_id}.json")
def pair_popup(conn: ConnDep, viewer: ViewerDep, pair_id: Annotated[int, Path(ge=1, le=2**31 - 1)]) -> dict:
    """What a twinned pair's popup shows (maps drawn from vector tiles fetch it on click)."""
    return data.pair_popup(conn, viewer, pair_id)


@router.get("/static/{path:path}")
def static(request: Request, path: str,
           v: Annotated[str | None, Query(max_length=64, description="content hash (cache-busting)")] = None,
           ) -> Response:
    return static_files.serve(request, path)
