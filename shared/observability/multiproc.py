"""prometheus_client's multiprocess mode for servers that fork workers (gunicorn, Celery prefork).

Each worker process writes its samples to files in ``PROMETHEUS_MULTIPROC_DIR``; ``/metrics`` merges them.
The variable must be set before ``prometheus_client`` is first imported, so this module does not import it
at the top, and gunicorn.conf.py calls :func:`ensure_dir` before any worker is forked.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

ENV_VAR = "PROMETHEUS_MULTIPROC_DIR"
# Set when we made the directory ourselves, so we also remove it on exit.
_OWNED_MARKER = ".created-by-wallet"


def normalize_env() -> None:
    """Drop an empty ``PROMETHEUS_MULTIPROC_DIR``; create the directory a non-empty one names."""
    value = os.environ.get(ENV_VAR)
    if value is None:
        return
    if not value.strip():
        del os.environ[ENV_VAR]
        return
    Path(value).mkdir(parents=True, exist_ok=True)


def is_enabled() -> bool:
    return bool(os.environ.get(ENV_VAR))


def ensure_dir() -> Path:
    """Use ``PROMETHEUS_MULTIPROC_DIR`` (creating it), or make a private temporary one and export it."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
    else:
        path = Path(tempfile.mkdtemp(prefix="wallet-metrics-"))
        (path / _OWNED_MARKER).touch()
        os.environ[ENV_VAR] = str(path)
    return path


def wipe(path: Path) -> None:
    """Forget samples of a previous server run (prometheus_client requires a clean directory at start)."""
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)


def remove_if_owned(path: Path) -> None:
    if (path / _OWNED_MARKER).exists():
        shutil.rmtree(path, ignore_errors=True)


def mark_process_dead(pid: int) -> None:
    """Called by the parent when a worker exits: drop the dead worker's live gauges."""
    if not is_enabled():
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
