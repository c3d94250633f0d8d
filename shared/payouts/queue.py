"""Enqueueing payouts: by task name, with a Celery client that knows nothing of the worker.

Two ways in, both called after the withdrawal has committed, both never raising:

- :meth:`PayoutQueue.enqueue` (the API, operators): wake a *drain*, a task that claims and pays due
  withdrawals in batches. One drain on its way is enough for any number of new withdrawals, so under load the
  API sends one message per batch, not per withdrawal (README, Benchmarks: Celery's own work per message
  caps a worker well below the payouts it can make in batches).
- :meth:`PayoutQueue.enqueue_one` (the sweeper, retries): one task for one withdrawal, optionally delayed.

A failed enqueue (broker down) is logged and swallowed: the withdrawal is safely ``pending`` and the sweeper
enqueues it later. Enqueueing twice is harmless: the claim lets one worker in.
"""

from __future__ import annotations

import logging
import threading
import uuid

import redis
from celery import Celery

from shared.config import Config
from shared.payouts.celery_settings import (
    BROKER_CONNECT_TIMEOUT_S,
    DRAIN_PAYOUTS_TASK,
    PAYOUTS_QUEUE,
    PROCESS_WITHDRAWAL_TASK,
    celery_settings,
)

log = logging.getLogger(__name__)

# Publishing retries briefly (a broker blip) but never holds an HTTP request for long.
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
# Set (in the broker's Redis) while a drain is on its way and has not started claiming yet: a withdrawal that
# commits meanwhile will be seen by that drain, so waking another is unnecessary. Every drain clears it before
# each claim (see worker.tasks.drain_payouts), so a withdrawal committed after that claim wakes a new one.
DRAIN_SCHEDULED_KEY = "wallet:payouts:drain-scheduled"
# Expiry of the flag: if its drain message was lost, new withdrawals wake another after at most this long
# (and the sweeper relays anything older). Longer than a healthy queue's wait; any drain extra is harmless.
DRAIN_SCHEDULED_TTL_MS = 2_000


class PayoutQueue:
    def __init__(self, config: Config) -> None:
        self._config = config
        self._celery: Celery | None = None
        self._flags: redis.Redis | None = None
        self._lock = threading.Lock()

    def _client(self) -> Celery:
        # Built on first use, after gunicorn has forked, so no broker connection crosses a fork.
        with self._lock:
            if self._celery is None:
                client = Celery("wallet-enqueue", set_as_current=False)
                client.conf.update(celery_settings(self._config))
                self._celery = client
            return self._celery

    def _flag_store(self) -> redis.Redis | None:
        """The broker's Redis, where the drain flag lives; None for other brokers (every wake sends a drain)."""
        url = self._config.broker_url
        if not url.startswith(("redis://", "rediss://")):
            return None
        with self._lock:
            if self._flags is None:
                timeout = BROKER_CONNECT_TIMEOUT_S
                self._flags = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
            return self._flags

    def enqueue(self, withdrawal_id: uuid.UUID) -> bool:
        """Have a drain pay the withdrawal soon; False (and a warning) when the broker is unreachable."""
        if self.wake():
            return True
        log.warning("could not enqueue withdrawal %s; the sweeper will pick it up", withdrawal_id)
        return False

    def wake(self) -> bool:
        """Make sure a drain will claim after now, unless one already will; False when the broker is unreachable."""
        flags = self._flag_store()
        if flags is not None:
            try:
                if not flags.set(DRAIN_SCHEDULED_KEY, "1", nx=True, px=DRAIN_SCHEDULED_TTL_MS):
                    return True  # a drain that has not claimed yet is on its way: it will see this withdrawal
            except redis.RedisError:
                pass  # the publish below fails the same way, and says so
        if self._send(DRAIN_PAYOUTS_TASK, [], None):
            return True
        self.rearm()  # nothing is on its way after all
        return False

    def enqueue_one(self, withdrawal_id: uuid.UUID, countdown: float | None = None) -> bool:
        """A task for this one withdrawal, after ``countdown`` seconds; False when the broker is unreachable."""
        if self._send(PROCESS_WITHDRAWAL_TASK, [str(withdrawal_id)], countdown):
            return True
        log.warning("could not enqueue withdrawal %s; the sweeper will pick it up", withdrawal_id)
        return False

    def rearm(self) -> None:
        """Clear the drain flag: the next withdrawal to commit wakes a new drain. Called by every drain."""
        flags = self._flag_store()
        if flags is None:
            return
        try:
            flags.delete(DRAIN_SCHEDULED_KEY)
        except redis.RedisError:
            log.warning("could not clear the drain flag; it expires in %d ms", DRAIN_SCHEDULED_TTL_MS, exc_info=True)

    def _send(self, task: str, args: list[str], countdown: float | None) -> bool:
        try:
            self._client().send_task(
                task,
                args=args,
                queue=PAYOUTS_QUEUE,
                countdown=countdown,
                retry=True,
                retry_policy=PUBLISH_RETRY_POLICY,
            )
        except Exception:
            log.warning("could not publish %s%s", task, args, exc_info=True)
            return False
        return True

    def close(self) -> None:
        with self._lock:
            if self._celery is not None:
                self._celery.close()
                self._celery = None
            if self._flags is not None:
                self._flags.close()
                self._flags = None
