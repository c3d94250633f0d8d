"""Start the API under gunicorn in a subprocess, as production does, for tests over real HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def stop(self) -> None:
        # SIGINT is gunicorn's quick shutdown; SIGTERM would wait for idle keep-alive connections to time out.
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_live_server(env: dict[str, str], workers: int = 4, threads: int = 1) -> LiveServer:
    port = free_port()
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"wallet-live-{port}.log"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "CELERY_"))}
    full_env.update(env)
    full_env.update(GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS=str(workers), GUNICORN_THREADS=str(threads))
    gunicorn = Path(sys.executable).parent / "gunicorn"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(gunicorn), "--config", "gunicorn.conf.py", "api.wsgi:app"],
            cwd=PROJECT_ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(process, f"http://127.0.0.1:{port}", log_path)
    try:
        _wait_until_healthy(server)
    except BaseException:
        server.stop()  # never leave a server behind a failed start
        raise
    return server


def _wait_until_healthy(server: LiveServer) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited early:\n{server.log()}")
        try:
            if requests.get(f"{server.url}/health", timeout=1).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):  # a worker still booting may hold the request
            time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not become healthy:\n{server.log()}")
