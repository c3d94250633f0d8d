"""Flower, started against the test broker, sees the payout worker and its tasks through its API."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from tests.live_server import LiveServer, free_port
from tests.worker.conftest import Client
from tests.worker.harness import CeleryProcess, start_flower

pytestmark = pytest.mark.slow
AUTH = ("operator", "s3cret-flower")


@pytest.fixture(scope="module")
def flower(env: dict[str, str], payout_worker: CeleryProcess) -> Iterator[str]:
    port = free_port()
    process = start_flower(env | {"FLOWER_BASIC_AUTH": f"{AUTH[0]}:{AUTH[1]}"}, port)
    yield f"http://127.0.0.1:{port}"
    process.stop()


def test_flower_requires_basic_auth(flower: str) -> None:
    assert requests.get(f"{flower}/api/workers", timeout=5).status_code == 401
    assert requests.get(f"{flower}/api/workers", auth=("operator", "wrong"), timeout=5).status_code == 401


def test_flower_sees_the_worker_and_a_payout_task(flower: str, api_server: LiveServer) -> None:
    deadline = time.monotonic() + 30
    workers: dict[str, object] = {}
    while time.monotonic() < deadline:
        workers = requests.get(f"{flower}/api/workers", params={"refresh": "1"}, auth=AUTH, timeout=10).json()
        if any(name.startswith("e2e@") for name in workers):
            break
        time.sleep(0.5)
    assert any(name.startswith("e2e@") for name in workers), workers

    user = Client(api_server.url, "flower@example.com")
    withdrawal = user.withdraw(300, "btok_us_verified")
    user.wait_for(withdrawal["id"], {"paid"})
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        tasks = requests.get(f"{flower}/api/tasks", auth=AUTH, timeout=10).json()
        # The API wakes a drain, which pays due withdrawals in batches and lists them in its result.
        mine = [t for t in tasks.values() if withdrawal["id"] in str(t.get("result"))]
        if mine and mine[0]["state"] == "SUCCESS":
            assert mine[0]["name"] == "worker.tasks.drain_payouts"
            assert f"paid 1: {withdrawal['id']}" in mine[0]["result"]
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"Flower never showed the task as SUCCESS: {tasks}")

    # A payout that failed shows as FAILURE, naming the withdrawal and its code, for the operator to act on.
    refused = user.withdraw(300, "tok_fail_account_closed", fund=10)
    user.wait_for(refused["id"], {"failed"})
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        tasks = requests.get(f"{flower}/api/tasks", params={"state": "FAILURE"}, auth=AUTH, timeout=10).json()
        failures = [t for t in tasks.values() if refused["id"] in str(t.get("exception"))]
        if failures:
            assert "account_closed" in failures[0]["exception"]
            return
        time.sleep(0.5)
    raise AssertionError(f"Flower never showed the failed payout: {tasks}")
