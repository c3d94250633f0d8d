"""The guards' settings: defaults, parsing and refusals."""

from __future__ import annotations

import pytest

from shared.config import Config, ConfigError


def test_defaults() -> None:
    config = Config.from_env({})
    assert config.rate_limit_deposits == "5/second"
    assert config.rate_limit_storage_url is None
    assert config.withdrawal_daily_max_cents == 50_000
    assert config.withdrawal_max_pending == 3
    assert config.cors_origins == ()
    assert config.allow_simulated_payouts is False


def test_parsing() -> None:
    config = Config.from_env(
        {
            "RATE_LIMIT_DEPOSITS": "10 per minute",
            "RATE_LIMIT_STORAGE_URL": "redis://limiter:6379/2",
            "WITHDRAWAL_DAILY_MAX_CENTS": "75000",
            "WITHDRAWAL_MAX_PENDING": "5",
            "CORS_ORIGINS": " https://a.example ,,https://b.example ",
            "ALLOW_SIMULATED_PAYOUTS": "true",
        }
    )
    assert config.rate_limit_deposits == "10 per minute"
    assert config.rate_limit_storage == "redis://limiter:6379/2"
    assert (config.withdrawal_daily_max_cents, config.withdrawal_max_pending) == (75_000, 5)
    assert config.cors_origins == ("https://a.example", "https://b.example")
    assert config.allow_simulated_payouts is True


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"WITHDRAWAL_DAILY_MAX_CENTS": "50", "WITHDRAWAL_MIN_CENTS": "100"}, "WITHDRAWAL_DAILY_MAX_CENTS"),
        ({"WITHDRAWAL_MAX_PENDING": "0"}, "WITHDRAWAL_MAX_PENDING"),
        ({"WITHDRAWAL_MAX_PENDING": "three"}, "WITHDRAWAL_MAX_PENDING"),
        ({"RATE_LIMIT_DEPOSITS": "fast"}, "RATE_LIMIT_DEPOSITS"),
        ({"ALLOW_SIMULATED_PAYOUTS": "maybe"}, "ALLOW_SIMULATED_PAYOUTS"),
    ],
)
def test_bad_values_are_refused(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config.from_env(environ)
