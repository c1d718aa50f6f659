"""The funding ledger: recording transactions, and its summaries under /api/reports/funding.

Who records what: planners and admins any transaction; a donor account the pledges and
commitments of its own donor (a disbursement or expenditure is confirmed by whoever
receives or spends the money, not declared by the giver); a post account the expenditure
on its own roads (posts often build them).
"""

from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy import Connection, text

from geo_api import layers
from geo_api.auth import Account
from geo_api.guards import FunderDep
from geo_api.deps import ConnDep, IdempotencyDep, TxDep
from geo_api.domain import ledger
from geo_api.errors import Forbidden
from geo_api.routes.reports import Format, render
from geo_api.routes.writes import AUTH_ERRORS
from geo_api.schemas.ledger import FundingCreate, FundingPublic
from geo_api.schemas.lifecycle import RoadStatus
from geo_api.policy import Viewer
from geo_api.settings import get_settings

router = APIRouter(prefix="/api", tags=["funding"])

DONOR_KINDS = ("pledge", "commitment")


def check_funding_rights(conn: Connection, account: Account, tx: FundingCreate) -> None:
    if account.is_planner:
        return
    if account.role == "donor":
        if tx.donor_id != account.donor_id:
            raise Forbidden(f"donor_id: a donor account records its own donor's money (donor "
                            f"{account.donor_id}) only", field="donor_id")
        if tx.kind not in DONOR_KINDS:
            raise Forbidden(f"kind: a donor account records pledges and commitments; a {tx.kind} is "
                            "recorded by a planner (or, for expenditure, the building post)", field="kind")
        return
    if account.role == "post":
        if tx.kind != "expenditure" or tx.road_id is None:
            raise Forbidden("kind: a post account records expenditure on its own roads only", field="kind")
        owner = conn.execute(text("SELECT post_id FROM branch_road WHERE id = :id"), {"id": tx.road_id}).scalar()
        if owner is not None and owner != account.post_id:
            raise Forbidden(f"road_id: branch road {tx.road_id} is not in the care of your post",
                            field="road_id")
        return
    raise Forbidden(f"a {account.role} account cannot record money")


@router.post("/funding", status_code=201, response_model=FundingPublic,
             summary="Record a pledge, commitment, disbursement or expenditure (append-only)",
             responses={**AUTH_ERRORS,
                        422: {"description": "bad amount or a ledger rule broken, or an Idempotency-Key "
                                             "reused for another transaction; nothing is written"}})
def record(body: FundingCreate, conn: TxDep, account: FunderDep, idem: IdempotencyDep) -> Response:
    """A retry with the same Idempotency-Key gets the first response back (nothing is recorded twice)."""
    if (replay := idem.replay(conn)) is not None:
        return replay
    check_funding_rights(conn, account, body)
    tx_id, _ = ledger.record(conn, body, account.username)
    return idem.remember(conn, Response(
        layers.item(conn, layers.FUNDING, tx_id, Viewer.of(account)), status_code=201, media_type="application/json",
        headers={"Location": f"/api/funding/{tx_id}"}))


@router.get("/reports/funding/roads", tags=["reports"],
            summary="Per road: estimate, pledged, committed, disbursed, spent, gap (estimate − committed)")
def by_road(conn: ConnDep, format: Format = "json", province: str | None = None,
            status: RoadStatus | None = None) -> Response:
    return render(conn, ledger.ROADS_SQL, format, "funding-roads", {"province": province, "status": status})


@router.get("/reports/funding/donors", tags=["reports"],
            summary="Per donor; a group's totals include its members' (own_* columns: its own rows)")
def by_donor(conn: ConnDep, format: Format = "json",
             donor_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None) -> Response:
    return render(conn, ledger.DONORS_SQL, format, "funding-donors", {"donor_id": donor_id})


@router.get("/reports/funding/campaigns", tags=["reports"], summary="Per campaign: target and ledger totals")
def by_campaign(conn: ConnDep, format: Format = "json") -> Response:
    return render(conn, ledger.CAMPAIGNS_SQL, format, "funding-campaigns")


@router.get("/reports/funding/provinces", tags=["reports"],
            summary="Per province: estimate of its roads, ledger totals, gap")
def by_province(conn: ConnDep, format: Format = "json") -> Response:
    return render(conn, ledger.PROVINCES_SQL, format, "funding-provinces")


@router.get("/reports/funding/warnings", tags=["reports"],
            summary="Roads where disbursed money runs ahead of physical progress")
def warnings(conn: ConnDep, format: Format = "json",
             threshold: Annotated[float | None, Query(ge=0, le=1, description=(
                 "flag roads with disbursed/estimate − progress/100 above this "
                 "(default TRACKER_DISBURSEMENT_WARNING_THRESHOLD, 0.3)"))] = None) -> Response:
    threshold = get_settings().ledger.disbursement_warning_threshold if threshold is None else threshold
    return render(conn, ledger.WARNINGS_SQL, format, "funding-warnings", {"threshold": threshold},
                  extra={"threshold": threshold})
