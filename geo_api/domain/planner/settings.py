"""The planner's weights as a request may adjust them (its settings are
`geo_api.settings.PlannerSettings`, the `planner` section)."""

from __future__ import annotations

from geo_api.schemas.planner import Weights, WeightsUpdate
from geo_api.settings import PlannerSettings


def effective_weights(update: WeightsUpdate | None, cfg: PlannerSettings) -> Weights:
    """The configured weights, with the request's changes applied."""
    return update.apply(cfg.weights) if update else cfg.weights
