"""Reports per province and per border segment, and the JSON/CSV rendering of any report.

Every report is one SQL statement with flat columns; `as_json` wraps it so PostgreSQL
builds the document, `as_csv` writes the same columns with a header row.

Definitions:
- roads by status: one column per status (roads_proposed .. roads_cancelled) and roads;
- km built: length (as-built line when recorded, else planned) of completed and
  inaugurated roads;
- markers reached: markers served by at least one completed or inaugurated road;
- VND by kind: the ledger totals (pledged, committed, disbursed, spent).
A province's money is that of its roads, plus campaign-wide money of campaigns of that
province. A road belongs to the segment(s) of the markers it serves (else its post's
segment); a segment's money is that of its roads (campaign-wide money has no segment).
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from sqlalchemy import Connection, text

from geo_api.domain.ledger import sums
from geo_api.vocabulary import ROAD_STATUSES

BUILT = "('completed', 'inaugurated')"
BY_STATUS = ", ".join(
    f"count(*) FILTER (WHERE r.status = '{s}') AS roads_{s}" for s in ROAD_STATUSES
)
ROAD_COLUMNS = ", ".join(f"COALESCE(rd.roads_{s}, 0) AS roads_{s}" for s in ROAD_STATUSES)
MONEY_COLUMNS = ", ".join(f"COALESCE(m.{c}, 0) AS {c}" for c in ("pledged", "committed", "disbursed", "spent"))

PROVINCES_SQL = f"""
    WITH rd AS (
        SELECT r.province, count(*) AS roads, {BY_STATUS},
               round(COALESCE(sum(r.length_m) FILTER (WHERE r.status IN {BUILT}), 0) / 1000, 3) AS km_built
        FROM branch_road r GROUP BY r.province
    ), mk AS (
        SELECT mr.province, count(*) AS markers,
               count(*) FILTER (WHERE EXISTS (
                   SELECT 1 FROM road_marker rm JOIN branch_road r ON r.id = rm.road_id
                   WHERE rm.marker_id = mr.id AND r.status IN {BUILT})) AS markers_reached
        FROM marker mr GROUP BY mr.province
    ), m AS (
        SELECT COALESCE(r.province, c.province) AS province, {sums()}
        FROM funding_tx f
        LEFT JOIN branch_road r ON r.id = f.road_id
        LEFT JOIN campaign c ON c.id = f.campaign_id
        GROUP BY 1
    )
    SELECT province, COALESCE(rd.roads, 0) AS roads, {ROAD_COLUMNS},
           COALESCE(rd.km_built, 0) AS km_built,
           COALESCE(mk.markers, 0) AS markers, COALESCE(mk.markers_reached, 0) AS markers_reached,
           {MONEY_COLUMNS}
    FROM rd FULL JOIN mk USING (province) FULL JOIN m USING (province)
    ORDER BY province NULLS LAST
"""

SEGMENTS_SQL = f"""
    WITH road_segment AS (
        SELECT DISTINCT rm.road_id, mr.segment_id
        FROM road_marker rm JOIN marker mr ON mr.id = rm.marker_id
        UNION
        SELECT r.id, p.segment_id FROM branch_road r JOIN border_post p ON p.id = r.post_id
        WHERE p.segment_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM road_marker rm WHERE rm.road_id = r.id)
    ), rd AS (
        SELECT rs.segment_id, count(*) AS roads, {BY_STATUS},
               round(COALESCE(sum(r.length_m) FILTER (WHERE r.status IN {BUILT}), 0) / 1000, 3) AS km_built
        FROM road_segment rs JOIN branch_road r ON r.id = rs.road_id GROUP BY rs.segment_id
    ), mk AS (
        SELECT mr.segment_id, count(*) AS markers,
               count(*) FILTER (WHERE EXISTS (
                   SELECT 1 FROM road_marker rm JOIN branch_road r ON r.id = rm.road_id
                   WHERE rm.marker_id = mr.id AND r.status IN {BUILT})) AS markers_reached
        FROM marker mr GROUP BY mr.segment_id
    ), m AS (
        SELECT rs.segment_id, {sums()}
        FROM road_segment rs JOIN funding_tx f ON f.road_id = rs.road_id
        GROUP BY rs.segment_id
    )
    SELECT s.code AS segment, s.name_en, s.length_km, COALESCE(rd.roads, 0) AS roads, {ROAD_COLUMNS},
           COALESCE(rd.km_built, 0) AS km_built,
           COALESCE(mk.markers, 0) AS markers, COALESCE(mk.markers_reached, 0) AS markers_reached,
           {MONEY_COLUMNS}
    FROM border_segment s
    LEFT JOIN rd ON rd.segment_id = s.id
    LEFT JOIN mk ON mk.segment_id = s.id
    LEFT JOIN m ON m.segment_id = s.id
    ORDER BY s.code
"""


def as_json(conn: Connection, sql: str, params: dict[str, Any] | None = None,
            extra: dict[str, Any] | None = None) -> str:
    """The report as JSON text {"items": [...], "numberReturned": n, **extra}, built in SQL
    (json, not jsonb, so every item keeps the column order of the CSV)."""
    extra = extra or {}
    more = "".join(f", '{key}', CAST(:_extra_{i} AS json)" for i, key in enumerate(extra))
    values = {f"_extra_{i}": json.dumps(v, default=str) for i, v in enumerate(extra.values())}
    return conn.execute(text(f"""
        SELECT json_build_object('items', COALESCE(json_agg(q), '[]'::json), 'numberReturned', count(*){more})::text
        FROM ({sql}) q
    """), {**(params or {}), **values}).scalar_one()


def as_csv(conn: Connection, sql: str, params: dict[str, Any] | None = None) -> str:
    """The same columns as CSV text with a header row."""
    result = conn.execute(text(sql), params or {})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(result.keys())
    writer.writerows(result)
    return out.getvalue()
