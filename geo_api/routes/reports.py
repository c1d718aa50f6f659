"""Reports per province and per border segment (JSON, or CSV with ?format=csv)."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from sqlalchemy import Connection

from geo_api.deps import ConnDep
from geo_api.domain import reports

router = APIRouter(prefix="/api/reports", tags=["reports"])

Format = Annotated[Literal["json", "csv"], Query(description="json (default) or csv (UTF-8, header row)")]


def render(conn: Connection, sql: str, fmt: str, name: str, params: dict[str, Any] | None = None,
           extra: dict[str, Any] | None = None) -> Response:
    """A report in the requested format; CSV is offered as a download named `name`.csv."""
    if fmt == "csv":
        return Response(reports.as_csv(conn, sql, params), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    return Response(reports.as_json(conn, sql, params, extra), media_type="application/json")


@router.get("/provinces", summary="Per province: roads by status, km built, markers reached, VND by kind")
def provinces(conn: ConnDep, format: Format = "json") -> Response:
    return render(conn, reports.PROVINCES_SQL, format, "provinces")


@router.get("/segments", summary="Per border segment: roads by status, km built, markers reached, VND by kind")
def segments(conn: ConnDep, format: Format = "json") -> Response:
    return render(conn, reports.SEGMENTS_SQL, format, "segments")
