"""The benchmark floor endpoint exists only when BENCH_FLOOR is on, never in production, and moves money correctly."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from api import create_app
from shared import ledger
from shared.config import AppEnv, Config, ConfigError
from shared.db import Database
from tests.conftest import truncate_all
from tests.factories import bypass_headers

FLOOR = "/_bench/floor/deposit"
BODY = {"material": "aluminum", "units": 3}


def test_the_floor_is_absent_by_default(client: FlaskClient) -> None:
    assert client.post(FLOOR, json=BODY, headers=bypass_headers()).status_code == 404


def test_production_refuses_the_floor() -> None:
    config = Config.from_env({}, app_env=AppEnv.PRODUCTION, firebase_project_id="p", bench_floor=True)
    with pytest.raises(ConfigError, match="BENCH_FLOOR"):
        config.check_safe_for_production()


def test_the_floor_credits_and_records_like_a_deposit(config: Config, database: Database) -> None:
    app = create_app(config.replace(bench_floor=True))
    try:
        _deposit_through_the_floor(app.test_client(), database)
    finally:
        app.extensions["wallet_db"].dispose()
        truncate_all(database)


def _deposit_through_the_floor(client: FlaskClient, database: Database) -> None:
    headers = bypass_headers("floor@example.com")
    assert client.get("/wallet", headers=headers).status_code == 200  # the floor serves existing wallets only

    first = client.post(FLOOR, json=BODY, headers=headers)
    second = client.post(FLOOR, json=BODY, headers=headers)

    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json["new_balance_cents"] == 60
    assert client.get("/wallet", headers=headers).json["balance_cents"] == 60
    with database.session() as session:
        assert ledger.verify(session) == []
    assert client.post(FLOOR, json={"material": "glass", "units": 1}, headers=headers).status_code == 400
    assert client.post(FLOOR, json=BODY).status_code == 401


def test_the_floor_makes_the_deposit_limiter_call(config: Config, database: Database) -> None:
    app = create_app(config.replace(bench_floor=True, rate_limit_deposits="2/minute"))
    try:
        client = app.test_client()
        headers = bypass_headers("floor-limited@example.com")
        client.get("/wallet", headers=headers)
        statuses = [client.post(FLOOR, json=BODY, headers=headers).status_code for _ in range(3)]
        assert statuses == [201, 201, 429]
    finally:
        app.extensions["wallet_db"].dispose()
        truncate_all(database)
