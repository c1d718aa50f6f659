"""Request and response schemas of markers, posts, branch roads, donors, campaigns, villages.

Per resource: `XCreate` (POST body), `XUpdate` (PATCH body: every field optional, only the
fields sent are changed) and `XPublic` (what GET and the writes return). Bodies refuse
unknown fields (`extra="forbid"`), so a client cannot set `id`, `version`, timestamps or a
road's `status` (that changes only through the road lifecycle) by sending them.
Geometries are GeoJSON objects in the `geometry` field, EPSG:4326 unless `crs` names
another CRS; they are checked by `geo_api.domain.geometry.parse_geometry`.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel, ConfigDict, Field, PlainValidator, StringConstraints, WithJsonSchema, model_validator,
)

from geo_api.schemas.types import NOT_BLANK, IsoDate

MAX_VND = 10**15

# Decimals described as the numbers they are, bounds included (pydantic's own description
# leaves max_digits out and also offers an unbounded string form).
ChainageKm = Annotated[Decimal, Field(ge=0, lt=10**6, max_digits=9, decimal_places=3), WithJsonSchema(
    {"type": "number", "minimum": 0, "exclusiveMaximum": 10**6, "description": "km, 3 decimals at most"})]
WidthM = Annotated[Decimal, Field(gt=0, lt=100, max_digits=4, decimal_places=2), WithJsonSchema(
    {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 100, "description": "metres, 2 decimals at most"})]

# ---------------------------------------------------------------------------- value types


def _vnd(value: Any) -> int:
    """Whole đồng, 1..10^15: ints, integer-valued floats and strings of digits."""
    if isinstance(value, bool):
        raise ValueError("must be a whole number of đồng, not true/false")
    if isinstance(value, int):
        amount = value
    elif isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"must be a whole number of đồng; {value} has a fractional part")
        amount = int(value)
    elif isinstance(value, Decimal):
        if value != value.to_integral_value():
            raise ValueError(f"must be a whole number of đồng; {value} has a fractional part")
        amount = int(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        amount = int(value)
    else:
        raise ValueError(f"must be a whole number of đồng (digits only), got {value!r}")
    if amount <= 0:
        raise ValueError(f"must be positive, got {amount}")
    if amount > MAX_VND:
        raise ValueError(f"must be at most 10^15 đồng, got {amount}")
    return amount


VND = Annotated[
    int,
    PlainValidator(_vnd),
    WithJsonSchema({
        "anyOf": [{"type": "integer", "minimum": 1, "maximum": MAX_VND},
                  {"type": "string", "pattern": r"^[0-9]+$"}],
        "description": "VND, whole đồng, 1..10^15; a string of digits is accepted",
    }),
]

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300, pattern=NOT_BLANK)]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=NOT_BLANK)]
Notes = Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000)]
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]
MarkerNumber = Annotated[str, StringConstraints(
    strip_whitespace=True, pattern=r"^[0-9]+(/[0-9]+)?[A-Z]?$", max_length=32)]
GeoJSON = Annotated[dict[str, Any], Field(
    description="GeoJSON geometry object; EPSG:4326 [longitude, latitude] unless `crs` is given",
    examples=[{"type": "Point", "coordinates": [106.4861, 22.3903]}],
)]
CrsName = Annotated[str, Field(
    max_length=200, description="CRS of `geometry` when not EPSG:4326, e.g. EPSG:32648 (UTM 48N)")]

MarkerKind = Literal["main", "sub", "paired"]
MarkerAccess = Literal["none", "footpath", "earth", "concrete"]
DonorKind = Literal["agency", "cluster", "company", "person", "organisation"]
Country = Literal["VNM", "CHN", "LAO", "KHM"]

# Fields a client may read but never write, with where they do change.
READ_ONLY = {
    "id": "it is assigned by the server",
    "version": "it is bumped by every update",
    "created_at": "it is set by the server",
    "updated_at": "it is set by the server",
    "is_generated": "it marks generated demo data",
    "status": "a road's status changes only through POST /api/roads/{id}/transitions",
    "progress_pct": "progress is reported through the road lifecycle",
    "completed_on": "it is recorded by the 'completed' transition",
    "actual_start": "it is recorded by the road lifecycle",
    "actual_cost": "it is recorded by the road lifecycle",
    "as_built_geom": "the as-built line is recorded by the road lifecycle",
    "length_m": "it is computed from the line",
}


class WriteModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_read_only(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, why in READ_ONLY.items():
                if name in data:
                    raise ValueError(f"{name} cannot be set: {why}")
        return data


class PatchModel(WriteModel):
    """PATCH body: only the fields sent change; `null` clears optional fields only."""

    REQUIRED: ClassVar[frozenset[str]] = frozenset()
    GEOMETRIES: ClassVar[frozenset[str]] = frozenset({"geometry"})

    @model_validator(mode="after")
    def _no_null_required(self):
        nulls = sorted(n for n in self.model_fields_set & self.REQUIRED if getattr(self, n) is None)
        if nulls:
            raise ValueError(f"{', '.join(nulls)} cannot be null")
        if not self.model_fields_set:
            raise ValueError("nothing to update: send at least one field")
        if "crs" in self.model_fields_set and not self.model_fields_set & self.GEOMETRIES:
            raise ValueError("crs only applies together with a new geometry")
        return self


# ---------------------------------------------------------------------------- markers


class MarkerCreate(WriteModel):
    segment_id: Id = Field(description="border segment the marker stands on")
    number: MarkerNumber = Field(description="marker number, e.g. 1033 or 1033/1")
    kind: MarkerKind = "main"
    geometry: GeoJSON
    crs: CrsName | None = None
    chainage_km: ChainageKm | None = None
    province: Text
    district: Text | None = None
    commune: Text | None = None
    post_id: Id | None = Field(default=None, description="responsible border-guard post")
    access: MarkerAccess = "none"
    terrain_difficulty: Annotated[int, Field(ge=1, le=5)] = 3
    requested_by_post: bool = False
    last_inspected_on: IsoDate | None = None
    notes: Notes | None = None


class MarkerUpdate(PatchModel):
    REQUIRED: ClassVar = frozenset({"segment_id", "number", "kind", "geometry", "province", "access",
                                    "terrain_difficulty", "requested_by_post"})
    segment_id: Id | None = None
    number: MarkerNumber | None = None
    kind: MarkerKind | None = None
    geometry: GeoJSON | None = None
    crs: CrsName | None = None
    chainage_km: ChainageKm | None = None
    province: Text | None = None
    district: Text | None = None
    commune: Text | None = None
    post_id: Id | None = None
    access: MarkerAccess | None = None
    terrain_difficulty: Annotated[int, Field(ge=1, le=5)] | None = None
    requested_by_post: bool | None = None
    last_inspected_on: IsoDate | None = None
    notes: Notes | None = None


# ---------------------------------------------------------------------------- posts


class PostCreate(WriteModel):
    code: Code
    name: Text
    province: Text
    district: Text | None = None
    commune: Text | None = None
    segment_id: Id | None = None
    geometry: GeoJSON = Field(description="the post's location (Point)")
    crs: CrsName | None = None
    area: dict[str, Any] | None = Field(
        default=None, description="area of responsibility: GeoJSON Polygon or MultiPolygon (same crs)")
    notes: Notes | None = None


class PostUpdate(PatchModel):
    REQUIRED: ClassVar = frozenset({"code", "name", "province", "geometry"})
    GEOMETRIES: ClassVar = frozenset({"geometry", "area"})
    code: Code | None = None
    name: Text | None = None
    province: Text | None = None
    district: Text | None = None
    commune: Text | None = None
    segment_id: Id | None = None
    geometry: GeoJSON | None = None
    crs: CrsName | None = None
    area: dict[str, Any] | None = None
    notes: Notes | None = None



# ---------------------------------------------------------------------------- branch roads


class RoadCreate(WriteModel):
    """A new branch road starts `proposed`; its line is the planned (later surveyed) line."""

    code: Code
    name: Text
    post_id: Id = Field(description="the post that requests and uses the road")
    marker_ids: Annotated[list[Id], Field(min_length=1, max_length=50)] = Field(
        description="markers the road serves (at least one)")
    geometry: GeoJSON = Field(description="planned line (LineString)")
    crs: CrsName | None = None
    province: Text | None = Field(default=None, description="defaults to the first marker's")
    district: Text | None = Field(default=None, description="defaults to the first marker's")
    commune: Text | None = Field(default=None, description="defaults to the first marker's")
    surface: Text = "concrete"
    width_m: WidthM | None = None
    estimated_cost: VND | None = None
    planned_start: IsoDate | None = None
    planned_end: IsoDate | None = None
    contractor: Text | None = None
    notes: Notes | None = None


class RoadUpdate(PatchModel):
    REQUIRED: ClassVar = frozenset({"code", "name", "post_id", "marker_ids", "geometry", "province",
                                    "surface"})
    code: Code | None = None
    name: Text | None = None
    post_id: Id | None = None
    marker_ids: Annotated[list[Id], Field(min_length=1, max_length=50)] | None = None
    geometry: GeoJSON | None = None
    crs: CrsName | None = None
    province: Text | None = None
    district: Text | None = None
    commune: Text | None = None
    surface: Text | None = None
    width_m: WidthM | None = None
    estimated_cost: VND | None = None
    planned_start: IsoDate | None = None
    planned_end: IsoDate | None = None
    contractor: Text | None = None
    notes: Notes | None = None


# ---------------------------------------------------------------------------- donors


class DonorMemberIn(WriteModel):
    member_id: Id = Field(description="the member donor")
    role: Text | None = Field(default=None, description="e.g. cluster head, deputy head, member")


class DonorCreate(WriteModel):
    code: Code
    name: Text
    name_en: Text | None = None
    kind: DonorKind
    is_group: bool = Field(default=False, description="a group (e.g. an emulation cluster) of donors")
    province: Text | None = None
    notes: Notes | None = None
    members: list[DonorMemberIn] = Field(
        default_factory=list, max_length=500, description="member donors of a group")

    @model_validator(mode="after")
    def _members_only_for_groups(self):
        if self.members and not self.is_group:
            raise ValueError("members given but is_group is false: only a group has members")
        ids = [m.member_id for m in self.members]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"member {', '.join(map(str, dupes))} listed more than once")
        return self


class DonorUpdate(PatchModel):
    REQUIRED: ClassVar = frozenset({"code", "name", "kind", "is_group"})
    code: Code | None = None
    name: Text | None = None
    name_en: Text | None = None
    kind: DonorKind | None = None
    is_group: bool | None = None
    province: Text | None = None
    notes: Notes | None = None


# ---------------------------------------------------------------------------- campaigns


class CampaignCreate(WriteModel):
    code: Code = Field(examples=["39/KH-CTĐ-2022"])
    name: Text
    organiser_id: Id | None = Field(default=None, description="organising donor (e.g. the cluster)")
    province: Text | None = None
    plan_date: IsoDate | None = None
    starts_on: IsoDate | None = None
    ends_on: IsoDate | None = None
    target_amount: VND | None = None
    notes: Notes | None = None


class CampaignUpdate(PatchModel):
    REQUIRED: ClassVar = frozenset({"code", "name"})
    code: Code | None = None
    name: Text | None = None
    organiser_id: Id | None = None
    province: Text | None = None
    plan_date: IsoDate | None = None
    starts_on: IsoDate | None = None
    ends_on: IsoDate | None = None
    target_amount: VND | None = None
    notes: Notes | None = None


# ---------------------------------------------------------------------------- villages


class VillageCreate(WriteModel):
    code: Code
    name: Text
    country: Country = Field(description="ISO 3166 alpha-3; the point must lie in that country")
    admin1: Text = Field(description="province (Viet Nam) or first-level division")
    admin2: Text | None = None
    admin3: Text | None = None
    population: Annotated[int, Field(ge=0, le=10**8)] | None = None
    households: Annotated[int, Field(ge=0, le=10**8)] | None = None
    geometry: GeoJSON
    crs: CrsName | None = None


class VillageUpdate(PatchModel):
    REQUIRED: ClassVar = frozenset({"code", "name", "country", "admin1", "geometry"})
    code: Code | None = None
    name: Text | None = None
    country: Country | None = None
    admin1: Text | None = None
    admin2: Text | None = None
    admin3: Text | None = None
    population: Annotated[int, Field(ge=0, le=10**8)] | None = None
    households: Annotated[int, Field(ge=0, le=10**8)] | None = None
    geometry: GeoJSON | None = None
    crs: CrsName | None = None


# ---------------------------------------------------------------------------- public shapes
# What GET /api/<layer>/{id} returns (built in SQL by geo_api.layers) and so what the
# writes return. Spatial resources are GeoJSON Features; donors and campaigns flat items.


class PublicModel(BaseModel):
    """Documents the response; properties added to the read layer later are let through."""


class PointGeometry(PublicModel):
    type: Literal["Point"]
    coordinates: list[float]


class LineGeometry(PublicModel):
    type: Literal["LineString"]
    coordinates: list[list[float]]


class MarkerProperties(PublicModel):
    number: str
    kind: MarkerKind
    segment: str
    chainage_km: Decimal | None
    province: str
    district: str | None
    commune: str | None
    post_id: int | None
    post_name: str | None
    access: MarkerAccess
    terrain_difficulty: int
    requested_by_post: bool
    last_inspected_on: dt.date | None
    is_generated: bool


class MarkerPublic(PublicModel):
    type: Literal["Feature"]
    id: int
    geometry: PointGeometry
    properties: MarkerProperties


class PostProperties(PublicModel):
    code: str
    name: str
    province: str
    district: str | None
    commune: str | None
    segment: str | None
    markers: int
    roads: int
    is_generated: bool


class PostPublic(PublicModel):
    type: Literal["Feature"]
    id: int
    geometry: PointGeometry
    properties: PostProperties


class RoadProperties(PublicModel):
    code: str
    name: str
    status: str
    post_id: int
    post_name: str
    province: str
    district: str | None
    commune: str | None
    length_m: Decimal
    as_built: bool
    estimated_cost: int | None
    actual_cost: int | None
    progress_pct: int
    completed_on: dt.date | None
    markers: list[str] = Field(description="numbers of the markers served")
    inaugurated_on: dt.date | None
    version: int
    is_generated: bool


class RoadPublic(PublicModel):
    type: Literal["Feature"]
    id: int
    geometry: LineGeometry = Field(description="as-built line when recorded, else the planned line")
    properties: RoadProperties


class DonorMemberOut(PublicModel):
    id: int
    role: str | None


class DonorPublic(PublicModel):
    id: int
    code: str
    name: str
    name_en: str | None
    kind: DonorKind
    is_group: bool
    province: str | None
    members: list[DonorMemberOut]
    groups: list[int] = Field(description="groups this donor is a member of")
    is_generated: bool


class CampaignPublic(PublicModel):
    id: int
    code: str
    name: str
    organiser_id: int | None
    province: str | None
    plan_date: dt.date | None
    starts_on: dt.date | None
    ends_on: dt.date | None
    target_amount: int | None
    is_generated: bool


class VillageProperties(PublicModel):
    code: str
    name: str
    country: Country
    admin1: str
    admin2: str | None
    admin3: str | None
    population: int | None
    households: int | None
    is_generated: bool


class VillagePublic(PublicModel):
    type: Literal["Feature"]
    id: int
    geometry: PointGeometry
    properties: VillageProperties
