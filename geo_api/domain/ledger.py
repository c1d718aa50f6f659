"""The funding ledger: recording transactions under the ledger rules, and its summaries.

Kinds, in the order money moves: a donor *pledges* (a promise), *commits* (a firm
undertaking, what `funded` counts), *disburses* (hands the money over) and the builder
records *expenditure* (money spent on the road). Rows are append-only; correcting one by
a reversing entry is out of scope for now (there is no update or delete).

Rules (each refused with a 422 naming the figures):
- the donor, road and campaign must exist; tx_date may not be in the future;
- a cancelled road takes no new pledge, commitment or disbursement (expenditure made
  before the cancellation may still be recorded);
- an expenditure names the road it was spent on, and a road's expenditure cannot exceed
  what was disbursed to it (all donors);
- a disbursement must be covered by a commitment to the same road (or, for campaign-wide
  money with no road, the same campaign) by the same donor — where a donor belongs to a
  group (an emulation cluster), the group and everyone in it share one pool: a cluster's
  commitment may be paid by its members and vice versa (nested groups included). Pledges and commitments have no
  ceiling: a commitment above the estimate shows as a negative gap.
The road (or campaign) row is locked while checking, so two concurrent disbursements
cannot both squeeze under the same commitment.
"""

from __future__ import annotations


from sqlalchemy import Connection, text

from geo_api.domain.resources import audit
from geo_api.errors import Conflict, InvalidInput
from geo_api.schemas.ledger import FundingCreate, fmt_vnd



def sums(prefix: str = "", where: str = "") -> str:
    """The four ledger totals of `funding_tx f` as columns pledged, committed, disbursed, spent."""
    cols = (("pledge", "pledged"), ("commitment", "committed"), ("disbursement", "disbursed"),
            ("expenditure", "spent"))
    return ", ".join(f"COALESCE(sum(f.amount) FILTER (WHERE {where}f.kind = '{k}'), 0) AS {prefix}{name}"
                     for k, name in cols)


# A donor's pool: every group it belongs to (at any depth), and everyone under those
# groups or under itself. Groups never contain themselves (domain.donors refuses cycles);
# UNION would stop a cycle anyway.
POOL_CTE = """
    WITH RECURSIVE up(id) AS (
        SELECT CAST(:donor AS integer)
        UNION SELECT dm.group_id FROM donor_member dm JOIN up ON dm.member_id = up.id
    ), pool(id) AS (
        SELECT id FROM up
        UNION SELECT dm.member_id FROM donor_member dm JOIN pool ON dm.group_id = pool.id
    )"""


def _lock_target(conn: Connection, tx: FundingCreate) -> dict:
    """Check the referenced rows exist; lock the road (or the campaign) being funded."""
    donor = conn.execute(text("SELECT name FROM donor WHERE id = :id"), {"id": tx.donor_id}).scalar()
    if donor is None:
        raise InvalidInput(f"donor {tx.donor_id} does not exist", field="donor_id")
    found = {"donor": donor}
    if tx.campaign_id is not None:
        q = "SELECT code FROM campaign WHERE id = :id" + (" FOR UPDATE" if tx.road_id is None else "")
        found["campaign"] = conn.execute(text(q), {"id": tx.campaign_id}).scalar()
        if found["campaign"] is None:
            raise InvalidInput(f"campaign {tx.campaign_id} does not exist", field="campaign_id")
    if tx.road_id is not None:
        road = conn.execute(text("SELECT code, status::text AS status FROM branch_road WHERE id = :id FOR UPDATE"),
                            {"id": tx.road_id}).mappings().first()
        if road is None:
            raise InvalidInput(f"branch road {tx.road_id} does not exist", field="road_id")
        found["road"] = road
    return found


