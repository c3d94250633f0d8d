"""Each compose service's command, run here for real: the compose environment with postgres/redis mapped to
the local PostgreSQL and a throwaway password-protected redis-server, the image's ENTRYPOINT/CMD/ENV
applied as Docker would, and each process started, probed and stopped with SIGTERM, bounded in time."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.conftest import ADMIN_DATABASE_URL
from tests.deploy import files
from tests.live_server import free_port
from tests.private_redis import ThrowawayRedis, start_redis

pytestmark = pytest.mark.slow

IMAGE_OF = {"migrate": "Dockerfile.api", "api": "Dockerfile.api"}
IMAGE_OF.update(dict.fromkeys(("worker", "beat", "flower"), "Dockerfile.worker"))
HAS_WORKER = (files.ROOT / "worker" / "celery_app.py").exists()
needs_worker = pytest.mark.skipif(
    not HAS_WORKER, reason="worker/celery_app.py (the payout pipeline) not on this branch"
)


@dataclass
class Stack:
    services: dict[str, Any]
    redis: ThrowawayRedis
    database_url: str
    tmp: Path

    def command(self, service: str) -> list[str]:
        """What Docker runs: compose entrypoint/command override the image's (an entrypoint override drops CMD)."""
        spec = self.services[service]
        image = files.dockerfile_stages(IMAGE_OF[service])[-1]
        entrypoint = spec.get("entrypoint") or list(image.of("ENTRYPOINT")[-1].value)
        if spec.get("command") is not None:
            command = spec["command"]
        elif spec.get("entrypoint"):
            command = []
        else:
            command = list(image.of("CMD")[-1].value)
        return [*entrypoint, *command]

    def env(self, service: str, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in files.image_env(IMAGE_OF[service]).items() if k != "PATH"}
        env.update({k: "" if v is None else str(v) for k, v in self.services[service]["environment"].items()})
        env["DATABASE_URL"] = self.database_url
        for name in ("REDIS_URL", "CELERY_BROKER_URL"):
            env[name] = env[name].replace("@redis:6379/", f"@127.0.0.1:{self.redis.port}/")
        if "PROMETHEUS_MULTIPROC_DIR" in env:
            env["PROMETHEUS_MULTIPROC_DIR"] = str(self.tmp / f"prometheus-{service}")
        if env.get("GUNICORN_BIND"):
            env["GUNICORN_BIND"] = f"127.0.0.1:{free_port()}"
        env["WORKER_METRICS_PORT"] = str(free_port())
        env["PATH"] = f"{files.BIN}:{os.environ['PATH']}"
        env["HOSTNAME"] = socket.gethostname()
        env.update(extra)
        return env

    def start(self, service: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{service}.log").open("wb")
        return subprocess.Popen(self.command(service), cwd=files.ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    def log(self, service: str) -> str:
        return (self.tmp / f"{service}.log").read_text(errors="replace")


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    services = files.compose_config()["services"]
    command = services["redis"]["command"]
    redis_server = start_redis(password=command[command.index("--requirepass") + 1])
    name = f"wallet_compose_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(ADMIN_DATABASE_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    compose_url = make_url(services["api"]["environment"]["DATABASE_URL"])
    local = make_url(ADMIN_DATABASE_URL)
    url = compose_url.set(host=local.host, port=local.port, username=local.username, password=local.password)
    tmp = Path(tempfile.mkdtemp(prefix="wallet-compose-"))
    try:
        yield Stack(services, redis_server, url.set(database=name).render_as_string(hide_password=False), tmp)
    finally:
        redis_server.stop()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        shutil.rmtree(tmp, ignore_errors=True)


def _wait_http(url: str, process: subprocess.Popen[bytes], timeout: float, **kwargs: Any) -> requests.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"exited with {process.returncode}"
        try:
            return requests.get(url, timeout=2, **kwargs)
        except requests.RequestException:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout}s")


def _stop(process: subprocess.Popen[bytes], within: float) -> tuple[int, float]:
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=within)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(f"did not stop within {within}s of SIGTERM") from None
    return code, time.monotonic() - started


def _healthcheck(service: str, stack: Stack, env: dict[str, str], port: int | None = None) -> int:
    test = stack.services[service]["healthcheck"]["test"]
    assert test[0] == "CMD"
    argv = [arg.replace("127.0.0.1:8000", f"127.0.0.1:{port}") if port else arg for arg in test[1:]]
    return subprocess.run(argv, cwd=files.ROOT, env=env, timeout=30, capture_output=True, check=False).returncode


