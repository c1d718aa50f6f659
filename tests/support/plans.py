"""The reference answer for small budget problems: every choice enumerated."""

from __future__ import annotations

import itertools

from geo_api.domain.planner.solver import Problem


def brute_force(p: Problem) -> int:
    """The best total score by enumerating every choice: skip, own road, or hang off a parent."""
    n = len(p.score)
    options = [[None, ("own", None, p.cost[i])] + [("link", par, c) for ch, par, c in p.links if ch == i]
               for i in range(n)]
    best = -1
    for combo in itertools.product(*options):
        if any(combo[i] is None for i in p.must):
            continue
        spent: dict[str, int] = {}
        ok = True
        for i, o in enumerate(combo):
            if o is None:
                continue
            if o[0] == "link" and combo[o[1]] is None:
                ok = False
                break
            spent[p.province[i]] = spent.get(p.province[i], 0) + o[2]
        if not ok or sum(spent.values()) > p.budget:
            continue
        if any(spent.get(k, 0) > cap for k, cap in p.caps.items()):
            continue
        best = max(best, sum(p.score[i] for i, o in enumerate(combo) if o is not None))
    return best
