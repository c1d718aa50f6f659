"""Alembic environment: the URL comes from the tracker's settings (or -x url=...)."""

from alembic import context
from sqlalchemy import create_engine, pool

from geo_api.settings import get_settings, normalise_url

config = context.config
url = config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
url = normalise_url(url) if url else get_settings().resolved_database_url()


def run_migrations_online() -> None:
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    context.configure(url=url, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
