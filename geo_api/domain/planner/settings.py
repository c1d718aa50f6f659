"""Planner configuration: weights, where each factor reaches its full weight, unit costs,
and the limits of the searches and the solver."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from geo_api.schemas.planner import Weights, WeightsUpdate


class PlannerSettings(BaseSettings):
    """Planner configuration (environment prefix ``TRACKER_PLANNER_``; dicts as JSON, e.g.
    ``TRACKER_PLANNER_WEIGHTS='{"distance": 40}'``). Requests may override the weights,
    the minimum distance and the reference date."""

    model_config = SettingsConfigDict(env_prefix="TRACKER_PLANNER_", extra="ignore")

    min_distance_m: float = 200.0
    # Markers with a road in one of these states are not candidates: reached, or already paid for.
    excluded_road_statuses: tuple[str, ...] = ("completed", "inaugurated", "funded", "under_construction")
    winding_factor: Decimal = Decimal("1.3")
    unit_cost_per_km: dict[int, int] = {
        1: 600_000_000, 2: 750_000_000, 3: 900_000_000, 4: 1_100_000_000, 5: 1_350_000_000,
    }
    cost_rounding_vnd: int = 1_000_000
    weights: Weights = Weights()
    # Where each factor reaches 1 (its full weight).
    distance_cap_m: float = 5_000.0
    people_cap: int = 2_000
    pairs_cap: int = 2
    inspection_cap_days: int = 730
    travel_cap_m: float = 30_000.0
    village_radius_m: float = 5_000.0
    shared_road_radius_m: float = 1_500.0
    knn_candidates: int = 3
    routing: bool = True
    # Above this many markers to examine, the nearest-network searches are split over
    # this many database sessions (one per core); below it one session is quicker.
    parallel_sessions: int = 2
    parallel_min_markers: int = 20_000
    solver_time_limit_s: float = 30.0

    @field_validator("unit_cost_per_km")
    @classmethod
    def _all_classes(cls, v: dict[int, int]) -> dict[int, int]:
        if sorted(v) != [1, 2, 3, 4, 5] or any(c <= 0 for c in v.values()):
            raise ValueError("unit_cost_per_km needs a positive cost for each terrain class 1..5")
        return v


@lru_cache
def get_planner_settings() -> PlannerSettings:
    return PlannerSettings()


def effective_weights(update: WeightsUpdate | None, cfg: PlannerSettings) -> Weights:
    """The configured weights, with the request's changes applied."""
    return update.apply(cfg.weights) if update else cfg.weights
