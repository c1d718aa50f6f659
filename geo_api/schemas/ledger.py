"""Funding ledger schemas (the VND money type is shared with schemas.resources)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# One money type for the whole API (whole đồng, 1..10^15; ints, integer-valued floats and
# strings of digits; no fractions, zero, negatives or non-numbers).
from geo_api.schemas.resources import MAX_VND, VND
from geo_api.vocabulary import FUNDING_KINDS
from geo_api.schemas.types import IsoDate

__all__ = ["MAX_VND", "VND", "FUNDING_KINDS", "FundingKind", "FundingCreate", "FundingPublic", "fmt_vnd"]

FundingKind = Literal[FUNDING_KINDS]  # type: ignore[valid-type]


def fmt_vnd(amount: int | Decimal | None) -> str:
    """1200000000 -> '1,200,000,000'."""
    return f"{int(amount or 0):,}"


class FundingCreate(BaseModel):
    """One ledger row. Rows are append-only: a mistake is corrected by a reversing entry,
    which is not offered yet (there is no update or delete)."""

    model_config = ConfigDict(extra="forbid")

    donor_id: int = Field(ge=1)
    kind: FundingKind
    amount: VND
    tx_date: IsoDate
    road_id: int | None = Field(default=None, ge=1)
    campaign_id: int | None = Field(default=None, ge=1)
    reference: str | None = Field(default=None, max_length=200, description="e.g. cheque or decision number")
    note: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _tied(self) -> FundingCreate:
        if self.road_id is None and self.campaign_id is None:
            raise ValueError("a transaction needs road_id or campaign_id (or both)")
        return self


class FundingPublic(BaseModel):
    """A ledger row as GET /api/funding/{id} shows it."""

    id: int
    donor_id: int
    road_id: int | None
    campaign_id: int | None
    kind: FundingKind
    amount: int
    tx_date: date
    reference: str | None
    note: str | None
