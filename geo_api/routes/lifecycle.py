"""Road lifecycle: transitions, progress reports and the history of a road."""

from typing import Annotated

from fastapi import APIRouter, Path, Response

from geo_api import layers
from geo_api.deps import ActorDep, ConnDep, TxDep
from geo_api.domain import lifecycle
from geo_api.schemas.lifecycle import ProgressCreate, RoadHistoryPublic, TransitionCreate

router = APIRouter(prefix="/api/roads", tags=["roads"])

RoadId = Annotated[int, Path(ge=1)]
ROAD_RESPONSES = {
    200: {"description": "the road after the change, as GET /api/roads/{id} shows it",
          "content": {"application/geo+json": {}}},
    404: {"description": "no such road"},
    409: {"description": "the road changed meanwhile (another request won)"},
    422: {"description": "the step is not allowed now, or its evidence is missing"},
}


def _road(conn, road_id: int) -> Response:
    return Response(layers.item(conn, layers.ROADS, road_id), media_type="application/geo+json")


@router.post("/{road_id}/transitions", summary="Move a road to another status", responses=ROAD_RESPONSES)
def transition(road_id: RoadId, body: TransitionCreate, conn: TxDep, actor: ActorDep) -> Response:
    """Guarded per status (see the 422 reason); `inaugurated` only via POST /api/inaugurations."""
    lifecycle.apply_transition(conn, road_id, body, actor)
    return _road(conn, road_id)


@router.post("/{road_id}/progress", summary="Report physical progress (%) while under construction",
             responses=ROAD_RESPONSES)
def progress(road_id: RoadId, body: ProgressCreate, conn: TxDep, actor: ActorDep) -> Response:
    lifecycle.report_progress(conn, road_id, body, actor)
    return _road(conn, road_id)


@router.get("/{road_id}/history", summary="The road's events in the order they were recorded",
            response_model=RoadHistoryPublic, responses={404: {"description": "no such road"}})
def history(road_id: RoadId, conn: ConnDep) -> Response:
    return Response(lifecycle.history(conn, road_id), media_type="application/json")
