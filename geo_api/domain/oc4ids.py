"""The branch roads as an OC4IDS 0.9 project package (Open Contracting for Infrastructure).

One project per branch road, built in one SQL statement:
- status: proposed → identification, surveyed/funded → preparation, under_construction →
  implementation, completed/inaugurated → completion, cancelled → cancelled; a suspended
  road keeps the phase it was suspended in (from its history) and says so in its
  description, since OC4IDS has no "suspended";
- budget: the estimated cost; `budget.finance`: one grant per donor, valued at its
  commitments (or, before any commitment, its pledges) from the funding ledger;
- parties: the post (publicAuthority, payee of disbursements), the donors (funder,
  payer), the contractor (supplier);
- transactions: disbursements (donor → post) and expenditures (post → contractor);
- locations: the road's line (as built, else planned) and the markers it serves, as GeoJSON;
- milestones: surveyed, funded, commencement, completion (met, or scheduled for the
  planned end) and, once inaugurated, a met `commissioning` milestone on the ceremony day;
- completion: end date, final value (actual cost, else the expenditures) and scope.

Dates are local dates (Viet Nam, UTC+7) written as date-times at midnight. Money is VND.
Project ids carry the prefix `ID_PREFIX`, a placeholder until the publisher registers an
OC4IDS prefix. Validated in the tests against `data/oc4ids-0.9/`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, text

from geo_api import layers
from geo_api.errors import InvalidInput, NotFound
from geo_api.policy import Viewer

ID_PREFIX = "oc4ids-vnbrt-"
VERSION = "0.9"
PUBLISHER = "Border roads tracker (đường nhánh kiểm tra cột mốc quốc giới)"

STATUS_SQL = """CASE s WHEN 'proposed' THEN 'identification'
    WHEN 'surveyed' THEN 'preparation' WHEN 'funded' THEN 'preparation'
    WHEN 'under_construction' THEN 'implementation'
    WHEN 'completed' THEN 'completion' WHEN 'inaugurated' THEN 'completion'
    WHEN 'cancelled' THEN 'cancelled' END"""


def _dt(expr: str) -> str:
    """SQL: a date as an RFC 3339 date-time at local midnight (NULL stays NULL)."""
    return f"(to_char({expr}, 'YYYY-MM-DD') || 'T00:00:00+07:00')"


def _vnd(expr: str) -> str:
    return f"CASE WHEN {expr} IS NOT NULL THEN json_build_object('amount', {expr}, 'currency', 'VND') END"


def _first_event(status: str) -> str:
    return f"(SELECT min(e.occurred_at)::date FROM road_event e WHERE e.road_id = t.id AND e.to_status = '{status}')"


PROJECT_SQL = f"""
SELECT json_strip_nulls(json_build_object(
  'id', CAST(:prefix AS text) || t.code,
  'updated', to_char(t.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
  'language', 'vi',
  'identifiers', json_build_array(json_build_object('id', t.code, 'scheme', 'border-roads-tracker')),
  'title', t.name,
  'description', concat_ws(' ', 'Đường nhánh bê tông lên mốc ' || mk.numbers || ',',
                           'dài ' || t.length_m || ' m,', 'do ' || bp.name || ' đề nghị và sử dụng.',
                           CASE WHEN t.status = 'suspended' THEN 'Đang tạm dừng (suspended).' END),
  'status', (SELECT {STATUS_SQL} FROM (SELECT CASE WHEN t.status = 'suspended' THEN COALESCE(
      (SELECT e.from_status FROM road_event e WHERE e.road_id = t.id AND e.to_status = 'suspended'
       ORDER BY e.occurred_at DESC, e.id DESC LIMIT 1), 'under_construction') ELSE t.status END::text AS s) x),
  'type', 'construction',
  'sector', json_build_array('transport', 'transport.road'),
  'purpose', 'Đường nhánh kiểm tra cột mốc quốc giới ' || mk.numbers
             || ' (branch road for border guards to inspect national boundary markers)',
  'publicAuthority', json_build_object('id', 'post-' || bp.code, 'name', bp.name),
  'parties', (SELECT json_agg(p.doc ORDER BY p.ord, p.pid) FROM (
      SELECT 0 AS ord, 'post-' || bp.code AS pid, json_build_object(
          'id', 'post-' || bp.code, 'name', bp.name,
          'roles', to_json(array_remove(ARRAY['publicAuthority',
              CASE WHEN money.disbursed > 0 THEN 'payee' END,
              CASE WHEN money.spent > 0 AND t.contractor IS NOT NULL THEN 'payer' END], NULL))) AS doc
      UNION ALL
      SELECT 1, 'donor-' || d.code, json_build_object(
          'id', 'donor-' || d.code, 'name', d.name,
          'roles', CASE WHEN bool_or(f.kind = 'disbursement') THEN json_build_array('funder', 'payer')
                        ELSE json_build_array('funder') END)
      FROM funding_tx f JOIN donor d ON d.id = f.donor_id WHERE f.road_id = t.id GROUP BY d.id, d.code, d.name
      UNION ALL
      SELECT 2, 'contractor', json_build_object('id', 'contractor', 'name', t.contractor,
          'roles', CASE WHEN money.spent > 0 THEN json_build_array('supplier', 'payee')
                        ELSE json_build_array('supplier') END)
      WHERE t.contractor IS NOT NULL) p),
  'locations', (SELECT json_agg(l.doc ORDER BY l.ord, l.lid) FROM (
      SELECT 0 AS ord, '' AS lid, json_build_object(
          'id', 'road', 'description', concat_ws(', ', t.commune, t.district, t.province),
          'geometry', ST_AsGeoJSON({{road_geom}}, 7)::json) AS doc
      WHERE {{road_geom}} IS NOT NULL
      UNION ALL
      SELECT 1, m.number, json_build_object('id', 'marker-' || m.number,
          'description', 'Cột mốc ' || m.number || ' (' || s.code || ')',
          'geometry', ST_AsGeoJSON({{marker_geom}}, 7)::json)
      FROM road_marker rm JOIN marker m ON m.id = rm.marker_id JOIN border_segment s ON s.id = m.segment_id
      WHERE rm.road_id = t.id) l),
  'budget', CASE WHEN t.estimated_cost IS NOT NULL OR money.pledged + money.committed > 0 THEN json_build_object(
      'description', 'Dự toán và nguồn vận động ủng hộ (estimate; donations recorded in the funding ledger)',
      'amount', {_vnd('t.estimated_cost')},
      'finance', (SELECT json_agg(json_build_object(
              'id', 'finance-' || d.code,
              'title', CASE WHEN fin.committed > 0 THEN 'Cam kết ủng hộ của ' ELSE 'Đăng ký ủng hộ của ' END || d.name,
              'description', CASE WHEN fin.committed > 0 THEN 'commitment' ELSE 'pledge (not yet committed)' END,
              'value', json_build_object('amount', CASE WHEN fin.committed > 0 THEN fin.committed ELSE fin.pledged END,
                                         'currency', 'VND'),
              'financingParty', json_build_object('id', 'donor-' || d.code, 'name', d.name),
              'financingPartyType', CASE WHEN d.kind = 'company' THEN 'commercial' ELSE 'other' END,
              'type', 'grant') ORDER BY d.code)
          FROM (SELECT f.donor_id,
                       sum(f.amount) FILTER (WHERE f.kind = 'commitment') AS committed,
                       sum(f.amount) FILTER (WHERE f.kind = 'pledge') AS pledged
                FROM funding_tx f WHERE f.road_id = t.id AND f.kind IN ('pledge', 'commitment')
                GROUP BY f.donor_id) fin JOIN donor d ON d.id = fin.donor_id)) END,
  'period', CASE WHEN t.planned_start IS NOT NULL OR t.planned_end IS NOT NULL THEN json_build_object(
      'startDate', {_dt('t.planned_start')}, 'endDate', {_dt('t.planned_end')}) END,
  'implementationPeriod', CASE WHEN t.actual_start IS NOT NULL THEN json_build_object(
      'startDate', {_dt('t.actual_start')}, 'endDate', {_dt('t.completed_on')}) END,
  'milestones', (SELECT json_agg(ms.doc ORDER BY ms.ord) FROM (
      SELECT 1 AS ord, json_build_object('id', 'surveyed', 'title', 'Khảo sát tuyến (surveyed)',
          'type', 'preProcurement', 'status', 'met', 'dateMet', {_dt(_first_event('surveyed'))}) AS doc
      WHERE {_first_event('surveyed')} IS NOT NULL
      UNION ALL
      SELECT 2, json_build_object('id', 'funded', 'title', 'Đủ kinh phí (funded)', 'type', 'financing',
          'code', 'financialClose', 'status', 'met', 'dateMet', {_dt(_first_event('funded'))})
      WHERE {_first_event('funded')} IS NOT NULL
      UNION ALL
      SELECT 3, json_build_object('id', 'commencement', 'title', 'Khởi công (construction started)',
          'type', 'delivery', 'code', 'commencement', 'status', 'met',
          'dateMet', {_dt(f"COALESCE(t.actual_start, {_first_event('under_construction')})")})
      WHERE COALESCE(t.actual_start, {_first_event('under_construction')}) IS NOT NULL
      UNION ALL
      SELECT 4, json_build_object('id', 'completion', 'title', 'Hoàn thành (completed)', 'type', 'delivery',
          'code', 'completion',
          'status', CASE WHEN t.completed_on IS NOT NULL THEN 'met' ELSE 'scheduled' END,
          'dateMet', {_dt('t.completed_on')},
          'dueDate', CASE WHEN t.completed_on IS NULL THEN {_dt('t.planned_end')} END)
      WHERE t.completed_on IS NOT NULL OR (t.planned_end IS NOT NULL AND t.status <> 'cancelled')
      UNION ALL
      SELECT 5, json_build_object('id', 'commissioning', 'title', i.title, 'type', 'delivery',
          'code', 'commissioning', 'status', 'met', 'dateMet', {_dt('i.held_on')},
          'description', 'Lễ khánh thành (inauguration) tại ' || i.place)
      FROM inauguration_road ir JOIN inauguration i ON i.id = ir.inauguration_id WHERE ir.road_id = t.id
      ) ms),
  'transactions', (SELECT json_agg(x.doc ORDER BY x.id) FROM (
      SELECT f.id, json_build_object('id', f.id::text, 'date', {_dt('f.tx_date')},
          'value', json_build_object('amount', f.amount, 'currency', 'VND'),
          'payer', json_build_object('id', 'donor-' || d.code, 'name', d.name),
          'payee', json_build_object('id', 'post-' || bp.code, 'name', bp.name)) AS doc
      FROM funding_tx f JOIN donor d ON d.id = f.donor_id WHERE f.road_id = t.id AND f.kind = 'disbursement'
      UNION ALL
      SELECT f.id, json_build_object('id', f.id::text, 'date', {_dt('f.tx_date')},
          'value', json_build_object('amount', f.amount, 'currency', 'VND'),
          'payer', json_build_object('id', 'post-' || bp.code, 'name', bp.name),
          'payee', CASE WHEN t.contractor IS NOT NULL THEN json_build_object('id', 'contractor', 'name', t.contractor) END)
      FROM funding_tx f WHERE f.road_id = t.id AND f.kind = 'expenditure') x),
  'completion', CASE WHEN t.completed_on IS NOT NULL THEN json_build_object(
      'endDate', {_dt('t.completed_on')},
      'finalValue', {_vnd('COALESCE(t.actual_cost, NULLIF(money.spent, 0))')},
      'finalScope', 'Đường bê tông dài ' || t.length_m || ' m'
                    || COALESCE(', rộng ' || t.width_m || ' m', '') || ' lên mốc ' || mk.numbers) END
)) AS project, t.code,
   greatest(t.updated_at, (SELECT max(f.created_at) FROM funding_tx f WHERE f.road_id = t.id),
            (SELECT max(e.recorded_at) FROM road_event e WHERE e.road_id = t.id)) AS changed
FROM branch_road t
JOIN ({{selected}}) sel ON sel._id = t.id
JOIN border_post bp ON bp.id = t.post_id
CROSS JOIN LATERAL (SELECT string_agg(m.number, ', ' ORDER BY m.number) AS numbers
    FROM road_marker rm JOIN marker m ON m.id = rm.marker_id WHERE rm.road_id = t.id) mk
CROSS JOIN LATERAL (SELECT
    COALESCE(sum(f.amount) FILTER (WHERE f.kind = 'pledge'), 0) AS pledged,
    COALESCE(sum(f.amount) FILTER (WHERE f.kind = 'commitment'), 0) AS committed,
    COALESCE(sum(f.amount) FILTER (WHERE f.kind = 'disbursement'), 0) AS disbursed,
    COALESCE(sum(f.amount) FILTER (WHERE f.kind = 'expenditure'), 0) AS spent
    FROM funding_tx f WHERE f.road_id = t.id) money
"""

PACKAGE_SQL = """
SELECT json_build_object(
    'uri', CAST(:uri AS text),
    'version', CAST(:version AS text),
    'publishedDate', to_char(COALESCE(max(changed), now()) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
    'publisher', json_build_object('name', CAST(:publisher AS text)),
    'projects', json_agg(project ORDER BY code)
)::text, count(*) FROM ({projects}) p
"""


def _project_sql(selected: str, viewer: Viewer) -> str:
    """PROJECT_SQL over the `selected` roads, roads and markers as `viewer` may see them."""
    marker_geom = layers.geometry_sql(layers.MARKERS, viewer).replace("t.geom", "m.geom")
    road_geom = layers.geometry_sql(layers.ROADS, viewer)
    return (PROJECT_SQL.replace("{selected}", selected).replace("{marker_geom}", marker_geom)
            .replace("{road_geom}", road_geom))


def parse_filters(filters: Mapping[str, str]):
    """The /api/roads filters (status, province, post_id, marker, donor_id, bbox)."""
    allowed = [*layers.ROADS.filters, "bbox"]
    unknown = [k for k in filters if k not in allowed]
    if unknown:
        raise InvalidInput(f"unknown filter {', '.join(map(repr, unknown))}; filters: {', '.join(allowed)}",
                           field=unknown[0])
    try:
        return layers.query_model(layers.ROADS).model_validate(dict(filters))
    except ValidationError as exc:
        raise InvalidInput("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
                                     for e in exc.errors())) from None


def package(conn: Connection, filters: Mapping[str, str], uri: str, viewer: Viewer) -> str:
    """The project package (JSON text) of the branch roads matching `filters`."""
    query = parse_filters(filters)
    selected, params = layers.matching(layers.ROADS, query, viewer)
    projects = _project_sql(selected, viewer)
    body, n = conn.execute(text(PACKAGE_SQL.format(projects=projects)), {
        **params, "prefix": ID_PREFIX, "uri": uri, "version": VERSION, "publisher": PUBLISHER,
    }).one()
    if n == 0:
        raise NotFound("no branch roads match these filters: an OC4IDS package needs at least one project")
    return body


def project(conn: Connection, road_code: str, viewer: Viewer) -> dict[str, Any]:
    """One road's project (for tests and reports)."""
    selected, params = layers.matching(layers.ROADS, layers.query_model(layers.ROADS)(), viewer,
                                       ("t.code = :code",))
    row = conn.execute(text(_project_sql(selected, viewer)),
                       {**params, "code": road_code, "prefix": ID_PREFIX}).first()
    if row is None:
        raise NotFound(f"branch road {road_code!r} not found")
    return row.project if isinstance(row.project, dict) else json.loads(row.project)
