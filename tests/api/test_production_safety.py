"""APP_ENV=production refuses to start with settings that would let anyone act as any user."""

from __future__ import annotations

from typing import Any

import pytest

from api import create_app
from shared.config import AppEnv, Config, ConfigError
from tests.live_server import start_live_server

SAFE = {
    "app_env": AppEnv.PRODUCTION,
    "firebase_project_id": "wallet-prod",
    "auth_dev_bypass": False,
    "stripe_secret_key": "sk_live_placeholder",
    "metrics_token": "metrics-token-placeholder",
}


def _production(database_url: str, **changes: Any) -> Config:
    return Config.from_env({}, database_url=database_url, **{**SAFE, **changes})


def test_safe_production_settings_start(database_url: str) -> None:
    app = create_app(_production(database_url))
    assert app.test_client().get("/health").status_code == 200
    app.extensions["wallet_db"].dispose()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"auth_dev_bypass": True}, "AUTH_DEV_BYPASS"),
        ({"firebase_auth_emulator_host": "127.0.0.1:9099"}, "FIREBASE_AUTH_EMULATOR_HOST"),
        ({"firebase_project_id": None}, "FIREBASE_PROJECT_ID"),
        ({"stripe_secret_key": None}, "needs the Stripe gateway"),
        ({"metrics_token": None}, "METRICS_TOKEN"),
        ({"stripe_secret_key": None, "payout_gateway": "simulated"}, "ALLOW_SIMULATED_PAYOUTS"),
        ({"redis_url": "redis://cache:6379/1"}, "different Redis databases"),
        (
            {"celery_broker_url": "redis://cache:6379/3", "rate_limit_storage_url": "redis://cache:6379/3"},
            "different Redis databases",
        ),
    ],
    ids=[
        "dev-bypass",
        "emulator-setting",
        "no-project-id",
        "simulated-gateway",
        "public-metrics",
        "simulated-explicitly",
        "limiter-on-broker-db",
        "explicit-same-db",
    ],
)
def test_unsafe_production_settings_refuse_to_start(database_url: str, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_app(_production(database_url, **changes))


def test_the_simulated_gateway_runs_in_production_only_when_allowed_explicitly(database_url: str) -> None:
    config = _production(database_url, stripe_secret_key=None, allow_simulated_payouts=True)
    assert config.payout_gateway_kind == "simulated"
    app = create_app(config)
    assert app.test_client().get("/health").status_code == 200
    app.extensions["wallet_db"].dispose()
    assert Config.from_env({"ALLOW_SIMULATED_PAYOUTS": "true"}).allow_simulated_payouts is True


def test_the_emulator_variable_in_the_environment_is_refused(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # firebase-admin reads the variable from os.environ itself, whatever the Config says.
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9099")
    with pytest.raises(ConfigError, match="FIREBASE_AUTH_EMULATOR_HOST"):
        create_app(_production(database_url))


def test_the_same_settings_are_fine_outside_production(database_url: str) -> None:
    relaxed = _production(database_url, app_env=AppEnv.DEVELOPMENT, auth_dev_bypass=True, firebase_project_id=None)
    relaxed.check_safe_for_production()


def test_gunicorn_refuses_to_boot_with_the_bypass_in_production(database_url: str) -> None:
    env = {
        "APP_ENV": "production",
        "DATABASE_URL": database_url,
        "FIREBASE_PROJECT_ID": "wallet-prod",
        "AUTH_DEV_BYPASS": "true",
    }
    with pytest.raises(RuntimeError) as refused:
        start_live_server(env, workers=1).stop()
    assert "AUTH_DEV_BYPASS must not be enabled when APP_ENV=production" in str(refused.value)
