"""Run a test on both supported databases: PostgreSQL (production) and SQLite (the embedded default).

Use in a test module with ``pytest_plugins = ["tests.backends"]`` and a ``backend`` argument.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.db import Base, Database
from shared.migrations import alembic_config
from tests.conftest import truncate_all


@pytest.fixture(scope="module")
def sqlite_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """The embedded default: a SQLite file migrated like production."""
    from alembic import command

    url = f"sqlite:///{Path(tmp_path_factory.mktemp('sqlite')) / 'wallet.sqlite3'}"
    command.upgrade(alembic_config(url), "head")
    db = Database(url)
    yield db
    db.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def backend(request: pytest.FixtureRequest) -> Iterator[Database]:
    if request.param == "postgresql":
        db: Database = request.getfixturevalue("database")
        yield db
        truncate_all(db)
    else:
        db = request.getfixturevalue("sqlite_database")
        yield db
        with db.engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())
