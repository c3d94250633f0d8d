"""``bin/run`` (what ``make run`` calls) on the embedded default: no PostgreSQL, no Redis, no Stripe.

The service runs from a copy of the tree, so its SQLite database and broker under var/ are the copy's.
A withdrawal must reach ``paid`` through the real worker and beat; Ctrl-C must stop every process.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.live_server import PROJECT_ROOT, free_port
from tests.worker.harness import process_env

pytestmark = pytest.mark.slow

TREE = ["api", "worker", "shared", "migrations", "bin", "alembic.ini", "gunicorn.conf.py"]


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "--ppid", str(pid), "-o", "pid="], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}/stat").exists() else "X"
    return state != "Z"


def test_make_run_pays_a_withdrawal_on_the_embedded_default_and_stops_cleanly(tmp_path: Path) -> None:
    for name in TREE:
        source = PROJECT_ROOT / name
        copy = shutil.copytree if source.is_dir() else shutil.copy2
        copy(source, tmp_path / name)
    (tmp_path / ".venv").symlink_to(PROJECT_ROOT / ".venv")
    port = free_port()
    env = process_env({"GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "1"})
    for name in ("AUTH_DEV_BYPASS", "APP_ENV"):
        env.pop(name, None)
    log_path = tmp_path / "run.log"
    with log_path.open("wb") as log:
        run = subprocess.Popen(["bin/run"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    headers = {"X-Test-User-Email": "embedded@example.com"}
    try:
        deadline = time.monotonic() + 60
        while True:
            assert run.poll() is None, log_path.read_text()
            try:
                if requests.get(f"{base}/health", timeout=1).ok and "ready." in log_path.read_text():
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        assert requests.post(f"{base}/deposit", json={"material": "aluminum", "units": 50}, headers=headers).ok
        response = requests.post(f"{base}/withdraw", json={"amount_cents": 300, "bank_token": "tok_x"}, headers=headers)
        assert response.status_code == 202, response.text
        location = response.headers["Location"]
        deadline = time.monotonic() + 30
        while (status := requests.get(f"{base}{location}", headers=headers).json()["status"]) != "paid":
            assert time.monotonic() < deadline, f"still {status}:\n{log_path.read_text()}"
            time.sleep(0.2)
        assert (tmp_path / "var" / "broker.sqlite3").exists()
        assert (tmp_path / "var" / "wallet.sqlite3").exists()
        processes = children(run.pid)
        assert len(processes) == 3  # worker, beat, gunicorn
    finally:
        run.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            run.wait(timeout=30)
        except subprocess.TimeoutExpired:
            run.kill()
            raise
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in processes) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in processes if alive(pid)], log_path.read_text()
    assert run.returncode == 130
