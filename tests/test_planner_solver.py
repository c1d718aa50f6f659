"""The budget solver on hand-made problems: no database, nothing but
``geo_api.domain.planner.solver`` (the plans on a real candidate set are in test_planner.py)."""

from __future__ import annotations

import random
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from geo_api.domain.planner import solver
from geo_api.domain.planner.solver import Problem, Selection, solve_greedy, solve_optimal
from support.plans import brute_force

M = 1_000_000
SOLVER_PY = Path(solver.__file__).resolve()


def test_greedy_is_beaten_by_the_exact_plan_on_a_knapsack():
    # score per đồng: A 6, B 5, C 4. Greedy takes A and B (160) and C no longer fits;
    # the best use of 5 billion is B + C (220).
    p = Problem(score=[60, 100, 120], cost=[1000 * M, 2000 * M, 3000 * M], province=["X"] * 3,
                budget=5000 * M)
    opt, gr = solve_optimal(p), solve_greedy(p)
    assert (opt.status, sorted(opt.chosen), opt.total_score(p), opt.total_cost()) == \
        ("optimal", [1, 2], 220, 5000 * M)
    assert (sorted(gr.chosen), gr.total_score(p), gr.total_cost()) == ([0, 1], 160, 3000 * M)


def test_a_shared_road_is_paid_once():
    # Two markers 1 km from the network, 300 m apart: one road to the first, extended to
    # the second for 200 million, fits 1.2 billion; two separate roads would not.
    p = Problem(score=[1000, 3000], cost=[1000 * M, 1000 * M], province=["X", "X"], budget=1200 * M,
                links=[(1, 0, 200 * M)])
    opt = solve_optimal(p)
    assert opt.chosen == {0: (None, 1000 * M), 1: (0, 200 * M)}
    assert opt.total_cost() == 1200 * M and opt.total_score(p) == 4000
    alone = solve_optimal(Problem(score=p.score, cost=p.cost, province=p.province, budget=p.budget))
    assert alone.total_score(p) == 3000  # without the shared road only one marker fits
    # greedy builds the better marker's own road first, and then nothing else fits
    assert solve_greedy(p).chosen == {1: (None, 1000 * M)}


def test_an_extension_needs_its_parent():
    # The child is only cheap as an extension; its parent is worth little but must be built.
    p = Problem(score=[1, 100], cost=[10 * M, 50 * M], province=["X", "X"], budget=11 * M,
                links=[(1, 0, 1 * M)])
    assert solve_optimal(p).chosen == {0: (None, 10 * M), 1: (0, 1 * M)}
    no_parent_money = Problem(score=[1, 100], cost=[10 * M, 50 * M], province=["X", "X"], budget=9 * M,
                              links=[(1, 0, 1 * M)])
    assert solve_optimal(no_parent_money).chosen == {}


def test_province_caps_bind():
    p = Problem(score=[100, 90, 10], cost=[5 * M, 5 * M, 5 * M], province=["A", "A", "B"],
                budget=15 * M, caps={"A": 5 * M})
    opt, gr = solve_optimal(p), solve_greedy(p)
    assert sorted(opt.chosen) == [0, 2] and sorted(gr.chosen) == [0, 2]


def test_must_include_wins_over_score():
    p = Problem(score=[10, 100, 100], cost=[5 * M] * 3, province=["X"] * 3, budget=10 * M, must=[0])
    opt, gr = solve_optimal(p), solve_greedy(p)
    assert 0 in opt.chosen and opt.total_score(p) == 110
    assert 0 in gr.chosen and gr.total_score(p) == 110


def test_must_include_that_cannot_fit_is_infeasible():
    p = Problem(score=[10, 100], cost=[20 * M, 5 * M], province=["X", "X"], budget=10 * M, must=[0])
    assert solve_optimal(p).status == "infeasible"
    assert solve_greedy(p).status == "infeasible"


def test_empty_problem():
    p = Problem(score=[], cost=[], province=[], budget=M)
    assert solve_optimal(p).chosen == {} and solve_greedy(p).chosen == {}


def test_exact_plan_matches_brute_force_on_random_problems():
    rng = random.Random(6)
    worse = 0
    for _ in range(40):
        n = rng.randint(2, 7)
        p = Problem(score=[rng.randint(1, 5000) for _ in range(n)],
                    cost=[rng.randint(1, 40) * 50 * M for _ in range(n)],
                    province=[rng.choice("AB") for _ in range(n)], budget=rng.randint(1, 60) * 50 * M)
        p.links = [(i, j, rng.randint(1, 10) * 20 * M) for i in range(n) for j in range(i)
                   if p.province[i] == p.province[j] and rng.random() < 0.3]
        if rng.random() < 0.3:
            p.caps = {"A": rng.randint(1, 30) * 50 * M}
        if rng.random() < 0.3:
            p.must = [rng.randrange(n)]
        best = brute_force(p)
        opt, gr = solve_optimal(p), solve_greedy(p)
        if best < 0:
            assert opt.status == "infeasible"
            continue
        assert opt.status == "optimal" and opt.total_score(p) == best
        if gr.status != "infeasible":
            assert gr.total_score(p) <= best
            worse += gr.total_score(p) < best
    assert worse > 0  # the greedy answer is not always the best: that is why both are shown


