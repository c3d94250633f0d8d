"""Fixtures against real PostgreSQL and Redis: one throwaway database per test run, migrated once.

Ledger functions commit (that is their job), so tests cannot hide inside one rolled-back transaction;
instead every table is emptied after each test that touched the database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from api import create_app
from shared.config import AppEnv, Config
from shared.db import Base, Database
from shared.migrations import alembic_config
from tests.firebase_emulator import AuthEmulator, start_auth_emulator
from tests.live_server import LiveServer, start_live_server

ADMIN_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

# For tests about something other than rate limiting.
UNLIMITED_DEPOSITS = "100000/second"

# firebase-admin reads this from the process environment: tests that want the emulator set it themselves (and
# remove it), so that every other test verifies real signatures as production does.
EMULATOR_HOST_VARIABLE = "FIREBASE_AUTH_EMULATOR_HOST"
os.environ.pop(EMULATOR_HOST_VARIABLE, None)

HOW_TO_START = """
The test suite needs real PostgreSQL and Redis.
  PostgreSQL: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start
  Redis:      redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no
Or point TEST_DATABASE_URL (an admin URL able to CREATE DATABASE) and TEST_REDIS_URL elsewhere.
"""


def _admin_engine() -> sa.Engine:
    return sa.create_engine(ADMIN_DATABASE_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


@contextmanager
def scratch_postgresql_database(prefix: str = "wallet_scratch") -> Iterator[str]:
    """An empty PostgreSQL database for one test (no migrations applied); dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(ADMIN_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this run, upgraded to head; dropped at the end."""
    from alembic import command

    admin = _admin_engine()
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        pytest.exit(f"cannot reach PostgreSQL at {ADMIN_DATABASE_URL}: {exc.orig}\n{HOW_TO_START}", returncode=3)
    name = f"wallet_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        # Tests commit thousands of times and never crash the server: waiting for each fsync buys nothing.
        conn.execute(sa.text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    url = make_url(ADMIN_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    command.upgrade(alembic_config(url), "head")
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.exit(f"cannot reach Redis at {TEST_REDIS_URL}: {exc}\n{HOW_TO_START}", returncode=3)
    return TEST_REDIS_URL


@pytest.fixture(scope="session")
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    yield db
    db.dispose()


def truncate_all(db: Database) -> None:
    """Empty every table, children first. DELETE, not TRUNCATE: on tables this small it is ~10x faster."""
    with db.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture(scope="session")
def sqlite_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """The embedded default's engine (a SQLite file), migrated with the same Alembic scripts."""
    from alembic import command

    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'wallet.sqlite3'}"
    command.upgrade(alembic_config(url), "head")
    db = Database(url)
    yield db
    db.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def any_database(request: pytest.FixtureRequest) -> Iterator[Database]:
    """Each backend the ledger must be correct on, emptied after the test."""
    db: Database = request.getfixturevalue("database" if request.param == "postgresql" else "sqlite_database")
    try:
        yield db
    finally:
        truncate_all(db)


@pytest.fixture
def any_session(any_database: Database) -> Iterator[Session]:
    session = any_database.session()
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def db_session(database: Database) -> Iterator[Session]:
    session = database.session()
    try:
        yield session
    finally:
        session.close()
        truncate_all(database)


@pytest.fixture
def config(database_url: str) -> Config:
    return Config.from_env(
        {},
        app_env=AppEnv.TEST,
        database_url=database_url,
        auth_dev_bypass=True,
        firebase_project_id="demo-test",
        # POST /withdraw enqueues a payout; without a worker in the test, an in-memory broker swallows it.
        celery_broker_url="memory://",
        # Rate limiting has its own tests (tests/api/test_ratelimit*.py); elsewhere it must not get in the way.
        rate_limit_deposits=UNLIMITED_DEPOSITS,
    )


@pytest.fixture
def app(config: Config, database: Database) -> Iterator[Flask]:
    application = create_app(config)
    yield application
    application.extensions["wallet_db"].dispose()
    truncate_all(database)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def live_server(database_url: str, database: Database) -> Iterator[LiveServer]:
    """gunicorn serving the API in a real process, on a free port."""
    env = {
        "APP_ENV": "test",
        "DATABASE_URL": database_url,
        "AUTH_DEV_BYPASS": "true",
        "FIREBASE_PROJECT_ID": "demo-test",
        "CELERY_BROKER_URL": "memory://",  # no worker here: payouts enqueued into the server's memory
        "RATE_LIMIT_DEPOSITS": UNLIMITED_DEPOSITS,
    }
    server = start_live_server(env)
    try:
        yield server
    finally:
        server.stop()
        truncate_all(database)


@pytest.fixture(scope="session")
def auth_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthEmulator]:
    """The Firebase Auth emulator, for the whole session. Tests that use it set EMULATOR_HOST_VARIABLE."""
    emulator = start_auth_emulator(tmp_path_factory.mktemp("firebase"))
    try:
        yield emulator
    finally:
        emulator.stop()
