from sqlalchemy import Engine, text

from geo_api.db import current_revision, head_revision


def check_health(engine: Engine) -> dict:
    with engine.connect() as conn:
        postgis = conn.execute(text("SELECT postgis_lib_version()")).scalar()
        server = conn.execute(text("SHOW server_version")).scalar()
    current = current_revision(engine)
    head = head_revision()
    return {
        "status": "ok" if current == head else "migrations_pending",
        "database": "reachable",
        "postgresql": server,
        "postgis": postgis,
        "migration": current,
        "migration_head": head,
    }
