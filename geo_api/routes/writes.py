"""Write endpoints: POST /api/<layer>, PATCH and DELETE /api/<layer>/{id}, donor members.

Thin: check who may do it, parse the body, call the domain function inside the request's
transaction, answer with the same JSON as GET /api/<layer>/{id}. PATCH/DELETE need
`If-Match: "<version>"` (428 without it, 412 when the resource moved on since the client
read it); responses carry the version as `ETag`. POSTs take an `Idempotency-Key`.

Who may write what is the `WritePolicy` of each layer: planners and admins everything;
a post account creates and edits only its own post's rows, and only the fields listed.

No `from __future__ import annotations`: FastAPI must see the body models.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Header, Path, Response
from pydantic import BaseModel
from sqlalchemy import Connection, text

from geo_api import layers
from geo_api.auth import (
    PLANNERS, POST_MARKER_FIELDS, POST_ROAD_FIELDS, POST_ROAD_UPDATE_FIELDS, Account, only_fields, require_own_post,
)
from geo_api.guards import PlannerDep, require_role
from geo_api.deps import IdempotencyDep, TxDep
from geo_api.domain import donors, resources
from geo_api.errors import Forbidden, InvalidInput, PreconditionRequired
from geo_api.layers import Layer
from geo_api.openapi import GeoJSONResponse
from geo_api.schemas import resources as s
from geo_api.policy import Viewer

router = APIRouter(prefix="/api")

AUTH_ERRORS = {
    401: {"description": "not logged in, or the token expired"},
    403: {"description": "this account may not do this (role, another post's data, or a field "
                         "its role may not set)"},
}
ERRORS = {
    **AUTH_ERRORS,
    404: {"description": "no such item"},
    409: {"description": "conflicts with existing data (duplicate code, still referenced)"},
    412: {"description": "If-Match names a version that is no longer current"},
    422: {"description": "invalid input; the message names the field and the reason"},
    428: {"description": "If-Match is required: send the ETag of the version you read"},
}
NO_IF_MATCH_ERRORS = {k: v for k, v in ERRORS.items() if k not in (412, 428)}

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


def required_version(if_match: str | None) -> int:
    """The version an update or transition is based on: If-Match is required (428)."""
    version = expected_version(if_match)
    if version is None:
        raise PreconditionRequired(
            'send If-Match with the ETag of the version you read (e.g. If-Match: "3"), '
            "so a change made meanwhile by someone else is not overwritten", field="If-Match")
    return version




def etag(conn: Connection, layer: Layer, item_id: int) -> dict[str, str]:
    """{"ETag": '"<version>"'} for a versioned row, else {}."""
    if not layer.versioned:
        return {}
    version = conn.execute(text(f"SELECT version FROM {layer.table} WHERE id = :id"),
                           {"id": item_id}).scalar()
    return {} if version is None else {"ETag": f'"{version}"'}


def respond(conn: Connection, layer: Layer, item_id: int, viewer: Viewer, status: int = 200) -> Response:
    body = layers.item(conn, layer, item_id, viewer)
    headers = etag(conn, layer, item_id)
    if status == 201:
        headers["Location"] = f"/api/{layer.name}/{item_id}"
    media = "application/geo+json" if layer.spatial else "application/json"
    return Response(body, status_code=status, media_type=media, headers=headers)


@dataclass(frozen=True)
class WritePolicy:
    """Who may write a layer. Planners and admins may do everything; a post account may
    create (`post_create` fields, for its own post) and update (`post_update` fields, of
    its own post's rows) when those are given. `post_key` is the body field naming the post."""

    post_create: frozenset[str] | None = None
    post_update: frozenset[str] | None = None
    post_key: str = "post_id"

    def guard(self, post_fields: frozenset[str] | None):
        return require_role("post", *PLANNERS) if post_fields is not None else require_role(*PLANNERS)


def _check_post_create(account: Account, policy: WritePolicy, layer: Layer, body: BaseModel) -> None:
    if account.is_planner:
        return
    only_fields(account, body, policy.post_create | {policy.post_key}, layer.title)
    if getattr(body, policy.post_key) != account.post_id:
        raise Forbidden(f"{policy.post_key}: a post account creates {layer.title}s for its own post "
                        f"(id {account.post_id}) only", field=policy.post_key)


def add_write_routes(layer: Layer, create_model: type[BaseModel], update_model: type[BaseModel],
                     public_model: type[BaseModel], create: Callable, update: Callable,
                     delete: Callable, policy: WritePolicy = WritePolicy()) -> None:
    CreateGuard = Annotated[Account, Depends(policy.guard(policy.post_create))]
    UpdateGuard = Annotated[Account, Depends(policy.guard(policy.post_update))]

    def create_item(conn: TxDep, account: CreateGuard, idem: IdempotencyDep,
                    body: Annotated[create_model, Body()]) -> Response:
        if (replay := idem.replay(conn)) is not None:
            return replay
        _check_post_create(account, policy, layer, body)
        return idem.remember(conn, respond(conn, layer, create(conn, body, account.username), Viewer.of(account), 201))

    def update_item(conn: TxDep, account: UpdateGuard, item_id: ItemId,
                    body: Annotated[update_model, Body()], if_match: IfMatch = None) -> Response:
        version = required_version(if_match)
        if not account.is_planner:
            require_own_post(conn, account, layer.table, item_id)
            only_fields(account, body, policy.post_update, layer.title)
        update(conn, item_id, body, account.username, version)
        return respond(conn, layer, item_id, Viewer.of(account))

    def delete_item(conn: TxDep, account: PlannerDep, item_id: ItemId, if_match: IfMatch = None) -> Response:
        delete(conn, item_id, account.username, required_version(if_match))
        return Response(status_code=204)

    ok = {"model": public_model}
    answers = {"response_class": GeoJSONResponse} if layer.spatial else {}  # the model's media type
    router.add_api_route(
        f"/{layer.name}", create_item, methods=["POST"], tags=[layer.name], status_code=201,
        summary=f"Create a {layer.title}", operation_id=f"create_{layer.table}",
        responses={201: ok, **NO_IF_MATCH_ERRORS}, **answers,
    )
    router.add_api_route(
        f"/{layer.name}/{{item_id}}", update_item, methods=["PATCH"], tags=[layer.name],
        summary=f"Change a {layer.title} (only the fields sent)", operation_id=f"update_{layer.table}",
        responses={200: ok, **ERRORS}, **answers,
    )
    router.add_api_route(
        f"/{layer.name}/{{item_id}}", delete_item, methods=["DELETE"], tags=[layer.name],
        status_code=204, summary=f"Delete a {layer.title} no longer referred to",
        operation_id=f"delete_{layer.table}", responses=ERRORS,
    )


MARKER_POLICY = WritePolicy(post_update=POST_MARKER_FIELDS)
ROAD_POLICY = WritePolicy(post_create=POST_ROAD_FIELDS, post_update=POST_ROAD_UPDATE_FIELDS)


add_write_routes(layers.MARKERS, s.MarkerCreate, s.MarkerUpdate, s.MarkerPublic,
                 resources.create_marker, resources.update_marker, resources.delete_marker, MARKER_POLICY)
add_write_routes(layers.POSTS, s.PostCreate, s.PostUpdate, s.PostPublic,
                 resources.create_post, resources.update_post, resources.delete_post)
add_write_routes(layers.ROADS, s.RoadCreate, s.RoadUpdate, s.RoadPublic,
                 resources.create_road, resources.update_road, resources.delete_road, ROAD_POLICY)
add_write_routes(layers.VILLAGES, s.VillageCreate, s.VillageUpdate, s.VillagePublic,
                 resources.create_village, resources.update_village, resources.delete_village)
add_write_routes(layers.DONORS, s.DonorCreate, s.DonorUpdate, s.DonorPublic,
                 donors.create_donor, donors.update_donor, donors.delete_donor)
add_write_routes(layers.CAMPAIGNS, s.CampaignCreate, s.CampaignUpdate, s.CampaignPublic,
                 donors.create_campaign, donors.update_campaign, donors.delete_campaign)


@router.post("/donors/{item_id}/members", tags=["donors"], status_code=201,
             summary="Add a member donor to a group", operation_id="add_donor_member",
             responses={201: {"model": s.DonorPublic}, **NO_IF_MATCH_ERRORS})
def add_member(conn: TxDep, account: PlannerDep, idem: IdempotencyDep, item_id: ItemId,
               body: Annotated[s.DonorMemberIn, Body()]) -> Response:
    if (replay := idem.replay(conn)) is not None:
        return replay
    donors.add_member(conn, item_id, body, account.username)
    return idem.remember(conn, respond(conn, layers.DONORS, item_id, Viewer.of(account), 201))


@router.delete("/donors/{item_id}/members/{member_id}", tags=["donors"], status_code=204,
               summary="Remove a member donor from a group", operation_id="remove_donor_member",
               responses=NO_IF_MATCH_ERRORS)
def remove_member(conn: TxDep, account: PlannerDep, item_id: ItemId, member_id: ItemId) -> Response:
    donors.remove_member(conn, item_id, member_id, account.username)
    return Response(status_code=204)
