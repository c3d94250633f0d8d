"""Auth in production: the bypass and the emulator can never be switched on, by config or by environment.

tests/api/test_production_safety.py covers create_app()'s refusals of unsafe settings; this adds the token
verifier's own refusal, the environment variable firebase-admin reads behind Config's back, and the WSGI
entry point gunicorn loads.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from api import create_app
from api.auth import FirebaseTokenVerifier
from shared.config import AppEnv, Config, ConfigError
from shared.db import Database
from tests.api.conftest import assert_error
from tests.conftest import EMULATOR_HOST_VARIABLE
from tests.live_server import PROJECT_ROOT

PRODUCTION = {"FIREBASE_PROJECT_ID": "prod-proj", "STRIPE_SECRET_KEY": "sk_live_placeholder", "METRICS_TOKEN": "m"}


@pytest.fixture
def production(database_url: str) -> Config:
    return Config.from_env(PRODUCTION, app_env=AppEnv.PRODUCTION, database_url=database_url)


def test_the_bypass_header_means_nothing_in_production(production: Config, database: Database) -> None:
    app = create_app(production)
    try:
        response = app.test_client().get("/wallet", headers={"X-Test-User-Email": "user@example.com"})
        assert_error(response, 401, "unauthenticated")
    finally:
        app.extensions["wallet_db"].dispose()


@pytest.mark.parametrize(
    ("unsafe", "message"),
    [
        pytest.param({"auth_dev_bypass": True}, "AUTH_DEV_BYPASS", id="dev-bypass"),
        pytest.param({"firebase_auth_emulator_host": "127.0.0.1:9099"}, "FIREBASE_AUTH_EMULATOR_HOST", id="emulator"),
        pytest.param({"firebase_project_id": None}, "FIREBASE_PROJECT_ID", id="no-project"),
    ],
)
def test_the_token_verifier_refuses_unsafe_production_config(
    production: Config, unsafe: dict[str, object], message: str
) -> None:
    """The verifier may be built without create_app() (a worker, a script): it checks for itself."""
    with pytest.raises(ConfigError, match=message):
        FirebaseTokenVerifier(production.replace(**unsafe))
    assert EMULATOR_HOST_VARIABLE not in os.environ  # and the refused emulator host was not applied


def test_production_refuses_the_emulator_variable_in_the_environment(
    production: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """firebase-admin reads the process environment, so a stray variable is refused even if Config lacks it."""
    monkeypatch.setenv(EMULATOR_HOST_VARIABLE, "127.0.0.1:9099")
    with pytest.raises(ConfigError, match=EMULATOR_HOST_VARIABLE):
        create_app(production)
    with pytest.raises(ConfigError, match=EMULATOR_HOST_VARIABLE):
        FirebaseTokenVerifier(production)


@pytest.mark.parametrize(
    ("variable", "value"), [("AUTH_DEV_BYPASS", "true"), (EMULATOR_HOST_VARIABLE, "127.0.0.1:9099")]
)
def test_the_wsgi_entry_point_refuses_to_load(database_url: str, variable: str, value: str) -> None:
    """What gunicorn imports (api.wsgi) fails to load, so no worker ever serves a request."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": "/tmp",
        "APP_ENV": "production",
        "DATABASE_URL": database_url,
        **PRODUCTION,
        variable: value,
    }
    result = subprocess.run(
        [sys.executable, "-c", "import api.wsgi"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "ConfigError" in result.stderr
    assert f"{variable} must not be" in result.stderr
