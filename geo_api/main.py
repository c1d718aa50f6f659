"""The FastAPI application factory."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from geo_api.db import get_engine
from geo_api.http_errors import install_error_handlers
from geo_api.openapi import QUERY_GUARD, install_api_description
from geo_api.routes import health, resources
from geo_api.routes import writes
from geo_api.routes import funding, inaugurations, lifecycle, reports
from geo_api.routes import attachments, village_pairs
from geo_api.routes import files, ogc
from geo_api.routes import plan as plan_routes
from web_map import plan_map
from geo_api.routes import tiles
from web_map import pages
from geo_api.middleware import install_security
from geo_api.routes import auth as auth_routes, sync as sync_routes
from geo_api.settings import Settings, configure


def create_app(database_url: str | None = None, settings: Settings | None = None) -> FastAPI:
    """The app over `database_url` (default: the settings' database), with `settings`
    (default: read from the environment now), which become the process's settings."""
    settings = configure(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        app.state.engine.dispose()

    app = FastAPI(
        title="Border roads tracker",
        summary="Branch roads to Viet Nam's border markers: markers, roads, posts, funding, "
        "inaugurations and twinned villages.",
        version="0.1.0",
        lifespan=lifespan,
        dependencies=[QUERY_GUARD],  # unknown query parameters: 422 (geo_api.openapi)
    )
    app.state.settings = settings
    app.state.engine = get_engine(database_url)
    install_error_handlers(app)
    install_security(app)
    app.include_router(health.router)
    app.include_router(resources.router)
    app.include_router(writes.router)
    app.include_router(lifecycle.router)
    app.include_router(funding.router)
    app.include_router(inaugurations.router)
    app.include_router(reports.router)
    app.include_router(attachments.router)
    app.include_router(village_pairs.router)
    app.include_router(ogc.router)
    app.include_router(files.router)
    app.include_router(plan_routes.router)
    app.include_router(plan_map.router)
    app.include_router(tiles.router)
    app.include_router(pages.router)
    app.include_router(auth_routes.router)
    app.include_router(sync_routes.router)
    install_api_description(app)
    return app
