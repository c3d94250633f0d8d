"""The Firebase Auth emulator (npm firebase-tools, installed by `make test` into tests/firebase/node_modules).

Started once per test session on free ports, with a generated firebase.json; stopped at the end. The auth
emulator is pure Node.js: unlike the Firestore/Database emulators it needs no Java.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.live_server import PROJECT_ROOT, free_port

FIREBASE_CLI = PROJECT_ROOT / "tests" / "firebase" / "node_modules" / ".bin" / "firebase"
PROJECT_ID = "demo-test"  # a demo- project: the emulator never tries to reach Google for it
STARTUP_TIMEOUT_S = 60
# The emulator accepts any API key; clients must still send one.
API_KEY = "fake-api-key"


@dataclass
class AuthEmulator:
    process: subprocess.Popen[bytes]
    host: str  # host:port, the form FIREBASE_AUTH_EMULATOR_HOST takes
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def call(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST to the emulated Identity Toolkit REST API, e.g. ``accounts:signUp``."""
        url = f"http://{self.host}/identitytoolkit.googleapis.com/v1/{operation}?key={API_KEY}"
        response = requests.post(url, json=body, timeout=10)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


def start_auth_emulator(workdir: Path) -> AuthEmulator:
    if not FIREBASE_CLI.exists():
        raise RuntimeError(f"{FIREBASE_CLI} is missing: run `make test` (it runs npm ci in tests/firebase)")
    port = free_port()
    config = {
        "emulators": {
            "auth": {"host": "127.0.0.1", "port": port},
            "hub": {"host": "127.0.0.1", "port": free_port()},
            "logging": {"host": "127.0.0.1", "port": free_port()},
            "ui": {"enabled": False},
            "singleProjectMode": True,
        }
    }
    (workdir / "firebase.json").write_text(json.dumps(config))
    log_path = workdir / "emulator.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(FIREBASE_CLI), "emulators:start", "--only", "auth", "--project", PROJECT_ID],
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so stop() reaches node's children too
        )
    emulator = AuthEmulator(process, f"127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the auth emulator exited early:\n{log_path.read_text(errors='replace')}")
        try:
            if requests.get(f"http://{emulator.host}/", timeout=1).status_code == 200:
                return emulator
        except requests.ConnectionError:
            time.sleep(0.2)
    emulator.stop()
    raise RuntimeError(f"the auth emulator did not start:\n{log_path.read_text(errors='replace')}")
