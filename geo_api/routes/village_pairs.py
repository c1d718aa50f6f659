"""Writes of twinned village pairs and their meetings, and the overdue report.

Reads (`GET /api/village-pairs[/{id}]`, `/api/village-pairs/{id}/meetings`,
`/api/meetings[/{id}]`) are the layers in routes/resources.py; writes answer with the same
representation. Pairs and meetings carry a version: `If-Match: "<version>"` is required on
PATCH/DELETE, `ETag` on answers, as for the other resources (routes/writes.py). Planners
twin villages; a post account records and edits the meetings of its own pairs.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from geo_api import layers
from geo_api.auth import require_own_post
from geo_api.guards import PlannerDep, PostOfficerDep
from geo_api.deps import ConnDep, IdempotencyDep, TxDep
from geo_api.domain import villages
from geo_api.openapi import GeoJSONResponse
from geo_api.schemas.types import IsoDate
from geo_api.policy import Viewer
from geo_api.routes.writes import AUTH_ERRORS, ERRORS, IfMatch, ItemId, etag, required_version, respond
from geo_api.schemas.villages import (
    MeetingCreate, MeetingPublic, MeetingUpdate, OverdueReport, VillagePairCreate,
    VillagePairPublic, VillagePairUpdate,
)

router = APIRouter(prefix="/api")
PairId = Annotated[int, Path(ge=1, le=2**31 - 1)]
JSON = "application/json"
PAIR = {"model": VillagePairPublic}  # served as GeoJSON (response_class)


@router.post("/village-pairs", status_code=201, tags=["village-pairs"],
             summary="Twin a Vietnamese village with one across the border",
             responses={201: PAIR, **AUTH_ERRORS, 409: ERRORS[409], 422: ERRORS[422]},
             response_class=GeoJSONResponse)
def create_pair(conn: TxDep, account: PlannerDep, idem: IdempotencyDep, body: VillagePairCreate) -> Response:
    if (replay := idem.replay(conn)) is not None:
        return replay
    pair_id = villages.create_pair(conn, body, account.username)
    return idem.remember(conn, respond(conn, layers.VILLAGE_PAIRS, pair_id, Viewer.of(account), 201))


@router.patch("/village-pairs/{item_id}", tags=["village-pairs"], summary="Edit a village pair",
              responses={200: PAIR, **ERRORS}, response_class=GeoJSONResponse)
def update_pair(conn: TxDep, account: PlannerDep, item_id: ItemId, body: VillagePairUpdate,
                if_match: IfMatch = None) -> Response:
    villages.update_pair(conn, item_id, body, account.username, required_version(if_match))
    return respond(conn, layers.VILLAGE_PAIRS, item_id, Viewer.of(account))


@router.delete("/village-pairs/{item_id}", status_code=204, tags=["village-pairs"],
               summary="Delete a village pair recorded by mistake (refused once it has meetings)",
               responses=ERRORS)
def delete_pair(conn: TxDep, account: PlannerDep, item_id: ItemId, if_match: IfMatch = None) -> Response:
    villages.delete_pair(conn, item_id, account.username, required_version(if_match))
    return Response(status_code=204)


def _meeting(conn, meeting_id: int, viewer: Viewer, status: int = 200) -> Response:
    headers = etag(conn, layers.MEETINGS, meeting_id)
    if status == 201:
        headers["Location"] = f"/api/meetings/{meeting_id}"
    return Response(layers.item(conn, layers.MEETINGS, meeting_id, viewer), status_code=status,
                    media_type=JSON, headers=headers)


@router.post("/village-pairs/{pair_id}/meetings", status_code=201, tags=["village-pairs"],
             summary="Record a quarterly meeting of a pair",
             responses={201: {"model": MeetingPublic}, **AUTH_ERRORS, 404: ERRORS[404],
                        409: ERRORS[409], 422: ERRORS[422]})
def create_meeting(conn: TxDep, account: PostOfficerDep, idem: IdempotencyDep, pair_id: PairId,
                   body: MeetingCreate) -> Response:
    if (replay := idem.replay(conn)) is not None:
        return replay
    require_own_post(conn, account, "village_pair", pair_id)
    meeting_id = villages.create_meeting(conn, pair_id, body, account.username)
    return idem.remember(conn, _meeting(conn, meeting_id, Viewer.of(account), 201))


@router.patch("/meetings/{item_id}", tags=["meetings"], summary="Edit a meeting",
              responses={200: {"model": MeetingPublic}, **ERRORS})
def update_meeting(conn: TxDep, account: PostOfficerDep, item_id: ItemId, body: MeetingUpdate,
                   if_match: IfMatch = None) -> Response:
    version = required_version(if_match)
    require_own_post(conn, account, "pair_meeting", item_id)
    villages.update_meeting(conn, item_id, body, account.username, version)
    return _meeting(conn, item_id, Viewer.of(account))


@router.delete("/meetings/{item_id}", status_code=204, tags=["meetings"],
               summary="Delete a meeting (refused while it has attachments)",
               responses=ERRORS)
def delete_meeting(conn: TxDep, account: PostOfficerDep, item_id: ItemId, if_match: IfMatch = None) -> Response:
    version = required_version(if_match)
    require_own_post(conn, account, "pair_meeting", item_id)
    villages.delete_meeting(conn, item_id, account.username, version)
    return Response(status_code=204)


@router.get("/reports/village-pairs/overdue", tags=["reports"],
            summary="Pairs with no meeting for the last completed quarter",
            responses={200: {"model": OverdueReport}})
def overdue_pairs(
    conn: ConnDep,
    as_of: Annotated[IsoDate | None, Query(description="reference day (default: today)")] = None,
) -> Response:
    return Response(villages.overdue_report(conn, as_of), media_type=JSON)
