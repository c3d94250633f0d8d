"""Celery settings shared by the worker and by the API's enqueue client, built from the one Config.

Both sides must agree on the broker, the queue and the transport options, so they are written once, here.
"""

from __future__ import annotations

from typing import Any

from shared.config import VAR_DIR, Config

PROCESS_WITHDRAWAL_TASK = "worker.tasks.process_withdrawal"
DRAIN_PAYOUTS_TASK = "worker.tasks.drain_payouts"
SWEEP_TASK = "worker.tasks.sweep_stranded_withdrawals"
IDEMPOTENCY_CLEANUP_TASK = "worker.tasks.delete_expired_idempotency_keys"
# Keys live 24 hours; deleting the expired ones hourly keeps the table near one day of keys.
IDEMPOTENCY_CLEANUP_SECONDS = 3600.0
PAYOUTS_QUEUE = "payouts"
# Kombu's Redis transport checks for unacknowledged messages of dead workers every
# interval x throttle seconds and redelivers those older than the visibility timeout. The defaults
# (10 s x 10) are fine: the sweeper, not redelivery, is what recovers a killed worker's payout quickly.
UNACKED_RESTORE_INTERVAL_S = 10
UNACKED_RESTORE_THROTTLE = 10
EMBEDDED_BROKER_LOCK_TIMEOUT_S = 30
# The API fails fast when the broker is down: the request has already committed, the sweeper relays.
BROKER_CONNECT_TIMEOUT_S = 2


def transport_options(config: Config) -> dict[str, Any]:
    url = config.broker_url
    if url.startswith(("redis://", "rediss://")):
        return {
            "visibility_timeout": config.celery_visibility_timeout_seconds,
            "unacked_restore_interval": UNACKED_RESTORE_INTERVAL_S,
            "unacked_restore_throttle": UNACKED_RESTORE_THROTTLE,
            "socket_connect_timeout": BROKER_CONNECT_TIMEOUT_S,
        }
    if url.startswith("sqla+sqlite"):
        # Kombu hands these to create_engine: the thread pool publishes retries from many threads, and the
        # API, worker and beat processes share the file, so wait for its lock rather than fail.
        return {"connect_args": {"check_same_thread": False, "timeout": EMBEDDED_BROKER_LOCK_TIMEOUT_S}}
    return {}


def celery_settings(config: Config) -> dict[str, Any]:
    """Every Celery setting; see README "Payout worker" for why each money-related one is what it is."""
    return {
        "broker_url": config.broker_url,
        "broker_transport_options": transport_options(config),
        "broker_connection_timeout": BROKER_CONNECT_TIMEOUT_S,
        "broker_connection_retry_on_startup": True,
        "task_default_queue": PAYOUTS_QUEUE,
        "task_routes": {
            task: {"queue": PAYOUTS_QUEUE}
            for task in (PROCESS_WITHDRAWAL_TASK, DRAIN_PAYOUTS_TASK, SWEEP_TASK, IDEMPOTENCY_CLEANUP_TASK)
        },
        # Acknowledge after the task ran, and give a message back if its worker died mid-task: a payout is
        # never dropped by a crash. Safe to run twice: the claim and the idempotency keys dedupe.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # One message reserved per pool slot: a worker killed holding many messages would delay them all.
        "worker_prefetch_multiplier": 1,
        # Stripe calls are I/O: many threads per worker, no monkeypatching (gevent) under psycopg2/requests.
        "worker_pool": config.celery_worker_pool,
        "worker_concurrency": config.celery_worker_concurrency,
        # Outcomes live in the database; a result backend would be a second source of truth.
        "task_ignore_result": True,
        # Task events for Flower.
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "timezone": "UTC",
        "enable_utc": True,
        "beat_schedule_filename": str(VAR_DIR / "celerybeat-schedule"),
        "beat_schedule": {
            "sweep-stranded-withdrawals": {
                "task": SWEEP_TASK,
                "schedule": float(config.payout_sweep_seconds),
                # A sweep older than its period is pointless: the next one is already on its way.
                "options": {"expires": float(config.payout_sweep_seconds)},
            },
            "delete-expired-idempotency-keys": {
                "task": IDEMPOTENCY_CLEANUP_TASK,
                "schedule": IDEMPOTENCY_CLEANUP_SECONDS,
                "options": {"expires": IDEMPOTENCY_CLEANUP_SECONDS},
            },
        },
    }
