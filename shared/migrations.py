"""Alembic configuration built in code, so `flask db`, `alembic` and tests all run the same migrations."""

from __future__ import annotations

from alembic.config import Config as AlembicConfig

from shared.config import PROJECT_ROOT


def alembic_config(database_url: str) -> AlembicConfig:
    config = AlembicConfig(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    # Read by migrations/env.py; wins over DATABASE_URL from the environment.
    config.attributes["database_url"] = database_url
    return config
