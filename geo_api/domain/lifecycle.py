"""The branch road lifecycle: which status may follow which, and what each step needs.

    proposed → surveyed → funded → under_construction → completed → inaugurated
    suspended ⇄ any active status (proposed .. completed); cancelled is terminal.

The table and the guards are plain data and pure functions (`check_transition`), testable
without a database. `apply_transition` reads the road, runs the guards, then applies the
change with ONE statement: a conditional UPDATE (`WHERE status = <the status the guards
saw>`) whose RETURNING feeds the INSERT of the road_event row. If another request moved
the road in between, the UPDATE matches no row, nothing is written, and the caller gets a
409 naming the status the road is in now. Two requests can never both win.

Decisions worth knowing:
- Steps are not skipped: each forward status needs the one before it.
- A suspended road resumes only to the status it was suspended from, read from its
  history; resuming re-runs no guard (they were met when the road first got there).
- Suspending and cancelling need a note saying why.
- `inaugurated` is reached only through an inauguration record (POST /api/inaugurations).
- Events are listed in the order they were recorded: each transition starts from the
  status the previous one left, so that is also the order they happened. `occurred_at`
  may be back-dated (a post reports late) but not in the future.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import Connection, text

from geo_api.vocabulary import ACTIVE_ROAD_STATUSES
from geo_api.domain.geometry import fmt_distance, parse_geometry, to_wkb
from geo_api.domain.resources import audit
from geo_api.errors import Conflict, InvalidInput, NotFound, PreconditionFailed
from geo_api.schemas.ledger import fmt_vnd
from geo_api.schemas.lifecycle import ProgressCreate, TransitionCreate
from geo_api.settings import get_settings

ACTIVE = ACTIVE_ROAD_STATUSES
FINAL = ("inaugurated", "cancelled")

# Forward chain: the status each forward status needs the road to be in.
NEEDS = {
    "surveyed": "proposed",
    "funded": "surveyed",
    "under_construction": "funded",
    "completed": "under_construction",
    "inaugurated": "completed",
}

# Where a road may go from each status. From `suspended` only the status it was
# suspended from is allowed (besides cancelled): see `allowed_targets`.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "proposed": ("surveyed", "suspended", "cancelled"),
    "surveyed": ("funded", "suspended", "cancelled"),
    "funded": ("under_construction", "suspended", "cancelled"),
    "under_construction": ("completed", "suspended", "cancelled"),
    "completed": ("inaugurated", "suspended", "cancelled"),
    "suspended": ACTIVE + ("cancelled",),
    "inaugurated": (),
    "cancelled": (),
}

# Evidence members that act on the road, and the only target each belongs to.
EVIDENCE_TARGET = {
    "surveyed_line": "surveyed",
    "as_built_line": "completed",
    "completed_on": "completed",
    "started_on": "under_construction",
}

FUTURE_TOLERANCE = timedelta(minutes=5)  # phone clocks run a little fast
VN_TZ = "Asia/Ho_Chi_Minh"


@dataclass(frozen=True)
class RoadState:
    """What the guards need to know about a road."""

    id: int
    code: str
    status: str
    estimated_cost: int | None
    committed: int = 0
    suspended_from: str | None = None  # from the history, when status is suspended
    before_json: str | None = None  # the row as read, for the audit log
    version: int | None = None

    @property
    def label(self) -> str:
        return f"road {self.id} ({self.code})"


def allowed_targets(road: RoadState) -> tuple[str, ...]:
    if road.status == "suspended" and road.suspended_from:
        return (road.suspended_from, "cancelled")
    return TRANSITIONS[road.status]


def check_transition(road: RoadState, req: TransitionCreate, today: date | None = None) -> None:
    """Raise InvalidInput saying exactly what is missing, or return if the step may be taken."""
    to, here = req.to_status, road.status
    today = today or date.today()

    if to == "inaugurated":
        raise InvalidInput(
            f"a road becomes inaugurated only through an inauguration record: "
            f"POST /api/inaugurations with road_ids [{road.id}] (the road must be completed)",
            to_status=to, see="/api/inaugurations",
        )
    if here in FINAL:
        raise InvalidInput(f"{road.label} is {here}; that status is final", status=here)
    if to == here:
        raise InvalidInput(f"{road.label} is already {here}", status=here)
    if to not in allowed_targets(road):
        if here == "suspended":
            raise InvalidInput(
                f"{road.label} was suspended from {road.suspended_from} and resumes only to "
                f"{road.suspended_from} (or is cancelled), not to {to}",
                status=here, suspended_from=road.suspended_from,
            )
        if to == "suspended":  # only the final statuses cannot be suspended, handled above
            raise InvalidInput(f"{road.label} cannot be suspended from {here}", status=here)
        if to in NEEDS:
            raise InvalidInput(f"{to} needs a road that is {NEEDS[to]}; {road.label} is {here}",
                               status=here, needs=NEEDS[to])
        raise InvalidInput(f"{road.label} is {here}; it goes on to {' or '.join(allowed_targets(road))}, "
                           f"not back to {to}", status=here)

    for member, target in EVIDENCE_TARGET.items():
        if getattr(req.evidence, member) is not None and to != target:
            raise InvalidInput(f"evidence.{member} belongs to →{target}, not →{to}", field=f"evidence.{member}")
    if req.override_reason is not None and to != "funded":
        raise InvalidInput(f"override_reason applies only to →funded, not →{to}", field="override_reason")
    if req.occurred_at is not None and req.occurred_at > datetime.now(timezone.utc) + FUTURE_TOLERANCE:
        raise InvalidInput(f"occurred_at {req.occurred_at.isoformat()} is in the future", field="occurred_at")

    if to in ("suspended", "cancelled"):
        if not req.note:
            raise InvalidInput(f"{to} needs a note saying why", field="note")
        return
    resuming = here == "suspended" and road.suspended_from is not None
    if not resuming:
        _check_guard(road, req, today)


def _check_guard(road: RoadState, req: TransitionCreate, today: date) -> None:
    """The evidence each forward status needs."""
    to, ev = req.to_status, req.evidence
    if to == "surveyed" and ev.surveyed_line is None and not req.note:
        raise InvalidInput(
            "surveyed needs a surveyed line (evidence.surveyed_line, a GeoJSON LineString) "
            "or a note confirming the planned line", field="evidence.surveyed_line",
        )
    if to == "funded" and req.override_reason is None:
        if road.estimated_cost is None:
            raise InvalidInput(
                f"funded needs an estimated cost to compare commitments with; {road.label} has none "
                f"(set it, or give an override_reason)", field="estimated_cost",
            )
        if road.committed < road.estimated_cost:
            raise InvalidInput(
                f"funded needs commitments of {fmt_vnd(road.estimated_cost)} VND; "
                f"{fmt_vnd(road.committed)} VND committed",
                estimated_cost=int(road.estimated_cost), committed=int(road.committed),
                missing=int(road.estimated_cost - road.committed),
                hint="record commitments (POST /api/funding) or give an override_reason",
            )
    if to == "completed":
        missing = [what for what, given in (
            ("a completion date (evidence.completed_on)", ev.completed_on),
            ("an as-built line (evidence.as_built_line, a GeoJSON LineString)", ev.as_built_line),
        ) if given is None]
        if missing:
            raise InvalidInput(f"completed needs {' and '.join(missing)}", field="evidence")
        if ev.completed_on > today:
            raise InvalidInput(f"evidence.completed_on {ev.completed_on} is in the future",
                               field="evidence.completed_on")
    if to == "under_construction" and ev.started_on is not None and ev.started_on > today:
        raise InvalidInput(f"evidence.started_on {ev.started_on} is in the future", field="evidence.started_on")


# ---------------------------------------------------------------------------- database


def road_state(conn: Connection, road_id: int) -> RoadState:
    row = conn.execute(text("""
        SELECT r.id, r.code, r.status::text AS status, r.estimated_cost, to_jsonb(r)::text AS before_json,
               r.version,
               (SELECT COALESCE(sum(f.amount), 0) FROM funding_tx f
                 WHERE f.road_id = r.id AND f.kind = 'commitment') AS committed,
               CASE WHEN r.status = 'suspended' THEN
                   (SELECT e.from_status::text FROM road_event e
                     WHERE e.road_id = r.id AND e.to_status = 'suspended' AND e.from_status <> 'suspended'
                     ORDER BY e.id DESC LIMIT 1) END AS suspended_from
        FROM branch_road r WHERE r.id = :id
    """), {"id": road_id}).mappings().first()
    if row is None:
        raise NotFound(f"branch road {road_id} not found")
    return RoadState(**row)


def _point_wkb(geojson: dict | None, field: str) -> bytes | None:
    return None if geojson is None else to_wkb(parse_geometry(geojson, "Point", field=field))


def _line(conn: Connection, road_id: int, geojson: dict, field: str) -> bytes:
    """A surveyed or as-built line as WKB, held to the rule every road line follows: it comes
    within TRACKER_ROAD_MARKER_MAX_DISTANCE_M of each marker served, and one end that close."""
    wkb = to_wkb(parse_geometry(geojson, "LineString", field=field))
    limit = get_settings().geometry.road_marker_max_distance_m
    rows = conn.execute(text("""
        SELECT m.id, m.number, ST_Distance(m.geom::geography, g.line::geography) AS to_line,
               LEAST(ST_Distance(m.geom::geography, ST_StartPoint(g.line)::geography),
                     ST_Distance(m.geom::geography, ST_EndPoint(g.line)::geography)) AS to_end
        FROM road_marker rm JOIN marker m ON m.id = rm.marker_id
        CROSS JOIN (SELECT ST_GeomFromWKB(:line, 4326) AS line) g
        WHERE rm.road_id = :id ORDER BY m.id
    """), {"id": road_id, "line": wkb}).all()
    for m in rows:
        if m.to_line > limit:
            raise InvalidInput(
                f"{field}: the line does not reach marker {m.number} (id {m.id}) that the road serves: it "
                f"passes {fmt_distance(m.to_line)} from it; it must come within {fmt_distance(limit)}",
                field=field, marker_id=m.id, distance_m=round(m.to_line))
    if rows and min(m.to_end for m in rows) > limit:
        nearest = min(rows, key=lambda m: m.to_end)
        raise InvalidInput(
            f"{field}: the line stops short: its nearest end is {fmt_distance(nearest.to_end)} from "
            f"marker {nearest.number}; one end must lie within {fmt_distance(limit)} of a marker it serves",
            field=field, marker_id=nearest.id, distance_m=round(nearest.to_end))
    return wkb


def _conflict(conn: Connection, road_id: int, expected_version: int | None = None
              ) -> Conflict | NotFound | PreconditionFailed:
    now = conn.execute(text("SELECT status::text, version FROM branch_road WHERE id = :id"),
                       {"id": road_id}).first()
    if now is None:
        return NotFound(f"branch road {road_id} not found")
    if expected_version is not None and now.version != expected_version:
        return _stale(road_id, now.version, expected_version)
    return Conflict(f"the road's status changed meanwhile, now {now.status}", status=now.status)


def _stale(road_id: int, version: int, expected: int) -> PreconditionFailed:
    return PreconditionFailed(
        f"branch road {road_id} has changed: it is at version {version}, not {expected}; "
        "reload it and try again", version=version)


def _check_version(road_id: int, version: int, expected_version: int | None) -> None:
    if expected_version is not None and version != expected_version:
        raise _stale(road_id, version, expected_version)


def apply_transition(conn: Connection, road_id: int, req: TransitionCreate, actor: str,
                     expected_version: int | None = None) -> int:
    """Check and apply one transition; returns the new road_event id.

    With `expected_version` (the client's If-Match) a road at another version is refused
    with 412, also when it moves on between the check and the update.
    """
    road = road_state(conn, road_id)
    _check_version(road_id, road.version, expected_version)
    check_transition(road, req)

    to, ev = req.to_status, req.evidence
    sets = ["status = CAST(:to AS road_status)", "version = version + 1", "updated_at = now()"]
    params: dict = {"id": road_id, "from": road.status, "to": to, "actor": actor, "note": req.note,
                    "version": expected_version,
                    "occurred_at": req.occurred_at,
                    "where": _point_wkb(req.reported_from, "reported_from")}
    evidence = ev.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    # Evidence that acts on the road is applied whenever given (also when resuming).
    if ev.surveyed_line is not None:
        sets.append("geom = ST_GeomFromWKB(:line, 4326)")
        params["line"] = _line(conn, road_id, ev.surveyed_line, "evidence.surveyed_line")
    if req.override_reason is not None:
        evidence.update(override_reason=req.override_reason,
                        estimated_cost=None if road.estimated_cost is None else int(road.estimated_cost),
                        committed=int(road.committed))
    if to == "under_construction":
        sets.append("actual_start = COALESCE(CAST(:started AS date), actual_start, "
                    f"(COALESCE(CAST(:occurred_at AS timestamptz), now()) AT TIME ZONE '{VN_TZ}')::date)")
        params["started"] = ev.started_on
    if ev.as_built_line is not None:
        sets += ["as_built_geom = ST_GeomFromWKB(:as_built, 4326)", "progress_pct = 100"]
        params["as_built"] = _line(conn, road_id, ev.as_built_line, "evidence.as_built_line")
    if ev.completed_on is not None:
        sets.append("completed_on = :completed_on")
        params["completed_on"] = ev.completed_on
    if road.status == "suspended":
        evidence["resumed"] = True
    params["evidence"] = json.dumps(evidence, ensure_ascii=False)

    event_id = conn.execute(text(f"""
        WITH moved AS (
            UPDATE branch_road SET {', '.join(sets)}
            WHERE id = :id AND status = CAST(:from AS road_status)
              AND (CAST(:version AS integer) IS NULL OR version = :version)
            RETURNING id, progress_pct
        )
        INSERT INTO road_event (road_id, from_status, to_status, occurred_at, actor, note,
                                progress_pct, evidence, geom)
        SELECT id, CAST(:from AS road_status), CAST(:to AS road_status),
               COALESCE(CAST(:occurred_at AS timestamptz), now()), :actor, :note, progress_pct,
               CAST(:evidence AS jsonb), ST_GeomFromWKB(CAST(:where AS bytea), 4326)
        FROM moved
        RETURNING id
    """), params).scalar()
    if event_id is None:
        raise _conflict(conn, road_id, expected_version)
    audit(conn, actor, "transition", "branch_road", road_id, road.before_json)
    return event_id


def report_progress(conn: Connection, road_id: int, req: ProgressCreate, actor: str,
                    expected_version: int | None = None) -> int:
    """Record physical progress of a road under construction; returns the road_event id.

    Progress only moves forward, except as an explicit correction with a note (a post
    that over-reported fixes its figure, and the history keeps both reports).
    """
    if req.correction and not req.note:
        raise InvalidInput("a correction needs a note saying what was wrong", field="note")
    if req.occurred_at is not None and req.occurred_at > datetime.now(timezone.utc) + FUTURE_TOLERANCE:
        raise InvalidInput(f"occurred_at {req.occurred_at.isoformat()} is in the future", field="occurred_at")
    road = conn.execute(text("SELECT id, code, status::text AS status, progress_pct, version, "
                             "to_jsonb(r)::text AS json FROM branch_road r WHERE id = :id"),
                        {"id": road_id}).mappings().first()
    if road is None:
        raise NotFound(f"branch road {road_id} not found")
    _check_version(road_id, road["version"], expected_version)
    label = f"road {road_id} ({road['code']})"
    if road["status"] != "under_construction":
        raise InvalidInput(f"progress is reported only while a road is under_construction; "
                           f"{label} is {road['status']}", status=road["status"])
    if req.progress_pct < road["progress_pct"] and not req.correction:
        raise InvalidInput(
            f"progress {req.progress_pct}% is below the last reported {road['progress_pct']}% of {label}; "
            f"progress only moves forward (send correction: true with a note to lower it)",
            progress_pct=road["progress_pct"],
        )
    evidence = dict(req.evidence)
    if req.correction:
        evidence.update(correction=True, previous_pct=road["progress_pct"])
    event_id = conn.execute(text("""
        WITH moved AS (
            UPDATE branch_road SET progress_pct = :pct, version = version + 1, updated_at = now()
            WHERE id = :id AND status = 'under_construction' AND (progress_pct <= :pct OR :correction)
              AND (CAST(:version AS integer) IS NULL OR version = :version)
            RETURNING id
        )
        INSERT INTO road_event (road_id, from_status, to_status, occurred_at, actor, note,
                                progress_pct, evidence, geom)
        SELECT id, 'under_construction', 'under_construction',
               COALESCE(CAST(:occurred_at AS timestamptz), now()), :actor, :note, :pct,
               CAST(:evidence AS jsonb), ST_GeomFromWKB(CAST(:where AS bytea), 4326)
        FROM moved
        RETURNING id
    """), {"id": road_id, "pct": req.progress_pct, "correction": req.correction, "actor": actor,
           "version": expected_version,
           "note": req.note, "occurred_at": req.occurred_at,
           "evidence": json.dumps(evidence, ensure_ascii=False),
           "where": _point_wkb(req.reported_from, "reported_from")}).scalar()
    if event_id is None:
        now = conn.execute(text("SELECT status::text, progress_pct, version FROM branch_road WHERE id = :id"),
                           {"id": road_id}).one()
        _check_version(road_id, now[2], expected_version)
        raise Conflict(f"the road changed meanwhile, now {now[0]} at {now[1]}%", status=now[0],
                       progress_pct=now[1])
    audit(conn, actor, "progress", "branch_road", road_id, road["json"])
    return event_id


def history(conn: Connection, road_id: int) -> str:
    """The road's events in the order they were recorded, as JSON text."""
    body = conn.execute(text("""
        SELECT json_build_object(
            'road_id', r.id, 'code', r.code, 'status', r.status,
            'items', COALESCE((
                SELECT json_agg(json_build_object(
                    'id', e.id, 'from_status', e.from_status, 'to_status', e.to_status,
                    'occurred_at', e.occurred_at, 'recorded_at', e.recorded_at, 'actor', e.actor,
                    'note', e.note, 'progress_pct', e.progress_pct, 'evidence', e.evidence,
                    'reported_from', ST_AsGeoJSON(e.geom, 7)::json) ORDER BY e.id)
                FROM road_event e WHERE e.road_id = r.id), '[]'::json)
        )::text
        FROM branch_road r WHERE r.id = :id
    """), {"id": road_id}).scalar()
    if body is None:
        raise NotFound(f"branch road {road_id} not found")
    return body
