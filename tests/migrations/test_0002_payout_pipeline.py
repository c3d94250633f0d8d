"""Migration 0002 upgrades a 0001 database, matches the models exactly, and downgrades cleanly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from shared.db import Base
from shared.migrations import alembic_config
from tests.conftest import scratch_postgresql_database

PAYOUT_TABLES = {"operator_actions", "applied_webhook_events"}


@pytest.fixture
def empty_database() -> Iterator[str]:
    with scratch_postgresql_database("wallet_mig") as url:
        yield url


def test_0002_up_matches_the_models_and_down_restores_0001(empty_database: str) -> None:
    config = alembic_config(empty_database)
    command.upgrade(config, "0001")
    command.upgrade(config, "0002")
    engine = sa.create_engine(empty_database)
    with engine.connect() as conn:
        assert set(sa.inspect(conn).get_table_names()) >= PAYOUT_TABLES
    command.upgrade(config, "head")  # the models include the tables of later revisions too
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    command.downgrade(config, "0001")
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        assert not PAYOUT_TABLES & set(inspector.get_table_names())
        assert "next_attempt_at" not in {c["name"] for c in inspector.get_columns("withdrawals")}
    command.upgrade(config, "head")
    engine.dispose()
