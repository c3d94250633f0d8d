"""Real processes for end-to-end payout tests: a private redis-server, Celery worker, beat and Flower.

Each test module gets its own redis-server on a free port, so stopping it (the "Redis down" test) or its
queues never touch the Redis other tests and developers share.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
import requests

from tests.live_server import PROJECT_ROOT, free_port

BIN = Path(sys.executable).parent
STARTUP_TIMEOUT_S = 30
# Variables a test process may have that must not leak into the processes it starts.
ISOLATED_PREFIXES = ("DATABASE_", "REDIS_", "CELERY_", "STRIPE_", "PAYOUT_", "SIMULATED_", "FLOWER_")


def process_env(overrides: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ISOLATED_PREFIXES)}
    env.update(overrides)
    return env


class RedisServer:
    """A throwaway redis-server that a test may stop and start again on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self._dir = tempfile.mkdtemp(prefix="wallet-redis-")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self._process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self._dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)


@dataclass
class CeleryProcess:
    """``celery -A worker.celery_app <command>`` with its output in a log file."""

    command: list[str]
    env: dict[str, str]
    ready_marker: str | None
    leftovers: list[Path] = field(default_factory=list)
    log_path: Path = field(init=False)
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> CeleryProcess:
        fd, name = tempfile.mkstemp(prefix="wallet-celery-", suffix=".log")
        os.close(fd)
        self.log_path = Path(name)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(BIN / "celery"), "-A", "worker.celery_app", *self.command],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if self.ready_marker:
            self.wait_for_log(self.ready_marker)
        return self

    def wait_for_log(self, text: str, timeout: float = STARTUP_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"celery {self.command[0]} exited:\n{self.log()}")
            time.sleep(0.1)
        raise RuntimeError(f"celery {self.command[0]}: no {text!r} within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no warm shutdown, no acknowledgement, nothing given back to the broker."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None
        self._remove_files()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        self._remove_files()

    def _remove_files(self) -> None:
        self.log_path.unlink(missing_ok=True)
        for path in self.leftovers:
            shutil.rmtree(path, ignore_errors=True)


def start_worker(env: dict[str, str], name: str, concurrency: int = 4) -> CeleryProcess:
    command = ["worker", "-n", f"{name}@%h", "-c", str(concurrency), "-l", "INFO", "--without-mingle"]
    return CeleryProcess(command, env, ready_marker="ready.").start()


def start_beat(env: dict[str, str]) -> CeleryProcess:
    schedule = Path(tempfile.mkdtemp(prefix="wallet-beat-")) / "schedule"
    beat = CeleryProcess(["beat", "-l", "INFO", "-s", str(schedule)], env, ready_marker="beat: Starting")
    beat.leftovers = [schedule.parent]
    return beat.start()


def start_flower(env: dict[str, str], port: int) -> CeleryProcess:
    process = CeleryProcess(["flower", f"--port={port}", "--address=127.0.0.1"], env, ready_marker=None).start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/healthcheck", timeout=1)
            return process
        except requests.ConnectionError:
            time.sleep(0.2)
    process.stop()
    raise RuntimeError(f"flower did not start:\n{process.log()}")
