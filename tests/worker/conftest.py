"""End-to-end payout fixtures: the API under gunicorn, a Celery worker process, a private redis-server and
the fake Stripe server, all real processes talking over the network; settings shortened so tests are quick."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from shared.config import Config
from shared.db import Database
from tests.conftest import truncate_all
from tests.factories import bypass_headers
from tests.fake_stripe import API_KEY, FakeStripe
from tests.live_server import LiveServer, start_live_server
from tests.worker.harness import CeleryProcess, RedisServer, process_env, start_worker

STRIPE_TIMEOUT_S = 1
LEASE_S = 5  # must exceed 4 Stripe calls x STRIPE_TIMEOUT_S
SWEEP_S = 1
MAX_ATTEMPTS = 4
WEBHOOK_SECRET = "whsec_test_secret"


def stack_env(database_url: str, broker_url: str, stripe_url: str) -> dict[str, str]:
    return {
        "APP_ENV": "test",
        "DATABASE_URL": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": json.dumps({"pool_size": 4, "max_overflow": 2}),
        "CELERY_BROKER_URL": broker_url,
        "AUTH_DEV_BYPASS": "true",
        "FIREBASE_PROJECT_ID": "demo-test",
        "PAYOUT_GATEWAY": "stripe",
        "STRIPE_SECRET_KEY": API_KEY,
        "STRIPE_API_BASE": stripe_url,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_TIMEOUT_SECONDS": str(STRIPE_TIMEOUT_S),
        "PAYOUT_LEASE_SECONDS": str(LEASE_S),
        "PAYOUT_SWEEP_SECONDS": str(SWEEP_S),
        "PAYOUT_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
        "PAYOUT_RETRY_BASE_MS": "200",
        "PAYOUT_RETRY_MAX_MS": "1000",
        "CELERY_VISIBILITY_TIMEOUT_SECONDS": "30",
        "CELERY_WORKER_CONCURRENCY": "4",
    }


@pytest.fixture(scope="module")
def stack_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture(scope="module")
def fake_stripe() -> Iterator[FakeStripe]:
    server = FakeStripe().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def env(database_url: str, stack_redis: RedisServer, fake_stripe: FakeStripe) -> dict[str, str]:
    return process_env(stack_env(database_url, stack_redis.url, fake_stripe.url))


@pytest.fixture(scope="module")
def stack_config(env: dict[str, str]) -> Config:
    return Config.from_env(env)


@pytest.fixture(scope="module")
def api_server(env: dict[str, str]) -> Iterator[LiveServer]:
    server = start_live_server(env, workers=1, threads=4)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def payout_worker(env: dict[str, str]) -> Iterator[CeleryProcess]:
    worker = start_worker(env, "e2e")
    yield worker
    worker.stop()


@pytest.fixture(autouse=True)
def _clean(database: Database, fake_stripe: FakeStripe) -> Iterator[None]:
    fake_stripe.reset()
    yield
    truncate_all(database)


class Client:
    """A user of the running API, over real HTTP with the development bypass header."""

    def __init__(self, base_url: str, email: str) -> None:
        self.base_url = base_url
        self.headers = bypass_headers(email)

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        return requests.post(f"{self.base_url}{path}", json=body, headers=self.headers, timeout=10)

    def get(self, path: str, **headers: str) -> requests.Response:
        return requests.get(f"{self.base_url}{path}", headers=self.headers | headers, timeout=10)

    def withdraw(self, amount: int, token: str, fund: int = 1000) -> dict[str, Any]:
        assert self.post("/deposit", {"material": "aluminum", "units": fund // 10}).status_code == 201
        response = self.post("/withdraw", {"amount_cents": amount, "bank_token": token})
        assert response.status_code == 202, response.text
        withdrawal: dict[str, Any] = response.json()["withdrawal"]
        return withdrawal

    def balance(self) -> int:
        return int(self.get("/wallet").json()["balance_cents"])

    def wait_for(self, withdrawal_id: str, statuses: set[str], timeout: float = 30) -> dict[str, Any]:
        import time

        deadline = time.monotonic() + timeout
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            body = self.get(f"/withdrawals/{withdrawal_id}").json()
            if body["status"] in statuses:
                return body
            time.sleep(0.1)
        raise AssertionError(f"withdrawal {withdrawal_id} still {body.get('status')} after {timeout}s: {body}")


@pytest.fixture
def user(api_server: LiveServer) -> Callable[[str], Client]:
    return lambda email: Client(api_server.url, email)
