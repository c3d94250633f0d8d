"""The real stack for one benchmark run: a throwaway PostgreSQL database and gunicorn serving the API."""

from __future__ import annotations

import os
import runpy
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from shared.migrations import alembic_config

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
LOG_DIR = Path(os.environ.get("TMPDIR", "/tmp"))
STARTUP_TIMEOUT_S = 30
# Every benchmark database carries this prefix so a crashed run's leftovers are easy to find and drop.
DATABASE_PREFIX = "wallet_bench_"


class BenchError(RuntimeError):
    """The benchmark cannot run as asked (a missing tool, a server that did not start)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def bench_database(admin_url: str) -> Iterator[str]:
    """A fresh database migrated to head; dropped (connections and all) when the block ends."""
    from alembic import command

    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"{DATABASE_PREFIX}{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        raise BenchError(f"cannot reach PostgreSQL at {admin_url}: {exc.orig}") from None
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        command.upgrade(alembic_config(url), "head")
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _child_env(env: Mapping[str, str]) -> dict[str, str]:
    # Start from a clean slate for everything the service reads, so a developer's .env cannot leak in.
    prefixes = ("DATABASE_", "REDIS_", "CELERY_", "GUNICORN_", "RATE_LIMIT", "FIREBASE_", "AUTH_", "BENCH_", "APP_ENV")
    full = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    full.update(env)
    return full


@dataclass
class Process:
    """A child process whose output goes to a log file, stopped gracefully then forcibly."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def children(self) -> list[int]:
        """Direct children's pids (gunicorn workers, celery pool processes)."""
        try:
            text = Path(f"/proc/{self.popen.pid}/task/{self.popen.pid}/children").read_text()
        except OSError:
            return []
        return [int(pid) for pid in text.split()]

    def stop(self, timeout: float = 20) -> None:
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


def start_process(name: str, argv: list[str], env: Mapping[str, str]) -> Process:
    log_path = LOG_DIR / f"wallet-bench-{name}-{os.getpid()}.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen(argv, cwd=PROJECT_ROOT, env=_child_env(env), stdout=log, stderr=subprocess.STDOUT)
    return Process(name, popen, log_path)


@dataclass
class Server:
    process: Process
    url: str
    settings: dict[str, str] = field(default_factory=dict)

    def stop(self) -> None:
        self.process.stop()


def start_gunicorn(env: Mapping[str, str], app: str = "api.wsgi:app", name: str = "gunicorn") -> Server:
    """gunicorn with the production gunicorn.conf.py; GUNICORN_* in ``env`` choose workers and threads."""
    port = free_port()
    env = dict(env, GUNICORN_BIND=f"127.0.0.1:{port}")
    process = start_process(name, [str(VENV_BIN / "gunicorn"), "--config", "gunicorn.conf.py", app], env)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(process, f"{url}/health")
    return Server(process, url, gunicorn_settings(env))


def gunicorn_settings(env: Mapping[str, str]) -> dict[str, str]:
    """The settings gunicorn.conf.py resolves to under ``env`` (what the benchmark actually ran)."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        conf = runpy.run_path(str(PROJECT_ROOT / "gunicorn.conf.py"))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    names = ("workers", "threads", "worker_class", "keepalive", "timeout")
    return {name: str(conf[name]) for name in names if name in conf} | {
        "worker_class": str(conf.get("worker_class", "sync" if int(conf.get("threads", 1)) == 1 else "gthread"))
    }


def wait_healthy(process: Process, url: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise BenchError(f"{process.name} exited early:\n{process.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    process.stop()
    raise BenchError(f"{process.name} did not become healthy:\n{process.log_tail()}")
