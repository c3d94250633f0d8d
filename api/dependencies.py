"""The services the API depends on, reached with short timeouts: readiness checks and scrape-time gauges."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from sqlalchemy import Engine, func, select, text

from shared.config import Config
from shared.db import Database
from shared.models import Withdrawal, WithdrawalStatus
from shared.payouts.celery_settings import PAYOUTS_QUEUE

# The payout queue; kombu's Redis transport keeps one list per queue (plus one per priority step).
BROKER_QUEUES = (PAYOUTS_QUEUE,)
_KOMBU_PRIORITY_SEPARATOR = "\x06\x16"
_KOMBU_PRIORITY_STEPS = (3, 6, 9)
OPEN_WITHDRAWAL_STATUSES = (WithdrawalStatus.PENDING, WithdrawalStatus.PROCESSING, WithdrawalStatus.FAILED)

Check = Callable[[], None]


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    detail: str  # "ok", "timeout" or the exception's class name (never its message: it may hold a host or URL)
    latency_ms: float


def _redis_client(url: str, timeout: float) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)


def _ping_database(engine: Engine) -> Check:
    def check() -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    return check


def _ping_redis(client: redis.Redis) -> Check:
    def check() -> None:
        client.ping()

    return check


def run_with_timeout(name: str, check: Check, timeout: float) -> CheckResult:
    """Run ``check`` in a daemon thread so a black-holed host costs ``timeout``, not a TCP connect timeout."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            check()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    started = time.perf_counter()
    thread = threading.Thread(target=target, name=f"ready-{name}", daemon=True)
    thread.start()
    thread.join(timeout)
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    if not outcome:
        return CheckResult(name, False, "timeout", latency_ms)
    error = outcome[0]
    if error is None:
        return CheckResult(name, True, "ok", latency_ms)
    return CheckResult(name, False, type(error).__name__, latency_ms)


class Dependencies:
    """Clients to PostgreSQL (primary, replica), Redis and the broker, each bounded by the health timeout."""

    def __init__(self, config: Config, database: Database, replica: Database | None) -> None:
        self.timeout = config.health_check_timeout_seconds
        self.optional = frozenset(config.readiness_optional_checks)
        self._database = database
        self._replica = replica
        # "redis" is the rate limiter's storage (REDIS_URL's server, its own database) when it is Redis.
        limiter_url = config.rate_limit_storage
        self.redis = _redis_client(limiter_url, self.timeout) if limiter_url.startswith(("redis:", "rediss:")) else None
        broker_url = config.broker_url
        self.broker = _redis_client(broker_url, self.timeout) if broker_url.startswith(("redis:", "rediss:")) else None

    def checks(self) -> dict[str, Check]:
        checks = {"database": _ping_database(self._database.engine)}
        if self._replica is not None:
            checks["replica"] = _ping_database(self._replica.engine)
        if self.redis is not None:
            checks["redis"] = _ping_redis(self.redis)
        if self.broker is not None:
            checks["broker"] = _ping_redis(self.broker)
        return checks

    def check_all(self) -> list[CheckResult]:
        """Every check at once, in parallel: the probe costs the slowest check, at most the timeout."""
        results: dict[str, CheckResult] = {}
        threads = [
            threading.Thread(
                target=lambda n=name, c=check: results.__setitem__(n, run_with_timeout(n, c, self.timeout)),
                daemon=True,
            )
            for name, check in self.checks().items()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(self.timeout + 1)
        return [results.get(name, CheckResult(name, False, "timeout", self.timeout * 1000)) for name in self.checks()]

    def queue_depths(self) -> dict[str, float]:
        if self.broker is None:
            return {}
        depths: dict[str, float] = {}
        for queue in BROKER_QUEUES:
            keys = [queue] + [f"{queue}{_KOMBU_PRIORITY_SEPARATOR}{step}" for step in _KOMBU_PRIORITY_STEPS]
            pipe = self.broker.pipeline(transaction=False)
            for key in keys:
                pipe.llen(key)
            depths[queue] = float(sum(pipe.execute()))
        return depths

    def open_withdrawals(self) -> dict[str, float]:
        """Counts of non-final withdrawals (served by the (status, updated_at) index), from the replica if any."""
        engine = (self._replica or self._database).engine
        counts = {str(status): 0.0 for status in OPEN_WITHDRAWAL_STATUSES}
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text(f"SET LOCAL statement_timeout = {int(self.timeout * 1000)}"))
            rows = conn.execute(
                select(Withdrawal.status, func.count())
                .where(Withdrawal.status.in_([str(s) for s in OPEN_WITHDRAWAL_STATUSES]))
                .group_by(Withdrawal.status)
            )
            for status, count in rows:
                counts[status] = float(count)
        return counts
