"""Road lifecycle: transitions, progress reports and the history of a road.

Both writes need If-Match (the road's ETag: 428 without it, 412 when stale) and take an
Idempotency-Key. A post account acts on its own post's roads, and reports field steps only
(see `geo_api.auth.POST_TRANSITIONS`).
"""

from typing import Annotated

from fastapi import APIRouter, Path, Response

from geo_api import layers
from geo_api.auth import check_transition_rights, require_own_post
from geo_api.guards import PostOfficerDep
from geo_api.deps import ConnDep, IdempotencyDep, TxDep
from geo_api.domain import lifecycle
from geo_api.openapi import GeoJSONResponse
from geo_api.routes.writes import AUTH_ERRORS, IfMatch, etag, required_version
from geo_api.schemas.lifecycle import ProgressCreate, RoadHistoryPublic, TransitionCreate
from geo_api.policy import Viewer

router = APIRouter(prefix="/api/roads", tags=["roads"])

RoadId = Annotated[int, Path(ge=1, le=2**31 - 1)]
ROAD_RESPONSES = {
    200: {"description": "the road after the change, as GET /api/roads/{id} shows it",
          "content": {"application/geo+json": {}}},
    **AUTH_ERRORS,
    404: {"description": "no such road"},
    409: {"description": "the road changed meanwhile (another request won)"},
    412: {"description": "If-Match names a version of the road that is no longer current"},
    422: {"description": "the step is not allowed now, or its evidence is missing"},
    428: {"description": "If-Match is required"},
}


def _road(conn, road_id: int, viewer: Viewer) -> Response:
    return Response(layers.item(conn, layers.ROADS, road_id, viewer), media_type="application/geo+json",
                    headers=etag(conn, layers.ROADS, road_id))


@router.post("/{road_id}/transitions", summary="Move a road to another status", responses=ROAD_RESPONSES,
             response_class=GeoJSONResponse)
def transition(road_id: RoadId, body: TransitionCreate, conn: TxDep, account: PostOfficerDep,
               idem: IdempotencyDep, if_match: IfMatch = None) -> Response:
    """Guarded per status (see the 422 reason); `inaugurated` only via POST /api/inaugurations."""
    if (replay := idem.replay(conn)) is not None:
        return replay
    version = required_version(if_match)
    check_transition_rights(account, body.to_status, body.override_reason)
    require_own_post(conn, account, "branch_road", road_id)
    lifecycle.apply_transition(conn, road_id, body, account.username, version)
    return idem.remember(conn, _road(conn, road_id, Viewer.of(account)))


@router.post("/{road_id}/progress", summary="Report physical progress (%) while under construction",
             responses=ROAD_RESPONSES, response_class=GeoJSONResponse)
def progress(road_id: RoadId, body: ProgressCreate, conn: TxDep, account: PostOfficerDep,
             idem: IdempotencyDep, if_match: IfMatch = None) -> Response:
    if (replay := idem.replay(conn)) is not None:
        return replay
    version = required_version(if_match)
    require_own_post(conn, account, "branch_road", road_id)
    lifecycle.report_progress(conn, road_id, body, account.username, version)
    return idem.remember(conn, _road(conn, road_id, Viewer.of(account)))


@router.get("/{road_id}/history", summary="The road's events in the order they were recorded",
            response_model=RoadHistoryPublic, responses={404: {"description": "no such road"}})
def history(road_id: RoadId, conn: ConnDep) -> Response:
    return Response(lifecycle.history(conn, road_id), media_type="application/json")
