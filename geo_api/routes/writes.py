"""Write endpoints: POST /api/<layer>, PATCH and DELETE /api/<layer>/{id}, donor members.

Thin: parse the body, call the domain function inside the request's transaction, answer
with the same JSON as GET /api/<layer>/{id}. `If-Match: "<version>"` on PATCH/DELETE
refuses (412) a change to a resource that moved on since the client read it; write
responses carry the new version as `ETag`. The actor is the X-Actor header for now.

No `from __future__ import annotations`: FastAPI must see the body models.
"""

import re
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Body, Header, Path, Response
from pydantic import BaseModel
from sqlalchemy import Connection, text

from geo_api import layers
from geo_api.deps import ActorDep, TxDep
from geo_api.domain import donors, resources
from geo_api.errors import InvalidInput
from geo_api.layers import Layer
from geo_api.schemas import resources as s

router = APIRouter(prefix="/api")

ERRORS = {
    404: {"description": "no such item"},
    409: {"description": "conflicts with existing data (duplicate code, still referenced)"},
    412: {"description": "If-Match names a version that is no longer current"},
    422: {"description": "invalid input; the message names the field and the reason"},
}

ItemId = Annotated[int, Path(ge=1, le=2**31 - 1)]
IfMatch = Annotated[str | None, Header(
    description='the version the client last read, e.g. "3"; refused with 412 if stale')]


def expected_version(if_match: str | None) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    m = re.fullmatch(r'\s*(?:W/)?"?(\d{1,9})"?\s*', if_match)
    if not m:
        raise InvalidInput(f'If-Match must be a version number such as "3", got {if_match!r}',
                           field="If-Match")
    return int(m[1])


def respond(conn: Connection, layer: Layer, item_id: int, status: int = 200) -> Response:
    body = layers.item(conn, layer, item_id)
    version = conn.execute(text(f"SELECT version FROM {layer.table} WHERE id = :id"),
                           {"id": item_id}).scalar_one()
    headers = {"ETag": f'"{version}"'}
    if status == 201:
        headers["Location"] = f"/api/{layer.name}/{item_id}"
    media = "application/geo+json" if layer.spatial else "application/json"
    return Response(body, status_code=status, media_type=media, headers=headers)


def add_write_routes(layer: Layer, create_model: type[BaseModel], update_model: type[BaseModel],
                     public_model: type[BaseModel], create: Callable, update: Callable,
                     delete: Callable) -> None:
    def create_item(conn: TxDep, actor: ActorDep, body: Annotated[create_model, Body()]) -> Response:
        return respond(conn, layer, create(conn, body, actor), 201)

    def update_item(conn: TxDep, actor: ActorDep, item_id: ItemId,
                    body: Annotated[update_model, Body()], if_match: IfMatch = None) -> Response:
        update(conn, item_id, body, actor, expected_version(if_match))
        return respond(conn, layer, item_id)

    def delete_item(conn: TxDep, actor: ActorDep, item_id: ItemId, if_match: IfMatch = None) -> Response:
        delete(conn, item_id, actor, expected_version(if_match))
        return Response(status_code=204)

    ok = {"model": public_model, "content": {"application/geo+json" if layer.spatial
                                              else "application/json": {}}}
    router.add_api_route(
        f"/{layer.name}", create_item, methods=["POST"], tags=[layer.name], status_code=201,
        summary=f"Create a {layer.title}", operation_id=f"create_{layer.table}",
        responses={201: ok, **{k: v for k, v in ERRORS.items() if k != 412}},
    )
    router.add_api_route(
        f"/{layer.name}/{{item_id}}", update_item, methods=["PATCH"], tags=[layer.name],
        summary=f"Change a {layer.title} (only the fields sent)", operation_id=f"update_{layer.table}",
        responses={200: ok, **ERRORS},
    )
    router.add_api_route(
        f"/{layer.name}/{{item_id}}", delete_item, methods=["DELETE"], tags=[layer.name],
        status_code=204, summary=f"Delete a {layer.title} no longer referred to",
        operation_id=f"delete_{layer.table}", responses=ERRORS,
    )


add_write_routes(layers.MARKERS, s.MarkerCreate, s.MarkerUpdate, s.MarkerPublic,
                 resources.create_marker, resources.update_marker, resources.delete_marker)
add_write_routes(layers.POSTS, s.PostCreate, s.PostUpdate, s.PostPublic,
                 resources.create_post, resources.update_post, resources.delete_post)
add_write_routes(layers.ROADS, s.RoadCreate, s.RoadUpdate, s.RoadPublic,
                 resources.create_road, resources.update_road, resources.delete_road)
add_write_routes(layers.VILLAGES, s.VillageCreate, s.VillageUpdate, s.VillagePublic,
                 resources.create_village, resources.update_village, resources.delete_village)
add_write_routes(layers.DONORS, s.DonorCreate, s.DonorUpdate, s.DonorPublic,
                 donors.create_donor, donors.update_donor, donors.delete_donor)
add_write_routes(layers.CAMPAIGNS, s.CampaignCreate, s.CampaignUpdate, s.CampaignPublic,
                 donors.create_campaign, donors.update_campaign, donors.delete_campaign)


@router.post("/donors/{item_id}/members", tags=["donors"], status_code=201,
             summary="Add a member donor to a group", operation_id="add_donor_member",
             responses={201: {"model": s.DonorPublic}, **ERRORS})
def add_member(conn: TxDep, actor: ActorDep, item_id: ItemId,
               body: Annotated[s.DonorMemberIn, Body()]) -> Response:
    donors.add_member(conn, item_id, body, actor)
    return respond(conn, layers.DONORS, item_id, 201)


@router.delete("/donors/{item_id}/members/{member_id}", tags=["donors"], status_code=204,
               summary="Remove a member donor from a group", operation_id="remove_donor_member",
               responses=ERRORS)
def remove_member(conn: TxDep, actor: ActorDep, item_id: ItemId, member_id: ItemId) -> Response:
    donors.remove_member(conn, item_id, member_id, actor)
    return Response(status_code=204)
