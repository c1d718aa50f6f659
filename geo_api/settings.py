"""Configuration from the environment (prefix ``TRACKER_``; ``DATABASE_URL`` as is)."""

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from geo_api import ROOT


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRACKER_", extra="ignore")

    # An external database; when unset the project-local PostGIS cluster is used.
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "TRACKER_DATABASE_URL")
    )
    # The project-local cluster (started and stopped by `tracker db start|stop`).
    pg_dir: Path = ROOT / ".pgdata"
    pg_port: int = 55432
    pg_user: str = "tracker"
    pg_database: str = "tracker"

    host: str = "127.0.0.1"
    port: int = 8000

    # Uploaded photos, documents and GPX tracks live on disk, checksummed, not in rows.
    attachments_dir: Path = ROOT / "var" / "attachments"
    max_upload_bytes: int = 20 * 1024 * 1024

    # Read API limits.
    default_page_size: int = 100
    max_page_size: int = 1000

    # Rendered vector tiles kept in memory, reused while the database is unchanged
    # (domain/tiles.py); 0 turns the cache off.
    tile_cache_mb: int = Field(default=64, ge=0)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return normalise_url(self.database_url)
        return f"postgresql+psycopg://{self.pg_user}@127.0.0.1:{self.pg_port}/{self.pg_database}"


def normalise_url(url: str) -> str:
    """Accept libpq-style ``postgresql://`` URLs and use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


@lru_cache
def get_settings() -> Settings:
    return Settings()
