"""Road lifecycle and inauguration schemas."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from geo_api.vocabulary import ROAD_STATUSES
from geo_api.schemas.types import IsoDate, IsoDateTime

RoadStatus = Literal[ROAD_STATUSES]  # type: ignore[valid-type]


class TransitionEvidence(BaseModel):
    """What backs a transition. The typed members are checked and acted on; any other
    member (e.g. a GPX track id, a decision number) is kept as given in the history."""

    model_config = ConfigDict(extra="allow")

    surveyed_line: dict[str, Any] | None = Field(
        default=None, description="→surveyed: the surveyed line (GeoJSON LineString); replaces the planned line")
    as_built_line: dict[str, Any] | None = Field(
        default=None, description="→completed: the as-built line (GeoJSON LineString)")
    completed_on: IsoDate | None = Field(default=None, description="→completed: the completion date")
    started_on: IsoDate | None = Field(
        default=None, description="→under_construction: ground-breaking date (default: occurred_at's date)")
    photos: list[str] = Field(default_factory=list, max_length=50, description="photo references")
    documents: list[str] = Field(default_factory=list, max_length=50, description="document references")


class TransitionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to_status: RoadStatus
    note: str | None = Field(default=None, max_length=4000)
    occurred_at: IsoDateTime | None = Field(
        default=None, description="when it happened, with a time zone (default: now)")
    evidence: TransitionEvidence = Field(default_factory=TransitionEvidence)
    override_reason: str | None = Field(
        default=None, max_length=2000,
        description="→funded only: a planner's reason to fund before commitments cover the estimate")
    reported_from: dict[str, Any] | None = Field(
        default=None, description="where the report was made (GeoJSON Point)")

    @field_validator("note", "override_reason")
    @classmethod
    def _blank_is_none(cls, v: str | None) -> str | None:
        return v.strip() or None if v is not None else None


class ProgressCreate(BaseModel):
    """A physical progress report while the road is under construction."""

    model_config = ConfigDict(extra="forbid")

    progress_pct: int = Field(ge=0, le=100)
    note: str | None = Field(default=None, max_length=4000)
    occurred_at: IsoDateTime | None = None
    correction: bool = Field(
        default=False, description="lower than the last report: allowed only as a correction with a note")
    evidence: dict[str, Any] = Field(default_factory=dict)
    reported_from: dict[str, Any] | None = Field(default=None, description="GeoJSON Point")

    @field_validator("note")
    @classmethod
    def _blank_is_none(cls, v: str | None) -> str | None:
        return v.strip() or None if v is not None else None


class RoadEventPublic(BaseModel):
    id: int
    from_status: RoadStatus | None
    to_status: RoadStatus
    occurred_at: datetime
    recorded_at: datetime
    actor: str
    note: str | None
    progress_pct: int | None
    evidence: dict[str, Any]
    reported_from: dict[str, Any] | None


class RoadHistoryPublic(BaseModel):
    road_id: int
    status: RoadStatus
    items: list[RoadEventPublic]


class InaugurationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=500)
    held_on: IsoDate
    place: str = Field(min_length=1, max_length=500)
    commune: str | None = Field(default=None, max_length=200)
    district: str | None = Field(default=None, max_length=200)
    province: str = Field(min_length=1, max_length=200)
    geometry: dict[str, Any] | None = Field(default=None, description="where it was held (GeoJSON Point)")
    officials: str | None = Field(default=None, max_length=4000)
    notes: str | None = Field(default=None, max_length=4000)
    road_ids: list[int] = Field(min_length=1, max_length=200, description="the completed roads inaugurated")
    donor_ids: list[int] = Field(default_factory=list, max_length=500, description="donors credited")

    @field_validator("road_ids", "donor_ids")
    @classmethod
    def _distinct_ids(cls, v: list[int]) -> list[int]:
        if any(i < 1 for i in v):
            raise ValueError("ids are positive integers")
        dupes = sorted({i for i in v if v.count(i) > 1})
        if dupes:
            raise ValueError(f"listed more than once: {', '.join(map(str, dupes))}")
        return v

    @field_validator("title", "place", "province")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v.strip()


class InaugurationPublic(BaseModel):
    """An inauguration as GET /api/inaugurations/{id} shows it (a GeoJSON Feature)."""

    type: Literal["Feature"]
    id: int
    geometry: dict[str, Any] | None
    properties: dict[str, Any]
