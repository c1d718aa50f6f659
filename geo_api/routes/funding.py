"""The funding ledger: recording transactions, and its summaries under /api/reports/funding."""

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from geo_api import layers
from geo_api.deps import ActorDep, ConnDep, TxDep
from geo_api.domain import ledger
from geo_api.routes.reports import Format, render
from geo_api.schemas.ledger import FundingCreate, FundingPublic
from geo_api.schemas.lifecycle import RoadStatus

router = APIRouter(prefix="/api", tags=["funding"])


@router.post("/funding", status_code=201, response_model=FundingPublic,
             summary="Record a pledge, commitment, disbursement or expenditure (append-only)",
             responses={200: {"description": "a retry with the same Idempotency-Key: the first row"},
                        409: {"description": "the Idempotency-Key was used for another transaction"},
                        422: {"description": "bad amount or a ledger rule broken; nothing is written"}})
def record(body: FundingCreate, conn: TxDep, actor: ActorDep,
           idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200)] = None) -> Response:
    tx_id, created = ledger.record(conn, body, actor, idempotency_key)
    return Response(layers.item(conn, layers.FUNDING, tx_id), status_code=201 if created else 200,
                    media_type="application/json", headers={"Location": f"/api/funding/{tx_id}"})


@router.get("/reports/funding/roads", tags=["reports"],
            summary="Per road: estimate, pledged, committed, disbursed, spent, gap (estimate − committed)")
def by_road(conn: ConnDep, format: Format = "json", province: str | None = None,
            status: RoadStatus | None = None) -> Response:
    return render(conn, ledger.ROADS_SQL, format, "funding-roads", {"province": province, "status": status})


@router.get("/reports/funding/donors", tags=["reports"],
            summary="Per donor; a group's totals include its members' (own_* columns: its own rows)")
def by_donor(conn: ConnDep, format: Format = "json",
             donor_id: Annotated[int | None, Query(ge=1)] = None) -> Response:
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
    threshold = ledger.warning_threshold() if threshold is None else threshold
    return render(conn, ledger.WARNINGS_SQL, format, "funding-warnings", {"threshold": threshold},
                  extra={"threshold": threshold})
