"""Offline queue sync: what a post's phone sends (POST /api/sync) and what it gets back."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from geo_api.schemas.types import IsoDateTime

SyncAction = Literal["transition", "progress", "update"]
Outcome = Literal["applied", "conflict", "rejected", "forbidden", "not_found"]


class SyncItem(BaseModel):
    """One queued field update, as recorded on the phone."""

    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$",
                           description="unique per account and item (e.g. a UUID); a repeat is a duplicate")
    client_time: IsoDateTime = Field(description="when it was recorded on the phone; items are "
                                                   "applied in this order (ties: the order sent), and it "
                                                   "is the event's occurred_at unless the payload gives one")
    road_id: int = Field(ge=1, le=2**31 - 1)
    base_version: int = Field(ge=1, le=2**31 - 1, description="the road's version (ETag) as last read "
                                                              "from the server before queueing this item")
    action: SyncAction = Field(description="transition: POST /api/roads/{id}/transitions body; progress: "
                                           "POST /api/roads/{id}/progress body; update: PATCH /api/roads/{id} body")
    payload: dict[str, Any]


class SyncRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[SyncItem] = Field(min_length=1, max_length=10_000,
                                  description="at most TRACKER_SYNC_MAX_ITEMS (500) per request")


class RoadState(BaseModel):
    status: str
    progress_pct: int
    version: int


class SyncResult(BaseModel):
    client_id: str
    road_id: int
    action: SyncAction
    outcome: Outcome
    status: int = Field(description="the HTTP status the same request on its own would have had")
    detail: str | None = Field(description="why it was not applied (conflict, rejected, …)")
    duplicate: bool = Field(description="this client_id was seen before: the stored result is returned "
                                        "and nothing was applied again")
    road: RoadState | None = Field(description="the road after the item (applied) or as it stands "
                                               "(conflict), so the phone can show it and re-base")


class SyncResponse(BaseModel):
    results: list[SyncResult] = Field(description="one per item, in the order sent")
    applied: int
    duplicates: int
    conflicts: int
    failed: int = Field(description="rejected, forbidden or not found")
