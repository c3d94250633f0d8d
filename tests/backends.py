"""Run a test on both supported databases: PostgreSQL (production) and SQLite (the embedded default).

Use in a test module with ``pytest_plugins = ["tests.backends"]`` and a ``backend`` argument. The
parametrized database and its cleanup are conftest's ``any_database``; this only gives it the shorter name.
"""

from __future__ import annotations

import pytest

from shared.db import Database


@pytest.fixture
def backend(any_database: Database) -> Database:
    return any_database
