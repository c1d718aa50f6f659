"""The budget choice over plain data: which markers to build, exactly (MILP, HiGHS through
``scipy.optimize``) and greedily (best score per đồng first), on the same options.

Only the standard library, numpy and scipy: no database, no web framework, so it can be
tested with hand-made problems.
"""

from __future__ import annotations

import heapq
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Problem:
    """Markers with a score (integer hundredths) and the cost of their own road; links
    (child, parent, cost): the child may be served by extending the parent's road."""

    score: list[int]
    cost: list[int]
    province: list[str]
    budget: int
    caps: dict[str, int] = field(default_factory=dict)
    must: list[int] = field(default_factory=list)
    links: list[tuple[int, int, int]] = field(default_factory=list)


@dataclass
class Selection:
    method: str
    status: str
    chosen: dict[int, tuple[int | None, int]]  # index -> (parent index or None, cost)
    seconds: float
    bound: int | None = None  # no plan can score more (hundredths): the LP relaxation

    def total_cost(self) -> int:
        return sum(c for _, c in self.chosen.values())

    def total_score(self, p: Problem) -> int:
        return sum(p.score[i] for i in self.chosen)


def _check(p: Problem, sel: Selection) -> None:
    """Exact integer check of a selection against the budget, caps and must-includes (the
    solver works in floating point: this guards the whole-đồng arithmetic)."""
    if sel.status == "infeasible":
        return
    spent: dict[str, int] = defaultdict(int)
    for i, (_, c) in sel.chosen.items():
        spent[p.province[i]] += c
    problems = []
    if sum(spent.values()) > p.budget:
        problems.append("over budget")
    problems += [f"over the cap of {prov}" for prov, cap in p.caps.items() if spent.get(prov, 0) > cap]
    if any(parent is not None and parent not in sel.chosen for parent, _ in sel.chosen.values()):
        problems.append("extends a road that is not chosen")
    if not all(i in sel.chosen for i in p.must):
        problems.append("misses a must-include marker")
    if problems:
        raise RuntimeError(f"the {sel.method} plan is inconsistent: {', '.join(problems)}")


@dataclass
class _Model:
    """The MILP in minimisation form: r_i (marker i gets its own road), then y_l (link l:
    its child is reached by extending its parent's road)."""

    c: np.ndarray
    A: Any  # scipy.sparse CSR
    row_lo: np.ndarray
    row_hi: np.ndarray
    lb: np.ndarray
    ub: np.ndarray


def _model(p: Problem) -> _Model:
    from scipy.sparse import coo_array

    n, nl = len(p.score), len(p.links)
    nv = n + nl
    score = np.asarray(p.score, dtype=float)
    c = -np.concatenate([score, score[[l[0] for l in p.links]]]) if nl else -score
    cost = np.concatenate([np.asarray(p.cost, float), np.asarray([l[2] for l in p.links], float)]) / COST_SCALE
    kids: dict[int, list[int]] = defaultdict(list)  # marker -> the links that would serve it
    for k, (child, _, _) in enumerate(p.links):
        kids[child].append(n + k)
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    lo: list[float] = []
    hi: list[float] = []

    def row(entries: list[tuple[int, float]], low: float, high: float) -> None:
        r = len(lo)
        for col, val in entries:
            rows.append(r); cols.append(col); vals.append(val)
        lo.append(low); hi.append(high)

    served = {i: [(i, 1.0)] + [(k, 1.0) for k in ks] for i, ks in kids.items()}
    for i, entries in served.items():  # at most one way to serve a marker
        row(entries, -np.inf, 1.0)
    for k, (_, parent, _) in enumerate(p.links):  # an extension needs its parent served
        row([(n + k, 1.0)] + [(j, -1.0) for j, _ in served.get(parent, [(parent, 1.0)])], -np.inf, 0.0)
    for prov, limit in [(None, p.budget)] + sorted(p.caps.items()):
        owner = list(range(n)) + [l[0] for l in p.links]
        row([(j, cost[j]) for j in range(nv) if prov is None or p.province[owner[j]] == prov],
            -np.inf, limit / COST_SCALE)
    lb = np.zeros(nv)
    for i in p.must:
        if i in served:
            row(served[i], 1.0, np.inf)
        else:
            lb[i] = 1.0
    A = coo_array((vals, (rows, cols)), shape=(len(lo), nv)).tocsr()
    return _Model(c, A, np.asarray(lo), np.asarray(hi), lb, np.ones(nv))


