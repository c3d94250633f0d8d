"""One structured log line and the metrics of each payout attempt."""

from __future__ import annotations

import logging

from shared.models import WithdrawalStatus
from shared.observability import metrics
from worker.processor import Outcome, Result

log = logging.getLogger("wallet.payouts")

# The processor's detail is the failure (or transient error) code for these outcomes, the payout id for PAID.
_CODE_OUTCOMES = frozenset({Outcome.FAILED, Outcome.RETRY})
_STATUS_ENTERED = {Outcome.PAID: WithdrawalStatus.PAID, Outcome.FAILED: WithdrawalStatus.FAILED}


def observe_payout_attempt(withdrawal_id: str, result: Result, seconds: float) -> None:
    """Log the attempt (its request_id comes from the task context) and count it; skips are not attempts."""
    code = result.detail if result.outcome in _CODE_OUTCOMES else None
    log.info(
        "payout attempt %s: %s",
        withdrawal_id,
        result.outcome,
        extra={
            "withdrawal_id": withdrawal_id,
            "outcome": str(result.outcome),
            "failure_code": code,
            "retry_in_s": result.retry_in,
            "latency_ms": round(seconds * 1000, 2),
        },
    )
    if result.outcome is Outcome.SKIPPED:
        return
    metrics.record_payout_attempt(str(result.outcome), seconds, failure_code=code)
    status = _STATUS_ENTERED.get(result.outcome)
    if status is not None:
        metrics.record_withdrawal_status(status)
