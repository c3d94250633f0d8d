"""Ten identical requests with one Idempotency-Key, in parallel against gunicorn: money moves exactly once."""

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

PARALLEL = 10


@pytest.fixture(scope="module")
def server(database_url: str, database: Database) -> Iterator[LiveServer]:
    live = start_live_server(server_env(database_url), workers=4, threads=4)
    yield live
    live.stop()
    truncate_all(database)


def _user(server: LiveServer, cents: int = 0) -> dict[str, str]:
    headers = {"X-Test-User-Email": f"idem-{uuid.uuid4().hex[:10]}@example.com"}
    if cents:
        body = {"material": "aluminum", "units": cents // 10}
        assert requests.post(f"{server.url}/deposit", json=body, headers=headers, timeout=10).status_code == 201
    return headers


def _post_together(
    server: LiveServer, path: str, body: dict[str, object], headers: dict[str, str]
) -> list[requests.Response]:
    def post() -> requests.Response:
        return requests.post(f"{server.url}{path}", json=body, headers=headers, timeout=30)

    return run_together([post] * PARALLEL)


def _assert_one_outcome(responses: list[requests.Response], success: int) -> None:
    statuses = {r.status_code for r in responses}
    assert statuses <= {success, 409}, statuses
    originals = [r for r in responses if r.status_code == success and "Idempotent-Replayed" not in r.headers]
    assert len(originals) == 1, "exactly one request did the work; the rest replayed it or were told to wait"
    bodies = {r.content for r in responses if r.status_code == success}
    assert len(bodies) == 1, "every success carries the same stored body"
    for refused in (r for r in responses if r.status_code == 409):
        assert refused.json()["error"]["code"] == "idempotency_request_in_progress"


def test_parallel_withdrawals_with_one_key_withdraw_once(server: LiveServer, database: Database) -> None:
    headers = {**_user(server, cents=5000), "Idempotency-Key": "payout-2026-12-04"}
    responses = _post_together(server, "/withdraw", {"amount_cents": 1000, "bank_token": "tok_once"}, headers)

    _assert_one_outcome(responses, 202)
    withdrawal_id = next(r for r in responses if r.status_code == 202).json()["withdrawal"]["id"]
    listed = requests.get(f"{server.url}/withdrawals", headers=headers, timeout=10).json()["withdrawals"]
    assert [w["id"] for w in listed] == [withdrawal_id]
    history = requests.get(f"{server.url}/transactions", headers=headers, timeout=10).json()["transactions"]
    assert [t["transaction_type"] for t in history] == ["withdrawal", "deposit"]  # one debit
    with database.session() as session:
        assert ledger.verify(session) == []
    assert requests.get(f"{server.url}/wallet", headers=headers, timeout=10).json()["balance_cents"] == 4000

    late = requests.post(
        f"{server.url}/withdraw", json={"amount_cents": 1000, "bank_token": "tok_once"}, headers=headers, timeout=10
    )
    assert late.status_code == 202 and late.headers["Idempotent-Replayed"] == "true"


def test_parallel_deposits_with_one_key_deposit_once(server: LiveServer, database: Database) -> None:
    headers = {**_user(server), "Idempotency-Key": "bin-7-scan-1"}
    responses = _post_together(server, "/deposit", {"material": "plastic", "units": 40}, headers)

    _assert_one_outcome(responses, 201)
    history = requests.get(f"{server.url}/transactions", headers=headers, timeout=10).json()["transactions"]
    assert len(history) == 1
    assert requests.get(f"{server.url}/wallet", headers=headers, timeout=10).json()["balance_cents"] == 200
    with database.session() as session:
        assert ledger.verify(session) == []