def check_rules(conn: Connection, tx: FundingCreate) -> None:
    found = _lock_target(conn, tx)
    if conn.execute(text("SELECT CAST(:d AS date) > current_date"), {"d": tx.tx_date}).scalar():
        raise InvalidInput(f"tx_date {tx.tx_date} is in the future", field="tx_date")
    road = found.get("road")
    label = f"road {tx.road_id} ({road['code']})" if road else f"campaign {tx.campaign_id} ({found['campaign']})"
    amount = fmt_vnd(tx.amount)
    if tx.kind == "expenditure" and road is None:
        raise InvalidInput("an expenditure names the road the money was spent on (road_id)", field="road_id")
    if road and road["status"] == "cancelled" and tx.kind != "expenditure":
        raise InvalidInput(f"{label} is cancelled; it takes no new {tx.kind}", field="road_id")

    if tx.kind == "expenditure":
        t = conn.execute(text(f"SELECT {sums()} FROM funding_tx f WHERE f.road_id = :road"),
                         {"road": tx.road_id}).mappings().one()
        if t["spent"] + tx.amount > t["disbursed"]:
            raise InvalidInput(
                f"an expenditure of {amount} VND on {label} would exceed what was disbursed to it: "
                f"{fmt_vnd(t['disbursed'])} VND disbursed, {fmt_vnd(t['spent'])} VND already spent",
                disbursed=int(t["disbursed"]), spent=int(t["spent"]),
            )
    if tx.kind == "disbursement":
        target = "f.road_id = :road" if road else "f.road_id IS NULL AND f.campaign_id = :campaign"
        t = conn.execute(text(f"""
            {POOL_CTE}
            SELECT {sums()} FROM funding_tx f
            WHERE {target} AND f.donor_id IN (SELECT id FROM pool)
        """), {"road": tx.road_id, "campaign": tx.campaign_id, "donor": tx.donor_id}).mappings().one()
        if t["disbursed"] + tx.amount > t["committed"]:
            raise InvalidInput(
                f"a disbursement of {amount} VND by donor {tx.donor_id} ({found['donor']}) to {label} is not "
                f"covered by its commitments: {fmt_vnd(t['committed'])} VND committed by the donor "
                f"(with its group), {fmt_vnd(t['disbursed'])} VND already disbursed; record the commitment first",
                committed=int(t["committed"]), disbursed=int(t["disbursed"]),
            )


def record(conn: Connection, tx: FundingCreate, actor: str, idempotency_key: str | None = None
           ) -> tuple[int, bool]:
    """Append one ledger row; returns (id, created). A repeated Idempotency-Key with the
    same content returns the first row instead of recording the money twice."""
    if idempotency_key is not None:
        prior = conn.execute(text("""
            SELECT id, (donor_id, kind::text, amount, tx_date, road_id, campaign_id, reference, note)
                   IS NOT DISTINCT FROM
                   (CAST(:donor_id AS integer), CAST(:kind AS text), CAST(:amount AS numeric),
                    CAST(:tx_date AS date), CAST(:road_id AS integer), CAST(:campaign_id AS integer),
                    CAST(:reference AS text), CAST(:note AS text)) AS same
            FROM funding_tx WHERE idempotency_key = :key
        """), {**tx.model_dump(), "key": idempotency_key}).mappings().first()
        if prior is not None:
            if not prior["same"]:
                raise Conflict(f"Idempotency-Key {idempotency_key!r} was already used for another "
                               f"transaction ({prior['id']})", id=prior["id"])
            return prior["id"], False
    check_rules(conn, tx)
    tx_id = conn.execute(text("""
        INSERT INTO funding_tx (donor_id, road_id, campaign_id, kind, amount, tx_date, reference, note,
                                idempotency_key)
        VALUES (:donor_id, :road_id, :campaign_id, CAST(:kind AS funding_kind), :amount, :tx_date,
                :reference, :note, :key)
        RETURNING id
    """), {**tx.model_dump(), "key": idempotency_key}).scalar_one()
    audit(conn, actor, "create", "funding_tx", tx_id)
    return tx_id, True


# ---------------------------------------------------------------------------- summaries
# Each is one SQL statement with flat columns, rendered as JSON or CSV by domain.reports.

ROADS_SQL = f"""
    SELECT r.id AS road_id, r.code, r.name, r.province, r.district, r.status::text AS status,
           r.estimated_cost AS estimate, t.pledged, t.committed, t.disbursed, t.spent,
           r.estimated_cost - t.committed AS gap, r.progress_pct
    FROM branch_road r
    CROSS JOIN LATERAL (SELECT {sums()} FROM funding_tx f WHERE f.road_id = r.id) t
    WHERE (CAST(:province AS text) IS NULL OR r.province = :province)
      AND (CAST(:status AS text) IS NULL OR r.status::text = :status)
    ORDER BY r.province, r.code
"""

