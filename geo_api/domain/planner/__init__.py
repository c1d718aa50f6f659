"""The planner: which markers to fund next within a budget, and why.

1. **Candidates** (``candidates``, SQL, one statement): markers not reached by a completed
   or inaugurated road (nor with a road that already has its money: funded or under
   construction — see ``excluded_road_statuses``), whose access is not concrete, and that
   lie farther than ``min_distance_m`` from the network. The network is ``road_network``
   plus the built branch roads; the nearest piece is found with the index-ordered ``<->``
   operator in a LATERAL join (the ``k`` nearest in degrees, re-ranked with longitudes
   scaled by cos(latitude), the winner's distance measured on the spheroid). Above
   ``parallel_min_markers`` the statement is split by marker id over several sessions.
2. **Travel from the post** (``candidates``, one pgRouting call): a Dijkstra over
   ``road_network`` from every responsible post's nearest vertex, bounded at
   ``travel_cap_m`` (``pgr_drivingDistance``), gives the network part; the two straight
   legs off the network are added. A route longer than the cap scores the full weight
   anyway, and one shorter than it cannot leave the box of that radius around its post,
   so only those edges are loaded. Without a network: the straight post-to-marker distance.
3. **Score** (``scoring``): each factor scores 0..1, times its weight; points are rounded to
   0.01 and the score is their sum, so the breakdown a user reads adds up to the score
   exactly. Every factor measures *need*: far from a road, hard terrain, asked for by the
   post, people and twinned villages nearby, long since the last inspection, far to travel.
4. **Cost** (``scoring``, NUMERIC): new road = shortest line to the network × winding
   factor; cost = length × unit cost per km of the marker's terrain class, rounded up to
   whole millions.
5. **Plan** (``plan``; the choice itself in ``solver``: HiGHS through ``scipy.optimize``,
   exact, see ``solve_optimal``): choose markers to maximise the total score within the
   budget, per-province caps and must-include markers. Shared roads (``shared_roads``): a
   chosen marker may be reached by *extending* the road of a chosen neighbour within
   ``shared_road_radius_m`` (same province) instead of building its own road from the
   network; the shared part is then paid once. To keep the roads a forest, a marker may
   only hang off a neighbour that is closer to the network — the one it is cheapest to
   extend from. The greedy answer (best score per đồng first) is computed on the same
   options and reported beside it.
6. **Exports** (``export``): candidates and plans as CSV and GeoJSON.

Configuration is in ``settings``.
"""

from geo_api.domain.planner.candidates import (
    CANDIDATES_SELECT,
    CANDIDATES_SQL,
    REFRESH_SQL,
    candidates,
    check_province,
    prepare,
    refresh_network_access,
    scored,
    why_not_candidate,
)
from geo_api.domain.planner.export import CSV_COLUMNS, to_csv, to_geojson
from geo_api.domain.planner.plan import Plan, make_plan
from geo_api.domain.planner.scoring import LABELS, SCORE_SQL, Candidate, reason
from geo_api.settings import PlannerSettings
from geo_api.domain.planner.shared_roads import shared_road_links
from geo_api.domain.planner.solver import Problem, Selection, solve_greedy, solve_optimal

__all__ = [
    "CANDIDATES_SELECT", "CANDIDATES_SQL", "CSV_COLUMNS", "LABELS", "REFRESH_SQL", "SCORE_SQL",
    "Candidate", "Plan", "PlannerSettings", "Problem", "Selection",
    "candidates", "check_province", "make_plan", "prepare", "reason",
    "refresh_network_access", "scored", "shared_road_links", "solve_greedy", "solve_optimal",
    "to_csv", "to_geojson", "why_not_candidate",
]
