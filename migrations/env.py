"""Alembic environment: the URL comes from the caller (flask db / tests) or from Config.from_env()."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from shared import models  # noqa: F401  (registers every table on Base.metadata)
from shared.config import Config
from shared.db import Base, UTCDateTime, make_engine

# Fail fast instead of queueing behind a long-running transaction in production.
LOCK_TIMEOUT = "5s"
STATEMENT_TIMEOUT = "60s"

config = context.config
target_metadata = Base.metadata


def _render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    """Render our UTCDateTime as a plain timestamptz so migrations never import application code."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _database_url() -> str:
    url = config.attributes.get("database_url") or context.get_x_argument(as_dictionary=True).get("url")
    return url or Config.from_env().database_url


def run_migrations_offline() -> None:
    context.configure(
        url=_database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(_database_url())
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"SET lock_timeout = '{LOCK_TIMEOUT}'"))
            connection.execute(text(f"SET statement_timeout = '{STATEMENT_TIMEOUT}'"))
            connection.commit()
        # Batch mode lets ALTERs work on SQLite (table copy) as well as PostgreSQL.
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=True,
            compare_type=True,
            render_item=_render_item,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