def test_core_and_reduced_cost_fixing_stay_exact(monkeypatch):
    """Large instances are solved on a core of variables first; with a tiny core the
    fixing argument is exercised on problems a brute force can check."""
    monkeypatch.setattr(solver, "CORE_SIZE", 2)
    calls: list[int] = []
    real_milp = solver._milp

    def counting(*args):
        calls[-1] += 1
        return real_milp(*args)

    monkeypatch.setattr(solver, "_milp", counting)
    rng = random.Random(2022)
    for _ in range(40):
        calls.append(0)
        n = rng.randint(4, 8)
        p = Problem(score=[rng.randint(100, 3000) for _ in range(n)],
                    cost=[rng.randint(1, 30) * 10 * M for _ in range(n)],
                    province=[rng.choice("AB") for _ in range(n)], budget=rng.randint(10, 120) * 10 * M)
        p.links = [(i, j, rng.randint(1, 5) * 10 * M) for i in range(n) for j in range(i)
                   if p.province[i] == p.province[j] and rng.random() < 0.25]
        if rng.random() < 0.3:
            p.caps = {"B": rng.randint(5, 60) * 10 * M}
        best = brute_force(p)
        opt = solve_optimal(p)
        assert (opt.status, opt.total_score(p)) == ("optimal", best) if best >= 0 else opt.status == "infeasible"
    assert 1 in calls and 2 in calls  # proven on the core alone, and after widening it


def test_ties_are_settled_on_the_cheaper_road():
    # Both markers are chosen either way; the extension is cheaper than 1's own road.
    p = Problem(score=[100, 100], cost=[10 * M, 10 * M], province=["X", "X"], budget=10**12,
                links=[(1, 0, 3 * M)])
    assert solve_optimal(p).chosen == {0: (None, 10 * M), 1: (0, 3 * M)}


def broken_rules(p: Problem, sel: Selection) -> list[str]:
    """What a selection gets wrong, counted here in whole đồng rather than by the solver's
    own check."""
    wrong = []
    by_prov: dict[str, int] = defaultdict(int)
    for i, (parent, cost) in sel.chosen.items():
        if parent is None and cost != p.cost[i]:
            wrong.append(f"{i} is not paid its own road's cost")
        if parent is not None and ((i, parent, cost) not in p.links or parent not in sel.chosen):
            wrong.append(f"{i} extends a road that is not offered or not built")
        by_prov[p.province[i]] += cost
    if sum(by_prov.values()) > p.budget:
        wrong.append("over budget")
    wrong += [f"over the cap of {k}" for k, cap in p.caps.items() if by_prov[k] > cap]
    wrong += [f"must-include {i} left out" for i in p.must if i not in sel.chosen]
    return wrong


def test_both_answers_keep_to_budget_caps_and_must_include():
    rng = random.Random(11)
    checked = {"optimal": 0, "greedy": 0}
    for _ in range(60):
        n = rng.randint(3, 12)
        p = Problem(score=[rng.randint(1, 5000) for _ in range(n)],
                    cost=[rng.randint(1, 40) * 50 * M for _ in range(n)],
                    province=[rng.choice("AB") for _ in range(n)], budget=rng.randint(5, 60) * 50 * M,
                    caps={"A": rng.randint(1, 30) * 50 * M}, must=[rng.randrange(n)])
        p.links = [(i, j, rng.randint(1, 10) * 20 * M) for i in range(n) for j in range(i)
                   if p.province[i] == p.province[j] and rng.random() < 0.3]
        for sel in (solve_optimal(p), solve_greedy(p)):
            if sel.status != "infeasible":
                assert broken_rules(p, sel) == [], (sel.method, p)
                checked[sel.method] += 1
    assert min(checked.values()) > 20


def test_solver_imports_no_database_or_web_code():
    """solver.py, loaded on its own in a fresh interpreter where SQLAlchemy, FastAPI,
    Starlette, psycopg and the app's database modules cannot be imported, still solves. It
    is loaded by path: importing it through the package would run the package's
    ``__init__``, which brings in the SQL side."""
    code = f"""
import importlib.util, sys
for name in ("sqlalchemy", "fastapi", "starlette", "psycopg", "psycopg2", "geo_api.db", "geo_api.localdb"):
    sys.modules[name] = None
spec = importlib.util.spec_from_file_location("solver_alone", {str(SOLVER_PY)!r})
solver = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = solver
spec.loader.exec_module(solver)
p = solver.Problem(score=[60, 100, 120], cost=[10**9, 2 * 10**9, 3 * 10**9], province=["X"] * 3, budget=5 * 10**9)
assert sorted(solver.solve_optimal(p).chosen) == [1, 2] and sorted(solver.solve_greedy(p).chosen) == [0, 1]
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=SOLVER_PY.parents[3])
    assert done.returncode == 0, done.stderr
