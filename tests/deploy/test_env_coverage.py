"""Every variable the code reads is documented and set everywhere the service runs."""

from __future__ import annotations

import json
import re

import pytest

from tests.deploy import files

# Development/test conveniences that production refuses: they must not appear in the production manifests.
DEV_ONLY = frozenset({"AUTH_DEV_BYPASS", "FIREBASE_AUTH_EMULATOR_HOST", "BENCH_FLOOR"})
# Meaningful only for tests and the simulated gateway; production leaves them unset.
UNSET_IN_PRODUCTION = frozenset({"STRIPE_API_BASE", "SIMULATED_PAYOUT_LATENCY_MS"})
# Read by gunicorn.conf.py only, so only the api service/pods need them.
API_PROCESS_ONLY = frozenset(
    name
    for name in files.variables_read_by_code()
    if name.startswith("GUNICORN_") or name == "PROMETHEUS_MULTIPROC_DIR"
)


def test_every_variable_is_in_env_example() -> None:
    documented = files.parse_env_file(files.ROOT / ".env.example")
    missing = files.variables_read_by_code() - set(documented)
    assert not missing, f".env.example lacks {sorted(missing)}"


def test_env_example_reads_the_same_in_bash_and_compose() -> None:
    """bin/run sources .env with bash and Compose reads it with its own dotenv parser: both must agree.

    (An inline comment after an empty value is the value itself for Compose, and an unquoted JSON value
    with spaces is a shell command for bash.)
    """
    bash_values = files.parse_env_file(files.ROOT / ".env.example")
    for name, value in bash_values.items():
        assert not value.startswith("#"), f"{name} would be read as the comment {value!r}"
    with_example = files.compose_config(files.ROOT / ".env.example")
    with_defaults = files.compose_config()
    assert with_example["services"] == with_defaults["services"], "compose defaults differ from .env.example"


def test_compose_defaults_match_env_example() -> None:
    example = files.parse_env_file(files.ROOT / ".env.example")
    api_env = files.compose_config()["services"]["api"]["environment"]
    # Compose builds the service URLs itself (see compose.yaml); everything else defaults as documented.
    built_by_compose = {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "GUNICORN_BIND", "GUNICORN_WORKER_TMP_DIR"}
    built_by_compose |= {"PROMETHEUS_MULTIPROC_DIR"}
    for name, value in example.items():
        if name in api_env and name not in built_by_compose:
            assert (api_env[name] or "") == value, f"compose default of {name} is {api_env[name]!r}, not {value!r}"


@pytest.mark.parametrize("service", files.APP_SERVICES)
def test_every_variable_reaches_each_compose_service(service: str) -> None:
    env = files.compose_config()["services"][service].get("environment", {})
    needed = files.variables_read_by_code() - (API_PROCESS_ONLY if service != "api" else frozenset())
    missing = needed - set(env)
    assert not missing, f"compose service {service} lacks {sorted(missing)}"


def test_every_variable_is_in_the_readme() -> None:
    readme = (files.ROOT / "README.md").read_text()
    table_names = set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)`", readme, flags=re.MULTILINE))
    table_names |= set(re.findall(r"`([A-Z][A-Z0-9_]*)`", readme))
    missing = files.variables_read_by_code() - table_names
    assert not missing, f"README lacks {sorted(missing)}"


def test_kubernetes_sets_every_production_variable() -> None:
    config = files.manifest("ConfigMap", "recycling-wallet-config")["data"]
    secret = files.manifest("Secret", "recycling-wallet-secrets")["stringData"]
    api = files.manifest("Deployment", "recycling-wallet")["spec"]["template"]["spec"]["containers"][0]
    provided = set(config) | set(secret) | {e["name"] for e in api.get("env", [])}
    provided |= set(files.image_env("Dockerfile.api"))
    missing = files.variables_read_by_code() - DEV_ONLY - UNSET_IN_PRODUCTION - provided
    assert not missing, f"neither ConfigMap, Secret nor the api pod sets {sorted(missing)}"
    assert not ((DEV_ONLY | UNSET_IN_PRODUCTION) & provided), "development-only variables must not reach production"
    assert not (set(config) & set(secret)), "a variable set in both the ConfigMap and the Secret"
    unknown = (set(config) | set(secret)) - files.variables_read_by_code()
    assert not unknown, f"manifests set variables nothing reads: {sorted(unknown)}"


def _pool_capacity(options: str) -> int:
    parsed = json.loads(options)
    return int(parsed.get("pool_size", 5)) + int(parsed.get("max_overflow", 10))  # SQLAlchemy's defaults


def test_worker_pools_hold_one_connection_per_payout_thread() -> None:
    """Each payout thread needs a database connection; fewer and threads queue for the pool."""
    worker = files.compose_config()["services"]["worker"]["environment"]
    assert _pool_capacity(worker["SQLALCHEMY_ENGINE_OPTIONS"]) >= int(worker["CELERY_WORKER_CONCURRENCY"])
    config = files.manifest("ConfigMap", "recycling-wallet-config")["data"]
    container = files.manifest("Deployment", "recycling-wallet-worker")["spec"]["template"]["spec"]["containers"][0]
    env = {**config, **{e["name"]: e["value"] for e in container.get("env", [])}}
    assert _pool_capacity(env["SQLALCHEMY_ENGINE_OPTIONS"]) >= int(env["CELERY_WORKER_CONCURRENCY"])
