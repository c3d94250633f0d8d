"""One typed configuration, read from the environment in one place.

Every variable is documented in README.md and .env.example. Both the Flask app and the Celery worker build
their settings with :meth:`Config.from_env`; tests build one with overrides via :meth:`Config.replace`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The embedded default keeps its files here so `make run` needs no server installed.
VAR_DIR = PROJECT_ROOT / "var"
EMBEDDED_DATABASE_URL = f"sqlite:///{VAR_DIR / 'wallet.sqlite3'}"


class AppEnv(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class ConfigError(ValueError):
    """A setting is missing, malformed, or unsafe for the environment it is used in."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _int(name: str, raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


def _json_object(name: str, raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{name} must be a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be a JSON object, got {type(value).__name__}")
    return value


def _csv(_name: str, raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _str(_name: str, raw: str) -> str:
    return raw.strip()


def _optional_str(_name: str, raw: str) -> str | None:
    return raw.strip() or None


def _setting(env: str, coerce: Any, default: Any, doc: str) -> Any:
    metadata = {"env": env, "coerce": coerce, "doc": doc}
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Config:
    """Every setting of the service. Field metadata names the environment variable that sets it."""

    app_env: AppEnv = _setting(
        "APP_ENV", lambda n, r: AppEnv(r.strip().lower()), AppEnv.DEVELOPMENT, "development | test | production"
    )
    secret_key: str = _setting("SECRET_KEY", _str, "dev-insecure-secret", "Flask secret key")
    database_url: str = _setting(
        "DATABASE_URL",
        _str,
        EMBEDDED_DATABASE_URL,
        "SQLAlchemy URL of the primary database; SQLite under var/ when unset",
    )
    database_replica_url: str | None = _setting(
        "DATABASE_REPLICA_URL", _optional_str, None, "optional read replica for history reads"
    )
    sqlalchemy_engine_options: dict[str, Any] = _setting(
        "SQLALCHEMY_ENGINE_OPTIONS", _json_object, {}, "JSON object passed to create_engine"
    )
    redis_url: str | None = _setting(
        "REDIS_URL", _optional_str, None, "Redis for rate limiting (and the broker when CELERY_BROKER_URL is unset)"
    )
    celery_broker_url: str | None = _setting(
        "CELERY_BROKER_URL", _optional_str, None, "Celery broker; defaults to REDIS_URL, else an embedded SQLite broker"
    )
    log_level: str = _setting("LOG_LEVEL", lambda n, r: r.strip().upper(), "INFO", "root log level")

    # Auth
    firebase_project_id: str | None = _setting(
        "FIREBASE_PROJECT_ID", _optional_str, None, "Firebase project whose ID tokens are accepted"
    )
    firebase_check_revoked: bool = _setting(
        "FIREBASE_CHECK_REVOKED", _bool, False, "also check token revocation (one Firebase call per request)"
    )
    firebase_auth_emulator_host: str | None = _setting(
        "FIREBASE_AUTH_EMULATOR_HOST",
        _optional_str,
        None,
        "host:port of the Firebase Auth emulator (never in production)",
    )
    auth_dev_bypass: bool = _setting(
        "AUTH_DEV_BYPASS", _bool, False, "accept X-Test-User-Email instead of a token (never in production)"
    )

    # Money
    plastic_rate_cents: int = _setting("PLASTIC_RATE_CENTS", _int, 5, "cents paid per plastic unit")
    aluminum_rate_cents: int = _setting("ALUMINUM_RATE_CENTS", _int, 10, "cents paid per aluminum unit")
    withdrawal_min_cents: int = _setting("WITHDRAWAL_MIN_CENTS", _int, 100, "smallest withdrawal")

    # HTTP
    max_content_length: int = _setting("MAX_CONTENT_LENGTH", _int, 64 * 1024, "largest request body in bytes")

    def __post_init__(self) -> None:
        if self.plastic_rate_cents <= 0 or self.aluminum_rate_cents <= 0:
            raise ConfigError("material rates must be positive integers of cents")
        if self.withdrawal_min_cents < 1:
            raise ConfigError("WITHDRAWAL_MIN_CENTS must be at least 1")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Config:
        """Build a config from ``environ`` (default ``os.environ``); keyword overrides win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            name = f.metadata["env"]
            if name in env:
                values[f.name] = f.metadata["coerce"](name, env[name])
        values.update(overrides)
        return cls(**values)

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)

    @property
    def is_production(self) -> bool:
        return self.app_env is AppEnv.PRODUCTION

    @property
    def broker_url(self) -> str:
        if self.celery_broker_url:
            return self.celery_broker_url
        if self.redis_url:
            return self.redis_url
        return f"sqla+sqlite:///{VAR_DIR / 'broker.sqlite3'}"

    def material_rates(self) -> dict[str, int]:
        return {"plastic": self.plastic_rate_cents, "aluminum": self.aluminum_rate_cents}

    def check_safe_for_production(self) -> None:
        """Refuse settings that would let anyone act as any user in production."""
        if not self.is_production:
            return
        if self.auth_dev_bypass:
            raise ConfigError("AUTH_DEV_BYPASS must not be enabled when APP_ENV=production")
        if self.firebase_auth_emulator_host or os.environ.get("FIREBASE_AUTH_EMULATOR_HOST"):
            raise ConfigError("FIREBASE_AUTH_EMULATOR_HOST must not be set when APP_ENV=production")
        if not self.firebase_project_id:
            raise ConfigError("FIREBASE_PROJECT_ID is required when APP_ENV=production")

    @classmethod
    def documented_variables(cls) -> dict[str, str]:
        """Environment variable name -> description, for docs and the .env.example check."""
        return {f.metadata["env"]: f.metadata["doc"] for f in dataclasses.fields(cls)}
