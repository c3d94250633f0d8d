"""Pay one withdrawal: claim it, call the gateway step by step outside any transaction, record the result.

Each provider step is skipped when an earlier attempt already recorded it (recovery points), and repeated
with the same idempotency key when its outcome is unknown, so a withdrawal is paid out at most once. A transfer
an earlier attempt may have made is first looked up by its transfer_group, since keys expire after 24 hours.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.orm import Session

from shared import ledger
from shared.payouts.gateway import PayoutInstruction, PermanentPayoutError, TransientPayoutError
from shared.payouts.retry import backoff_seconds
from worker.runtime import Runtime

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    PAID = "paid"
    FAILED = "failed"
    RETRY = "retry"  # transient error; due again after retry_in seconds
    SKIPPED = "skipped"  # not ours to process (final, held by another worker, unknown id)


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    retry_in: float | None = None
    detail: str = ""


def process_withdrawal(runtime: Runtime, withdrawal_id: uuid.UUID) -> Result:
    session = runtime.database.session()
    try:
        try:
            claim = ledger.claim_withdrawal(session, withdrawal_id, runtime.policy)
        except ledger.RetriesExhausted:
            log.warning("withdrawal %s failed: %s", withdrawal_id, ledger.RETRIES_EXHAUSTED)
            return Result(Outcome.FAILED, detail=ledger.RETRIES_EXHAUSTED)
        except (ledger.InvalidTransition, ledger.NotFound) as exc:
            log.info("withdrawal %s skipped: %s", withdrawal_id, exc.message)
            return Result(Outcome.SKIPPED, detail=exc.message)
        try:
            return _pay(runtime, session, claim)
        except ledger.InvalidTransition as exc:
            # Our lease was taken over (we were too slow) or a webhook/operator decided first.
            log.warning("withdrawal %s: result not recorded: %s", withdrawal_id, exc.message)
            return Result(Outcome.SKIPPED, detail=exc.message)
    finally:
        session.close()


def _pay(runtime: Runtime, session: Session, claim: ledger.Claim) -> Result:
    config, gateway = runtime.config, runtime.gateway
    instruction = PayoutInstruction(
        withdrawal_id=claim.withdrawal_id,
        user_id=claim.user_id,
        email=claim.email,
        amount_cents=claim.amount_cents,
        currency=config.stripe_currency,
        bank_token=claim.bank_token,
        attempt=claim.attempt,
        generation=claim.generation,
        account_key=claim.account_key,
        bank_account_key=claim.bank_account_key,
        transfer_key=claim.transfer_key,
        payout_key=claim.payout_key,
    )
    try:
        account_id = claim.account_id
        if account_id is None:
            account_id = ledger.record_account(session, claim, gateway.create_account(instruction))
        bank_account_id = claim.bank_account_id
        if bank_account_id is None:
            bank_account_id = gateway.attach_bank_account(instruction, account_id)
            ledger.record_bank_account(session, claim, account_id, bank_account_id)
        if claim.transfer_id is None:
            # Stripe forgets idempotency keys after 24 hours: after a first attempt, look for the transfer it
            # may have made (by transfer_group) before making one, so a late retry cannot transfer twice.
            found = gateway.find_transfer(instruction, account_id) if claim.transfer_key_used else None
            transfer_id = found or gateway.create_transfer(instruction, account_id)
            ledger.record_transfer(session, claim, account_id, transfer_id)
        payout_id = gateway.create_payout(instruction, account_id, bank_account_id)
        ledger.mark_paid(session, claim, payout_id)
    except PermanentPayoutError as exc:
        log.warning("withdrawal %s failed permanently: %s", claim.withdrawal_id, exc)
        ledger.mark_failed(session, claim, exc.code, exc.message)
        return Result(Outcome.FAILED, detail=exc.code)
    except TransientPayoutError as exc:
        if claim.attempt >= config.payout_max_attempts:
            log.warning("withdrawal %s: giving up after attempt %d: %s", claim.withdrawal_id, claim.attempt, exc)
            ledger.mark_failed(session, claim, ledger.RETRIES_EXHAUSTED, f"last error {exc.code}: {exc.message}")
            return Result(Outcome.FAILED, detail=ledger.RETRIES_EXHAUSTED)
        delay = backoff_seconds(claim.attempt, config.payout_retry_base_ms, config.payout_retry_max_ms)
        log.info("withdrawal %s attempt %d: %s; retrying in %.1fs", claim.withdrawal_id, claim.attempt, exc, delay)
        ledger.release_for_retry(session, claim, delay)
        return Result(Outcome.RETRY, retry_in=delay, detail=exc.code)
    log.info("withdrawal %s paid (payout %s, attempt %d)", claim.withdrawal_id, payout_id, claim.attempt)
    return Result(Outcome.PAID, detail=payout_id)
