"""Request ids, the per-request JSON log line, and /metrics (in-process and under gunicorn's workers)."""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from collections.abc import Iterator

import pytest
import redis
import requests
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from api import create_app
from shared.config import AppEnv, Config, ConfigError
from shared.db import Database
from shared.payouts.celery_settings import PAYOUTS_QUEUE
from tests.conftest import truncate_all
from tests.factories import bypass_headers
from tests.live_server import start_live_server
from tests.private_redis import ThrowawayRedis, start_redis


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


# -- request ids -------------------------------------------------------------------------------------------


def test_request_id_is_generated_when_absent(client: FlaskClient) -> None:
    response = client.get("/health")
    assert len(response.headers["X-Request-ID"]) == 32


def test_request_id_is_echoed_when_valid(client: FlaskClient) -> None:
    response = client.get("/wallet", headers={**bypass_headers(), "X-Request-ID": "trace-abc.123"})
    assert response.headers["X-Request-ID"] == "trace-abc.123"


@pytest.mark.parametrize("bad", ["two words", "x" * 129, "inject\\nline", "<b>"])
def test_malformed_request_id_is_replaced_not_refused(client: FlaskClient, bad: str) -> None:
    response = client.get("/health", headers={"X-Request-ID": bad})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] != bad


def test_errors_carry_the_request_id_too(client: FlaskClient) -> None:
    assert client.get("/nope", headers={"X-Request-ID": "r-404"}).headers["X-Request-ID"] == "r-404"
    response = client.post("/deposit", json={"units": "x"}, headers={**bypass_headers(), "X-Request-ID": "r-400"})
    assert response.status_code == 400 and response.headers["X-Request-ID"] == "r-400"


# -- access log --------------------------------------------------------------------------------------------


def test_one_access_line_per_request(client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="wallet.access")
    client.post(
        "/deposit", json={"material": "plastic", "units": 2}, headers={**bypass_headers(), "X-Request-ID": "r-1"}
    )
    wallet_id_response = client.get("/wallet", headers=bypass_headers())
    records = [r for r in caplog.records if r.name == "wallet.access"]
    assert len(records) == 2
    first = records[0]
    assert (first.method, first.path, first.status, first.request_id) == ("POST", "/deposit", 201, "r-1")
    assert first.latency_ms > 0
    assert first.user_id is not None and len(first.user_id) == 36  # the authenticated user's id
    assert wallet_id_response.status_code == 200


def test_probes_are_logged_at_debug_only(client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="wallet.access")
    client.get("/health")
    client.get("/metrics")
    assert not [r for r in caplog.records if r.name == "wallet.access"]


def test_unauthenticated_requests_log_no_user(client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="wallet.access")
    assert client.get("/wallet").status_code == 401
    (record,) = [r for r in caplog.records if r.name == "wallet.access"]
    assert record.status == 401 and record.user_id is None


# -- /metrics ----------------------------------------------------------------------------------------------


def test_business_and_request_metrics(client: FlaskClient) -> None:
    before = client.get("/metrics").get_data(as_text=True)
    headers = bypass_headers()
    client.post("/deposit", json={"material": "plastic", "units": 3}, headers=headers)
    client.post("/deposit", json={"material": "aluminum", "units": 40}, headers=headers)
    client.post("/withdraw", json={"amount_cents": 300, "bank_token": "tok_x"}, headers=headers)
    client.get("/withdrawals/not-a-uuid", headers=headers)
    after = client.get("/metrics").get_data(as_text=True)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("wallet_deposits_total", material="plastic") == 1
    assert delta("wallet_deposited_cents_total", material="plastic") == 15
    assert delta("wallet_deposited_cents_total", material="aluminum") == 400
    assert delta("wallet_withdrawals_total", status="pending") == 1
    assert delta("wallet_http_requests_total", method="POST", endpoint="/deposit", status="201") == 2
    assert delta("wallet_http_requests_total", method="GET", endpoint="<unmatched>", status="404") == 1
    assert delta("wallet_http_request_duration_seconds_count", method="POST", endpoint="/withdraw") == 1
    assert value(after, "wallet_withdrawals_open", status="pending") == 1
    assert value(after, "wallet_withdrawals_open", status="failed") == 0


@pytest.fixture
def broker() -> Iterator[ThrowawayRedis]:
    server = start_redis()
    yield server
    server.stop()


def test_queue_depth_read_from_the_broker(config: Config, database: Database, broker: ThrowawayRedis) -> None:
    app = create_app(config.replace(celery_broker_url=broker.url(1)))
    client = app.test_client()
    queue = redis.Redis.from_url(broker.url(1))
    queue.rpush(PAYOUTS_QUEUE, "m1", "m2", "m3")
    queue.rpush(f"{PAYOUTS_QUEUE}\x06\x163", "m4")  # kombu's list for priority 3 of the same queue
    try:
        assert value(client.get("/metrics").get_data(as_text=True), "wallet_queue_depth", queue=PAYOUTS_QUEUE) == 4
        broker.stop()  # a broker outage hides the gauge; the scrape still succeeds
        response = client.get("/metrics")
        assert response.status_code == 200
        assert "wallet_queue_depth{" not in response.get_data(as_text=True)
    finally:
        app.extensions["wallet_db"].dispose()


