"""Create, update and delete markers, posts, branch roads and villages, with their rules.

Each write runs inside the caller's transaction (one per request) and either succeeds
completely or raises a DomainError before anything is committed. An update locks the
row, merges the patch into it and re-runs every check on the merged result, then bumps
`version` and `updated_at`. Every write leaves one `audit_log` row (before/after as JSON).

Rules (tolerances in `geo_api.domain.geometry.GeometrySettings`):
- a marker stands within TRACKER_MARKER_MAX_DISTANCE_M (500 m) of its border segment;
- a branch road serves at least one existing marker, all in the care of the road's own
  post (or of no post yet); it comes within TRACKER_ROAD_MARKER_MAX_DISTANCE_M (200 m) of
  every marker it serves and one of its ends lies that close to one of them. A road that
  stops short is refused rather than flagged: users take a branch road to mean "reaches the
  marker", and a planned line that does not is a drawing mistake to fix before it is saved;
- a village lies on its own country's side of the border;
- a new road starts `proposed`; only a proposed road without money or ceremonies can be
  deleted (others are cancelled through the lifecycle, keeping their history);
- anything still referred to is not deleted (409, saying by what).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import shapely
from pydantic import BaseModel
from shapely.geometry import MultiPolygon
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from geo_api import layers
from geo_api.domain.geometry import (
    check_country_side, fmt_distance, parse_geometry, to_wkb,
)
from geo_api.errors import Conflict, InvalidInput, NotFound, PreconditionFailed
from geo_api.layers import Layer
from geo_api.schemas.resources import (
    MarkerCreate, MarkerUpdate, PostCreate, PostUpdate, RoadCreate, RoadUpdate, VillageCreate,
    VillageUpdate,
)
from geo_api.settings import get_settings

GEOMETRY_COLUMNS = ("geom", "area", "as_built_geom")
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


# ---------------------------------------------------------------------------- shared helpers


def _sql_values(values: dict[str, Any]) -> tuple[list[str], list[str], dict[str, Any]]:
    """Columns, SQL expressions and bound parameters; shapely geometries go in as WKB."""
    cols, exprs, params = [], [], {}
    for col, value in values.items():
        assert _IDENT.match(col), col  # column names come from our schemas, never from users
        cols.append(col)
        if isinstance(value, BaseGeometry):
            exprs.append(f"ST_GeomFromWKB(:{col}, 4326)")
            params[col] = to_wkb(value)
        else:
            exprs.append(f":{col}")
            params[col] = value
    return cols, exprs, params


def insert_row(conn: Connection, table: str, values: dict[str, Any]) -> int:
    cols, exprs, params = _sql_values(values)
    sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(exprs)}) RETURNING id"
    return conn.execute(text(sql), params).scalar_one()


def update_row(conn: Connection, table: str, item_id: int, values: dict[str, Any]) -> int:
    """Apply `values`, bump version and updated_at; returns the new version."""
    cols, exprs, params = _sql_values(values)
    sets = [f"{c} = {e}" for c, e in zip(cols, exprs)]
    sets += ["version = version + 1", "updated_at = now()"]
    sql = f"UPDATE {table} SET {', '.join(sets)} WHERE id = :_id RETURNING version"
    return conn.execute(text(sql), {**params, "_id": item_id}).scalar_one()


def insert_audited(conn: Connection, table: str, values: dict[str, Any], actor: str) -> int:
    """Insert a row and its audit_log entry; returns the new id."""
    new_id = insert_row(conn, table, values)
    audit(conn, actor, "create", table, new_id)
    return new_id


def update_audited(conn: Connection, table: str, item_id: int, values: dict[str, Any], actor: str,
                   before: dict[str, Any]) -> int:
    """Update a row locked by `lock_row` (its `before` state) and log it; returns the new version."""
    version = update_row(conn, table, item_id, values)
    audit(conn, actor, "update", table, item_id, before["_json"])
    return version


def lock_row(conn: Connection, layer: Layer, item_id: int,
             expected_version: int | None = None) -> dict[str, Any]:
    """The row as a dict (geometries as shapely, `_json` its JSON for the audit), locked."""
    row = conn.execute(
        text(f"SELECT to_jsonb(t)::text AS _json, t.* FROM {layer.table} t WHERE t.id = :id FOR UPDATE"),
        {"id": item_id},
    ).mappings().first()
    if row is None:
        raise NotFound(f"{layer.title} {item_id} not found")
    current = dict(row)
    for col in GEOMETRY_COLUMNS:
        if current.get(col) is not None:
            current[col] = shapely.from_wkb(current[col])
    if expected_version is not None and current["version"] != expected_version:
        raise PreconditionFailed(
            f"{layer.title} {item_id} has changed: it is at version {current['version']}, "
            f"not {expected_version}; reload it and try again",
            version=current["version"],
        )
    return current


def audit(conn: Connection, actor: str, action: str, table: str, item_id: int,
          before_json: str | None = None) -> None:
    """One audit_log row; `after` is the row as it now stands (NULL once deleted)."""
    conn.execute(text(f"""
        INSERT INTO audit_log (actor, action, target_table, target_id, before, after)
        VALUES (:actor, :action, :table, CAST(:id AS text), CAST(:before AS jsonb),
                (SELECT to_jsonb(t) FROM {table} t WHERE t.id = :id))
    """), {"actor": actor, "action": action, "table": table, "id": item_id, "before": before_json})


def require_ref(conn: Connection, table: str, item_id: int | None, field: str, title: str) -> None:
    """A referenced row must exist: 422 naming the field (the request, not the URL, is wrong)."""
    if item_id is None:
        return
    if conn.execute(text(f"SELECT 1 FROM {table} WHERE id = :id"), {"id": item_id}).first() is None:
        raise InvalidInput(f"{field}: {title} {item_id} does not exist", field=field)


def require_unique_code(conn: Connection, layer: Layer, code: str, item_id: int | None) -> None:
    found = conn.execute(
        text(f"SELECT id FROM {layer.table} WHERE code = :code AND id IS DISTINCT FROM :self"),
        {"code": code, "self": item_id},
    ).scalar()
    if found is not None:
        raise Conflict(f"code: a {layer.title} with code {code!r} already exists (id {found})",
                       field="code", existing_id=found)


@dataclass(frozen=True)
class Reference:
    """Rows that keep an item from being deleted: SQL yielding one label per referrer."""

    sql: str
    reason: str  # e.g. "it is served by branch road(s)"


def refuse_if_referenced(conn: Connection, layer: Layer, item_id: int,
                         references: Iterable[Reference]) -> None:
    for ref in references:
        labels = conn.execute(text(ref.sql), {"id": item_id}).scalars().all()
        if labels:
            shown = ", ".join(map(str, labels[:5])) + (f" and {len(labels) - 5} more" if len(labels) > 5 else "")
            raise Conflict(f"{layer.title} {item_id} cannot be deleted: {ref.reason} {shown}",
                           references=len(labels))


def delete_row(conn: Connection, layer: Layer, item_id: int, actor: str,
               references: Iterable[Reference], expected_version: int | None = None) -> None:
    current = lock_row(conn, layer, item_id, expected_version)
    refuse_if_referenced(conn, layer, item_id, references)
    conn.execute(text(f"DELETE FROM {layer.table} WHERE id = :id"), {"id": item_id})
    audit(conn, actor, "delete", layer.table, item_id, current["_json"])


GEOMETRY_INPUTS = {"geometry", "crs", "area"}


def fields(body: BaseModel) -> dict[str, Any]:
    """Every field of a create body (defaults included), minus geometry inputs."""
    return body.model_dump(exclude=GEOMETRY_INPUTS)


def changes(body: BaseModel) -> dict[str, Any]:
    """The fields a PATCH body actually sent, minus geometry inputs handled separately."""
    return body.model_dump(exclude_unset=True, exclude=GEOMETRY_INPUTS)


def check_dates(start, end, start_name: str, end_name: str) -> None:
    if start is not None and end is not None and end < start:
        raise InvalidInput(f"{end_name} {end} is before {start_name} {start}", field=end_name)


# ---------------------------------------------------------------------------- markers

MARKER_REFERENCES = (
    Reference("SELECT r.code FROM road_marker rm JOIN branch_road r ON r.id = rm.road_id "
              "WHERE rm.marker_id = :id ORDER BY r.code", "it is served by branch road(s)"),
)


def _check_marker(conn: Connection, m: dict[str, Any], marker_id: int | None) -> None:
    require_ref(conn, "border_post", m.get("post_id"), "post_id", "post")
    seg = conn.execute(text("""
        SELECT s.code, ST_Distance(s.geom::geography, ST_GeomFromWKB(:g, 4326)::geography) AS d
        FROM border_segment s WHERE s.id = :sid
    """), {"sid": m["segment_id"], "g": to_wkb(m["geom"])}).first()
    if seg is None:
        raise InvalidInput(f"segment_id: border segment {m['segment_id']} does not exist", field="segment_id")
    limit = get_settings().geometry.marker_max_distance_m
    if seg.d > limit:
        raise InvalidInput(
            f"geometry: marker {m['number']} is {fmt_distance(seg.d)} from border segment {seg.code}; "
            f"a marker must stand within {fmt_distance(limit)} of its border segment",
            field="geometry", distance_m=round(seg.d), max_distance_m=limit,
        )
    dupe = conn.execute(text(
        "SELECT id FROM marker WHERE segment_id = :s AND number = :n AND id IS DISTINCT FROM :self"
    ), {"s": m["segment_id"], "n": m["number"], "self": marker_id}).scalar()
    if dupe is not None:
        raise Conflict(f"number: marker {m['number']} already exists on border segment {seg.code} "
                       f"(id {dupe})", field="number", existing_id=dupe)


def create_marker(conn: Connection, body: MarkerCreate, actor: str) -> int:
    values = fields(body)
    values["geom"] = parse_geometry(body.geometry, "Point", body.crs)
    values["is_generated"] = False
    _check_marker(conn, values, None)
    return insert_audited(conn, "marker", values, actor)


def update_marker(conn: Connection, marker_id: int, body: MarkerUpdate, actor: str,
                  expected_version: int | None = None) -> None:
    current = lock_row(conn, layers.MARKERS, marker_id, expected_version)
    values = changes(body)
    if body.geometry is not None:
        values["geom"] = parse_geometry(body.geometry, "Point", body.crs)
    _check_marker(conn, {**current, **values}, marker_id)
    update_audited(conn, "marker", marker_id, values, actor, current)


def delete_marker(conn: Connection, marker_id: int, actor: str,
                  expected_version: int | None = None) -> None:
    delete_row(conn, layers.MARKERS, marker_id, actor, MARKER_REFERENCES, expected_version)


# ---------------------------------------------------------------------------- posts

POST_REFERENCES = (
    Reference("SELECT code FROM branch_road WHERE post_id = :id ORDER BY code",
              "it requests and uses branch road(s)"),
    Reference("SELECT number FROM marker WHERE post_id = :id ORDER BY number",
              "it is responsible for marker(s)"),
    Reference("SELECT vn.name || ' – ' || fv.name FROM village_pair p JOIN village vn "
              "ON vn.id = p.vn_village_id JOIN village fv ON fv.id = p.foreign_village_id "
              "WHERE p.post_id = :id ORDER BY p.id", "it supports twinned village pair(s)"),
    Reference("SELECT username FROM account WHERE post_id = :id ORDER BY username",
              "it has user account(s)"),
)


def _post_area(body: PostCreate | PostUpdate) -> MultiPolygon | None:
    if body.area is None:
        return None
    area = parse_geometry(body.area, ("Polygon", "MultiPolygon"), body.crs, field="area")
    return area if isinstance(area, MultiPolygon) else MultiPolygon([area])


def _check_post(conn: Connection, p: dict[str, Any], post_id: int | None) -> None:
    require_unique_code(conn, layers.POSTS, p["code"], post_id)
    require_ref(conn, "border_segment", p.get("segment_id"), "segment_id", "border segment")


def create_post(conn: Connection, body: PostCreate, actor: str) -> int:
    values = fields(body)
    values["geom"] = parse_geometry(body.geometry, "Point", body.crs)
    values["area"] = _post_area(body)
    values["is_generated"] = False
    _check_post(conn, values, None)
    return insert_audited(conn, "border_post", values, actor)


def update_post(conn: Connection, post_id: int, body: PostUpdate, actor: str,
                expected_version: int | None = None) -> None:
    current = lock_row(conn, layers.POSTS, post_id, expected_version)
    values = changes(body)
    if body.geometry is not None:
        values["geom"] = parse_geometry(body.geometry, "Point", body.crs)
    if "area" in body.model_fields_set:
        values["area"] = _post_area(body)
    _check_post(conn, {**current, **values}, post_id)
    update_audited(conn, "border_post", post_id, values, actor, current)


def delete_post(conn: Connection, post_id: int, actor: str, expected_version: int | None = None) -> None:
    delete_row(conn, layers.POSTS, post_id, actor, POST_REFERENCES, expected_version)


# ---------------------------------------------------------------------------- branch roads

ROAD_REFERENCES = (
    Reference("SELECT status::text FROM branch_road WHERE id = :id AND status <> 'proposed'",
              "only a proposed road can be deleted (cancel it through POST /api/roads/{id}/transitions "
              "instead); its status is"),
    Reference("SELECT kind::text || ' ' || amount::text || ' VND' FROM funding_tx "
              "WHERE road_id = :id ORDER BY id", "money is recorded against it:"),
    Reference("SELECT i.title || ' (' || i.held_on || ')' FROM inauguration_road ir "
              "JOIN inauguration i ON i.id = ir.inauguration_id WHERE ir.road_id = :id",
              "it was inaugurated at"),
    Reference("SELECT a.filename FROM attachment a LEFT JOIN road_event e ON e.id = a.road_event_id "
              "WHERE a.road_id = :id OR e.road_id = :id ORDER BY a.id",
              "it has attachment(s) (delete them first):"),
)


def _road_markers(conn: Connection, road_id: int) -> list[int]:
    return list(conn.execute(text(
        "SELECT marker_id FROM road_marker WHERE road_id = :id ORDER BY marker_id"), {"id": road_id}
    ).scalars())


def _check_road(conn: Connection, r: dict[str, Any], road_id: int | None) -> list[Any]:
    """All rules of a branch road; returns the served markers (in the order given)."""
    require_unique_code(conn, layers.ROADS, r["code"], road_id)
    require_ref(conn, "border_post", r["post_id"], "post_id", "post")
    check_dates(r.get("planned_start"), r.get("planned_end"), "planned_start", "planned_end")
    ids = r["marker_ids"]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise InvalidInput(f"marker_ids: marker {', '.join(map(str, dupes))} listed more than once",
                           field="marker_ids")
    markers = conn.execute(text("""
        SELECT x.id AS requested, m.id, m.number, m.post_id, bp.name AS post_name,
               m.province, m.district, m.commune,
               ST_Distance(m.geom::geography, g.line::geography) AS to_line,
               LEAST(ST_Distance(m.geom::geography, ST_StartPoint(g.line)::geography),
                     ST_Distance(m.geom::geography, ST_EndPoint(g.line)::geography)) AS to_end
        FROM unnest(CAST(:ids AS integer[])) WITH ORDINALITY AS x(id, ord)
        CROSS JOIN (SELECT ST_GeomFromWKB(:line, 4326) AS line) g
        LEFT JOIN marker m ON m.id = x.id
        LEFT JOIN border_post bp ON bp.id = m.post_id
        ORDER BY x.ord
    """), {"ids": ids, "line": to_wkb(r["geom"])}).all()
    missing = [str(m.requested) for m in markers if m.id is None]
    if missing:
        raise InvalidInput(f"marker_ids: marker {', '.join(missing)} does not exist", field="marker_ids")
    for m in markers:
        if m.post_id is not None and m.post_id != r["post_id"]:
            raise InvalidInput(
                f"marker_ids: marker {m.number} (id {m.id}) is in the care of post {m.post_name} "
                f"(id {m.post_id}), not post {r['post_id']}; a branch road belongs to the post "
                f"responsible for the markers it serves", field="marker_ids",
            )
    limit = get_settings().geometry.road_marker_max_distance_m
    for m in markers:
        if m.to_line > limit:
            raise InvalidInput(
                f"geometry: the road does not reach marker {m.number} (id {m.id}): it passes "
                f"{fmt_distance(m.to_line)} from it at its closest; a branch road must come within "
                f"{fmt_distance(limit)} of every marker it serves",
                field="geometry", marker_id=m.id, distance_m=round(m.to_line), max_distance_m=limit,
            )
    nearest = min(markers, key=lambda m: m.to_end)
    if nearest.to_end > limit:
        raise InvalidInput(
            f"geometry: neither end of the road is at a marker it serves: the nearest end is "
            f"{fmt_distance(nearest.to_end)} from marker {nearest.number} (id {nearest.id}); "
            f"one end of a branch road must lie within {fmt_distance(limit)} of a marker it serves",
            field="geometry", marker_id=nearest.id, distance_m=round(nearest.to_end), max_distance_m=limit,
        )
    return markers


def _set_road_markers(conn: Connection, road_id: int, ids: list[int]) -> None:
    conn.execute(text("DELETE FROM road_marker WHERE road_id = :r AND marker_id <> ALL(CAST(:ids AS integer[]))"),
                 {"r": road_id, "ids": ids})
    conn.execute(text("""
        INSERT INTO road_marker (road_id, marker_id)
        SELECT :r, unnest(CAST(:ids AS integer[])) ON CONFLICT DO NOTHING
    """), {"r": road_id, "ids": ids})


def create_road(conn: Connection, body: RoadCreate, actor: str) -> int:
    values = fields(body)
    values["geom"] = parse_geometry(body.geometry, "LineString", body.crs)
    markers = _check_road(conn, values, None)
    first = markers[0]
    for level in ("province", "district", "commune"):  # place names default from the first marker
        if values.get(level) is None:
            values[level] = getattr(first, level)
        elif values[level] != getattr(first, level):
            break  # somewhere else: the marker's finer levels do not apply
    ids = values.pop("marker_ids")
    values["is_generated"] = False
    new_id = insert_row(conn, "branch_road", values)  # status: the column default, 'proposed'
    _set_road_markers(conn, new_id, ids)
    audit(conn, actor, "create", "branch_road", new_id)
    return new_id


def update_road(conn: Connection, road_id: int, body: RoadUpdate, actor: str,
                expected_version: int | None = None) -> None:
    current = lock_row(conn, layers.ROADS, road_id, expected_version)
    current["marker_ids"] = _road_markers(conn, road_id)
    values = changes(body)
    if body.geometry is not None:
        values["geom"] = parse_geometry(body.geometry, "LineString", body.crs)
    _check_road(conn, {**current, **values}, road_id)
    ids = values.pop("marker_ids", None)
    update_row(conn, "branch_road", road_id, values)
    if ids is not None:
        _set_road_markers(conn, road_id, ids)
    audit(conn, actor, "update", "branch_road", road_id, current["_json"])


def delete_road(conn: Connection, road_id: int, actor: str, expected_version: int | None = None) -> None:
    delete_row(conn, layers.ROADS, road_id, actor, ROAD_REFERENCES, expected_version)


# ---------------------------------------------------------------------------- villages

VILLAGE_REFERENCES = (
    Reference("SELECT p.id FROM village_pair p WHERE :id IN (p.vn_village_id, p.foreign_village_id) "
              "ORDER BY p.id", "it is twinned in village pair(s)"),
)


def _village_geom(body: VillageCreate | VillageUpdate, country: str):
    settings = get_settings().geometry
    margin = settings.vn_margin_km if country == "VNM" else settings.foreign_village_margin_km
    return parse_geometry(body.geometry, "Point", body.crs, margin_km=margin)


def _check_village(conn: Connection, v: dict[str, Any], village_id: int | None) -> None:
    require_unique_code(conn, layers.VILLAGES, v["code"], village_id)
    check_country_side(v["geom"], v["country"])


def create_village(conn: Connection, body: VillageCreate, actor: str) -> int:
    values = fields(body)
    values["geom"] = _village_geom(body, body.country)
    values["is_generated"] = False
    _check_village(conn, values, None)
    return insert_audited(conn, "village", values, actor)


def update_village(conn: Connection, village_id: int, body: VillageUpdate, actor: str,
                   expected_version: int | None = None) -> None:
    current = lock_row(conn, layers.VILLAGES, village_id, expected_version)
    values = changes(body)
    if body.geometry is not None:
        values["geom"] = _village_geom(body, values.get("country", current["country"]))
    _check_village(conn, {**current, **values}, village_id)
    update_audited(conn, "village", village_id, values, actor, current)


def delete_village(conn: Connection, village_id: int, actor: str,
                   expected_version: int | None = None) -> None:
    delete_row(conn, layers.VILLAGES, village_id, actor, VILLAGE_REFERENCES, expected_version)
