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
from urllib.parse import urlsplit, urlunsplit

from limits import parse_many

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The embedded default keeps its files here so `make run` needs no server installed.
VAR_DIR = PROJECT_ROOT / "var"
EMBEDDED_DATABASE_URL = f"sqlite:///{VAR_DIR / 'wallet.sqlite3'}"
# A payout is at most four Stripe calls: create the connected account, attach the bank account, transfer, pay out.
PROVIDER_CALLS_PER_PAYOUT = 4


class AppEnv(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class ConfigError(ValueError):
    """A setting is missing, malformed, or unsafe for the environment it is used in."""


# The broker conventionally owns REDIS_URL's database (0); the rate limiter's keys live apart in this one so
# that flushing or evicting one never touches the other.
RATE_LIMIT_DEFAULT_REDIS_DB = 1

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


def _float(name: str, raw: str) -> float:
    try:
        return float(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None


def _csv(_name: str, raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _str(_name: str, raw: str) -> str:
    return raw.strip()


def _database_url(_name: str, raw: str) -> str:
    # Blank means the embedded default, as in a copied .env.example (DATABASE_URL=), not a URL of "".
    return raw.strip() or EMBEDDED_DATABASE_URL


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
        _database_url,
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

    # Payouts (worker, Stripe gateway, webhooks, Flower) -- issue 3
    payout_gateway: str | None = _setting(
        "PAYOUT_GATEWAY", _optional_str, None, "simulated | stripe; default stripe when STRIPE_SECRET_KEY is set"
    )
    stripe_secret_key: str | None = _setting(
        "STRIPE_SECRET_KEY", _optional_str, None, "Stripe secret key (sk_...); unset: the simulated gateway pays"
    )
    stripe_api_base: str | None = _setting(
        "STRIPE_API_BASE", _optional_str, None, "Stripe API base URL; unset: api.stripe.com (tests: a fake server)"
    )
    stripe_webhook_secret: str | None = _setting(
        "STRIPE_WEBHOOK_SECRET", _optional_str, None, "whsec_... that signs POST /webhooks/stripe; unset: all refused"
    )
    stripe_timeout_seconds: int = _setting(
        "STRIPE_TIMEOUT_SECONDS", _int, 20, "timeout of one Stripe HTTP call; the outcome is then unknown"
    )
    stripe_currency: str = _setting("STRIPE_CURRENCY", lambda n, r: r.strip().lower(), "usd", "payout currency")
    stripe_account_country: str = _setting(
        "STRIPE_ACCOUNT_COUNTRY", lambda n, r: r.strip().upper(), "US", "country of new connected accounts"
    )
    payout_max_attempts: int = _setting(
        "PAYOUT_MAX_ATTEMPTS", _int, 5, "provider attempts per withdrawal before it fails as retries_exhausted"
    )
    payout_retry_base_ms: int = _setting(
        "PAYOUT_RETRY_BASE_MS", _int, 2_000, "first retry delay; doubles per attempt, with jitter"
    )
    payout_retry_max_ms: int = _setting("PAYOUT_RETRY_MAX_MS", _int, 300_000, "longest retry delay")
    payout_lease_seconds: int = _setting(
        "PAYOUT_LEASE_SECONDS", _int, 180, "how long a worker owns a withdrawal before the sweeper retakes it"
    )
    payout_sweep_seconds: int = _setting(
        "PAYOUT_SWEEP_SECONDS", _int, 60, "beat period of the sweeper that re-enqueues stranded withdrawals"
    )
    payout_batch_size: int = _setting(
        "PAYOUT_BATCH_SIZE", _int, 100, "withdrawals one drain claims at once, in one transaction"
    )
    payout_concurrency: int = _setting(
        "PAYOUT_CONCURRENCY", _int, 100, "provider calls one worker process makes at once (its batches' items)"
    )
    simulated_payout_latency_ms: int = _setting(
        "SIMULATED_PAYOUT_LATENCY_MS", _int, 0, "added latency of each simulated payout"
    )
    celery_visibility_timeout_seconds: int = _setting(
        "CELERY_VISIBILITY_TIMEOUT_SECONDS",
        _int,
        3600,
        "Redis broker: an unacknowledged task is redelivered after this long",
    )
    celery_worker_pool: str = _setting("CELERY_WORKER_POOL", _str, "threads", "Celery pool: threads | prefork | solo")
    celery_worker_concurrency: int = _setting(
        "CELERY_WORKER_CONCURRENCY", _int, 16, "payouts one worker runs at once (threads)"
    )
    flower_basic_auth: str | None = _setting(
        "FLOWER_BASIC_AUTH", _optional_str, None, "user:password for Flower (read by Flower itself)"
    )

    # Guards: rate limiting, withdrawal policy, production safety (issue 4)
    rate_limit_deposits: str = _setting(
        "RATE_LIMIT_DEPOSITS", _str, "5/second", "deposits allowed per wallet, in limits notation (e.g. 5/second)"
    )
    rate_limit_storage_url: str | None = _setting(
        "RATE_LIMIT_STORAGE_URL",
        _optional_str,
        None,
        "rate limiter storage; defaults to REDIS_URL's server on database 1, else memory:// (per process)",
    )
    withdrawal_daily_max_cents: int = _setting(
        "WITHDRAWAL_DAILY_MAX_CENTS", _int, 50_000, "most a user may withdraw over any rolling 24 hours"
    )
    withdrawal_max_pending: int = _setting(
        "WITHDRAWAL_MAX_PENDING", _int, 3, "most withdrawals a user may have pending or processing at once"
    )
    cors_origins: tuple[str, ...] = _setting(
        "CORS_ORIGINS", _csv, (), "comma-separated browser origins allowed by CORS; empty disables CORS"
    )
    allow_simulated_payouts: bool = _setting(
        "ALLOW_SIMULATED_PAYOUTS", _bool, False, "let APP_ENV=production run with the simulated payout gateway"
    )

    # Operations: observability, readiness (issue 5). DATABASE_REPLICA_URL, SQLALCHEMY_ENGINE_OPTIONS and
    # LOG_LEVEL above are used by this area too.
    sentry_dsn: str | None = _setting("SENTRY_DSN", _optional_str, None, "enables Sentry for API and worker when set")
    sentry_traces_sample_rate: float = _setting(
        "SENTRY_TRACES_SAMPLE_RATE", _float, 0.0, "share of requests/tasks traced by Sentry (0.0-1.0)"
    )
    metrics_token: str | None = _setting(
        "METRICS_TOKEN", _optional_str, None, "bearer token /metrics requires; required when APP_ENV=production"
    )
    worker_metrics_port: int = _setting(
        "WORKER_METRICS_PORT", _int, 9808, "port of the worker's Prometheus endpoint (0 disables it)"
    )
    health_check_timeout_seconds: float = _setting(
        "HEALTH_CHECK_TIMEOUT_SECONDS", _float, 2.0, "per-dependency timeout of GET /health/ready"
    )
    readiness_optional_checks: tuple[str, ...] = _setting(
        "READINESS_OPTIONAL_CHECKS", _csv, (), "checks reported by /health/ready without failing it, e.g. redis,broker"
    )

    # Benchmarks (bench/)
    bench_floor: bool = _setting(
        "BENCH_FLOOR",
        _bool,
        False,
        "benchmark only: serve the bare floor endpoint POST /_bench/floor/deposit (never in production)",
    )

    def __post_init__(self) -> None:
        if self.plastic_rate_cents <= 0 or self.aluminum_rate_cents <= 0:
            raise ConfigError("material rates must be positive integers of cents")
        if self.withdrawal_min_cents < 1:
            raise ConfigError("WITHDRAWAL_MIN_CENTS must be at least 1")
        self._check_payout_settings()
        self._check_guards()
        if not 0.0 <= self.sentry_traces_sample_rate <= 1.0:
            raise ConfigError("SENTRY_TRACES_SAMPLE_RATE must be between 0.0 and 1.0")
        if self.health_check_timeout_seconds <= 0:
            raise ConfigError("HEALTH_CHECK_TIMEOUT_SECONDS must be positive")

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
        if _same_redis_database(self.rate_limit_storage, self.broker_url):
            raise ConfigError("the rate limiter and the Celery broker must use different Redis databases")
        if self.bench_floor:
            raise ConfigError("BENCH_FLOOR must not be enabled when APP_ENV=production")
        self.check_payout_gateway_for_production()

    def check_payout_gateway_for_production(self) -> None:
        """The simulated gateway marks withdrawals paid without moving money: production needs Stripe, unless
        ALLOW_SIMULATED_PAYOUTS=true says a simulation is really wanted (a staging stack, a demo)."""
        if self.is_production and self.payout_gateway_kind != "stripe" and not self.allow_simulated_payouts:
            raise ConfigError(
                "APP_ENV=production needs the Stripe gateway (set STRIPE_SECRET_KEY), "
                "or ALLOW_SIMULATED_PAYOUTS=true to run the simulated one on purpose"
            )

    @classmethod
    def documented_variables(cls) -> dict[str, str]:
        """Environment variable name -> description, for docs and the .env.example check."""
        return {f.metadata["env"]: f.metadata["doc"] for f in dataclasses.fields(cls)}

    # -- guards ----------------------------------------------------------------------------------------------

    @property
    def rate_limit_storage(self) -> str:
        """Where the rate limiter counts: its own Redis database, never the broker's (see README)."""
        if self.rate_limit_storage_url:
            return self.rate_limit_storage_url
        if self.redis_url:
            return _with_redis_db(self.redis_url, RATE_LIMIT_DEFAULT_REDIS_DB)
        return "memory://"

    def _check_guards(self) -> None:
        try:
            parsed = parse_many(self.rate_limit_deposits)
        except ValueError:
            parsed = []
        if not parsed:
            raise ConfigError(f"RATE_LIMIT_DEPOSITS must look like '5/second', got {self.rate_limit_deposits!r}")
        if self.withdrawal_daily_max_cents < self.withdrawal_min_cents:
            raise ConfigError("WITHDRAWAL_DAILY_MAX_CENTS must be at least WITHDRAWAL_MIN_CENTS")
        if self.withdrawal_max_pending < 1:
            raise ConfigError("WITHDRAWAL_MAX_PENDING must be at least 1")

    # -- payouts ---------------------------------------------------------------------------------------------

    @property
    def payout_gateway_kind(self) -> str:
        """``stripe`` or ``simulated``: explicit PAYOUT_GATEWAY, else stripe whenever a secret key is set."""
        if self.payout_gateway:
            return self.payout_gateway.lower()
        return "stripe" if self.stripe_secret_key else "simulated"

    def _check_payout_settings(self) -> None:
        if self.payout_gateway_kind not in {"simulated", "stripe"}:
            raise ConfigError(f"PAYOUT_GATEWAY must be simulated or stripe, got {self.payout_gateway!r}")
        if self.payout_gateway_kind == "stripe" and not self.stripe_secret_key:
            raise ConfigError("PAYOUT_GATEWAY=stripe needs STRIPE_SECRET_KEY")
        if self.payout_max_attempts < 1:
            raise ConfigError("PAYOUT_MAX_ATTEMPTS must be at least 1")
        if min(self.payout_retry_base_ms, self.payout_retry_max_ms, self.stripe_timeout_seconds) < 1:
            raise ConfigError("PAYOUT_RETRY_*_MS and STRIPE_TIMEOUT_SECONDS must be positive")
        if min(self.payout_batch_size, self.payout_concurrency) < 1:
            raise ConfigError("PAYOUT_BATCH_SIZE and PAYOUT_CONCURRENCY must be at least 1")
        if self.payout_sweep_seconds < 1 or self.celery_worker_concurrency < 1:
            raise ConfigError("PAYOUT_SWEEP_SECONDS and CELERY_WORKER_CONCURRENCY must be positive")
        # A lease shorter than one attempt's provider calls would let a second worker start the same payout
        # while the first is still waiting on Stripe (harmless thanks to idempotency keys, but wasteful).
        if self.payout_lease_seconds <= PROVIDER_CALLS_PER_PAYOUT * self.stripe_timeout_seconds:
            raise ConfigError(
                f"PAYOUT_LEASE_SECONDS must exceed {PROVIDER_CALLS_PER_PAYOUT} x STRIPE_TIMEOUT_SECONDS "
                f"({PROVIDER_CALLS_PER_PAYOUT * self.stripe_timeout_seconds}s)"
            )
        # Redis holds a countdown retry unacknowledged; if it waited longer than the visibility timeout, the
        # broker would hand it to a second worker as if the first had died.
        longest_hold = self.payout_lease_seconds + self.payout_retry_max_ms // 1000
        if self.celery_visibility_timeout_seconds <= longest_hold:
            raise ConfigError(
                "CELERY_VISIBILITY_TIMEOUT_SECONDS must exceed PAYOUT_LEASE_SECONDS + PAYOUT_RETRY_MAX_MS "
                f"({longest_hold}s)"
            )


def _with_redis_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}"))


def _redis_database(url: str) -> tuple[str, int] | None:
    parts = urlsplit(url)
    if parts.scheme not in {"redis", "rediss"}:
        return None
    db = parts.path.strip("/") or "0"
    return (f"{parts.hostname}:{parts.port or 6379}", int(db) if db.isdigit() else 0)


def _same_redis_database(first: str, second: str) -> bool:
    a, b = _redis_database(first), _redis_database(second)
    return a is not None and a == b
