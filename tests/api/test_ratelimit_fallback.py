"""Redis down: deposits are still limited, per process, in memory; Redis back: the limiter returns to it.

Uses a throwaway redis-server of its own, stopped and started by the test (never the shared one).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from api.ratelimit import KEY_PREFIX, limiter_fallback_active
from shared.config import Config
from shared.db import Database
from tests.conftest import truncate_all
from tests.redis_server import ThrowawayRedis, throwaway_redis

DEPOSIT = {"material": "aluminum", "units": 1}
FALLBACK_WARNING = "falling back to in-memory storage"
# Flask-Limiter probes a dead storage with exponential backoff (1, 2, 4 ... s); allow a few rounds.
RECOVERY_TIMEOUT_S = 40


@pytest.fixture
def redis_server() -> Iterator[ThrowawayRedis]:
    with throwaway_redis() as server:
        yield server


@pytest.fixture
def app(config: Config, database: Database, redis_server: ThrowawayRedis) -> Iterator[Flask]:
    application = create_app(config.replace(rate_limit_deposits="3/minute", rate_limit_storage_url=redis_server.url))
    yield application
    application.extensions["wallet_db"].dispose()
    truncate_all(database)


def _deposit(client: FlaskClient, headers: dict[str, str]) -> int:
    return client.post("/deposit", json=DEPOSIT, headers=headers).status_code


def _limiter_keys(server: ThrowawayRedis) -> list[bytes]:
    return list(redis.Redis.from_url(server.url).scan_iter(match=f"*LIMITER/{KEY_PREFIX}/*"))


def test_redis_down_limits_per_process_then_recovers(
    app: Flask, redis_server: ThrowawayRedis, caplog: pytest.LogCaptureFixture
) -> None:
    client = app.test_client()
    headers = {"X-Test-User-Email": f"fallback-{uuid.uuid4().hex[:8]}@example.com"}
    assert _deposit(client, headers) == 201
    assert _limiter_keys(redis_server), "the limiter counts in Redis while it is up"
    assert not limiter_fallback_active(app)

    redis_server.stop()
    caplog.set_level(logging.INFO, logger="flask-limiter")
    started = time.monotonic()
    statuses = [_deposit(client, headers) for _ in range(5)]
    elapsed = time.monotonic() - started

    # Still served, still limited: the in-memory window starts empty, so 3 more fit, then 429.
    assert statuses == [201, 201, 201, 429, 429]
    assert limiter_fallback_active(app)
    assert client.get("/wallet", headers=headers).json["balance_cents"] == 4 * 10  # refused ones not recorded
    warnings = [r for r in caplog.records if FALLBACK_WARNING in r.getMessage()]
    assert len(warnings) == 1, "the outage is logged once, not per request"
    assert warnings[0].levelno == logging.WARNING
    assert elapsed < 5, "a dead Redis must not stall deposits"

    other = {"X-Test-User-Email": f"fallback-{uuid.uuid4().hex[:8]}@example.com"}
    assert _deposit(client, other) == 201  # per wallet in fallback too

    redis_server.start()
    deadline = time.monotonic() + RECOVERY_TIMEOUT_S
    while limiter_fallback_active(app) and time.monotonic() < deadline:
        _deposit(client, other)  # the limiter probes Redis on the requests it limits
        time.sleep(0.25)
    assert not limiter_fallback_active(app), "the limiter went back to Redis once it answered"
    assert any("recovered" in r.getMessage() for r in caplog.records)
    fresh = {"X-Test-User-Email": f"fallback-{uuid.uuid4().hex[:8]}@example.com"}
    assert _deposit(client, fresh) == 201
    assert _limiter_keys(redis_server), "counting happens in Redis again"


def test_app_starts_and_serves_with_redis_already_down(config: Config, database: Database) -> None:
    unreachable = ThrowawayRedis()  # a free port with nothing listening
    app = create_app(config.replace(rate_limit_deposits="2/minute", rate_limit_storage_url=unreachable.url))
    try:
        client = app.test_client()
        headers = {"X-Test-User-Email": f"down-{uuid.uuid4().hex[:8]}@example.com"}
        assert [_deposit(client, headers) for _ in range(3)] == [201, 201, 429]
        assert limiter_fallback_active(app)
    finally:
        app.extensions["wallet_db"].dispose()
        truncate_all(database)
