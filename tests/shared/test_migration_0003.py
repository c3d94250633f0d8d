"""Migration 0003 (idempotency keys): models and migrations agree; it downgrades and upgrades cleanly."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import make_url

from shared import models  # noqa: F401  (registers every table)
from shared.db import Base, Database
from shared.migrations import alembic_config
from tests.conftest import ADMIN_DATABASE_URL

pytest_plugins = ["tests.backends"]


@pytest.fixture
def scratch_database_url() -> Iterator[str]:
    admin = sa.create_engine(ADMIN_DATABASE_URL, isolation_level="AUTOCOMMIT")
    name = f"wallet_migration_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(ADMIN_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


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
