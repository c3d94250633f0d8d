"""Enqueueing payouts from the API: by task name, with a Celery client that knows nothing of the worker.

Called after the withdrawal has committed. A failed enqueue (broker down) is logged and swallowed: the
withdrawal is safely ``pending`` and the sweeper enqueues it later. Enqueueing twice is harmless.
"""

from __future__ import annotations

import logging
import threading
import uuid

from celery import Celery

from shared.config import Config
from shared.payouts.celery_settings import PAYOUTS_QUEUE, PROCESS_WITHDRAWAL_TASK, celery_settings

log = logging.getLogger(__name__)

# Publishing retries briefly (a broker blip) but never holds an HTTP request for long.
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


class PayoutQueue:
    def __init__(self, config: Config) -> None:
        self._config = config
        self._celery: Celery | None = None
        self._lock = threading.Lock()

    def _client(self) -> Celery:
        # Built on first use, after gunicorn has forked, so no broker connection crosses a fork.
        with self._lock:
            if self._celery is None:
                client = Celery("wallet-enqueue", set_as_current=False)
                client.conf.update(celery_settings(self._config))
                self._celery = client
            return self._celery

    def enqueue(self, withdrawal_id: uuid.UUID) -> bool:
        """Ask a worker to process the withdrawal; False (and a warning) when the broker is unreachable."""
        try:
            self._client().send_task(
                PROCESS_WITHDRAWAL_TASK,
                args=[str(withdrawal_id)],
                queue=PAYOUTS_QUEUE,
                retry=True,
                retry_policy=PUBLISH_RETRY_POLICY,
            )
        except Exception:
            log.warning("could not enqueue withdrawal %s; the sweeper will pick it up", withdrawal_id, exc_info=True)
            return False
        return True

    def close(self) -> None:
        with self._lock:
            if self._celery is not None:
                self._celery.close()
                self._celery = None
