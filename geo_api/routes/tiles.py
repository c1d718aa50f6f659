"""Vector tiles: `GET /tiles/{layer}/{z}/{x}/{y}.pbf` per layer, TileJSON, and an index.

Tiles are cacheable: `Cache-Control: max-age=60` (a road moved by a post shows within a
minute), `public` for anonymous callers and `private` for signed-in ones (who may see
exact marker positions; `Vary: Authorization`), and an `ETag` of the tile's content, so a
client revalidating an unchanged tile gets `304 Not Modified` with no body. Tiles are
gzip-encoded when the client accepts it (`Vary: Accept-Encoding`; the ETag then says `-gzip`).
Rendered tiles are reused while the database is unchanged (`tiles.cached_tile`).

No `from __future__ import annotations` here: FastAPI must see the per-layer query models.
"""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from geo_api.deps import ViewerDep
from geo_api.domain import tiles
from geo_api.settings import get_settings
from geo_api.domain.tiles import TILE_LAYERS, TileLayer

router = APIRouter(tags=["tiles"])

MVT = "application/vnd.mapbox-vector-tile"
CACHE_CONTROL = "max-age=60, stale-while-revalidate=300"
GZIP_MIN_BYTES = 512

Z = Annotated[int, Path(ge=0, le=tiles.MAX_ZOOM, description="zoom")]
X = Annotated[int, Path(ge=0, le=2**tiles.MAX_ZOOM - 1, description="column, 0..2^z-1")]
Y = Annotated[int, Path(ge=0, le=2**tiles.MAX_ZOOM - 1, description="row from the top (XYZ), 0..2^z-1")]


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


def tile_response(request: Request, t: tiles.Tile) -> Response:
    """The tile with its caching headers; 304 when the client holds the same content."""
    gzipped = len(t.data) >= GZIP_MIN_BYTES and "gzip" in request.headers.get("accept-encoding", "")
    etag = f'"{t.digest}-gzip"' if gzipped else f'"{t.digest}"'
    scope = "private" if "authorization" in request.headers else "public"
    headers = {"ETag": etag, "Cache-Control": f"{scope}, {CACHE_CONTROL}", "Vary": "Accept-Encoding, Authorization"}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    if gzipped:
        headers["Content-Encoding"] = "gzip"
        return Response(t.gzipped, media_type=MVT, headers=headers)
    return Response(t.data, media_type=MVT, headers=headers)


def add_tile_route(layer: TileLayer) -> None:
    Q = tiles.query_model(layer)

    def get_tile(request: Request, viewer: ViewerDep, z: Z, x: X, y: Y, query: Annotated[Q, Query()]) -> Response:
        cache = tiles.tile_cache(get_settings().api.tile_cache_mb)
        return tile_response(request, tiles.cached_tile(request.app.state.engine, layer.name, z, x, y, viewer,
                                                        query, cache))

    def get_tilejson(request: Request, query: Annotated[Q, Query()]) -> JSONResponse:
        qs = str(request.url.query)
        return JSONResponse(tiles.tilejson(layer.name, str(request.base_url), qs))

    router.add_api_route(
        f"/tiles/{layer.name}/{{z}}/{{x}}/{{y}}.pbf", get_tile, methods=["GET"],
        summary=f"{layer.title}: one Mapbox Vector Tile (layer '{layer.name}')",
        operation_id=f"tile_{layer.name}", response_class=Response,
        responses={200: {"content": {MVT: {}}, "description": "the tile (empty when nothing is in it)"},
                   304: {"description": "unchanged since the ETag in If-None-Match"},
                   422: {"description": "x or y outside the zoom's range, or a bad filter"}},
    )
    router.add_api_route(
        f"/tiles/{layer.name}.json", get_tilejson, methods=["GET"],
        summary=f"{layer.title}: TileJSON (filters given here are carried into the tile URL)",
        operation_id=f"tilejson_{layer.name}",
    )


for _layer in TILE_LAYERS.values():
    add_tile_route(_layer)


@router.get("/tiles", summary="The vector tile layers and their TileJSON")
def tile_index(request: Request) -> dict:
    base = str(request.base_url).rstrip("/")
    return {"layers": [
        {"name": layer.name, "title": layer.title, "kind": layer.kind,
         "filters": list(layer.filters), "tilejson": f"{base}/tiles/{layer.name}.json",
         "tiles": f"{base}/tiles/{layer.name}/{{z}}/{{x}}/{{y}}.pbf"}
        for layer in TILE_LAYERS.values()
    ]}
