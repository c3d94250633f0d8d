"""A real Celery worker: the publishing request's id travels in the task headers into the task's JSON logs,
and the worker serves its own /metrics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from celery import Celery, signals

from shared.observability import context
from shared.observability.celery import _inject_request_id
from tests.live_server import PROJECT_ROOT, free_port
from tests.private_redis import ThrowawayRedis, start_redis

pytestmark = pytest.mark.slow


@pytest.fixture
def broker() -> Iterator[ThrowawayRedis]:
    server = start_redis(password="celery-pw")
    yield server
    server.stop()


def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _json_lines(path: Path) -> list[dict[str, object]]:
    lines = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return lines


def test_request_id_reaches_the_task_logs_and_metrics_are_served(broker: ThrowawayRedis, tmp_path: Path) -> None:
    queue = f"probe-{uuid.uuid4().hex[:8]}"
    metrics_port = free_port()
    log_path = tmp_path / "worker.log"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "REDIS_", "PROMETHEUS_"))},
        "CELERY_BROKER_URL": broker.url(1),
        "PROBE_QUEUE": queue,
        "WORKER_METRICS_PORT": str(metrics_port),
        "LOG_LEVEL": "INFO",
    }
    args = [str(Path(sys.executable).parent / "celery"), "-A", "tests.shared.observability.celery_probe_app"]
    args += ["worker", "--pool=threads", "--concurrency=2", "--without-gossip", "--without-mingle"]
    with log_path.open("wb") as log:
        worker = subprocess.Popen(args, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"

        def metrics_up() -> bool:
            try:
                return requests.get(metrics_url, timeout=1).status_code == 200
            except requests.RequestException:
                return worker.poll() is not None

        _wait_for(metrics_up, 30, "the worker's metrics endpoint")
        assert worker.poll() is None, log_path.read_text()

        publisher = Celery("publisher", broker=broker.url(1))
        signals.before_task_publish.connect(_inject_request_id)
        try:
            with context.bound("req-from-http-1"):
                publisher.send_task("probe.payout_attempt", args=["w-1"], queue=queue)
            publisher.send_task("probe.payout_attempt", args=["w-2"], queue=queue)  # e.g. from the sweeper
        finally:
            signals.before_task_publish.disconnect(_inject_request_id)

        def attempts() -> list[dict[str, object]]:
            return [line for line in _json_lines(log_path) if line.get("logger") == "probe.payouts"]

        _wait_for(lambda: len(attempts()) == 2, 20, "two payout attempt log lines")
        by_withdrawal = {line["withdrawal_id"]: line for line in attempts()}
        assert by_withdrawal["w-1"]["request_id"] == "req-from-http-1"
        assert str(by_withdrawal["w-2"]["request_id"]).startswith("task-")  # no HTTP request: the task's own id
        assert by_withdrawal["w-1"]["outcome"] == "paid"

        body = requests.get(metrics_url, timeout=5).text
        assert 'wallet_payout_attempts_total{outcome="paid"} 2.0' in body
        assert 'wallet_payout_failures_total{code="account_closed"} 2.0' in body

        # Warm shutdown on SIGTERM, as Kubernetes and Compose stop the container.
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=20) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
