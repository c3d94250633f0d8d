"""Production refuses to start with anything that lets a caller be anyone: the bypass or the emulator."""

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


@pytest.fixture
def production(database_url: str) -> Config:
    return Config.from_env({}, app_env=AppEnv.PRODUCTION, database_url=database_url, firebase_project_id="prod-proj")


def test_production_with_a_project_and_nothing_unsafe_starts(production: Config, database: Database) -> None:
    app = create_app(production)
    try:
        response = app.test_client().get("/wallet", headers={"X-Test-User-Email": "user@example.com"})
        assert_error(response, 401, "unauthenticated")  # the bypass header means nothing here
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
def test_production_refuses_unsafe_config(production: Config, unsafe: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_app(production.replace(**unsafe))
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
        "FIREBASE_PROJECT_ID": "prod-proj",
        variable: value,
    }
    result = subprocess.run(
        [sys.executable, "-c", "import api.wsgi"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "ConfigError" in result.stderr
    assert f"{variable} must not be" in result.stderr