def test_rate_limit_and_fallback_hooks_show_up(client: FlaskClient) -> None:
    from shared.observability import metrics

    before = client.get("/metrics").get_data(as_text=True)
    metrics.record_rate_limited("/deposit")
    metrics.set_rate_limiter_fallback(True)
    after = client.get("/metrics").get_data(as_text=True)
    metrics.set_rate_limiter_fallback(False)
    assert (
        value(after, "wallet_rate_limited_total", endpoint="/deposit")
        - value(before, "wallet_rate_limited_total", endpoint="/deposit")
        == 1
    )
    assert value(after, "wallet_rate_limiter_fallback_active") == 1


def test_metrics_token_is_required_when_set(config: Config, app: Flask) -> None:
    protected = create_app(config.replace(metrics_token="t0ken"))
    client = protected.test_client()
    try:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        denied = client.get("/metrics", headers={"Authorization": "Basic t0ken"})
        assert denied.status_code == 401 and denied.json["error"]["code"] == "unauthenticated"
        ok = client.get("/metrics", headers={"Authorization": "Bearer t0ken"})
        assert ok.status_code == 200 and ok.content_type.startswith("text/plain")
    finally:
        protected.extensions["wallet_db"].dispose()


def test_production_refuses_to_start_with_public_metrics(config: Config) -> None:
    production = config.replace(
        app_env=AppEnv.PRODUCTION, auth_dev_bypass=False, firebase_project_id="p", stripe_secret_key="sk_live_x"
    )
    with pytest.raises(ConfigError, match="METRICS_TOKEN"):
        create_app(production)


def test_metrics_is_not_in_the_public_api_document(client: FlaskClient) -> None:
    assert "/metrics" not in client.get("/openapi.json").json["paths"]


# -- under gunicorn: several worker processes, one set of numbers --------------------------------------------


@pytest.mark.slow
def test_gunicorn_workers_share_their_metrics_and_log_json(database_url: str, database: Database) -> None:
    env = {"APP_ENV": "test", "DATABASE_URL": database_url, "AUTH_DEV_BYPASS": "true", "LOG_LEVEL": "INFO"}
    env["RATE_LIMIT_DEPOSITS"] = "1000/second"  # 30 deposits in a row from one wallet are the point here
    server = start_live_server(env, workers=3)
    try:
        headers = {**bypass_headers("multi@example.com"), "Content-Type": "application/json"}
        with requests.Session() as http:
            before = http.get(f"{server.url}/metrics", timeout=5).text
            for i in range(30):
                sent = {**headers, "X-Request-ID": f"multi-{i}"}
                reply = http.post(f"{server.url}/deposit", json={"material": "plastic", "units": 1}, headers=sent)
                assert reply.status_code == 201 and reply.headers["X-Request-ID"] == f"multi-{i}"
            # Kill one worker outright: its samples must survive it (gunicorn's child_exit hook runs).
            worker_pids = _gunicorn_worker_pids(server.process.pid)
            os.kill(worker_pids[0], signal.SIGKILL)
            time.sleep(1.0)
            after = "".join(http.get(f"{server.url}/metrics", timeout=5).text for _ in range(1))
        assert (
            value(after, "wallet_deposits_total", material="plastic")
            - value(before, "wallet_deposits_total", material="plastic")
            == 30
        )
        lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
        access = [line for line in lines if line["logger"] == "wallet.access" and line["path"] == "/deposit"]
        assert {line["request_id"] for line in access} == {f"multi-{i}" for i in range(30)}
        assert {line["status"] for line in access} == {201}
        assert all(line["latency_ms"] > 0 and line["user_id"] and line["method"] == "POST" for line in access)
        assert any(line["logger"] == "gunicorn.error" for line in lines), "gunicorn's own lines are JSON too"
    finally:
        server.stop()
        truncate_all(database)


def _gunicorn_worker_pids(master: int) -> list[int]:
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == master:
                        children.append(int(entry))
            except OSError:
                continue
    assert children, "gunicorn has no workers"
    return children


def test_rate_limit_rejections_and_fallback_are_exported(config: Config, database: Database) -> None:
    limiter_redis = start_redis()
    app = create_app(config.replace(rate_limit_storage_url=limiter_redis.url(0), rate_limit_deposits="2/minute"))
    client = app.test_client()
    headers = bypass_headers("limited@example.com")
    try:
        before = client.get("/metrics").get_data(as_text=True)
        statuses = [
            client.post("/deposit", json={"material": "plastic", "units": 1}, headers=headers).status_code
            for _ in range(3)
        ]
        assert statuses == [201, 201, 429]
        after = client.get("/metrics").get_data(as_text=True)
        assert (
            value(after, "wallet_rate_limited_total", endpoint="/deposit")
            - value(before, "wallet_rate_limited_total", endpoint="/deposit")
            == 1
        )
        assert value(after, "wallet_rate_limiter_fallback_active") == 0
        limiter_redis.stop()  # Redis gone: the limiter counts in memory, deposits go on, the gauge says so
        other = bypass_headers("fallback@example.com")
        assert client.post("/deposit", json={"material": "plastic", "units": 1}, headers=other).status_code == 201
        assert value(client.get("/metrics").get_data(as_text=True), "wallet_rate_limiter_fallback_active") == 1
    finally:
        limiter_redis.stop()
        from shared.observability import metrics

        metrics.set_rate_limiter_fallback(False)
        app.extensions["wallet_db"].dispose()
