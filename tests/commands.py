"""Run the project's command-line entry points the way an operator would: in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.live_server import PROJECT_ROOT


def flask(args: list[str], database_url: str | None, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess[str]:
    """``flask --app api ARGS`` with only DATABASE_URL (or nothing: the embedded default) configured."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    command = [sys.executable, "-m", "flask", "--app", "api", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
