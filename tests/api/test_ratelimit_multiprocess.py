"""Two gunicorn servers sharing Redis enforce ONE deposit budget per wallet."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests

from shared.db import Database
from tests.concurrency import run_together
from tests.conftest import truncate_all
from tests.live_server import LiveServer, start_live_server
from tests.server_env import server_env

# A window far longer than the test takes, so a slow machine cannot let requests age out of it.
LIMIT = 5
ATTEMPTS = 12
DEPOSIT = {"material": "plastic", "units": 2}


@pytest.fixture
def servers(database_url: str, database: Database, redis_url: str) -> Iterator[list[LiveServer]]:
    env = server_env(database_url, RATE_LIMIT_DEPOSITS=f"{LIMIT}/minute", RATE_LIMIT_STORAGE_URL=redis_url)
    started: list[LiveServer] = []
    try:
        for _ in range(2):
            started.append(start_live_server(env, workers=2, threads=2))
        yield started
    finally:
        for server in started:
            server.stop()
        truncate_all(database)


def _user() -> dict[str, str]:
    return {"X-Test-User-Email": f"pods-{uuid.uuid4().hex[:10]}@example.com"}


def test_two_servers_share_one_budget_per_wallet(servers: list[LiveServer]) -> None:
    headers = _user()

    def deposit_via(server: LiveServer) -> int:
        return requests.post(f"{server.url}/deposit", json=DEPOSIT, headers=headers, timeout=30).status_code

    # Alternate servers (and, within each, its workers), all at once.
    statuses = run_together([lambda s=servers[i % 2]: deposit_via(s) for i in range(ATTEMPTS)])

    assert sorted(statuses) == [201] * LIMIT + [429] * (ATTEMPTS - LIMIT)
    wallet = requests.get(f"{servers[0].url}/wallet", headers=headers, timeout=10).json()
    assert wallet["balance_cents"] == LIMIT * 10
    for server in servers:  # both servers now refuse this wallet
        assert deposit_via(server) == 429

    other = _user()
    for server in servers:
        response = requests.post(f"{server.url}/deposit", json=DEPOSIT, headers=other, timeout=30)
        assert response.status_code == 201, "another wallet has its own budget"
