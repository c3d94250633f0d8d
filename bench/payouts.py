"""Section 3: the payout pipeline: N pending withdrawals enqueued, time until every one is ``paid``.

The real worker (``celery -A worker.celery_app worker`` settings, pool and queue; the simulated gateway at 0 ms and
at 200 ms per payout) on the Redis broker and PostgreSQL. Withdrawals are seeded with SQL exactly as
``POST /withdraw`` leaves them (debit, ``withdrawal`` transaction row, ``pending``), then enqueued with the API's
own :class:`PayoutQueue`. The floor, in the same worker: N tasks that only wait the same latency.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis
import sqlalchemy as sa
from celery import Celery

from bench.celery_floor import FLOOR_TASK
from bench.context import BenchContext, seed_bypass_users
from bench.stack import VENV_BIN, BenchError, Process, start_process
from shared.config import Config
from shared.db import Database
from shared.ledger import verify
from shared.payouts.celery_settings import PAYOUTS_QUEUE, celery_settings
from shared.payouts.queue import DRAIN_SCHEDULED_KEY, PayoutQueue

LATENCIES_MS = (0, 200)
TARGET_PER_S = {0: 500, 200: 200}
WITHDRAWALS_PER_USER = 10
AMOUNT_CENTS = 100
RUN_TIMEOUT_S = 120
READY_TIMEOUT_S = 60
POLL_S = 0.05
HOLDING_QUEUE = "bench-holding"
# The worker settings a run may override from the environment, as production would.
WORKER_SETTINGS = (
    "CELERY_WORKER_POOL",
    "CELERY_WORKER_CONCURRENCY",
    "PAYOUT_BATCH_SIZE",
    "PAYOUT_CONCURRENCY",
    "SQLALCHEMY_ENGINE_OPTIONS",
)

_SEED_WITHDRAWALS = sa.text(
    """
    WITH made AS (
      INSERT INTO withdrawals (id, user_id, wallet_id, amount_cents, status, bank_token, attempts,
                               attempt_generation, created_at, updated_at)
      SELECT gen_random_uuid(), w.user_id, w.id, :amount, 'pending', 'tok_bench_' || k, 0, 0, now(), now()
      FROM wallets w JOIN users u ON u.id = w.user_id, generate_series(1, :per_user) AS k
      WHERE u.email LIKE :like
      RETURNING id, user_id, wallet_id, amount_cents
    ), deposits AS (
      INSERT INTO transactions (id, user_id, wallet_id, transaction_type, material, units, amount_cents, created_at)
      SELECT gen_random_uuid(), w.user_id, w.id, 'deposit', 'aluminum', :per_user * :amount / 10,
             :per_user * :amount, now() - interval '1 minute'
      FROM wallets w JOIN users u ON u.id = w.user_id WHERE u.email LIKE :like
    )
    INSERT INTO transactions (id, user_id, wallet_id, transaction_type, amount_cents, withdrawal_id, created_at)
    SELECT gen_random_uuid(), user_id, wallet_id, 'withdrawal', -amount_cents, id, now() FROM made
    RETURNING withdrawal_id
    """
)
_PROGRESS = sa.text(
    """
    SELECT count(*) FILTER (WHERE w.status = 'paid'), count(*) FILTER (WHERE w.status = 'failed'), max(w.paid_at)
    FROM withdrawals w JOIN users u ON u.id = w.user_id WHERE u.email LIKE :like
    """
)


def run(ctx: BenchContext, count: int, processes: int) -> dict[str, Any]:
    engine = ctx.engine()
    env = _worker_env(ctx)
    config = Config.from_env(env)
    settings = {
        "processes": processes,
        "pool": config.celery_worker_pool,
        "concurrency": config.celery_worker_concurrency,
        "batch_size": config.payout_batch_size,
        "provider_concurrency": config.payout_concurrency,
        "prefetch_multiplier": 1,
        "acks_late": True,
        "broker": "redis",
        "gateway": "simulated",
    }
    runs = []
    try:
        for latency in LATENCIES_MS:
            runs.append(_run_latency(ctx, engine, env, count, latency, processes))
    finally:
        _clean_broker(ctx.broker_url)
    ledger = _verify(ctx)
    engine.dispose()
    return {
        "worker": ", ".join(f"{k}={v}" for k, v in settings.items()),
        "worker_settings": settings,
        "runs": runs,
        "ledger": ledger,
    }


def _worker_env(ctx: BenchContext) -> dict[str, str]:
    env = {
        "APP_ENV": "development",
        "DATABASE_URL": ctx.database_url,
        "CELERY_BROKER_URL": ctx.broker_url,
        "REDIS_URL": ctx.redis_url,
        "PAYOUT_GATEWAY": "simulated",
        "BENCH_FLOOR_DONE_URL": ctx.redis_url,
        "RATE_LIMIT_STORAGE_URL": ctx.redis_url,
        # Metrics are still collected; only the scrape endpoint is off, so workers never fight over its port.
        "WORKER_METRICS_PORT": "0",
    }
    env.update({name: os.environ[name] for name in WORKER_SETTINGS if name in os.environ})
    return env


def _run_latency(
    ctx: BenchContext, engine: sa.Engine, env: dict[str, str], count: int, latency: int, processes: int
) -> dict[str, Any]:
    like = f"bench-payout-{latency}ms-%@example.com"
    users = max(1, count // WITHDRAWALS_PER_USER)
    seed_bypass_users(engine, f"bench-payout-{latency}ms-%d@example.com", users)
    with engine.begin() as conn:
        ids = [
            row[0]
            for row in conn.execute(
                _SEED_WITHDRAWALS, {"amount": AMOUNT_CENTS, "per_user": WITHDRAWALS_PER_USER, "like": like}
            )
        ]

    worker_env = dict(env, SIMULATED_PAYOUT_LATENCY_MS=str(latency))
    config = Config.from_env(worker_env)
    client = Celery("bench-client", set_as_current=False)
    client.conf.update(celery_settings(config))
    workers = [_start_worker(worker_env, latency, index) for index in range(processes)]
    try:
        _wait_ready(client, workers)
        floor = _floor(client, ctx.redis_url, len(ids), latency, processes)
        payouts = _payouts(client, engine, config, ids, like, processes)
    finally:
        for worker in workers:
            worker.stop(timeout=30)
        client.close()
    target = TARGET_PER_S[latency]
    return {
        "latency_ms": latency,
        "count": len(ids),
        "seconds": payouts["seconds"],
        "payouts_per_s": payouts["per_s"],
        "paid": payouts["paid"],
        "failed": payouts["failed"],
        "floor_seconds": floor["seconds"],
        "floor_per_s": floor["per_s"],
        "enqueue_us_per_task": {"payout": payouts["enqueue_us"], "floor": floor["enqueue_us"]},
        "ratio": round(payouts["per_s"] / floor["per_s"], 3) if floor["per_s"] else None,
        "target_per_s": target,
        "met": payouts["paid"] == len(ids) and payouts["per_s"] >= target,
        "worker_logs": [str(worker.log_path) for worker in workers],
    }


def _start_worker(env: dict[str, str], latency: int, index: int) -> Process:
    # The worker starts on an empty holding queue; it consumes the payouts queue only when told to, so the clock
    # starts with every message already queued: the pipeline is measured, not this script's publishing speed.
    name = f"bench-{latency}ms-{index}@%h"
    argv = [str(VENV_BIN / "celery"), "-A", "bench.celery_floor", "worker", "--loglevel", "INFO", "-n", name]
    return start_process(f"celery-{latency}ms-{index}", [*argv, "-Q", HOLDING_QUEUE], env)


def _wait_ready(client: Celery, workers: list[Process]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        for worker in workers:
            if worker.popen.poll() is not None:
                raise BenchError(f"a Celery worker exited early:\n{worker.log_tail()}")
        if len(client.control.ping(timeout=0.5)) >= len(workers):
            return
    raise BenchError(f"the Celery workers did not all answer a ping:\n{workers[0].log_tail()}")


def _consume(client: Celery, workers: int, start: bool) -> None:
    control = client.control.add_consumer if start else client.control.cancel_consumer
    replies = control(PAYOUTS_QUEUE, reply=True, timeout=5)
    if len(replies) < workers:
        raise BenchError(f"only {len(replies)} of {workers} workers answered {'add' if start else 'cancel'}_consumer")


def _enqueue(send: Callable[[], object], count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        send()
    return round((time.perf_counter() - started) / count * 1e6, 1)


def _floor(client: Celery, redis_url: str, count: int, latency: int, workers: int) -> dict[str, Any]:
    done = redis.Redis.from_url(redis_url)
    key = f"bench:floor:{uuid.uuid4().hex}"
    try:
        enqueue_us = _enqueue(lambda: client.send_task(FLOOR_TASK, args=[key, latency], queue=PAYOUTS_QUEUE), count)
        started = time.monotonic()
        _consume(client, workers, start=True)
        while int(done.get(key) or 0) < count:
            if time.monotonic() - started > RUN_TIMEOUT_S:
                raise BenchError(
                    f"floor: only {int(done.get(key) or 0)} of {count} no-op tasks ran in {RUN_TIMEOUT_S} s"
                )
            time.sleep(POLL_S)
        seconds = time.monotonic() - started
        _consume(client, workers, start=False)
    finally:
        done.delete(key)
        done.close()
    return {"seconds": round(seconds, 2), "per_s": round(count / seconds, 1), "enqueue_us": enqueue_us}


def _payouts(
    client: Celery, engine: sa.Engine, config: Config, ids: list[uuid.UUID], like: str, workers: int
) -> dict[str, Any]:
    with redis.Redis.from_url(config.broker_url) as broker:
        broker.delete(DRAIN_SCHEDULED_KEY)  # no flag left by an earlier run
    queue = PayoutQueue(config)  # the API's own enqueue path
    pending = iter(ids)
    try:
        enqueue_us = _enqueue(lambda: queue.enqueue(next(pending)) or _broker_down(), len(ids))
    finally:
        queue.close()
    started_at = datetime.now(UTC)
    started = time.monotonic()
    _consume(client, workers, start=True)
    paid = failed = 0
    last_paid_at = None
    while time.monotonic() - started < RUN_TIMEOUT_S:
        with engine.connect() as conn:
            paid, failed, last_paid_at = conn.execute(_PROGRESS, {"like": like}).one()
        if paid + failed >= len(ids):
            break
        time.sleep(POLL_S)
    if paid and last_paid_at is not None:
        seconds = (last_paid_at - started_at).total_seconds()  # the worker's own timestamp of the last payout
    else:
        seconds = time.monotonic() - started
    per_s = round(paid / seconds, 1) if seconds else 0.0
    return {"seconds": round(seconds, 2), "per_s": per_s, "paid": paid, "failed": failed, "enqueue_us": enqueue_us}


def _broker_down() -> None:
    raise BenchError("could not enqueue a payout: is the broker up?")


def _clean_broker(broker_url: str) -> None:
    """Remove what the runs left in the benchmark's own broker DB (queues, bindings, unacked bookkeeping)."""
    client = redis.Redis.from_url(broker_url)
    patterns = (
        PAYOUTS_QUEUE,
        f"{PAYOUTS_QUEUE}*",
        HOLDING_QUEUE,
        "_kombu.*",
        "unacked*",
        "*.reply.celery.pidbox",
        DRAIN_SCHEDULED_KEY,
    )
    try:
        for pattern in patterns:
            keys = list(client.scan_iter(match=pattern, count=500))
            if keys:
                client.delete(*keys)
    finally:
        client.close()


def _verify(ctx: BenchContext) -> dict[str, Any]:
    database = Database(ctx.database_url)
    try:
        with database.session() as session:
            mismatches = verify(session)
    finally:
        database.dispose()
    if mismatches:
        raise BenchError(f"ledger verify found {len(mismatches)} mismatches after the payout runs: {mismatches[:3]}")
    return {"verify": "clean"}
