"""SQLALCHEMY_ENGINE_OPTIONS (JSON) reaches the engines of the primary and of the replica."""

from __future__ import annotations

import pytest

from api import create_app
from shared.config import Config, ConfigError


def test_engine_options_from_the_environment_reach_both_engines(database_url: str) -> None:
    environ = {
        "DATABASE_URL": database_url,
        "DATABASE_REPLICA_URL": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": '{"pool_size": 7, "max_overflow": 3, "pool_pre_ping": false, "pool_recycle": 900}',
    }
    app = create_app(Config.from_env(environ))
    try:
        for key in ("wallet_db", "wallet_replica_db"):
            pool = app.extensions[key].engine.pool
            assert pool.size() == 7, key
            assert pool._max_overflow == 3, key
            assert pool._pre_ping is False, key
            assert pool._recycle == 900, key
    finally:
        app.extensions["wallet_db"].dispose()
        app.extensions["wallet_replica_db"].dispose()


def test_pre_ping_is_on_unless_turned_off(database_url: str) -> None:
    app = create_app(Config.from_env({"DATABASE_URL": database_url}))
    try:
        assert app.extensions["wallet_db"].engine.pool._pre_ping is True
    finally:
        app.extensions["wallet_db"].dispose()


@pytest.mark.parametrize("raw", ["[1, 2]", "{not json", '"pool_size"'])
def test_malformed_options_are_refused_at_start(raw: str) -> None:
    with pytest.raises(ConfigError, match="SQLALCHEMY_ENGINE_OPTIONS"):
        Config.from_env({"SQLALCHEMY_ENGINE_OPTIONS": raw})
