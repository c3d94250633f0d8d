"""The worker process masks secrets in its logs too (it installs the same redaction as the API)."""

from __future__ import annotations

import os
import subprocess
import sys

from shared.config import PROJECT_ROOT

CODE = """
import logging, worker.celery_app
logging.basicConfig()
logging.getLogger("worker.test").warning("paying out to btok_1SecretBank with sk_test_SecretKey123")
"""


def test_worker_logs_are_redacted() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PAYOUT_", "CELERY_", "REDIS_"))}
    env.update(APP_ENV="test", CELERY_BROKER_URL="memory://")
    result = subprocess.run([sys.executable, "-c", CODE], cwd=PROJECT_ROOT, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert "paying out to [REDACTED] with [REDACTED]" in result.stderr
    assert "btok_1SecretBank" not in result.stderr and "sk_test_SecretKey123" not in result.stderr
