"""Twinned village pairs across the border and their quarterly meetings.

Rules:
- a pair joins a Vietnamese village (VNM) and a village across the border (CHN, LAO, KHM)
  that face each other: at most TRACKER_PAIR_MAX_DISTANCE_KM apart (30 km by default);
- a pair with meetings is not deleted: the meetings are its history (409);
- a meeting is *for* a quarter: the quarter of its date, or the one before when it is held
  just after the quarter ended (Duy Tân–Bản Phường met for Q2-2023 on 31/07/2023);
  one meeting per pair and quarter; never in the future, nor before the twinning;
- a pair is overdue when it has no meeting for the last completed quarter (see
  `layers.pair_overdue_sql`).

Writes take the actor and leave an audit_log row, like the other resources.
"""

from __future__ import annotations

import datetime as dt


from sqlalchemy import Connection, text

from geo_api import layers
from geo_api.domain import attachments
from geo_api.domain.resources import audit, lock_row, require_ref
from geo_api.errors import Conflict, InvalidInput
from geo_api.schemas.villages import MeetingCreate, MeetingUpdate, VillagePairCreate, VillagePairUpdate
from geo_api.settings import get_settings

FOREIGN_COUNTRIES = ("CHN", "LAO", "KHM")




def _today(conn: Connection) -> dt.date:
    return conn.execute(text("SELECT current_date")).scalar_one()


def _label(year: int, quarter: int) -> str:
    return f"{year}-Q{quarter}"


