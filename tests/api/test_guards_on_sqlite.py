"""The embedded default (gunicorn on SQLite, no Redis) keeps every guard: parallel requests over real HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from shared import ledger
from shared.db import Database
from shared.migrations import alembic_config
from tests.concurrency import run_together
from tests.live_server import LiveServer, start_live_server
from tests.server_env import server_env

PARALLEL = 10


@pytest.fixture(scope="module")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    from alembic import command

    url = f"sqlite:///{Path(tmp_path_factory.mktemp('embedded')) / 'wallet.sqlite3'}"
    command.upgrade(alembic_config(url), "head")
    return url


@pytest.fixture(scope="module")
def server(sqlite_url: str) -> Iterator[LiveServer]:
    env = server_env(sqlite_url, WITHDRAWAL_MAX_PENDING="3", RATE_LIMIT_DEPOSITS="3/minute")
    env.pop("SQLALCHEMY_ENGINE_OPTIONS")  # PostgreSQL pool settings
    live = start_live_server(env, workers=2, threads=4)
    yield live
    live.stop()


def _user(server: LiveServer, cents: int) -> dict[str, str]:
    headers = {"X-Test-User-Email": f"embedded-{uuid.uuid4().hex[:8]}@example.com"}
    body = {"material": "aluminum", "units": cents // 10}
    assert requests.post(f"{server.url}/deposit", json=body, headers=headers, timeout=10).status_code == 201
    return headers


def _withdraw_together(server: LiveServer, headers: dict[str, str]) -> list[requests.Response]:
    def withdraw() -> requests.Response:
        body = {"amount_cents": 100, "bank_token": "tok_embedded"}
        return requests.post(f"{server.url}/withdraw", json=body, headers=headers, timeout=60)

    return run_together([withdraw] * PARALLEL)


def test_pending_cap_and_idempotency_hold_on_sqlite(server: LiveServer, sqlite_url: str) -> None:
    capped = _withdraw_together(server, _user(server, 5000))
    assert sorted(r.status_code for r in capped) == [202] * 3 + [422] * (PARALLEL - 3)

    keyed = {**_user(server, 5000), "Idempotency-Key": "embedded-once"}
    once = _withdraw_together(server, keyed)
    assert {r.status_code for r in once} <= {202, 409}
    listed = requests.get(f"{server.url}/withdrawals", headers=keyed, timeout=10).json()["withdrawals"]
    assert len(listed) == 1

    database = Database(sqlite_url)
    try:
        with database.session() as session:
            assert ledger.verify(session) == []
    finally:
        database.dispose()


def test_deposits_are_limited_per_process_without_redis(server: LiveServer) -> None:
    headers = _user(server, 10)  # one deposit used
    statuses = [
        requests.post(f"{server.url}/deposit", json={"material": "plastic", "units": 1}, headers=headers, timeout=10)
        for _ in range(12)
    ]
    # memory:// counts per gunicorn worker (2 here): at most 3 per worker per minute.
    accepted = sum(r.status_code == 201 for r in statuses) + 1
    assert 3 <= accepted <= 6
    assert {r.status_code for r in statuses} == {201, 429}
