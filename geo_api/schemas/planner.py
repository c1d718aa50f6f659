"""Planner schemas: what a planner sends (weights, budget, caps, must-include markers) and
what comes back (ranked candidates with the breakdown of their score, the chosen set).

Money is whole đồng (`VND`: ints or digit strings, 1..10^15, never fractions); costs in
responses are JSON integers.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from geo_api.schemas.resources import VND, Id
from geo_api.schemas.types import NOT_BLANK, IsoDate

FACTORS = ("distance", "terrain", "requested", "people", "pairs", "inspection", "travel")
Factor = Literal["distance", "terrain", "requested", "people", "pairs", "inspection", "travel"]
Province = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=NOT_BLANK)]
Weight = Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False)]
Distance = Annotated[float, Field(ge=0, le=100_000, allow_inf_nan=False,
                                  description="metres; markers closer than this to the network are not candidates")]
ExportFormat = Literal["json", "geojson", "csv"]


class Weights(BaseModel):
    """How much each factor counts. A factor scores 0..1 (see the breakdown), times its weight;
    the default weights add up to 100, so a score reads as points out of 100."""

    model_config = ConfigDict(extra="forbid")

    distance: Weight = Field(25, description="distance from the marker to the road network")
    terrain: Weight = Field(15, description="terrain difficulty 1..5")
    requested: Weight = Field(20, description="the responsible post asked for a road")
    people: Weight = Field(10, description="people in Vietnamese villages nearby")
    pairs: Weight = Field(5, description="twinned village pairs nearby")
    inspection: Weight = Field(10, description="time since the marker was last inspected")
    travel: Weight = Field(15, description="travel distance from the responsible post over the network")


class WeightsUpdate(BaseModel):
    """Weights to change for one request; the others keep their configured value."""

    model_config = ConfigDict(extra="forbid")

    distance: Weight | None = None
    terrain: Weight | None = None
    requested: Weight | None = None
    people: Weight | None = None
    pairs: Weight | None = None
    inspection: Weight | None = None
    travel: Weight | None = None

    def apply(self, base: Weights) -> Weights:
        return base.model_copy(update={k: v for k, v in self.model_dump().items() if v is not None})


class CandidateQuery(BaseModel):
    """Query string of GET /api/plan/candidates."""

    model_config = ConfigDict(extra="forbid")

    province: Province | None = None
    min_distance_m: Distance | None = None
    as_of: IsoDate | None = Field(None, description="the day 'time since last inspection' is counted to (default today)")
    limit: int = Field(100, ge=1, le=100_000, description="how many of the ranked candidates to return")
    format: ExportFormat = "json"
    lang: Literal["vi", "en"] = Field("vi", description="language of labels and reasons")
    w_distance: Weight | None = None
    w_terrain: Weight | None = None
    w_requested: Weight | None = None
    w_people: Weight | None = None
    w_pairs: Weight | None = None
    w_inspection: Weight | None = None
    w_travel: Weight | None = None

    def weights(self) -> WeightsUpdate:
        return WeightsUpdate(**{f: getattr(self, f"w_{f}") for f in FACTORS})


class PlanCreate(BaseModel):
    """A planning question: which markers to fund with this budget?"""

    model_config = ConfigDict(extra="forbid")

    budget: VND
    province: Province | None = Field(None, description="only this province's markers (e.g. Lạng Sơn)")
    province_caps: dict[Province, VND] = Field(
        default_factory=dict, description="at most this much VND per province, e.g. {\"Cao Bằng\": 2000000000}")
    must_include: list[Id] = Field(default_factory=list, max_length=1000,
                                   description="marker ids that must be in the chosen set")
    weights: WeightsUpdate | None = None
    min_distance_m: Distance | None = None
    as_of: IsoDate | None = None
    shared_roads: bool = Field(True, description="let one road continue from a chosen marker to a neighbour")

    @field_validator("must_include")
    @classmethod
    def _unique(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError("must_include lists a marker more than once")
        return v


# ---------------------------------------------------------------------------- responses


class FactorPublic(BaseModel):
    factor: Factor
    label: str
    value: float | int | bool | None = Field(description="the raw value (metres, days, people, 1..5, yes/no)")
    normalised: float = Field(description="0..1")
    weight: float
    points: float = Field(description="normalised × weight; the points add up to the score")
    reason: str


class CandidatePublic(BaseModel):
    rank: int
    marker_id: int
    number: str
    segment: str
    province: str
    post_id: int | None
    post_name: str | None
    lon: float
    lat: float
    distance_to_network_m: float
    nearest_network: dict = Field(description="kind (network / branch_road), id, label, lon, lat")
    new_road_m: float = Field(description="shortest line to the network × winding factor")
    cost_vnd: int
    travel_m: float | None
    travel_method: str
    score: float
    breakdown: list[FactorPublic]


class ChoicePublic(BaseModel):
    marker_id: int
    number: str
    province: str
    score: float
    cost_vnd: int = Field(description="what this choice adds: its own road, or the extension")
    connects_to: str = Field(description="network, or marker:<id> when the road continues from a chosen neighbour")
    connects_to_number: str | None = Field(description="that neighbour's marker number")
    road_m: float


class SelectionPublic(BaseModel):
    method: Literal["optimal", "greedy"]
    status: str
    markers: int
    total_score: float
    total_cost_vnd: int
    remaining_vnd: int
    by_province: dict[str, int]
    upper_bound_score: float | None = Field(
        description="no plan can score more (the LP relaxation); the optimal plan's gap to it is "
                    "what 'optimal' proved — with status time_limit it shows how close the answer is")
    seconds: float
    chosen: list[ChoicePublic]


class PlanPublic(BaseModel):
    budget_vnd: int
    province: str | None
    province_caps: dict[str, int]
    must_include: list[int]
    as_of: dt.date
    weights: Weights
    candidates: int
    optimal: SelectionPublic
    greedy: SelectionPublic
    score_gain_over_greedy: float
    ranked: list[CandidatePublic] = Field(description="all candidates, best score first")