# A group's totals are its own rows plus its members' rows (members of member groups too).
DONORS_SQL = f"""
    WITH RECURSIVE scope(donor_id, source_id) AS (
        SELECT id, id FROM donor
        UNION SELECT s.donor_id, dm.member_id FROM scope s JOIN donor_member dm ON dm.group_id = s.source_id
    )
    SELECT d.id AS donor_id, d.code, d.name, d.kind::text AS kind, d.is_group,
           (SELECT count(*) FROM donor_member dm WHERE dm.group_id = d.id) AS members,
           {sums()},
           {sums("own_", "f.donor_id = d.id AND ")},
           count(DISTINCT f.road_id) AS roads
    FROM donor d
    JOIN scope s ON s.donor_id = d.id
    LEFT JOIN funding_tx f ON f.donor_id = s.source_id
    WHERE (CAST(:donor_id AS integer) IS NULL OR d.id = :donor_id)
    GROUP BY d.id
    ORDER BY d.id
"""

CAMPAIGNS_SQL = f"""
    SELECT c.id AS campaign_id, c.code, c.name, c.province, c.plan_date, c.target_amount,
           t.pledged, t.committed, t.disbursed, t.spent, t.donors, t.roads
    FROM campaign c
    CROSS JOIN LATERAL (SELECT {sums()}, count(DISTINCT f.donor_id) AS donors,
                               count(DISTINCT f.road_id) AS roads
                        FROM funding_tx f WHERE f.campaign_id = c.id) t
    ORDER BY c.id
"""

# Money goes to the province of its road, else of its campaign. The estimate counts
# roads that are not cancelled; gap = that estimate − commitments tied to those roads.
PROVINCES_SQL = f"""
    WITH money AS (
        SELECT COALESCE(r.province, c.province) AS province, {sums()},
               COALESCE(sum(f.amount) FILTER (WHERE f.kind = 'commitment' AND r.status <> 'cancelled'), 0)
                   AS road_committed
        FROM funding_tx f
        LEFT JOIN branch_road r ON r.id = f.road_id
        LEFT JOIN campaign c ON c.id = f.campaign_id
        GROUP BY 1
    ), roads AS (
        SELECT province, count(*) AS roads,
               COALESCE(sum(estimated_cost) FILTER (WHERE status <> 'cancelled'), 0) AS estimate
        FROM branch_road GROUP BY province
    )
    SELECT province, COALESCE(roads.roads, 0) AS roads, COALESCE(roads.estimate, 0) AS estimate,
           COALESCE(m.pledged, 0) AS pledged, COALESCE(m.committed, 0) AS committed,
           COALESCE(m.disbursed, 0) AS disbursed, COALESCE(m.spent, 0) AS spent,
           COALESCE(roads.estimate, 0) - COALESCE(m.road_committed, 0) AS gap
    FROM roads FULL JOIN money m USING (province)
    ORDER BY province NULLS LAST
"""

# Roads where the share of the estimate disbursed runs ahead of physical progress.
# Roads without an estimate cannot be compared and are left out.
WARNINGS_SQL = """
    SELECT r.id AS road_id, r.code, r.name, r.province, r.status::text AS status,
           r.estimated_cost AS estimate, d.disbursed, r.progress_pct,
           round(d.disbursed / r.estimated_cost, 3) AS disbursed_share,
           round(d.disbursed / r.estimated_cost - r.progress_pct / 100.0, 3) AS lead
    FROM branch_road r
    JOIN (SELECT road_id, sum(amount) AS disbursed FROM funding_tx
          WHERE kind = 'disbursement' AND road_id IS NOT NULL GROUP BY road_id) d ON d.road_id = r.id
    WHERE r.estimated_cost > 0
      AND d.disbursed / r.estimated_cost - r.progress_pct / 100.0 > :threshold
    ORDER BY lead DESC, r.id
"""