COST_SCALE = 1e6  # costs in millions of đồng keep the coefficients well scaled
CORE_SIZE = 200


def _milp(m: _Model, lb: np.ndarray, ub: np.ndarray, time_limit_s: float):
    from scipy.optimize import Bounds, LinearConstraint, milp

    return milp(m.c, integrality=np.ones(len(m.c)), bounds=Bounds(lb, ub),
                constraints=LinearConstraint(m.A, m.row_lo, m.row_hi),
                options={"time_limit": max(time_limit_s, 0.1), "mip_rel_gap": 0.0, "presolve": True})


def solve_optimal(p: Problem, time_limit_s: float = 30.0) -> Selection:
    """Maximise the total score exactly with HiGHS (scipy.optimize.linprog / milp).

    Variables: r_i (marker i gets its own road from the network) and y_l (link l: marker i
    is reached by extending the road of its chosen neighbour j). At most one way per
    marker; y_l ≤ (j served); costs within the budget and each province cap; must-include
    markers served. Scores are whole hundredths, so the objective is integral.

    A large instance is a knapsack whose LP relaxation is very tight, and proving the last
    hundredth by branch and bound alone is slow. So: (1) solve the LP relaxation, giving the
    bound and each variable's reduced cost; (2) solve the MILP on the *core* — the variables
    with the smallest reduced costs — with the others fixed at their LP values, giving a
    near-optimal incumbent; (3) a variable whose reduced cost exceeds (incumbent − LP bound
    − 1) keeps its LP value in every strictly better plan (reduced-cost fixing), so if all
    the others lie in the core, the incumbent is optimal; otherwise the core is doubled and
    solved again. Each round keeps or improves the incumbent, so the free set only shrinks
    and the rounds end (at worst with every variable in the core); the answer is exact."""
    from scipy.optimize import linprog

    started = time.perf_counter()
    n = len(p.score)
    if n == 0:
        return Selection("optimal", "optimal", {}, 0.0)
    m = _model(p)
    nv = len(m.c)
    deadline = started + time_limit_s
    A_ub, b_ub = _stack(m)
    # HiGHS' presolve takes seconds on a 10,000-column knapsack row; the LP itself does not.
    lp = linprog(m.c, A_ub=A_ub, b_ub=b_ub, bounds=np.column_stack([m.lb, m.ub]), method="highs-ds",
                 options={"presolve": False})
    if lp.status == 2:
        return Selection("optimal", "infeasible", {}, round(time.perf_counter() - started, 3))
    x_lp = lp.x
    rc = np.abs(lp.lower.marginals + lp.upper.marginals)
    at = np.round(x_lp)
    fractional = np.abs(x_lp - at) > 1e-6
    res, status = None, "optimal"
    if nv > CORE_SIZE:
        by_rc = np.argsort(rc, kind="stable")
        core = np.zeros(nv, dtype=bool)
        core[by_rc[:CORE_SIZE]] = True
        core |= fractional
        while True:
            res = _milp(m, np.where(core, m.lb, at), np.where(core, m.ub, at), deadline - time.perf_counter())
            if res.status != 0:
                res = None  # let the full problem decide (infeasible, or out of time)
                break
            # every strictly better plan keeps the variables outside `free` at their LP values
            slack = float(res.fun) - float(lp.fun) - 1.0
            free = (rc <= slack + 1e-6 * max(1.0, abs(float(lp.fun)))) | fractional
            if not free[~core].any():
                break  # the core held every variable that could still improve: optimal
            # widen the core (doubling it) and solve again: the incumbent can only improve,
            # so the free set can only shrink
            core[by_rc[:2 * int(core.sum())]] = True
    if res is None:
        res = _milp(m, m.lb, m.ub, deadline - time.perf_counter())
        status = "optimal" if res.status == 0 else "time_limit"
    seconds = round(time.perf_counter() - started, 3)
    if res.x is None:
        return Selection("optimal", "infeasible" if res.status == 2 else "no_solution", {}, seconds)
    x = np.round(res.x).astype(int)
    chosen: dict[int, tuple[int | None, int]] = {i: (None, p.cost[i]) for i in range(n) if x[i]}
    for k, (child, parent, lcost) in enumerate(p.links):
        if x[n + k]:
            chosen[child] = (parent, lcost)
    sel = Selection("optimal", status, _cheapest(p, chosen), seconds, math.floor(-float(lp.fun) + 1e-6))
    _check(p, sel)
    return sel


