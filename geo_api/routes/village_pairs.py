"""Writes of twinned village pairs and their meetings, and the overdue report.

Reads (`GET /api/village-pairs[/{id}]`, `/api/village-pairs/{id}/meetings`,
`/api/meetings[/{id}]`) are the layers in routes/resources.py; writes answer with the same
representation. Pairs carry a version: `If-Match: "<version>"` on PATCH/DELETE, `ETag` on
answers, as for the other resources (routes/writes.py).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from geo_api import layers
from geo_api.deps import ActorDep, ConnDep, TxDep
from geo_api.domain import villages
from geo_api.routes.writes import ERRORS, IfMatch, ItemId, expected_version, respond
from geo_api.schemas.villages import (
    MeetingCreate, MeetingPublic, MeetingUpdate, OverdueReport, VillagePairCreate,
    VillagePairPublic, VillagePairUpdate,
)

router = APIRouter(prefix="/api")
PairId = Annotated[int, Path(ge=1, le=2**31 - 1)]
JSON = "application/json"
PAIR = {"model": VillagePairPublic, "content": {"application/geo+json": {}}}


@router.post("/village-pairs", status_code=201, tags=["village-pairs"],
             summary="Twin a Vietnamese village with one across the border",
             responses={201: PAIR, 409: ERRORS[409], 422: ERRORS[422]})
def create_pair(conn: TxDep, actor: ActorDep, body: VillagePairCreate) -> Response:
    return respond(conn, layers.VILLAGE_PAIRS, villages.create_pair(conn, body, actor), 201)


@router.patch("/village-pairs/{item_id}", tags=["village-pairs"], summary="Edit a village pair",
              responses={200: PAIR, **ERRORS})
def update_pair(conn: TxDep, actor: ActorDep, item_id: ItemId, body: VillagePairUpdate,
                if_match: IfMatch = None) -> Response:
    villages.update_pair(conn, item_id, body, actor, expected_version(if_match))
    return respond(conn, layers.VILLAGE_PAIRS, item_id)


@router.delete("/village-pairs/{item_id}", status_code=204, tags=["village-pairs"],
               summary="Delete a village pair recorded by mistake (refused once it has meetings)",
               responses=ERRORS)
def delete_pair(conn: TxDep, actor: ActorDep, item_id: ItemId, if_match: IfMatch = None) -> Response:
    villages.delete_pair(conn, item_id, actor, expected_version(if_match))
    return Response(status_code=204)


def _meeting(conn, meeting_id: int, status: int = 200) -> Response:
    headers = {"Location": f"/api/meetings/{meeting_id}"} if status == 201 else {}
    return Response(layers.item(conn, layers.MEETINGS, meeting_id), status_code=status,
                    media_type=JSON, headers=headers)


@router.post("/village-pairs/{pair_id}/meetings", status_code=201, tags=["village-pairs"],
             summary="Record a quarterly meeting of a pair",
             responses={201: {"model": MeetingPublic}, 404: ERRORS[404], 409: ERRORS[409],
                        422: ERRORS[422]})
def create_meeting(conn: TxDep, actor: ActorDep, pair_id: PairId, body: MeetingCreate) -> Response:
    return _meeting(conn, villages.create_meeting(conn, pair_id, body, actor), 201)


@router.patch("/meetings/{item_id}", tags=["meetings"], summary="Edit a meeting",
              responses={200: {"model": MeetingPublic}, 404: ERRORS[404], 409: ERRORS[409],
                         422: ERRORS[422]})
def update_meeting(conn: TxDep, actor: ActorDep, item_id: ItemId, body: MeetingUpdate) -> Response:
    villages.update_meeting(conn, item_id, body, actor)
    return _meeting(conn, item_id)


@router.delete("/meetings/{item_id}", status_code=204, tags=["meetings"],
               summary="Delete a meeting (refused while it has attachments)",
               responses={404: ERRORS[404], 409: ERRORS[409]})
def delete_meeting(conn: TxDep, actor: ActorDep, item_id: ItemId) -> Response:
    villages.delete_meeting(conn, item_id, actor)
    return Response(status_code=204)


@router.get("/reports/village-pairs/overdue", tags=["reports"],
            summary="Pairs with no meeting for the last completed quarter",
            responses={200: {"model": OverdueReport}})
def overdue_pairs(
    conn: ConnDep,
    as_of: Annotated[dt.date | None, Query(description="reference day (default: today)")] = None,
) -> Response:
    return Response(villages.overdue_report(conn, as_of), media_type=JSON)
