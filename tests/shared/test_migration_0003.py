"""Migration 0003 (idempotency keys): models and migrations agree; it downgrades and upgrades cleanly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from shared import models  # noqa: F401  (registers every table)
from shared.db import Base, Database
from shared.migrations import alembic_config
from tests.conftest import scratch_postgresql_database

pytest_plugins = ["tests.backends"]


@pytest.fixture
def scratch_database_url() -> Iterator[str]:
    with scratch_postgresql_database("wallet_migration") as url:
        yield url


def _differences(engine: sa.Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def test_autogenerate_finds_no_difference(backend: Database) -> None:
    assert _differences(backend.engine) == []


def test_downgrade_to_0001_and_back(scratch_database_url: str) -> None:
    config = alembic_config(scratch_database_url)
    command.upgrade(config, "head")
    command.downgrade(config, "0001")
    engine = sa.create_engine(scratch_database_url)
    try:
        assert "idempotency_keys" not in sa.inspect(engine).get_table_names()
        command.upgrade(config, "head")
        assert "idempotency_keys" in sa.inspect(engine).get_table_names()
        assert _differences(engine) == []
    finally:
        engine.dispose()
