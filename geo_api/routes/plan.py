"""The planner API, for planners and admins: ranked candidates with reasons, and the budget
plan (exact and greedy). Nothing here writes; the network summary and settings are public."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from fastapi.encoders import jsonable_encoder

from geo_api.guards import PlannerDep
from geo_api.deps import ConnDep
from geo_api.domain import network, planner
from geo_api.schemas.planner import (
    CandidatePublic,
    CandidateQuery,
    ExportFormat,
    PlanCreate,
    PlanPublic,
)
from geo_api.settings import get_settings

router = APIRouter(prefix="/api/plan", tags=["planner"])

Lang = Annotated[Literal["vi", "en"], Query(description="language of labels and reasons (vi by default)")]
Format = Annotated[ExportFormat, Query(description="json (default), geojson or csv (UTF-8, header row)")]


def export(body, fmt: str, name: str) -> Response:
    if fmt == "csv":
        return Response(body, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    media = "application/geo+json" if fmt == "geojson" else "application/json"
    return Response(json.dumps(jsonable_encoder(body), ensure_ascii=False), media_type=media)


@router.get("/candidates", response_model=list[CandidatePublic],
            summary="Markers that need a road, best score first, each with its score breakdown and cost",
            responses={412: {"description": "no road network loaded"},
                       422: {"description": "bad parameter or unknown province"}})
def get_candidates(_: PlannerDep, conn: ConnDep, q: Annotated[CandidateQuery, Query()]) -> Response:
    lang = q.lang
    ranked = planner.candidates(conn, q.province, q.min_distance_m, q.weights(), q.as_of)
    ranked = ranked[:q.limit]
    if q.format == "csv":
        return export(planner.to_csv(ranked, lang=lang), "csv", "candidates")
    if q.format == "geojson":
        return export(planner.to_geojson(ranked, lang=lang), "geojson", "candidates")
    return export([c.public(lang) for c in ranked], "json", "candidates")


@router.post("", response_model=PlanPublic,
             summary="Choose markers to fund within a budget: the optimal set, and the greedy one beside it",
             responses={401: {"description": "no account"}, 403: {"description": "not a planner or admin"},
                        404: {"description": "a must-include marker that does not exist"},
                        412: {"description": "no road network loaded"},
                        422: {"description": "bad input, a must-include marker that is not a candidate, "
                                             "or constraints no plan can meet; nothing is written"}})
def post_plan(body: PlanCreate, conn: ConnDep, _: PlannerDep, format: Format = "json", lang: Lang = "vi",
              ranked_limit: Annotated[int, Query(ge=0, le=100_000,
                                                 description="how many ranked candidates the JSON lists")] = 200,
              ) -> Response:
    plan = planner.make_plan(conn, body)
    if format == "csv":
        return export(planner.to_csv(plan.ranked, plan, lang), "csv", "plan")
    if format == "geojson":
        return export(planner.to_geojson(plan.ranked, plan, lang), "geojson", "plan")
    return export(plan.public(lang, ranked_limit), "json", "plan")


@router.get("/settings", summary="The planner's configured weights, costs and thresholds")
def planner_settings() -> dict:
    cfg = get_settings().planner
    return jsonable_encoder(cfg.model_dump() | {"winding_factor": str(cfg.winding_factor)})


@router.get("/network", summary="The road network the planner measures against: edges and km per class")
def get_network(conn: ConnDep) -> dict:
    return network.summary(conn)
