"""Recording an inauguration ceremony (planners and admins; takes an Idempotency-Key)."""

from fastapi import APIRouter, Response

from geo_api import layers
from geo_api.guards import PlannerDep
from geo_api.deps import IdempotencyDep, TxDep
from geo_api.domain.inaugurations import inaugurate
from geo_api.openapi import GeoJSONResponse
from geo_api.routes.writes import AUTH_ERRORS, etag
from geo_api.schemas.lifecycle import InaugurationCreate, InaugurationPublic
from geo_api.policy import Viewer

router = APIRouter(prefix="/api/inaugurations", tags=["inaugurations"])


@router.post("", status_code=201, response_model=InaugurationPublic, response_class=GeoJSONResponse,
             summary="Record a ceremony; moves all its roads from completed to inaugurated",
             responses={**AUTH_ERRORS,
                        422: {"description": "a road is not ready (each one named), or bad input; "
                                             "nothing is written"}})
def create(body: InaugurationCreate, conn: TxDep, account: PlannerDep, idem: IdempotencyDep) -> Response:
    if (replay := idem.replay(conn)) is not None:
        return replay
    inauguration_id = inaugurate(conn, body, account.username)
    return idem.remember(conn, Response(
        layers.item(conn, layers.INAUGURATIONS, inauguration_id, Viewer.of(account)), status_code=201,
        media_type="application/geo+json",
        headers={"Location": f"/api/inaugurations/{inauguration_id}",
                 **etag(conn, layers.INAUGURATIONS, inauguration_id)}))
