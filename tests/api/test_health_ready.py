"""GET /health/ready: PostgreSQL, the replica, Redis and the broker, each bounded by a short timeout."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from shared.config import Config
from tests.private_redis import ThrowawayRedis, start_redis

CLOSED_PORT_DATABASE = "postgresql+psycopg2://postgres@127.0.0.1:1/nothing"


@pytest.fixture
def throwaway_redis() -> Iterator[ThrowawayRedis]:
    server = start_redis(password="s3cret")
    yield server
    server.stop()


_apps: list[Flask] = []


@pytest.fixture(autouse=True)
def _dispose_apps() -> Iterator[None]:
    yield
    while _apps:
        app = _apps.pop()
        for key in ("wallet_db", "wallet_replica_db"):
            if app.extensions.get(key) is not None:
                app.extensions[key].dispose()


def _client(config: Config) -> FlaskClient:
    app = create_app(config)
    _apps.append(app)
    return app.test_client()


def test_ready_when_everything_answers(config: Config, redis_url: str, throwaway_redis: ThrowawayRedis) -> None:
    client = _client(config.replace(redis_url=throwaway_redis.url(0), celery_broker_url=redis_url))
    response = client.get("/health/ready")
    assert response.status_code == 200, response.json
    assert response.json["status"] == "ready"
    assert {name: c["status"] for name, c in response.json["checks"].items()} == {
        "database": "ok",
        "redis": "ok",
        "broker": "ok",
    }
    assert response.headers["Cache-Control"] == "no-store"


def test_redis_stopped_is_named(config: Config, redis_url: str, throwaway_redis: ThrowawayRedis) -> None:
    client = _client(config.replace(redis_url=throwaway_redis.url(0), celery_broker_url=redis_url))
    assert client.get("/health/ready").status_code == 200
    throwaway_redis.stop()
    response = client.get("/health/ready")
    assert response.status_code == 503
    error = response.json["error"]
    assert error["code"] == "not_ready"
    assert error["details"]["failing"] == ["redis"]
    assert error["message"] == "not ready: redis"
    assert error["details"]["checks"]["redis"]["status"] == "ConnectionError"
    assert error["details"]["checks"]["database"]["status"] == "ok"
    assert error["details"]["checks"]["broker"]["status"] == "ok"
    assert client.get("/health").status_code == 200  # liveness does not care


def test_optional_check_degrades_instead_of_failing(
    config: Config, redis_url: str, throwaway_redis: ThrowawayRedis
) -> None:
    client = _client(
        config.replace(
            redis_url=throwaway_redis.url(0), celery_broker_url=redis_url, readiness_optional_checks=("redis",)
        )
    )
    throwaway_redis.stop()
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json["status"] == "degraded"
    assert response.json["checks"]["redis"]["status"] == "ConnectionError"


def test_broker_down_is_named(config: Config, redis_url: str, throwaway_redis: ThrowawayRedis) -> None:
    client = _client(config.replace(redis_url=redis_url, celery_broker_url=throwaway_redis.url(1)))
    throwaway_redis.stop()
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json["error"]["details"]["failing"] == ["broker"]


def test_wrong_redis_password_is_a_failure(config: Config, throwaway_redis: ThrowawayRedis) -> None:
    url = throwaway_redis.url(0).replace("s3cret", "wrong")
    response = _client(config.replace(redis_url=url)).get("/health/ready")
    assert response.status_code == 503
    assert response.json["error"]["details"]["checks"]["redis"]["status"] == "AuthenticationError"


def test_database_down_is_named(config: Config) -> None:
    client = _client(config.replace(database_url=CLOSED_PORT_DATABASE))
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json["error"]["details"]["failing"] == ["database"]
    assert client.get("/health").status_code == 200


def test_a_silent_dependency_costs_the_timeout_not_more(config: Config) -> None:
    """A server that accepts connections and never answers (a black hole) must not hang the probe."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        client = _client(config.replace(redis_url=f"redis://127.0.0.1:{port}/0", health_check_timeout_seconds=0.5))
        started = time.monotonic()
        response = client.get("/health/ready")
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json["error"]["details"]["checks"]["redis"]["status"] in {"timeout", "TimeoutError"}
    assert elapsed < 2.0


def test_replica_is_checked_when_configured(config: Config, database_url: str) -> None:
    response = _client(config.replace(database_replica_url=database_url)).get("/health/ready")
    assert response.status_code == 200
    assert response.json["checks"]["replica"]["status"] == "ok"
    down = _client(config.replace(database_replica_url=CLOSED_PORT_DATABASE)).get("/health/ready")
    assert down.status_code == 503
    assert down.json["error"]["details"]["failing"] == ["replica"]
