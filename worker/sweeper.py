"""The sweeper: re-enqueues withdrawals nobody is working on, so nothing is lost between commit and enqueue.

It finds ``pending`` withdrawals whose enqueue never reached a worker (broker down during POST /withdraw, a
lost retry message) and ``processing`` ones whose worker died (lease expired). Enqueueing twice is harmless:
the claim lets one worker in.
"""

from __future__ import annotations

import logging

from shared import ledger
from worker.runtime import Runtime, get_runtime

log = logging.getLogger(__name__)

# Withdrawals enqueued per sweep; the next sweep takes the rest.
SWEEP_BATCH = 500


def run_once(runtime: Runtime | None = None) -> int:
    """One sweep; returns how many withdrawals it enqueued."""
    runtime = runtime or get_runtime()
    with runtime.database.session() as session:
        stranded = ledger.take_stranded(session, grace_seconds=runtime.config.payout_sweep_seconds, limit=SWEEP_BATCH)
    enqueued = sum(runtime.queue.enqueue_one(withdrawal_id) for withdrawal_id in stranded)
    if stranded:
        log.info("sweeper: %d stranded withdrawal(s), %d enqueued", len(stranded), enqueued)
    return enqueued
