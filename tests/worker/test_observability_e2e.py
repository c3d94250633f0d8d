"""The request id of POST /withdraw reaches the worker's payout log line; the worker and the API export the
payout metrics. Real processes: gunicorn, a Celery worker, Redis, PostgreSQL, the fake Stripe server."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
import requests

from tests.fake_stripe import FakeStripe
from tests.live_server import LiveServer, free_port
from tests.worker.conftest import Client, stack_env
from tests.worker.harness import CeleryProcess, RedisServer, process_env

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("payout_worker")]
WORKER_METRICS_PORT = free_port()


@pytest.fixture(scope="module")
def env(database_url: str, stack_redis: RedisServer, fake_stripe: FakeStripe) -> dict[str, str]:
    """The payout stack's environment, plus a free port for the worker's metrics endpoint."""
    settings = stack_env(database_url, stack_redis.url, fake_stripe.url)
    return process_env({**settings, "WORKER_METRICS_PORT": str(WORKER_METRICS_PORT)})


def _metric(text: str, line_start: str) -> float:
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start)]
    return values[0] if values else 0.0


def test_request_id_follows_the_payout_into_the_worker(
    user: Callable[[str], Client], api_server: LiveServer, payout_worker: CeleryProcess
) -> None:
    alice = user("observed@example.com")
    assert alice.post("/deposit", {"material": "aluminum", "units": 100}).status_code == 201
    response = requests.post(
        f"{api_server.url}/withdraw",
        json={"amount_cents": 300, "bank_token": "btok_us_verified"},
        headers={**alice.headers, "X-Request-ID": "e2e-req-42"},
        timeout=10,
    )
    assert response.status_code == 202 and response.headers["X-Request-ID"] == "e2e-req-42"
    withdrawal_id = response.json()["withdrawal"]["id"]
    alice.wait_for(withdrawal_id, {"paid"})

    deadline = time.monotonic() + 10
    attempts: list[dict[str, object]] = []
    while time.monotonic() < deadline and not attempts:
        lines = [json.loads(line) for line in payout_worker.log().splitlines() if line.startswith("{")]
        attempts = [
            line for line in lines if line["logger"] == "wallet.payouts" and line["withdrawal_id"] == withdrawal_id
        ]
        time.sleep(0.1)
    (attempt,) = attempts
    assert attempt["request_id"] == "e2e-req-42"
    assert attempt["outcome"] == "paid" and attempt["latency_ms"] > 0
    # Every line the task logged carries the same id, the gateway's and the ledger's included.
    task_lines = [line for line in lines if line.get("request_id") == "e2e-req-42"]
    assert len(task_lines) >= 2

    worker_metrics = requests.get(f"http://127.0.0.1:{WORKER_METRICS_PORT}/metrics", timeout=5).text
    assert _metric(worker_metrics, 'wallet_payout_attempts_total{outcome="paid"}') >= 1
    assert _metric(worker_metrics, 'wallet_withdrawals_total{status="paid"}') >= 1
    assert "wallet_payout_duration_seconds_count" in worker_metrics

    api_metrics = requests.get(f"{api_server.url}/metrics", timeout=5).text
    assert _metric(api_metrics, 'wallet_withdrawals_total{status="pending"}') >= 1
    assert 'wallet_queue_depth{queue="payouts"}' in api_metrics
    assert _metric(api_metrics, 'wallet_withdrawals_open{status="pending"}') == 0
