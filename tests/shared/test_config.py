"""Config: one typed reading of the environment; .env.example lists every variable and works as a .env."""

from __future__ import annotations

import subprocess

import pytest

from shared.config import EMBEDDED_DATABASE_URL, AppEnv, Config, ConfigError
from tests.live_server import PROJECT_ROOT


def test_defaults_are_the_embedded_development_setup() -> None:
    config = Config.from_env({})
    assert (config.app_env, config.database_url, config.auth_dev_bypass) == (
        AppEnv.DEVELOPMENT,
        EMBEDDED_DATABASE_URL,
        False,
    )
    assert config.material_rates() == {"plastic": 5, "aluminum": 10}
    assert (config.withdrawal_min_cents, config.max_content_length) == (100, 64 * 1024)


def test_values_are_coerced() -> None:
    config = Config.from_env(
        {
            "APP_ENV": "Production",
            "AUTH_DEV_BYPASS": "yes",
            "PLASTIC_RATE_CENTS": " 7 ",
            "SQLALCHEMY_ENGINE_OPTIONS": "{}",
        }
    )
    assert (config.app_env, config.auth_dev_bypass, config.plastic_rate_cents) == (AppEnv.PRODUCTION, True, 7)


def test_a_blank_database_url_means_the_embedded_default() -> None:
    """.env.example leaves DATABASE_URL= blank; copied as .env it must mean SQLite under var/, not a URL of ""."""
    assert Config.from_env({"DATABASE_URL": ""}).database_url == EMBEDDED_DATABASE_URL
    assert Config.from_env({"DATABASE_URL": "  "}).database_url == EMBEDDED_DATABASE_URL


@pytest.mark.parametrize(
    "environ",
    [
        {"AUTH_DEV_BYPASS": "maybe"},
        {"PLASTIC_RATE_CENTS": "five"},
        {"PLASTIC_RATE_CENTS": "0"},
        {"WITHDRAWAL_MIN_CENTS": "0"},
        {"SQLALCHEMY_ENGINE_OPTIONS": "[1]"},
        {"SQLALCHEMY_ENGINE_OPTIONS": "{not json"},
    ],
)
def test_malformed_values_are_refused(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        Config.from_env(environ)


def _env_example_as_bash_sees_it() -> dict[str, str]:
    """Source .env.example exactly as bin/run sources .env (set -a; . ./.env) and read the result back."""
    script = "set -euo pipefail; set -a; . ./.env.example; set +a; env -0"
    result = subprocess.run(["bash", "-c", script], cwd=PROJECT_ROOT, env={}, capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr.decode()
    pairs = (item.split("=", 1) for item in result.stdout.decode().split("\0") if "=" in item)
    return dict(pairs)


def test_env_example_lists_every_variable_and_the_readme_documents_it() -> None:
    example = _env_example_as_bash_sees_it()
    readme = (PROJECT_ROOT / "README.md").read_text()
    for name in Config.documented_variables():
        assert name in example, f"{name} is missing from .env.example"
        assert f"`{name}`" in readme, f"{name} is missing from the README configuration table"


def test_a_copied_env_example_is_a_working_config() -> None:
    """`cp .env.example .env` must give a config that starts: the embedded default, nothing unsafe."""
    config = Config.from_env(_env_example_as_bash_sees_it())
    assert config.database_url == EMBEDDED_DATABASE_URL
    assert isinstance(config.sqlalchemy_engine_options, dict)  # the quoted JSON survived bash
    assert not config.auth_dev_bypass
    config.check_safe_for_production()
