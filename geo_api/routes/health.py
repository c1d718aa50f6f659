from fastapi import APIRouter
from sqlalchemy.exc import OperationalError

from geo_api.deps import EngineDep
from geo_api.domain.health import check_health
from geo_api.errors import DatabaseUnavailable

router = APIRouter(tags=["health"])


@router.get("/api/health", summary="Database reachable, PostGIS version, migration head")
def health(engine: EngineDep) -> dict:
    try:
        return check_health(engine)
    except OperationalError as exc:
        raise DatabaseUnavailable(f"database unreachable: {exc.orig.__class__.__name__}") from exc
