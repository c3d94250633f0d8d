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
from datetime import UTC, datetime
from typing import Any

import redis
import sqlalchemy as sa
from celery import Celery

from bench.context import BenchContext, seed_bypass_users
from bench.stack import VENV_BIN, BenchError, Process, start_process
from shared.config import Config
from shared.db import Database
from shared.ledger import verify
from shared.payouts.celery_settings import PAYOUTS_QUEUE, celery_settings
from shared.payouts.queue import PayoutQueue

LATENCIES_MS = (0, 200)
TARGET_PER_S = {0: 500, 200: 200}
WITHDRAWALS_PER_USER = 10
AMOUNT_CENTS = 100
RUN_TIMEOUT_S = 120
READY_TIMEOUT_S = 60
POLL_S = 0.05
# The worker settings a run may override from the environment, as production would.
WORKER_SETTINGS = ("CELERY_WORKER_POOL", "CELERY_WORKER_CONCURRENCY")

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


def run(ctx: BenchContext, count: int) -> dict[str, Any]:
    engine = ctx.engine()
    env = _worker_env(ctx)
    config = Config.from_env(env)
    settings = {
        "processes": 1,
        "pool": config.celery_worker_pool,
        "concurrency": config.celery_worker_concurrency,
        "prefetch_multiplier": 1,
        "acks_late": True,
        "broker": "redis",
        "gateway": "simulated",
    }
    runs = []
    try:
        for latency in LATENCIES_MS:
            runs.append(_run_latency(ctx, engine, env, count, latency))
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
    }
    env.update({name: os.environ[name] for name in WORKER_SETTINGS if name in os.environ})
    return env


def _run_latency(ctx: BenchContext, engine: sa.Engine, env: dict[str, str], count: int, latency: int) -> dict[str, Any]:
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
    worker = _start_worker(worker_env, latency)
    try:
        _wait_ready(client, worker)
        floor = _floor(client, ctx.redis_url, len(ids), latency)
        payouts = _payouts(engine, config, ids, like)
    finally:
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
        "ratio": round(payouts["per_s"] / floor["per_s"], 3) if floor["per_s"] else None,
        "target_per_s": target,
        "met": payouts["paid"] == len(ids) and payouts["per_s"] >= target,
        "worker_log": str(worker.log_path),
    }


def _start_worker(env: dict[str, str], latency: int) -> Process:
    argv = [
        str(VENV_BIN / "celery"),
        "-A",
        "bench.celery_floor",
        "worker",
        "--loglevel",
        "INFO",
        "-n",
        f"bench-{latency}ms@%h",
    ]
    return start_process(f"celery-{latency}ms", argv, env)


def _wait_ready(client: Celery, worker: Process) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if worker.popen.poll() is not None:
            raise BenchError(f"the Celery worker exited early:\n{worker.log_tail()}")
        if client.control.ping(timeout=0.5):
            return
    raise BenchError(f"the Celery worker did not answer a ping:\n{worker.log_tail()}")


def _floor(client: Celery, redis_url: str, count: int, latency: int) -> dict[str, Any]:
    done = redis.Redis.from_url(redis_url)
    key = f"bench:floor:{uuid.uuid4().hex}"
    started = time.monotonic()
    try:
        for _ in range(count):
            client.send_task("bench.floor_payout", args=[key, latency], queue=PAYOUTS_QUEUE)
        while int(done.get(key) or 0) < count:
            if time.monotonic() - started > RUN_TIMEOUT_S:
                raise BenchError(
                    f"floor: only {int(done.get(key) or 0)} of {count} no-op tasks ran in {RUN_TIMEOUT_S} s"
                )
            time.sleep(POLL_S)
        seconds = time.monotonic() - started
    finally:
        done.delete(key)
        done.close()
    return {"seconds": round(seconds, 2), "per_s": round(count / seconds, 1)}


def _payouts(engine: sa.Engine, config: Config, ids: list[uuid.UUID], like: str) -> dict[str, Any]:
    queue = PayoutQueue(config)
    started_at = datetime.now(UTC)
    started = time.monotonic()
    try:
        for withdrawal_id in ids:
            if not queue.enqueue(withdrawal_id):
                raise BenchError("could not enqueue a payout: is the broker up?")
    finally:
        queue.close()
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
    return {
        "seconds": round(seconds, 2),
        "per_s": round(paid / seconds, 1) if seconds else 0.0,
        "paid": paid,
        "failed": failed,
    }


def _clean_broker(broker_url: str) -> None:
    """Remove what the runs left in the benchmark's own broker DB (queues, bindings, unacked bookkeeping)."""
    client = redis.Redis.from_url(broker_url)
    try:
        for pattern in (PAYOUTS_QUEUE, f"{PAYOUTS_QUEUE}*", "_kombu.*", "unacked*", "*.reply.celery.pidbox"):
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
