"""A plan: the candidates of the request's area, their shared-road options, and the exact
and greedy choices within the budget."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from geo_api.domain.planner.candidates import check_province, prepare, scored, why_not_candidate
from geo_api.domain.planner.scoring import Candidate
from geo_api.domain.planner.settings import PlannerSettings, effective_weights
from geo_api.domain.planner.shared_roads import shared_road_links
from geo_api.domain.planner.solver import Problem, Selection, solve_greedy, solve_optimal
from geo_api.errors import InvalidInput
from geo_api.schemas.planner import PlanCreate, Weights
from geo_api.settings import get_settings


@dataclass
class Plan:
    request: PlanCreate
    weights: Weights
    as_of: date
    ranked: list[Candidate]
    problem: Problem
    optimal: Selection
    greedy: Selection
    link_m: dict[tuple[int, int], Decimal]

    def selection_public(self, sel: Selection) -> dict[str, Any]:
        p, ranked = self.problem, self.ranked
        chosen = []
        for i, (parent, cost) in sorted(sel.chosen.items(), key=lambda kv: ranked[kv[0]].rank):
            c = ranked[i]
            road_m = c.new_road_m if parent is None else self.link_m[(i, parent)]
            chosen.append({
                "marker_id": c.marker_id, "number": c.number, "province": c.province,
                "score": float(c.score), "cost_vnd": cost,
                "connects_to": "network" if parent is None else f"marker:{ranked[parent].marker_id}",
                "connects_to_number": None if parent is None else ranked[parent].number,
                "road_m": float(road_m)})
        by_prov: dict[str, int] = defaultdict(int)
        for i, (_, cost) in sel.chosen.items():
            by_prov[p.province[i]] += cost
        total = sel.total_cost()
        return {
            "method": sel.method, "status": sel.status, "markers": len(sel.chosen),
            "total_score": round(sel.total_score(p) / 100, 2), "total_cost_vnd": total,
            "remaining_vnd": p.budget - total, "by_province": dict(sorted(by_prov.items())),
            "upper_bound_score": None if sel.bound is None else round(sel.bound / 100, 2),
            "seconds": sel.seconds, "chosen": chosen,
        }

    def public(self, lang: str = "vi", ranked_limit: int | None = None) -> dict[str, Any]:
        opt, gr = self.selection_public(self.optimal), self.selection_public(self.greedy)
        ranked = self.ranked if ranked_limit is None else self.ranked[:ranked_limit]
        return {
            "budget_vnd": self.request.budget, "province": self.request.province,
            "province_caps": dict(self.request.province_caps),
            "must_include": list(self.request.must_include), "as_of": self.as_of,
            "weights": self.weights.model_dump(), "candidates": len(self.ranked),
            "optimal": opt, "greedy": gr,
            "score_gain_over_greedy": round(opt["total_score"] - gr["total_score"], 2),
            "ranked": [c.public(lang) for c in ranked],
        }

    def role(self, i: int) -> dict[str, Any]:
        """How candidate i fares in each answer."""
        out = {}
        for name, sel in (("optimal", self.optimal), ("greedy", self.greedy)):
            if i in sel.chosen:
                parent, cost = sel.chosen[i]
                out[name] = {"cost_vnd": cost,
                             "connects_to": None if parent is None else self.ranked[parent].marker_id,
                             "connects_to_number": None if parent is None else self.ranked[parent].number}
            else:
                out[name] = None
        return out


def make_plan(conn: Connection, req: PlanCreate, cfg: PlannerSettings | None = None) -> Plan:
    """Candidates, scores and costs for the request's area, then the exact and greedy plans."""
    cfg = cfg or get_settings().planner
    check_province(conn, req.province)
    for prov in req.province_caps:
        check_province(conn, prov, "province_caps names province")
        if req.province is not None and prov != req.province:
            raise InvalidInput(f"province_caps names {prov!r}, but the plan is for {req.province!r} only")
    min_d = cfg.min_distance_m if req.min_distance_m is None else req.min_distance_m
    weights = effective_weights(req.weights, cfg)
    as_of = req.as_of or date.today()
    routing = prepare(conn, req.province, min_d, cfg)
    ranked = scored(conn, routing, weights, as_of, cfg)
    index = {c.marker_id: i for i, c in enumerate(ranked)}
    missing = [m for m in req.must_include if m not in index]
    if missing:
        reasons = "; ".join(why_not_candidate(conn, m, req.province, min_d, cfg) for m in missing)
        raise InvalidInput(f"must_include lists markers that are not candidates: {reasons}")

    links, link_m = shared_road_links(conn, ranked, cfg) if req.shared_roads else ([], {})
    problem = Problem(
        score=[c.score_cents for c in ranked], cost=[c.cost_vnd for c in ranked],
        province=[c.province for c in ranked], budget=req.budget, caps=dict(req.province_caps),
        must=[index[m] for m in req.must_include], links=links)
    optimal = solve_optimal(problem, cfg.solver_time_limit_s)
    if optimal.status == "infeasible":
        raise InvalidInput(_infeasible_message(problem, ranked, req))
    greedy = solve_greedy(problem)
    return Plan(req, weights, as_of, ranked, problem, optimal, greedy, link_m)


def _infeasible_message(p: Problem, ranked: list[Candidate], req: PlanCreate) -> str:
    cheapest = defaultdict(int)
    best = {i: p.cost[i] for i in p.must}
    for child, _, lcost in p.links:
        if child in best:
            best[child] = min(best[child], lcost)
    for i, c in best.items():
        cheapest[p.province[i]] += c
    numbers = ", ".join(ranked[i].number for i in p.must)
    total = sum(cheapest.values())
    parts = [f"the must-include markers ({numbers}) cost at least {total:,} VND together"]
    parts.append(f"the budget is {p.budget:,} VND")
    for prov, cap in sorted(p.caps.items()):
        if cheapest.get(prov, 0) > cap:
            parts.append(f"the cap for {prov} is {cap:,} VND but its must-include markers cost "
                         f"at least {cheapest[prov]:,} VND")
    return "no plan satisfies the constraints: " + "; ".join(parts) + \
        ". Raise the budget or cap, or drop some must-include markers."
