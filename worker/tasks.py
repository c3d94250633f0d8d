"""Celery tasks: thin wrappers over :mod:`worker.processor` and :mod:`worker.sweeper`."""

from __future__ import annotations

import time
import uuid

from celery import Task

from shared.idempotency import cleanup as idempotency_cleanup
from shared.payouts.celery_settings import IDEMPOTENCY_CLEANUP_TASK, PROCESS_WITHDRAWAL_TASK, SWEEP_TASK
from worker import processor, sweeper
from worker.celery_app import app
from worker.runtime import get_runtime
from worker.telemetry import observe_payout_attempt


class PayoutFailed(Exception):
    """Raised after a withdrawal was recorded as failed, so the task shows as FAILURE in Flower.

    The database is already up to date and the message is acknowledged (an expected error, not redelivered);
    the exception text names the withdrawal and its failure code for the operator who requeues or cancels it.
    """


@app.task(
    name=PROCESS_WITHDRAWAL_TASK,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    throws=(PayoutFailed,),
)
def process_withdrawal(self: Task, withdrawal_id: str) -> str:
    """Pay one withdrawal. Retries itself with backoff on transient errors (the budget lives in the database)."""
    started = time.perf_counter()
    result = processor.process_withdrawal(get_runtime(), uuid.UUID(withdrawal_id))
    observe_payout_attempt(withdrawal_id, result, time.perf_counter() - started)
    if result.outcome is processor.Outcome.RETRY:
        # max_retries=None: PAYOUT_MAX_ATTEMPTS, counted on the withdrawal row, is the only limit.
        raise self.retry(countdown=result.retry_in, max_retries=None)
    if result.outcome is processor.Outcome.FAILED:
        raise PayoutFailed(f"withdrawal {withdrawal_id} failed: {result.detail}; funds held for an operator")
    return f"{result.outcome}: {result.detail}"


@app.task(name=SWEEP_TASK, ignore_result=True)
def sweep_stranded_withdrawals() -> int:
    return sweeper.run_once()


@app.task(name=IDEMPOTENCY_CLEANUP_TASK, ignore_result=True)
def delete_expired_idempotency_keys() -> int:
    with get_runtime().database.session() as session:
        return idempotency_cleanup.run_once(session)
