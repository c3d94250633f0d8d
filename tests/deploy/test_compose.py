"""compose.yaml, as Docker Compose v2 itself resolves it."""

from __future__ import annotations

from typing import Any

import pytest

from shared.config import Config
from tests.deploy import files


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    services: dict[str, Any] = files.compose_config()["services"]
    return services


def test_the_services_the_issue_lists(services: dict[str, Any]) -> None:
    assert set(services) == {"postgres", "redis", "migrate", "api", "worker", "beat", "flower"}


def test_published_ports(services: dict[str, Any]) -> None:
    def published(name: str) -> set[tuple[str, int]]:
        return {(p["published"], p["target"]) for p in services[name].get("ports", [])}

    assert published("api") == {("8000", 8000)}
    assert published("postgres") == {("5432", 5432)}
    assert published("redis") == {("6379", 6379)}
    assert published("flower") == {("5555", 5555)}


def test_redis_requires_a_password_and_every_client_sends_it(services: dict[str, Any]) -> None:
    command = services["redis"]["command"]
    password = command[command.index("--requirepass") + 1]
    assert password
    for name in files.APP_SERVICES:
        env = services[name]["environment"]
        assert env["REDIS_URL"].startswith(f"redis://:{password}@redis:6379/")
        assert env["CELERY_BROKER_URL"].startswith(f"redis://:{password}@redis:6379/")
        # The rate limiter and the broker never share a Redis database.
        config = Config.from_env({k: v for k, v in env.items() if v is not None})
        assert config.rate_limit_storage.startswith(f"redis://:{password}@redis:6379/")
        assert config.rate_limit_storage.rsplit("/", 1)[1] != config.broker_url.rsplit("/", 1)[1]
    assert services["redis"]["environment"]["REDISCLI_AUTH"] == password  # its healthcheck authenticates


def test_database_url_points_at_the_postgres_service(services: dict[str, Any]) -> None:
    pg = services["postgres"]["environment"]
    expected = (
        f"postgresql+psycopg2://{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}@postgres:5432/{pg['POSTGRES_DB']}"
    )
    for name in files.APP_SERVICES:
        assert services[name]["environment"]["DATABASE_URL"] == expected


def test_start_order_waits_on_health(services: dict[str, Any]) -> None:
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy", "required": True}}
    for name in ("api", "worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["redis"]["condition"] == "service_healthy", name
    assert services["api"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name, service in services.items():
        for dependency, spec in service.get("depends_on", {}).items():
            target = services[dependency]
            if spec["condition"] == "service_healthy":
                assert "test" in target.get("healthcheck", {}), (
                    f"{name} waits on {dependency}, which has no healthcheck"
                )


def test_healthchecks(services: dict[str, Any]) -> None:
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "redis-cli ping" in " ".join(services["redis"]["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/health" in " ".join(services["api"]["healthcheck"]["test"])
    assert "http://127.0.0.1:5555/healthcheck" in " ".join(services["flower"]["healthcheck"]["test"])
    # One-shot and clock-only services do not inherit the worker image's ping check.
    assert services["migrate"]["healthcheck"]["disable"] is True
    assert services["beat"]["healthcheck"]["disable"] is True


def test_images_and_commands(services: dict[str, Any]) -> None:
    for name in ("migrate", "api"):
        assert services[name]["build"]["dockerfile"] == "Dockerfile.api"
    for name in ("worker", "beat", "flower"):
        assert services[name]["build"]["dockerfile"] == "Dockerfile.worker"
    assert services["migrate"]["entrypoint"] == ["flask", "--app", "api", "db", "upgrade"]
    assert services["api"].get("command") is None and services["api"].get("entrypoint") is None  # the image's
    assert services["worker"]["command"][0] == "worker"
    assert services["beat"]["command"][0] == "beat"
    assert services["flower"]["command"][0] == "flower"
    assert services["migrate"]["restart"] == "no"


def test_flower_requires_basic_auth(services: dict[str, Any]) -> None:
    user, _, password = services["flower"]["environment"]["FLOWER_BASIC_AUTH"].partition(":")
    assert user and password


def test_named_volumes_hold_the_data(services: dict[str, Any]) -> None:
    config = files.compose_config()
    assert set(config["volumes"]) == {"postgres-data", "redis-data"}
    mounts = {
        name: {(v["source"], v["target"]) for v in services[name]["volumes"] if v["type"] == "volume"}
        for name in ("postgres", "redis")
    }
    assert mounts["postgres"] == {("postgres-data", "/var/lib/postgresql/data")}
    assert mounts["redis"] == {("redis-data", "/data")}
    assert "--appendonly" in services["redis"]["command"]


def test_app_containers_are_hardened_and_stop_gracefully(services: dict[str, Any]) -> None:
    for name in files.APP_SERVICES:
        service = services[name]
        assert service["read_only"] is True, name
        assert "/tmp" in service["tmpfs"], name
        assert service["cap_drop"] == ["ALL"], name
    graceful = int(services["api"]["environment"]["GUNICORN_GRACEFUL_TIMEOUT"])
    assert int(services["api"]["stop_grace_period"].rstrip("s")) > graceful
