"""Read endpoints for every layer: `GET /api/{layer}` and `GET /api/{layer}/{id}`.

No `from __future__ import annotations` here: FastAPI must see the per-layer query models.
"""


from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request, Response

from geo_api import layers
from geo_api.deps import ConnDep, ViewerDep
from geo_api.layers import Layer
from geo_api.openapi import GeoJSONResponse

router = APIRouter(prefix="/api")


def _media(layer: Layer) -> str:
    return "application/geo+json" if layer.spatial else "application/json"


def _next_href(request: Request) -> str:
    """This request's URL with `after=` last, ready for the last id to be appended."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "after"]
    return f"{request.url.path}?{urlencode(params + [('after', '')])}"


def add_layer_routes(layer: Layer) -> None:
    Q = layers.query_model(layer)
    kind = "GeoJSON FeatureCollection" if layer.spatial else "page of items"
    answers = {"response_class": GeoJSONResponse} if layer.spatial else {}  # the documented media type

    def list_items(request: Request, conn: ConnDep, viewer: ViewerDep, query: Annotated[Q, Query()]) -> Response:
        body = layers.collection(conn, layer, query, _next_href(request), viewer)
        return Response(body, media_type=_media(layer))

    def get_item(conn: ConnDep, viewer: ViewerDep, item_id: Annotated[int, Path(ge=1, le=2**63 - 1)]) -> Response:
        from geo_api.routes.writes import etag  # the version to send back in If-Match

        return Response(layers.item(conn, layer, item_id, viewer), media_type=_media(layer),
                        headers=etag(conn, layer, item_id))

    router.add_api_route(
        f"/{layer.name}", list_items, methods=["GET"], tags=[layer.name],
        summary=f"List {layer.title}s ({kind}, keyset-paged)",
        operation_id=f"list_{layer.table}", **answers,
    )
    router.add_api_route(
        f"/{layer.name}/{{item_id}}", get_item, methods=["GET"], tags=[layer.name],
        summary=f"One {layer.title}", operation_id=f"get_{layer.table}",
        responses={404: {"description": f"no such {layer.title}"}}, **answers,
    )


for _layer in layers.LAYERS:
    add_layer_routes(_layer)

MeetingQuery = layers.query_model(layers.MEETINGS)


@router.get("/village-pairs/{pair_id}/meetings", tags=["village-pairs"],
            summary="Meetings of one twinned village pair")
def pair_meetings(
    request: Request, conn: ConnDep, viewer: ViewerDep, pair_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    query: Annotated[MeetingQuery, Query()],
) -> Response:
    layers.require_exists(conn, layers.VILLAGE_PAIRS, pair_id)
    query = query.model_copy(update={"pair_id": pair_id})
    return Response(layers.collection(conn, layers.MEETINGS, query, _next_href(request), viewer),
                    media_type="application/json")
