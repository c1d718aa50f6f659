"""POST /api/sync: a post's phone hands over the field updates it queued offline."""

from fastapi import APIRouter

from geo_api.guards import PostOfficerDep
from geo_api.deps import TxDep
from geo_api.domain import sync as domain
from geo_api.routes.writes import AUTH_ERRORS
from geo_api.schemas.sync import SyncRequest, SyncResponse

router = APIRouter(prefix="/api", tags=["sync"])


@router.post("/sync", response_model=SyncResponse,
             summary="Apply a queue of offline field updates, each once, in the order recorded",
             responses={**AUTH_ERRORS, 422: {"description": "the request itself is malformed or too long; "
                                                            "a bad item is reported in its result instead"}})
def sync(body: SyncRequest, conn: TxDep, account: PostOfficerDep) -> dict:
    """Per item: applied, conflict (the road changed since base_version: nothing written, its
    current state returned), rejected / forbidden / not_found (with the reason), and
    `duplicate` when its client_id was already synced (the first result is returned)."""
    return domain.sync(conn, account, body.items)
