"""The project's closed vocabularies, each listed once.

Every enum type of the database has its values here (`DB_ENUMS`, checked against the
database by tests/test_vocabulary.py); the layer catalogue, the query models, the tiles,
the pages and the schemas read them from here.
"""

from __future__ import annotations

ROAD_STATUSES = (
    "proposed", "surveyed", "funded", "under_construction", "completed",
    "inaugurated", "suspended", "cancelled",
)
# The forward path of a road; suspended and cancelled are off it.
ROAD_PATH = ROAD_STATUSES[:6]
ACTIVE_ROAD_STATUSES = ROAD_STATUSES[:5]
MARKER_KINDS = ("main", "sub", "paired")
MARKER_ACCESS = ("none", "footpath", "earth", "concrete")
DONOR_KINDS = ("agency", "cluster", "company", "person", "organisation")
FUNDING_KINDS = ("pledge", "commitment", "disbursement", "expenditure")
ROLES = ("admin", "planner", "post", "donor", "viewer")
PLANNER_ROLES = ("planner", "admin")
COUNTRIES = ("VNM", "CHN", "LAO", "KHM")
NEIGHBOURS = COUNTRIES[1:]

# PostgreSQL enum type -> its labels, in the database's order.
DB_ENUMS: dict[str, tuple[str, ...]] = {
    "road_status": ROAD_STATUSES,
    "marker_kind": MARKER_KINDS,
    "marker_access": MARKER_ACCESS,
    "donor_kind": DONOR_KINDS,
    "funding_kind": FUNDING_KINDS,
    "account_role": ROLES,
}
