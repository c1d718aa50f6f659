"""Inaugurations: one ceremony moves one or several completed roads to inaugurated.

All or nothing: the roads are locked, every one is checked (exists, completed, completed
on or before the ceremony), and only if all pass are the inauguration, its links and one
road_event per road written — in the caller's transaction. The 422 names every road
that is not ready and why, so a planner can fix them all at once.
"""

from __future__ import annotations

import json

from sqlalchemy import Connection, text

from geo_api.domain.geometry import parse_geometry, to_wkb
from geo_api.domain.lifecycle import VN_TZ
from geo_api.domain.resources import audit
from geo_api.errors import Conflict, InvalidInput
from geo_api.schemas.lifecycle import InaugurationCreate


def not_ready(conn: Connection, req: InaugurationCreate) -> list[str]:
    """Why each listed road cannot be inaugurated now (empty: all ready). Locks the roads."""
    conn.execute(text("SELECT id FROM branch_road WHERE id = ANY(CAST(:ids AS integer[])) ORDER BY id FOR UPDATE"),
                 {"ids": req.road_ids})
    rows = conn.execute(text("""
        SELECT ids.id, r.code, r.status::text AS status, r.completed_on, i.id AS inauguration_id,
               i.held_on AS inaugurated_on
        FROM unnest(CAST(:ids AS integer[])) WITH ORDINALITY AS ids(id, n)
        LEFT JOIN branch_road r ON r.id = ids.id
        LEFT JOIN inauguration_road ir ON ir.road_id = r.id
        LEFT JOIN inauguration i ON i.id = ir.inauguration_id
        ORDER BY ids.n
    """), {"ids": req.road_ids}).mappings().all()
    problems = []
    for r in rows:
        label = f"road {r['id']} ({r['code']})"
        if r["code"] is None:
            problems.append(f"road {r['id']} does not exist")
        elif r["status"] == "inaugurated" or r["inauguration_id"] is not None:
            when = (f" (inauguration {r['inauguration_id']} on {r['inaugurated_on']})"
                    if r["inauguration_id"] is not None else "")
            problems.append(f"{label} is already inaugurated{when}")
        elif r["status"] != "completed":
            problems.append(f"{label} is {r['status']}, not completed")
        elif r["completed_on"] > req.held_on:
            problems.append(f"{label} was completed on {r['completed_on']}, after the ceremony "
                            f"on {req.held_on}")
    return problems


def inaugurate(conn: Connection, req: InaugurationCreate, actor: str) -> int:
    """Record the ceremony and move its roads to inaugurated; returns the inauguration id."""
    if conn.execute(text("SELECT CAST(:d AS date) > current_date"), {"d": req.held_on}).scalar():
        raise InvalidInput(f"held_on {req.held_on} is in the future; record the ceremony once it is held",
                           field="held_on")
    point = None if req.geometry is None else to_wkb(parse_geometry(req.geometry, "Point"))
    problems = not_ready(conn, req)
    if problems:
        raise InvalidInput("cannot inaugurate: " + "; ".join(problems), roads=problems)
    missing = conn.execute(text("""
        SELECT array_agg(d ORDER BY d) FROM unnest(CAST(:ids AS integer[])) d
        WHERE NOT EXISTS (SELECT 1 FROM donor WHERE id = d)
    """), {"ids": req.donor_ids}).scalar()
    if missing:
        raise InvalidInput(f"donor(s) {', '.join(map(str, missing))} do not exist", field="donor_ids")

    params = {**req.model_dump(exclude={"geometry", "road_ids", "donor_ids"}), "geom": point,
              "roads": req.road_ids, "donors": req.donor_ids, "actor": actor}
    inauguration_id = conn.execute(text("""
        INSERT INTO inauguration (title, held_on, place, commune, district, province, geom, officials, notes)
        VALUES (:title, :held_on, :place, :commune, :district, :province,
                ST_GeomFromWKB(CAST(:geom AS bytea), 4326), :officials, :notes)
        RETURNING id
    """), params).scalar_one()
    params["inauguration_id"] = inauguration_id
    params["evidence"] = json.dumps({"inauguration_id": inauguration_id, "title": req.title,
                                     "place": req.place}, ensure_ascii=False)
    conn.execute(text("""
        INSERT INTO inauguration_road (inauguration_id, road_id)
        SELECT :inauguration_id, unnest(CAST(:roads AS integer[]))
    """), params)
    conn.execute(text("""
        INSERT INTO inauguration_donor (inauguration_id, donor_id)
        SELECT :inauguration_id, unnest(CAST(:donors AS integer[]))
    """), params)
    moved = conn.execute(text(f"""
        WITH moved AS (
            UPDATE branch_road SET status = 'inaugurated', version = version + 1, updated_at = now()
            WHERE id = ANY(CAST(:roads AS integer[])) AND status = 'completed'
            RETURNING id, progress_pct
        )
        INSERT INTO road_event (road_id, from_status, to_status, occurred_at, actor, note,
                                progress_pct, evidence, geom)
        SELECT id, 'completed', 'inaugurated', CAST(:held_on AS date)::timestamp AT TIME ZONE '{VN_TZ}',
               :actor, :title, progress_pct, CAST(:evidence AS jsonb), ST_GeomFromWKB(CAST(:geom AS bytea), 4326)
        FROM moved
        RETURNING road_id
    """), params).all()
    if len(moved) != len(req.road_ids):  # cannot happen while the roads are locked; never half-apply
        raise Conflict("a road's status changed meanwhile; nothing was inaugurated")
    audit(conn, actor, "create", "inauguration", inauguration_id)
    return inauguration_id