def meeting_quarter(held_on: dt.date, year: int | None, quarter: int | None) -> tuple[int, int]:
    """The (year, quarter) a meeting is for: given, it must be held_on's quarter or the previous."""
    own = (held_on.year, (held_on.month - 1) // 3 + 1)
    previous = (own[0], own[1] - 1) if own[1] > 1 else (own[0] - 1, 4)
    if year is None or quarter is None:
        return own
    if (year, quarter) in (own, previous):
        return year, quarter
    raise InvalidInput(
        f"a meeting held on {held_on.isoformat()} can be for {_label(*own)} or, held just after "
        f"that quarter ended, {_label(*previous)}; not {_label(year, quarter)}"
    )


# --- pairs ----------------------------------------------------------------------------------

def _pair_name(conn: Connection, pair_id: int) -> str:
    return conn.execute(text(
        "SELECT vn.name || ' – ' || fv.name FROM village_pair t JOIN village vn ON vn.id = t.vn_village_id "
        "JOIN village fv ON fv.id = t.foreign_village_id WHERE t.id = :id"
    ), {"id": pair_id}).scalar_one()


def _check_not_future(conn: Connection, name: str, value: dt.date | None) -> None:
    today = _today(conn)
    if value is not None and value > today:
        raise InvalidInput(f"{name} {value.isoformat()} is in the future (today is {today.isoformat()})",
                           field=name)


def create_pair(conn: Connection, data: VillagePairCreate, actor: str, *,
                max_distance_km: float | None = None) -> int:
    """Insert a pair after checking countries, distance, post and date; returns its id."""
    if max_distance_km is None:
        max_distance_km = get_settings().villages.pair_max_distance_km
    found = conn.execute(text("""
        SELECT vn.id AS vn_id, vn.name AS vn_name, vn.country AS vn_country,
               fv.id AS fv_id, fv.name AS fv_name, fv.country AS fv_country,
               ST_Distance(vn.geom::geography, fv.geom::geography) / 1000 AS km
        FROM (SELECT 1) one
        LEFT JOIN village vn ON vn.id = :vn LEFT JOIN village fv ON fv.id = :fv
    """), {"vn": data.vn_village_id, "fv": data.foreign_village_id}).one()
    require_ref(conn, "village", data.vn_village_id, "vn_village_id", "village")
    require_ref(conn, "village", data.foreign_village_id, "foreign_village_id", "village")
    if found.vn_country != "VNM":
        swapped = " (are the two villages swapped?)" if found.fv_country == "VNM" else ""
        raise InvalidInput(f"vn_village_id: must be a Vietnamese village; {found.vn_name} is in "
                           f"{found.vn_country}{swapped}", field="vn_village_id")
    if found.fv_country not in FOREIGN_COUNTRIES:
        raise InvalidInput(f"foreign_village_id: must be a village in {', '.join(FOREIGN_COUNTRIES)}; "
                           f"{found.fv_name} is in {found.fv_country}", field="foreign_village_id")
    if found.km > max_distance_km:
        raise InvalidInput(
            f"{found.vn_name} and {found.fv_name} are {found.km:.1f} km apart; twinned villages face "
            f"each other across the border (at most {max_distance_km:g} km)",
            distance_km=round(float(found.km), 1), max_distance_km=max_distance_km,
        )
    require_ref(conn, "border_post", data.post_id, "post_id", "post")
    _check_not_future(conn, "twinned_on", data.twinned_on)
    existing = conn.execute(text(
        "SELECT id FROM village_pair WHERE vn_village_id = :vn AND foreign_village_id = :fv"
    ), {"vn": data.vn_village_id, "fv": data.foreign_village_id}).scalar_one_or_none()
    if existing is not None:
        raise Conflict(f"{found.vn_name} and {found.fv_name} are already twinned (village pair "
                       f"{existing})", existing_id=existing)
    pair_id = conn.execute(text("""
        INSERT INTO village_pair (vn_village_id, foreign_village_id, post_id, twinned_on, notes)
        VALUES (:vn_village_id, :foreign_village_id, :post_id, :twinned_on, :notes) RETURNING id
    """), data.model_dump()).scalar_one()
    audit(conn, actor, "create", "village_pair", pair_id)
    return pair_id


def update_pair(conn: Connection, pair_id: int, data: VillagePairUpdate, actor: str,
                expected_version: int | None = None) -> None:
    current = lock_row(conn, layers.VILLAGE_PAIRS, pair_id, expected_version)
    changes = data.model_dump(exclude_unset=True)
    if not changes:
        return
    if "post_id" in changes:
        require_ref(conn, "border_post", changes["post_id"], "post_id", "post")
    if changes.get("twinned_on") is not None:
        _check_not_future(conn, "twinned_on", changes["twinned_on"])
        first = conn.execute(text("SELECT min(held_on) FROM pair_meeting WHERE pair_id = :id"),
                             {"id": pair_id}).scalar_one()
        if first is not None and changes["twinned_on"] > first:
            raise InvalidInput(f"twinned_on {changes['twinned_on'].isoformat()} is after the pair's "
                               f"first meeting on {first.isoformat()}", field="twinned_on")
    sets = "".join(f"{name} = :{name}, " for name in changes)  # names from the schema's fields
    conn.execute(text(f"UPDATE village_pair SET {sets}version = version + 1, updated_at = now() "
                      "WHERE id = :id"), {**changes, "id": pair_id})
    audit(conn, actor, "update", "village_pair", pair_id, current["_json"])


def delete_pair(conn: Connection, pair_id: int, actor: str, expected_version: int | None = None) -> None:
    current = lock_row(conn, layers.VILLAGE_PAIRS, pair_id, expected_version)
    meetings = conn.execute(text("SELECT count(*) FROM pair_meeting WHERE pair_id = :id"),
                            {"id": pair_id}).scalar_one()
    if meetings:
        raise Conflict(f"village pair {pair_id} ({_pair_name(conn, pair_id)}) has {meetings} "
                       "meeting(s); a pair with meeting history is kept", meetings=meetings)
    conn.execute(text("DELETE FROM village_pair WHERE id = :id"), {"id": pair_id})
    audit(conn, actor, "delete", "village_pair", pair_id, current["_json"])


# --- meetings -------------------------------------------------------------------------------

def _check_meeting(conn: Connection, pair: dict, held_on: dt.date, year: int, quarter: int,
                   meeting_id: int | None = None) -> None:
    """Date rules and one meeting per pair and quarter (meeting_id: the one being edited)."""
    _check_not_future(conn, "held_on", held_on)
    if pair["twinned_on"] is not None and held_on < pair["twinned_on"]:
        raise InvalidInput(f"held_on {held_on.isoformat()} is before the pair was twinned "
                           f"({pair['twinned_on'].isoformat()})", field="held_on")
    other = conn.execute(text("""
        SELECT id, held_on FROM pair_meeting
        WHERE pair_id = :pair AND year = :year AND quarter = :quarter AND id <> COALESCE(:me, 0)
    """), {"pair": pair["id"], "year": year, "quarter": quarter, "me": meeting_id}).first()
    if other is not None:
        raise Conflict(
            f"village pair {pair['id']} already has its {_label(year, quarter)} meeting (meeting "
            f"{other.id}, held on {other.held_on.isoformat()}); one meeting per quarter",
            existing_id=other.id,
        )


def create_meeting(conn: Connection, pair_id: int, data: MeetingCreate, actor: str) -> int:
    pair = lock_row(conn, layers.VILLAGE_PAIRS, pair_id)  # serialises meetings of one pair
    year, quarter = meeting_quarter(data.held_on, data.year, data.quarter)
    _check_meeting(conn, pair, data.held_on, year, quarter)
    meeting_id = conn.execute(text("""
        INSERT INTO pair_meeting (pair_id, held_on, year, quarter, place, attendance, topics,
                                  agreements, notes)
        VALUES (:pair, :held_on, :year, :quarter, :place, :attendance, :topics, :agreements, :notes)
        RETURNING id
    """), {**data.model_dump(), "pair": pair_id, "year": year, "quarter": quarter}).scalar_one()
    audit(conn, actor, "create", "pair_meeting", meeting_id)
    return meeting_id


def update_meeting(conn: Connection, meeting_id: int, data: MeetingUpdate, actor: str,
                   expected_version: int | None = None) -> None:
    current = lock_row(conn, layers.MEETINGS, meeting_id, expected_version)
    changes = data.model_dump(exclude_unset=True)
    held_on = changes.get("held_on", current["held_on"])
    if "year" in changes:
        year, quarter = meeting_quarter(held_on, changes["year"], changes["quarter"])
    else:
        try:
            year, quarter = meeting_quarter(held_on, current["year"], current["quarter"])
        except InvalidInput as exc:
            raise InvalidInput(f"the meeting is for {_label(current['year'], current['quarter'])}: "
                               f"{exc.message}; give year and quarter too", field="held_on") from None
    pair = lock_row(conn, layers.VILLAGE_PAIRS, current["pair_id"])
    _check_meeting(conn, pair, held_on, year, quarter, meeting_id)
    changes.update(year=year, quarter=quarter)
    sets = ", ".join(f"{name} = :{name}" for name in changes)  # names from the schema's fields
    conn.execute(text(f"UPDATE pair_meeting SET {sets}, version = version + 1, updated_at = now() "
                      "WHERE id = :id"), {**changes, "id": meeting_id})
    audit(conn, actor, "update", "pair_meeting", meeting_id, current["_json"])


def delete_meeting(conn: Connection, meeting_id: int, actor: str,
                   expected_version: int | None = None) -> None:
    current = lock_row(conn, layers.MEETINGS, meeting_id, expected_version)
    n = attachments.count_for_owner(conn, "meeting", meeting_id)
    if n:
        raise Conflict(f"meeting {meeting_id} has {n} attachment(s); delete them first "
                       "(DELETE /api/attachments/{id})", attachments=n)
    conn.execute(text("DELETE FROM pair_meeting WHERE id = :id"), {"id": meeting_id})
    audit(conn, actor, "delete", "pair_meeting", meeting_id, current["_json"])


# --- overdue ----------------------------------------------------------------------------------

def overdue_report(conn: Connection, as_of: dt.date | None = None) -> str:
    """Pairs with no meeting for the last quarter completed before `as_of` (default: today)."""
    ref = "COALESCE(CAST(:as_of AS date), current_date)"
    last_q = layers.last_completed_quarter_sql(ref)
    sql = f"""
        WITH p AS (
            SELECT t.id, json_build_object(
                'id', t.id, 'vn_village', vn.name, 'vn_province', vn.admin1,
                'foreign_village', fv.name, 'foreign_country', fv.country,
                'post_id', t.post_id, 'post_name', bp.name, 'twinned_on', t.twinned_on,
                'last_meeting_on', {layers.VILLAGE_PAIRS.sql('last_meeting_on')},
                'last_meeting_quarter', {layers.VILLAGE_PAIRS.sql('last_meeting_quarter')}) AS j
            FROM village_pair t {layers.VILLAGE_PAIRS.joins}
            WHERE {layers.pair_overdue_sql(ref)}
        )
        SELECT json_build_object(
            'as_of', {ref},
            'quarter', extract(year FROM {last_q}) || '-Q' || extract(quarter FROM {last_q}),
            'count', (SELECT count(*) FROM p),
            'items', (SELECT COALESCE(json_agg(p.j ORDER BY p.id), '[]') FROM p))::text
    """
    return conn.execute(text(sql), {"as_of": as_of}).scalar_one()
