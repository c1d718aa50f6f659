"""Twinned village pairs and their quarterly meetings: Create / Update / Public schemas."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from geo_api.schemas.types import NOT_BLANK, NUMBER_ONLY, IsoDate

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=NOT_BLANK)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000)]
Topic = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=NOT_BLANK)]
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VillagePairCreate(_Strict):
    """A Vietnamese village twinned with a village across the border."""

    vn_village_id: Id = Field(description="the village on the Vietnamese side (country VNM)")
    foreign_village_id: Id = Field(description="the village across the border (CHN, LAO or KHM)")
    post_id: Id | None = Field(default=None, description="the border-guard post supporting the pair")
    twinned_on: IsoDate | None = Field(default=None, description="date of the twinning; not in the future")
    notes: LongText | None = None


class VillagePairUpdate(_Strict):
    """Fields omitted stay as they are; null clears. The two villages cannot change: record a
    new pair instead."""

    post_id: Id | None = None
    twinned_on: IsoDate | None = None
    notes: LongText | None = None


class VillagePairProperties(BaseModel):
    vn_village_id: int
    vn_village: str
    vn_province: str
    foreign_village_id: int
    foreign_village: str
    foreign_country: Literal["CHN", "LAO", "KHM"]
    foreign_admin1: str
    post_id: int | None
    post_name: str | None
    twinned_on: dt.date | None
    meetings: int
    last_meeting_on: dt.date | None
    last_meeting_quarter: str | None = Field(description="the latest quarter met for, e.g. 2023-Q2")
    overdue: bool = Field(description="no meeting for the last completed quarter")


class VillagePairPublic(BaseModel):
    """A pair as a GeoJSON Feature: a line from the Vietnamese village to its twin."""

    type: Literal["Feature"]
    id: int
    geometry: dict
    properties: VillagePairProperties


class MeetingCreate(_Strict):
    """A quarterly meeting (giao ban) of a pair.

    `year` and `quarter` name the quarter the meeting is *for*. Left out, they come from
    `held_on`. Given, they must be the quarter of `held_on` or the one before it: meetings
    are often held just after their quarter ends (Duy Tân and Bản Phường held their Q2-2023
    meeting on 31/07/2023).
    """

    held_on: IsoDate = Field(description="the day the meeting took place; not in the future")
    year: Annotated[int, Field(ge=1975, le=2100)] | None = None
    quarter: Annotated[int, Field(ge=1, le=4)] | None = None
    place: Text | None = None
    attendance: Annotated[int, Field(ge=0, le=100_000), NUMBER_ONLY] | None = None
    topics: Annotated[list[Topic], Field(max_length=50)] = []
    agreements: LongText | None = None
    notes: LongText | None = None

    @model_validator(mode="after")
    def _both_or_neither(self):
        if (self.year is None) != (self.quarter is None):
            raise ValueError("give both year and quarter (the quarter the meeting is for), or neither")
        return self


class MeetingUpdate(_Strict):
    """Fields omitted stay as they are; null clears the optional ones."""

    held_on: IsoDate | None = None
    year: Annotated[int, Field(ge=1975, le=2100)] | None = None
    quarter: Annotated[int, Field(ge=1, le=4)] | None = None
    place: Text | None = None
    attendance: Annotated[int, Field(ge=0, le=100_000), NUMBER_ONLY] | None = None
    topics: Annotated[list[Topic], Field(max_length=50)] | None = None
    agreements: LongText | None = None
    notes: LongText | None = None

    @model_validator(mode="after")
    def _required_stay_set(self):
        for name in ("held_on", "year", "quarter", "topics"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be cleared")
        if ("year" in self.model_fields_set) != ("quarter" in self.model_fields_set):
            raise ValueError("give both year and quarter (the quarter the meeting is for), or neither")
        return self


class MeetingPublic(BaseModel):
    id: int
    pair_id: int
    held_on: dt.date
    year: int
    quarter: int
    place: str | None
    attendance: int | None
    topics: list[str]
    agreements: str | None
    notes: str | None


class OverduePair(BaseModel):
    id: int
    vn_village: str
    vn_province: str
    foreign_village: str
    foreign_country: str
    post_id: int | None
    post_name: str | None
    twinned_on: dt.date | None
    last_meeting_on: dt.date | None
    last_meeting_quarter: str | None


class OverdueReport(BaseModel):
    as_of: dt.date
    quarter: str = Field(description="the last completed quarter, e.g. 2023-Q2")
    count: int
    items: list[OverduePair]
