"""The read policy: who is reading, and what of each layer they may see.

Every read takes a `Viewer` explicitly (API, OGC, tiles, pages, exports, attachments,
reports, the planner): there is no ambient "current user" to forget. What a caller who is
not signed in may see of a layer is declared in the catalogue (`layers.Layer.anonymous`);
a layer that declares nothing is refused to them (deny by default). Signed-in accounts of
any role read every layer exactly; what they may *change* is geo_api.auth's business.

Anonymous rules in force (geo_api.layers):
- markers: positions snapped to a 0.001° grid (about 100 m), `chainage_km` withheld;
- roads: the line cut back wherever it comes within `MARKER_CLEARANCE_M` of a marker's
  exact position (kept in `branch_road.public_geom`, migration 0006), so a road cannot
  lead a reader to the exact marker;
- attachments: GPX tracks withheld, photos served without their EXIF (GPS) block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from geo_api.errors import Unauthorized
from geo_api.vocabulary import PLANNER_ROLES

# How close to a marker's exact position an anonymous answer may come (roads are cut
# back by a little more: MARKER_CLEARANCE_BUFFER_M, see migration 0006).
MARKER_CLEARANCE_M = 100.0


@dataclass(frozen=True)
class Viewer:
    """Who reads: a role (None when not signed in) and, for post and donor accounts, their
    post or donor."""

    role: str | None = None
    post_id: int | None = None
    donor_id: int | None = None
    username: str | None = None

    @property
    def anonymous(self) -> bool:
        return self.role is None

    @property
    def is_planner(self) -> bool:
        return self.role in PLANNER_ROLES

    @classmethod
    def of(cls, account: Any | None) -> "Viewer":
        """The viewer of an account (geo_api.auth.Account) or of nobody."""
        if account is None:
            return ANONYMOUS
        return cls(role=account.role, post_id=account.post_id, donor_id=account.donor_id,
                   username=account.username)


ANONYMOUS = Viewer()
# Trusted in-process readers (CLI exports, backups, the planner's own reads).
SYSTEM = Viewer(role="admin", username="system")


def rule(layer: Any, viewer: Viewer) -> Any | None:
    """The layer's anonymous rule when `viewer` is anonymous, else None (exact reads).

    Raises Unauthorized when the layer is not readable anonymously at all."""
    if not viewer.anonymous:
        return None
    if layer.anonymous is None:
        raise Unauthorized(f"sign in to read {layer.title}s")
    return layer.anonymous


def geometry_sql(layer: Any, viewer: Viewer) -> str | None:
    """SQL: the layer's geometry as `viewer` may see it."""
    r = rule(layer, viewer)
    if layer.geometry is None or r is None:
        return layer.geometry
    geom = r.geometry or layer.geometry
    if r.snap_decimals is not None:
        geom = f"ST_SnapToGrid({geom}, 1e-{r.snap_decimals})"
    return geom


def snap_margin(layer: Any, viewer: Viewer) -> str:
    """SQL: how far snapping may move `viewer`'s view of the geometry, with room to spare
    (a grid of 1e-d moves a vertex at most 0.5e-d per axis): a bbox test on the stored
    geometry expanded by it keeps every row whose snapped geometry meets the box."""
    r = rule(layer, viewer)
    return "0" if r is None or r.snap_decimals is None else f"1e-{r.snap_decimals}"


def hidden(layer: Any, viewer: Viewer) -> frozenset[str]:
    """Properties `viewer` gets as null."""
    r = rule(layer, viewer)
    return frozenset() if r is None else r.hidden