def test_migrate_then_api(stack: Stack) -> None:
    migrate = stack.start("migrate", stack.env("migrate"))
    assert migrate.wait(timeout=90) == 0, stack.log("migrate")
    engine = sa.create_engine(stack.database_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    engine.dispose()

    env = stack.env("api")
    port = int(env["GUNICORN_BIND"].rsplit(":", 1)[1])
    api = stack.start("api", env)
    try:
        base = f"http://127.0.0.1:{port}"
        assert _wait_http(f"{base}/health", api, 60).status_code == 200, stack.log("api")
        ready = requests.get(f"{base}/health/ready", timeout=10)
        assert ready.status_code == 200, ready.text
        assert {k: v["status"] for k, v in ready.json()["checks"].items()} == {
            "database": "ok",
            "redis": "ok",  # through the password in the compose URL
            "broker": "ok",
        }
        assert requests.get(f"{base}/wallet", timeout=5).status_code == 401  # no bypass by default
        assert _healthcheck("api", stack, env, port) == 0
        # In-flight requests finish and the process exits cleanly within the graceful timeout.
        code, seconds = _stop(api, within=float(env["GUNICORN_GRACEFUL_TIMEOUT"]) + 5)
        assert code == 0, stack.log("api")
        assert seconds < 10
    finally:
        if api.poll() is None:
            api.kill()


@needs_worker
def test_worker_answers_its_image_healthcheck_and_stops_warm(stack: Stack) -> None:
    env = stack.env("worker")
    worker = stack.start("worker", env)
    try:
        deadline = time.monotonic() + 60
        while "ready." not in stack.log("worker"):  # Celery's "celery@host ready." (a JSON log line here)
            assert worker.poll() is None, stack.log("worker")
            assert time.monotonic() < deadline, stack.log("worker")
            time.sleep(0.2)
        ping = files.dockerfile_stages("Dockerfile.worker")[-1].of("HEALTHCHECK")[-1].value[1:]
        result = subprocess.run(ping, cwd=files.ROOT, env=env, timeout=30, capture_output=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        metrics = requests.get(f"http://127.0.0.1:{env['WORKER_METRICS_PORT']}/metrics", timeout=5)
        assert metrics.status_code == 200 and "wallet_payout_attempts_total" in metrics.text
        code, _ = _stop(worker, within=30)
        assert code == 0, stack.log("worker")
    finally:
        if worker.poll() is None:
            worker.kill()


@needs_worker
def test_beat_runs_and_stops(stack: Stack) -> None:
    env = stack.env("beat")
    env_schedule = next(a for a in stack.command("beat") if a.startswith("--schedule="))
    schedule = stack.tmp / "celerybeat-schedule"
    command = [a.replace(env_schedule, f"--schedule={schedule}") for a in stack.command("beat")]
    beat = subprocess.Popen(command, cwd=files.ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        time.sleep(5)
        assert beat.poll() is None, beat.stdout.read().decode() if beat.stdout else ""
        code, _ = _stop(beat, within=15)
        assert code == 0
    finally:
        if beat.poll() is None:
            beat.kill()


@needs_worker
def test_flower_requires_its_basic_auth(stack: Stack) -> None:
    port = free_port()
    env = stack.env("flower", FLOWER_PORT=str(port))
    flower_command = [a.replace("--port=5555", f"--port={port}") for a in stack.command("flower")]
    flower = subprocess.Popen(
        flower_command, cwd=files.ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        base = f"http://127.0.0.1:{port}"
        assert _wait_http(f"{base}/healthcheck", flower, 60).status_code == 200
        assert requests.get(f"{base}/", timeout=5).status_code == 401
        user, _, password = env["FLOWER_BASIC_AUTH"].partition(":")
        assert requests.get(f"{base}/", auth=(user, password), timeout=5).status_code == 200
        healthcheck = [
            a.replace("127.0.0.1:5555", f"127.0.0.1:{port}")
            for a in stack.services["flower"]["healthcheck"]["test"][1:]
        ]
        assert subprocess.run(healthcheck, env=env, timeout=30, check=False).returncode == 0
        code, _ = _stop(flower, within=15)
        assert code in (0, -signal.SIGTERM)
    finally:
        if flower.poll() is None:
            flower.kill()
