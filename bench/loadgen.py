"""wrk, the load generator: installed from apt when missing, driven by bench/lua/rotate.lua."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.stack import BenchError

LUA_SCRIPT = Path(__file__).resolve().parent / "lua" / "rotate.lua"
# One wrk thread drives 32 connections easily and leaves the second core to the server.
DEFAULT_THREADS = 1
REQUEST_TIMEOUT = "10s"


def ensure_wrk() -> str:
    """Path to wrk, installing the Debian package when we are root and it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("bench: wrk not found; installing it with apt-get (Debian package 'wrk')", flush=True)
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        if subprocess.run(["apt-get", "install", "-y", "wrk"], **quiet).returncode != 0:
            subprocess.run(["apt-get", "update"], **quiet)
            subprocess.run(["apt-get", "install", "-y", "wrk"], **quiet)
        found = shutil.which("wrk")
        if found:
            return found
    raise BenchError(
        "wrk (the HTTP load generator) is not installed and could not be installed automatically. "
        "Install it (Debian/Ubuntu: 'apt-get install -y wrk'; macOS: 'brew install wrk') and rerun."
    )


@dataclass(frozen=True)
class LoadResult:
    """One wrk run. Latencies in milliseconds; ``failed`` counts non-2xx/3xx answers and socket errors."""

    label: str
    connections: int
    seconds: float
    requests: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    failed: int
    errors: dict[str, int]

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def run_wrk(
    label: str,
    url: str,
    *,
    path: str,
    seconds: float,
    connections: int,
    method: str = "GET",
    body: str | None = None,
    users: int = 1,
    email_format: str = "bench-%d@example.com",
    tokens_file: Path | None = None,
    threads: int = DEFAULT_THREADS,
) -> LoadResult:
    env = dict(os.environ)
    env.update(
        BENCH_METHOD=method,
        BENCH_PATH=path,
        BENCH_USERS=str(users),
        BENCH_EMAIL_FORMAT=email_format,
    )
    if body is not None:
        env["BENCH_BODY"] = body
    if tokens_file is not None:
        env["BENCH_TOKENS_FILE"] = str(tokens_file)
    argv = [
        ensure_wrk(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={REQUEST_TIMEOUT}",
        f"-s{LUA_SCRIPT}",
        url,
    ]
    completed = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=seconds + 60)
    line = next((ln for ln in completed.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if completed.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({completed.returncode}):\n{completed.stdout}\n{completed.stderr}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    duration_s = data["duration_us"] / 1e6
    latency = data["latency_us"]
    errors = {k: int(v) for k, v in data["errors"].items()}
    return LoadResult(
        label=label,
        connections=connections,
        seconds=round(duration_s, 2),
        requests=data["requests"],
        rps=round(data["requests"] / duration_s, 1),
        p50_ms=latency["p50"] / 1000,
        p95_ms=latency["p95"] / 1000,
        p99_ms=latency["p99"] / 1000,
        max_ms=latency["max"] / 1000,
        mean_ms=latency["mean"] / 1000,
        failed=sum(errors.values()),
        errors=errors,
    )