def _stack(m: _Model):
    """The rows as A_ub x <= b_ub (a >= row is negated)."""
    from scipy.sparse import vstack

    upper = np.isfinite(m.row_hi)
    lower = np.isfinite(m.row_lo)
    A = vstack([m.A[upper], -m.A[lower]]).tocsr()
    return A, np.concatenate([m.row_hi[upper], -m.row_lo[lower]])


def _cheapest(p: Problem, chosen: dict[int, tuple[int | None, int]]) -> dict[int, tuple[int | None, int]]:
    """Same markers, each reached the cheapest way the chosen set allows (ties in score
    leave the solver free to pay more than needed). Links only go towards the network, so
    re-pointing a marker never creates a cycle."""
    options: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for child, parent, lcost in p.links:
        options[child].append((lcost, parent))
    out = dict(chosen)
    for i in chosen:
        best = min([(p.cost[i], -1)] + [o for o in options[i] if o[1] in chosen])
        out[i] = (None if best[1] < 0 else best[1], best[0])
    return out


def solve_greedy(p: Problem) -> Selection:
    """Best score per đồng first, skipping what no longer fits; must-include markers are
    taken first, each by its cheapest available option. Extensions become available once
    their parent is chosen."""
    started = time.perf_counter()
    n = len(p.score)
    children: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for child, parent, lcost in p.links:
        children[parent].append((child, lcost))
    chosen: dict[int, tuple[int | None, int]] = {}
    spent, by_prov = 0, defaultdict(int)

    def fits(i: int, cost: int) -> bool:
        prov = p.province[i]
        return spent + cost <= p.budget and (prov not in p.caps or by_prov[prov] + cost <= p.caps[prov])

    heap: list[tuple[float, int, int, int, int]] = []

    def push(i: int, cost: int, parent: int) -> None:  # parent -1: own road
        ratio = p.score[i] / cost if cost else math.inf
        heapq.heappush(heap, (-ratio, -p.score[i], cost, i, parent))

    def take(i: int, parent: int | None, cost: int) -> None:
        nonlocal spent
        chosen[i] = (parent, cost)
        spent += cost
        by_prov[p.province[i]] += cost
        for child, lcost in children[i]:
            if child not in chosen:
                push(child, lcost, i)

    status = "greedy"
    links_of: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for child, parent, lcost in p.links:
        links_of[child].append((parent, lcost))
    for i in p.must:
        options = [(p.cost[i], None)] + [(lc, par) for par, lc in links_of[i] if par in chosen]
        cost, parent = min(options, key=lambda o: (o[0], -1 if o[1] is None else o[1]))
        if not fits(i, cost):
            status = "infeasible"
            break
        take(i, parent, cost)
    if status != "infeasible":
        for i in range(n):
            if i not in chosen:
                push(i, p.cost[i], -1)
        while heap:
            _, _, cost, i, parent = heapq.heappop(heap)
            if i in chosen or not fits(i, cost):
                continue
            take(i, None if parent < 0 else parent, cost)
    sel = Selection("greedy", status, chosen, round(time.perf_counter() - started, 3))
    _check(p, sel)
    return sel
