"""Per-wallet deposit rate limit on real Redis (in-process app; two-server and Redis-down cases elsewhere)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from api.ratelimit import limiter_fallback_active
from shared.config import Config
from shared.db import Database
from tests.conftest import truncate_all

DEPOSIT = {"material": "plastic", "units": 1}
AppFactory = Callable[..., Flask]


@pytest.fixture
def make_app(config: Config, database: Database, redis_url: str) -> Iterator[AppFactory]:
    apps: list[Flask] = []

    def make(limit: str = "5/second", storage: str | None = None) -> Flask:
        app = create_app(config.replace(rate_limit_deposits=limit, rate_limit_storage_url=storage or redis_url))
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["wallet_db"].dispose()
    truncate_all(database)


def _user() -> dict[str, str]:
    return {"X-Test-User-Email": f"rl-{uuid.uuid4().hex[:10]}@example.com"}


def _deposit(client: FlaskClient, headers: dict[str, str]) -> int:
    return client.post("/deposit", json=DEPOSIT, headers=headers).status_code


def _balance(client: FlaskClient, headers: dict[str, str]) -> int:
    balance: int = client.get("/wallet", headers=headers).json["balance_cents"]
    return balance


def test_sixth_deposit_inside_one_second_is_refused(make_app: AppFactory) -> None:
    client = make_app("5/second").test_client()
    # The claim is about six requests inside one second; on a machine too busy to send six in one second
    # the premise does not hold, so try again with a fresh wallet rather than assert on a different case.
    for _ in range(5):
        headers = _user()
        started = time.monotonic()
        responses = [client.post("/deposit", json=DEPOSIT, headers=headers) for _ in range(6)]
        if time.monotonic() - started < 0.9:
            break
    else:
        pytest.skip("could not send six deposits within one second on this machine")

    assert [r.status_code for r in responses] == [201] * 5 + [429]
    refused = responses[-1]
    assert refused.json["error"]["code"] == "rate_limited"
    assert refused.json["error"]["details"] == {"limit": "5 per 1 second"}
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["RateLimit-Limit"] == "5"
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert refused.headers["RateLimit-Policy"] == "5;w=1"
    assert _balance(client, headers) == 5 * 5  # the refused deposit was not recorded
    transactions = client.get("/transactions", headers=headers).json["transactions"]
    assert len(transactions) == 5
    assert not limiter_fallback_active(client.application)


def test_allowed_deposits_count_but_only_the_refusal_carries_the_ratelimit_headers(make_app: AppFactory) -> None:
    client = make_app("3/minute").test_client()
    headers = _user()
    allowed = [client.post("/deposit", json=DEPOSIT, headers=headers) for _ in range(3)]
    assert [r.status_code for r in allowed] == [201] * 3
    for response in allowed:  # reading the window for these headers would cost a second Redis call each
        assert not [name for name, _ in response.headers.items() if name.startswith("RateLimit-")]
        assert "Retry-After" not in response.headers
    refused = client.post("/deposit", json=DEPOSIT, headers=headers)
    assert refused.status_code == 429
    assert refused.headers["RateLimit-Limit"] == "3"
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert 0 < int(refused.headers["RateLimit-Reset"]) <= 60
    assert 0 < int(refused.headers["Retry-After"]) <= 60


def test_the_window_moves_on(make_app: AppFactory) -> None:
    client = make_app("2/second").test_client()
    headers = _user()
    statuses = [_deposit(client, headers) for _ in range(3)]
    assert statuses[:2] == [201, 201]
    time.sleep(1.1)  # the whole window has passed, whatever the third request's fate
    assert _deposit(client, headers) == 201


def test_another_wallet_is_unaffected(make_app: AppFactory) -> None:
    client = make_app("3/minute").test_client()
    busy, other = _user(), _user()
    assert [_deposit(client, busy) for _ in range(4)] == [201, 201, 201, 429]
    # Same client IP, different wallet: its own budget.
    assert [_deposit(client, other) for _ in range(3)] == [201, 201, 201]
    assert _deposit(client, busy) == 429


def test_the_budget_follows_the_wallet_not_the_ip(make_app: AppFactory) -> None:
    client = make_app("3/minute").test_client()
    headers = _user()
    statuses = [
        client.post("/deposit", json=DEPOSIT, headers=headers, environ_overrides={"REMOTE_ADDR": f"203.0.113.{n}"})
        for n in range(4)
    ]
    assert [r.status_code for r in statuses] == [201, 201, 201, 429]


def test_the_limit_is_configurable(make_app: AppFactory) -> None:
    assert Config.from_env({"RATE_LIMIT_DEPOSITS": "7/minute"}).rate_limit_deposits == "7/minute"
    client = make_app("2/minute").test_client()
    headers = _user()
    assert [_deposit(client, headers) for _ in range(3)] == [201, 201, 429]
    assert client.post("/deposit", json=DEPOSIT, headers=headers).headers["RateLimit-Limit"] == "2"


def test_only_deposits_are_limited(make_app: AppFactory) -> None:
    client = make_app("1/minute").test_client()
    headers = _user()
    assert [_deposit(client, headers) for _ in range(2)] == [201, 429]
    for _ in range(3):
        assert client.get("/wallet", headers=headers).status_code == 200
        assert "RateLimit-Limit" not in client.get("/wallet", headers=headers).headers
    withdrawal = client.post("/withdraw", json={"amount_cents": 100, "bank_token": "tok_x"}, headers=headers)
    assert withdrawal.status_code == 422  # insufficient funds, not rate limited
    assert withdrawal.json["error"]["code"] == "insufficient_funds"


def test_unauthenticated_requests_are_refused_before_the_limit(make_app: AppFactory) -> None:
    client = make_app("1/minute").test_client()
    for _ in range(3):
        assert client.post("/deposit", json=DEPOSIT).status_code == 401
    assert _deposit(client, _user()) == 201


def test_an_invalid_limit_is_a_config_error() -> None:
    from shared.config import ConfigError

    for bad in ("lots", "", "5/fortnight"):
        with pytest.raises(ConfigError, match="RATE_LIMIT_DEPOSITS"):
            Config.from_env({"RATE_LIMIT_DEPOSITS": bad})


def test_storage_defaults_to_its_own_redis_database() -> None:
    config = Config.from_env({"REDIS_URL": "redis://cache.internal:6380/0"})
    assert config.rate_limit_storage == "redis://cache.internal:6380/1"
    assert config.broker_url == "redis://cache.internal:6380/0"
    assert Config.from_env({}).rate_limit_storage == "memory://"  # embedded default: per process
    explicit = Config.from_env({"REDIS_URL": "redis://r/0", "RATE_LIMIT_STORAGE_URL": "redis://r/7"})
    assert explicit.rate_limit_storage == "redis://r/7"


def test_openapi_documents_the_429(make_app: AppFactory) -> None:
    paths = make_app().test_client().get("/openapi.json").json["paths"]
    assert "429" in paths["/deposit"]["post"]["responses"]
    assert "429" not in paths["/withdraw"]["post"]["responses"]
