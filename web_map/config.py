"""Settings of the web pages (environment, prefix ``TRACKER_``)."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class MapSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRACKER_", extra="ignore")

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


@lru_cache
def get_map_settings() -> MapSettings:
    return MapSettings()
