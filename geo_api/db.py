"""Engine, connections and migrations."""

from __future__ import annotations

import threading
from functools import lru_cache

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text

from geo_api import MIGRATIONS_DIR, ROOT
from geo_api.settings import get_settings, normalise_url


@lru_cache
def get_engine(url: str | None = None) -> Engine:
    url = normalise_url(url) if url else get_settings().database.resolved_database_url()
    engine = create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
    run_as_app_role(engine)
    return engine


def run_as_app_role(engine: Engine) -> None:
    """Every new connection switches to the application role (TRACKER_APP_DB_ROLE, made by
    migration 0004), so the database enforces its rights (no UPDATE/DELETE of audit rows)
    whatever DATABASE_URL logs in as. Migrations use their own engine and stay the owner."""

    role = get_settings().security.app_db_role
    if not role:
        return

    @event.listens_for(engine, "connect", insert=True)
    def _set_role(dbapi_connection, _record) -> None:
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        try:
            with dbapi_connection.cursor() as cur:
                cur.execute(f'SET ROLE "{role}"')  # a checked identifier, see SecuritySettings
        finally:
            dbapi_connection.autocommit = autocommit


class ReadPool:
    """Autocommit psycopg connections for the hot read paths (OGC items, features, tiles),
    beside the engine's pool: a request there is one statement, so it skips SQLAlchemy, the
    pre-ping and the BEGIN/ROLLBACK round trips. A connection found broken (the server
    restarted) is dropped and the statement tried once more on a new one: reads are safe to
    repeat. Connections run as the application role, like the engine's, with JIT off (these
    statements are short; compiling costs more than it saves, see domain.tiles.without_jit).
    """

    def __init__(self, conninfo: str, role: str | None, size: int = 20, keep: int = 10):
        self.conninfo, self.role, self.keep = conninfo, role, keep
        self._idle: list = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)

    def _connect(self):
        import psycopg

        conn = psycopg.connect(self.conninfo, autocommit=True)
        if self.role:
            conn.execute(f'SET ROLE "{self.role}"')  # a checked identifier, see SecuritySettings
        conn.execute("SET jit = off")
        # psycopg prepares a statement run 5 times; a generic plan of it cannot see the bbox
        # and may be far worse than one planned for the values (seconds instead of ms).
        conn.execute("SET plan_cache_mode = force_custom_plan")
        return conn

    def fetchone(self, sql: str, params: dict | None = None) -> tuple | None:
        """Run one statement (psycopg `%(name)s` placeholders); its first row."""
        import psycopg

        from geo_api.errors import DatabaseUnavailable

        if not self._slots.acquire(timeout=30):
            raise DatabaseUnavailable("the database is busy; try again shortly")
        try:
            for attempt in (1, 2):
                with self._lock:
                    conn = self._idle.pop() if self._idle else None
                reused = conn is not None
                try:
                    if conn is None or conn.closed:
                        conn = self._connect()
                    row = conn.execute(sql, params).fetchone()
                except psycopg.OperationalError as exc:
                    if conn is not None:
                        conn.close()
                    if reused and attempt == 1:
                        continue  # a connection from before a restart: retry on a new one
                    raise DatabaseUnavailable("the database is unavailable; try again shortly") from exc
                except BaseException:
                    conn.close()
                    raise
                with self._lock:
                    if len(self._idle) < self.keep:
                        self._idle.append(conn)
                        conn = None
                if conn is not None:
                    conn.close()
                return row
        finally:
            self._slots.release()
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


_read_pools: dict[str, ReadPool] = {}
_read_pools_lock = threading.Lock()


def read_pool(engine: Engine) -> ReadPool:
    """The ReadPool of `engine`'s database, made on first use, emptied when it is disposed."""

    key = engine.url.render_as_string(hide_password=False)
    with _read_pools_lock:
        pool = _read_pools.get(key)
        if pool is None:
            conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
            pool = _read_pools[key] = ReadPool(conninfo, get_settings().security.app_db_role or None)
            event.listen(engine, "engine_disposed", lambda _engine: pool.close())
        return pool


# The snapshot a statement sees (the next transaction id and those in progress) and
# whether its own transaction has written: a result kept with its snapshot is still exact
# for a later statement of a transaction that has not written and sees the very same one
# (no transaction has begun writing or finished since). Used FROM this, aliased x.
SNAPSHOT = ("(SELECT pg_current_snapshot()::text AS snap, "
            "pg_current_xact_id_if_assigned() IS NOT NULL AS writing) x")


def statement_key(sql: str, params: dict) -> tuple:
    """A hashable key of a statement and its bound values (lists as tuples)."""
    return (sql, tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in params.items())))


@lru_cache(maxsize=512)
def psycopg_sql(sql: str) -> str:
    """A `sqlalchemy.text` statement (`:name` parameters) in psycopg's `%(name)s` style."""
    from sqlalchemy.dialects import postgresql

    return str(text(sql).compile(dialect=postgresql.psycopg.dialect()))


def alembic_config(url: str | None = None) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["url"] = normalise_url(url) if url else get_settings().database.resolved_database_url()
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config("postgresql://unused")).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        exists = conn.execute(text("SELECT to_regclass('alembic_version') IS NOT NULL")).scalar()
        if not exists:
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
