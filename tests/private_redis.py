"""A throwaway redis-server on a free port, for tests that stop Redis (never the shared one)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass

import redis

from tests.live_server import free_port


@dataclass
class ThrowawayRedis:
    process: subprocess.Popen[bytes]
    port: int
    password: str | None
    workdir: str

    def url(self, db: int = 0) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_redis(password: str | None = None) -> ThrowawayRedis:
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="wallet-redis-")
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    args += ["--dir", workdir]
    if password:
        args += ["--requirepass", password]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = ThrowawayRedis(process, port, password, workdir)
    client = redis.Redis.from_url(server.url(), socket_connect_timeout=0.5)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            client.ping()
            return server
        except redis.ConnectionError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError("redis-server did not start")
