"""Environment for gunicorn servers started by guard tests (tests/live_server.py runs them)."""

from __future__ import annotations

import json

from tests.conftest import UNLIMITED_DEPOSITS

# Small pools: several servers may run at once against a PostgreSQL with max_connections=100.
SMALL_POOL = json.dumps({"pool_size": 4, "max_overflow": 0, "pool_pre_ping": True})


def server_env(database_url: str, **overrides: str) -> dict[str, str]:
    env = {
        "APP_ENV": "test",
        "DATABASE_URL": database_url,
        "AUTH_DEV_BYPASS": "true",
        "FIREBASE_PROJECT_ID": "demo-test",
        "SQLALCHEMY_ENGINE_OPTIONS": SMALL_POOL,
        "RATE_LIMIT_DEPOSITS": UNLIMITED_DEPOSITS,
        "RATE_LIMIT_STORAGE_URL": "memory://",
        "CELERY_BROKER_URL": "memory://",  # no worker here: payouts enqueued into the server's memory
        # Idle keep-alive connections would otherwise hold every stop() for the default 30 s grace period.
        "GUNICORN_GRACEFUL_TIMEOUT": "2",
    }
    env.update(overrides)
    return env
