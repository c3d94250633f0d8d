"""Withdrawal caps over real HTTP: parallel requests against gunicorn never slip past a cap."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests

from shared import ledger
from shared.db import Database
from tests.concurrency import run_together
from tests.conftest import truncate_all
from tests.live_server import LiveServer, start_live_server
from tests.server_env import server_env

DAILY_MAX = 1000
MAX_PENDING = 5
PARALLEL = 12


@pytest.fixture(scope="module")
def server(database_url: str, database: Database) -> Iterator[LiveServer]:
    env = server_env(database_url, WITHDRAWAL_DAILY_MAX_CENTS=str(DAILY_MAX), WITHDRAWAL_MAX_PENDING=str(MAX_PENDING))
    live = start_live_server(env, workers=4, threads=4)
    yield live
    live.stop()
    truncate_all(database)


def _funded_user(server: LiveServer, cents: int) -> dict[str, str]:
    headers = {"X-Test-User-Email": f"policy-{uuid.uuid4().hex[:8]}@example.com"}
    response = requests.post(
        f"{server.url}/deposit", json={"material": "aluminum", "units": cents // 10}, headers=headers, timeout=10
    )
    assert response.status_code == 201
    return headers


def _withdraw_in_parallel(server: LiveServer, headers: dict[str, str], cents: int) -> list[requests.Response]:
    def withdraw() -> requests.Response:
        body = {"amount_cents": cents, "bank_token": "tok_policy"}
        return requests.post(f"{server.url}/withdraw", json=body, headers=headers, timeout=30)

    return run_together([withdraw] * PARALLEL)


def _verify(database: Database) -> None:
    with database.session() as session:
        assert ledger.verify(session) == []


def test_daily_maximum_holds_under_parallel_requests(server: LiveServer, database: Database) -> None:
    headers = _funded_user(server, 10_000)
    responses = _withdraw_in_parallel(server, headers, 300)  # 3 fit in 1000; the pending cap (5) is not reached

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [202] * 3 + [422] * (PARALLEL - 3)
    refusals = [r.json()["error"] for r in responses if r.status_code == 422]
    assert {e["code"] for e in refusals} == {"daily_limit_exceeded"}
    assert all(e["details"]["daily_max_cents"] == DAILY_MAX for e in refusals)
    wallet = requests.get(f"{server.url}/wallet", headers=headers, timeout=10).json()
    assert wallet["balance_cents"] == 10_000 - 900
    _verify(database)


def test_pending_cap_holds_under_parallel_requests(server: LiveServer, database: Database) -> None:
    headers = _funded_user(server, 10_000)
    responses = _withdraw_in_parallel(server, headers, 100)  # the daily max would allow 10; the pending cap 5

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [202] * MAX_PENDING + [422] * (PARALLEL - MAX_PENDING)
    refusals = [r.json()["error"] for r in responses if r.status_code == 422]
    assert {e["code"] for e in refusals} == {"too_many_pending_withdrawals"}
    assert all(e["details"]["max_pending"] == MAX_PENDING for e in refusals)
    listed = requests.get(f"{server.url}/withdrawals", headers=headers, timeout=10).json()["withdrawals"]
    assert len(listed) == MAX_PENDING
    _verify(database)


def test_below_minimum_over_http(server: LiveServer) -> None:
    headers = _funded_user(server, 1000)
    response = requests.post(
        f"{server.url}/withdraw", json={"amount_cents": 99, "bank_token": "tok_policy"}, headers=headers, timeout=10
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "amount_below_minimum"
    assert response.json()["error"]["details"]["min_cents"] == 100
