"""Celery tasks: thin wrappers over :mod:`worker.processor` and :mod:`worker.sweeper`."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict

from celery import Task

from shared.idempotency import cleanup as idempotency_cleanup
from shared.observability import context
from shared.payouts.celery_settings import (
    DRAIN_PAYOUTS_TASK,
    IDEMPOTENCY_CLEANUP_TASK,
    PROCESS_WITHDRAWAL_TASK,
    SWEEP_TASK,
)
from worker import processor, sweeper
from worker.celery_app import app
from worker.runtime import get_runtime
from worker.telemetry import observe_payout_attempt

# A drain hands over to a fresh task after this long rather than hold one pool slot (and one message) for as
# long as withdrawals keep coming.
DRAIN_MAX_SECONDS = 30.0
# Outcomes whose detail is a failure or error code worth showing next to the withdrawal id.
CODED_OUTCOMES = frozenset({processor.Outcome.FAILED, processor.Outcome.RETRY})


class PayoutFailed(Exception):
    """Raised after withdrawals were recorded as failed, so the task shows as FAILURE in Flower.

    The database is already up to date and the message is acknowledged (an expected error, not redelivered);
    the exception text names the withdrawals and their failure codes for the operator who requeues or cancels.
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


@app.task(
    name=DRAIN_PAYOUTS_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True, throws=(PayoutFailed,)
)
def drain_payouts() -> str:
    """Pay due withdrawals batch by batch until none is due (woken by the API; see shared.payouts.queue)."""
    runtime = get_runtime()
    decided: dict[str, list[str]] = defaultdict(list)  # outcome -> withdrawal ids, for Flower's result column
    deadline = time.monotonic() + DRAIN_MAX_SECONDS
    while True:
        # Cleared before each claim: a withdrawal committed after this point wakes another drain, one committed
        # before it is seen by this claim. Nothing falls between the two.
        runtime.queue.rearm()
        attempts = processor.drain_once(runtime, on_full_batch=runtime.queue.wake)
        if not attempts:
            break
        for attempt in attempts:
            with context.bound(attempt.request_id):
                observe_payout_attempt(str(attempt.withdrawal_id), attempt.result, attempt.seconds)
            outcome = attempt.result.outcome
            if outcome is processor.Outcome.RETRY:
                runtime.queue.enqueue_one(attempt.withdrawal_id, countdown=attempt.result.retry_in)
            code = f" ({attempt.result.detail})" if outcome in CODED_OUTCOMES else ""
            decided[outcome].append(f"{attempt.withdrawal_id}{code}")
        if time.monotonic() >= deadline:
            runtime.queue.wake()  # more may be due: hand over to a fresh drain
            break
    # Operators find a withdrawal in Flower by its id: each drain lists what it decided, by outcome.
    summary = "; ".join(f"{outcome} {len(ids)}: {', '.join(ids)}" for outcome, ids in sorted(decided.items()))
    if processor.Outcome.FAILED in decided:
        raise PayoutFailed(f"failed withdrawals hold their funds for an operator; {summary}")
    return summary or "nothing due"


@app.task(name=SWEEP_TASK, ignore_result=True)
def sweep_stranded_withdrawals() -> int:
    return sweeper.run_once()


@app.task(name=IDEMPOTENCY_CLEANUP_TASK, ignore_result=True)
def delete_expired_idempotency_keys() -> int:
    with get_runtime().database.session() as session:
        return idempotency_cleanup.run_once(session)
