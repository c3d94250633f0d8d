"""The production Celery app plus one benchmark-only task: the payout pipeline's floor (benchmark only).

``celery -A bench.celery_floor worker`` runs the real worker (same settings, pool and queue, the real
``process_withdrawal``) with ``bench.floor_payout`` beside it: a task that only waits the simulated provider
latency and counts itself done in Redis. N of them through the same worker show what the broker and the pool
alone allow; the payouts are compared against that.
"""

from __future__ import annotations

import os
import time

import redis

from worker import tasks  # noqa: F401  (registers the real tasks on the app)
from worker.celery_app import app

FLOOR_TASK = "bench.floor_payout"
DONE_KEY_ENV = "BENCH_FLOOR_DONE_URL"
_done = redis.Redis.from_url(os.environ[DONE_KEY_ENV]) if DONE_KEY_ENV in os.environ else None


@app.task(name=FLOOR_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def floor_payout(counter_key: str, latency_ms: int) -> None:
    if latency_ms:
        time.sleep(latency_ms / 1000)
    assert _done is not None, f"{DONE_KEY_ENV} is not set"
    _done.incr(counter_key)


__all__ = ["app", "floor_payout"]
