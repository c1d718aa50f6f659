"""Recording an inauguration ceremony."""

from fastapi import APIRouter, Response

from geo_api import layers
from geo_api.deps import ActorDep, TxDep
from geo_api.domain.inaugurations import inaugurate
from geo_api.schemas.lifecycle import InaugurationCreate, InaugurationPublic

router = APIRouter(prefix="/api/inaugurations", tags=["inaugurations"])


@router.post("", status_code=201, response_model=InaugurationPublic,
             summary="Record a ceremony; moves all its roads from completed to inaugurated",
             responses={422: {"description": "a road is not ready (each one named), or bad input; "
                                             "nothing is written"}})
def create(body: InaugurationCreate, conn: TxDep, actor: ActorDep) -> Response:
    inauguration_id = inaugurate(conn, body, actor)
    return Response(layers.item(conn, layers.INAUGURATIONS, inauguration_id), status_code=201,
                    media_type="application/geo+json",
                    headers={"Location": f"/api/inaugurations/{inauguration_id}"})
