"""Every setting, in one object with a section per area.

`Settings` is read from the environment (``DATABASE_URL`` as is, the rest with the prefix
``TRACKER_``; the planner's with ``TRACKER_PLANNER_``) and passed to
`geo_api.main.create_app`, which makes it the process's settings (`configure`); code
outside a request reads the same object with `get_settings()`. A test or a deployment
builds its own, e.g. ``create_app(url, Settings(security=SecuritySettings(login_max_failures=2)))``.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import AliasChoices, BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from geo_api import ROOT
from geo_api.schemas.planner import Weights


class Section(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRACKER_", extra="ignore")


class DatabaseSettings(Section):
    """The database: an external one (DATABASE_URL), or the project-local PostGIS cluster
    (started and stopped by `tracker db start|stop`)."""

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "TRACKER_DATABASE_URL")
    )
    pg_dir: Path = ROOT / ".pgdata"
    pg_port: int = 55432
    pg_user: str = "tracker"
    pg_database: str = "tracker"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return normalise_url(self.database_url)
        return f"postgresql+psycopg://{self.pg_user}@127.0.0.1:{self.pg_port}/{self.pg_database}"


class ServerSettings(Section):
    host: str = "127.0.0.1"
    port: int = 8000


class FileSettings(Section):
    """Uploaded photos, documents and GPX tracks live on disk, checksummed, not in rows."""

    attachments_dir: Path = ROOT / "var" / "attachments"
    max_upload_bytes: int = 20 * 1024 * 1024


class ApiSettings(Section):
    """Read API limits, and the rendered vector tiles kept in memory (domain/tiles.py;
    reused while the database is unchanged, 0 turns the cache off)."""

    default_page_size: int = 100
    max_page_size: int = 1000
    tile_cache_mb: int = Field(default=64, ge=0)


class SecuritySettings(Section):
    """Accounts, tokens, login throttling, request limits, CORS."""

    token_ttl_hours: float = Field(default=12.0, gt=0, le=24 * 90)
    # Failed logins allowed per username and address (and per address, all usernames)
    # within the window before 429.
    login_max_failures: int = Field(default=5, ge=1)
    login_ip_max_failures: int = Field(default=50, ge=1)
    login_window_seconds: int = Field(default=900, ge=1)
    # How long an Idempotency-Key and its stored response are kept (then purged).
    idempotency_retention_hours: int = Field(default=168, ge=1)
    # The database role the app's connections switch to (SET ROLE); empty: none.
    app_db_role: str = Field(default="tracker_app", pattern=r"^([a-z_][a-z0-9_]{0,62})?$")
    # Comma-separated origins allowed by CORS; empty: no cross-origin access at all.
    cors_origins: str = ""
    # Largest request body in bytes (uploads have their own limit, TRACKER_MAX_UPLOAD_BYTES).
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    # Offline sync: most items in one POST /api/sync.
    sync_max_items: int = Field(default=500, ge=1)

    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]


class GeometrySettings(Section):
    """Tolerances of the geometry checks (environment variables with prefix ``TRACKER_``)."""

    # Anything we store (markers, posts, roads, Vietnamese villages) must lie in Viet Nam
    # or at most this far outside it: markers sit on the line, and the outline is generalised.
    vn_margin_km: float = Field(default=5.0, ge=0)
    # Villages across the border (CHN/LAO/KHM) may lie this far from Viet Nam.
    foreign_village_margin_km: float = Field(default=30.0, ge=0)
    # Cap on the vertices of one input geometry (a GPS track is thinned before upload).
    max_vertices: int = Field(default=10_000, ge=2)
    # A marker must lie this close to its border segment. 500 m rather than a tighter value:
    # the shipped border line is simplified to ~200 m, and real markers on rivers or
    # paired markers stand some way off the line.
    marker_max_distance_m: float = Field(default=500.0, ge=0)
    # A branch road must come this close to every marker it serves, and one of its ends
    # must lie this close to one of them (the road reaches the marker, it does not stop short).
    road_marker_max_distance_m: float = Field(default=200.0, ge=0)
    # A village is on its country's side if it lies inside that country's outline or
    # within this distance of it (the outline is simplified to ~200 m).
    village_side_tolerance_m: float = Field(default=100.0, ge=0)


class LedgerSettings(Section):
    """The funding ledger."""

    # Flag a road when disbursed/estimate runs this far ahead of progress/100.
    disbursement_warning_threshold: float = Field(default=0.3, ge=0, le=1)


class VillageSettings(Section):
    """Twinned villages."""

    # Twinned villages face each other across the border: at most this far apart.
    pair_max_distance_km: float = Field(default=30.0, gt=0)


class PlannerSettings(Section):
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


class MapSettings(Section):
    """The web pages and their maps."""

    # The basemap. Field phones may not reach it (and this machine cannot): every overlay
    # and panel is drawn without it, over the country outlines shipped in data/borders.
    basemap_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    basemap_attribution: str = "© OpenStreetMap contributors"
    # Pages embed the data as GeoJSON up to these sizes, and switch to vector tiles
    # (/tiles/...) above them. ?mode=inline or ?mode=tiles forces one or the other.
    inline_max_markers: int = 10_000
    inline_max_roads: int = 3_000
    inline_max_villages: int = 5_000
    # ?mode=inline is refused above this many times the limits above: such a page would be
    # tens of megabytes, too heavy for any phone and for the server to build on request.
    inline_hard_factor: int = 5


class Settings(BaseModel):
    """All the settings, a section per area."""

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    files: FileSettings = Field(default_factory=FileSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    geometry: GeometrySettings = Field(default_factory=GeometrySettings)
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    villages: VillageSettings = Field(default_factory=VillageSettings)
    planner: PlannerSettings = Field(default_factory=PlannerSettings)
    maps: MapSettings = Field(default_factory=MapSettings)


def normalise_url(url: str) -> str:
    """Accept libpq-style ``postgresql://`` URLs and use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


_current: Settings | None = None


def get_settings() -> Settings:
    """The process's settings: those the app was created with, else read from the environment."""
    global _current
    if _current is None:
        _current = Settings()
    return _current


def configure(settings: Settings | None = None) -> Settings:
    """Make `settings` the process's settings (None: read the environment again)."""
    global _current
    _current = settings if settings is not None else Settings()
    return _current
