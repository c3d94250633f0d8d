"""Pay withdrawals: claim them, call the gateway step by step outside any transaction, record the outcomes.

Withdrawals are paid in batches: one transaction claims them all, their provider calls run in parallel (each
withdrawal's own steps in order), and one transaction records every outcome with how far it got. A step an
earlier attempt already recorded is skipped (recovery points); a step whose outcome is unknown is repeated with
the same idempotency key, so a withdrawal is paid out at most once, also when a worker dies mid-batch (the
sweeper retakes it after its lease and the provider replays the calls already made). A transfer an earlier
attempt may have made is first looked up by its transfer_group, since keys expire after 24 hours.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from shared import ledger
from shared.ledger.payout_batch import AttemptOutcome, ClaimedBatch
from shared.models import WithdrawalStatus
from shared.observability import context
from shared.payouts.gateway import PayoutError, PayoutInstruction, PermanentPayoutError, TransientPayoutError
from shared.payouts.retry import backoff_seconds
from worker.runtime import Runtime

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

# Recorded when the provider call raised something that is not a PayoutError (a bug, a library surprise): the
# outcome of the call is unknown, so it is retried with the same keys like any transient error.
UNEXPECTED_ERROR = "unexpected_error"


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


@dataclass(frozen=True, slots=True)
class Attempt:
    """One withdrawal's attempt in a batch: what became of it, and how long the batch took to decide it."""

    withdrawal_id: uuid.UUID
    request_id: str | None
    result: Result
    seconds: float


def process_withdrawal(runtime: Runtime, withdrawal_id: uuid.UUID) -> Result:
    """Claim and pay this one withdrawal (the sweeper's and the retries' path)."""
    with runtime.database.session() as session:
        try:
            claim = ledger.claim_withdrawal(session, withdrawal_id, runtime.policy)
        except ledger.RetriesExhausted:
            log.warning("withdrawal %s failed: %s", withdrawal_id, ledger.RETRIES_EXHAUSTED)
            return Result(Outcome.FAILED, detail=ledger.RETRIES_EXHAUSTED)
        except (ledger.InvalidTransition, ledger.NotFound) as exc:
            log.info("withdrawal %s skipped: %s", withdrawal_id, exc.message)
            return Result(Outcome.SKIPPED, detail=exc.message)
    (attempt,) = pay(runtime, [claim])
    return attempt.result


def drain_once(runtime: Runtime, on_full_batch: Callable[[], object] = lambda: None) -> list[Attempt]:
    """Claim up to PAYOUT_BATCH_SIZE due withdrawals and pay them; [] when none was due.

    ``on_full_batch`` runs between the claim and the payments when the batch came back full (more may be due),
    so another worker can start on the rest while this one pays.
    """
    started = time.perf_counter()
    with runtime.database.session() as session:
        batch: ClaimedBatch = ledger.claim_due(session, runtime.policy, runtime.config.payout_batch_size)
    if batch.size >= runtime.config.payout_batch_size:
        on_full_batch()
    exhausted = [
        Attempt(withdrawal_id, None, Result(Outcome.FAILED, detail=ledger.RETRIES_EXHAUSTED), 0.0)
        for withdrawal_id in batch.exhausted
    ]
    for withdrawal_id in batch.exhausted:
        log.warning("withdrawal %s failed: %s", withdrawal_id, ledger.RETRIES_EXHAUSTED)
    return exhausted + pay(runtime, batch.claims, started)


def pay(runtime: Runtime, claims: list[ledger.Claim], started: float | None = None) -> list[Attempt]:
    """Pay claimed withdrawals: connected accounts first (one per user), then each one's remaining steps."""
    started = time.perf_counter() if started is None else started
    if not claims:
        return []
    instructions = {claim.withdrawal_id: _instruction(runtime, claim) for claim in claims}
    outcomes: dict[uuid.UUID, AttemptOutcome] = {}
    accounts = _connected_accounts(runtime, claims, instructions, outcomes)
    remaining = [claim for claim in claims if claim.withdrawal_id not in outcomes]

    def finish(claim: ledger.Claim) -> AttemptOutcome:
        with context.bound(claim.request_id):
            return _finish(runtime, claim, instructions[claim.withdrawal_id], accounts[claim.withdrawal_id])

    for claim, outcome in zip(remaining, _parallel(runtime, finish, remaining), strict=True):
        outcomes[claim.withdrawal_id] = outcome
    ordered = [outcomes[claim.withdrawal_id] for claim in claims]
    with runtime.database.session() as session:
        recorded = ledger.record_outcomes(session, ordered)
    seconds = time.perf_counter() - started
    return [_result(outcome, kept, seconds) for outcome, kept in zip(ordered, recorded, strict=True)]


def _instruction(runtime: Runtime, claim: ledger.Claim) -> PayoutInstruction:
    return PayoutInstruction(
        withdrawal_id=claim.withdrawal_id,
        user_id=claim.user_id,
        email=claim.email,
        amount_cents=claim.amount_cents,
        currency=runtime.config.stripe_currency,
        bank_token=claim.bank_token,
        attempt=claim.attempt,
        generation=claim.generation,
        account_key=claim.account_key,
        bank_account_key=claim.bank_account_key,
        transfer_key=claim.transfer_key,
        payout_key=claim.payout_key,
    )


def _connected_accounts(
    runtime: Runtime,
    claims: list[ledger.Claim],
    instructions: dict[uuid.UUID, PayoutInstruction],
    outcomes: dict[uuid.UUID, AttemptOutcome],
) -> dict[uuid.UUID, str]:
    """The account each withdrawal pays through, by withdrawal id; creates (and records) the missing ones.

    A withdrawal whose account could not be created gets its outcome in ``outcomes`` instead.
    """
    accounts = {claim.withdrawal_id: claim.account_id for claim in claims if claim.account_id is not None}
    first_of_user: dict[uuid.UUID, ledger.Claim] = {}
    for claim in claims:
        if claim.account_id is None:
            first_of_user.setdefault(claim.user_id, claim)
    if not first_of_user:
        return accounts
    creators = list(first_of_user.values())

    def create(claim: ledger.Claim) -> str | Exception:
        with context.bound(claim.request_id):
            try:
                return runtime.gateway.create_account(instructions[claim.withdrawal_id])
            except Exception as exc:
                return exc

    created: dict[uuid.UUID, str] = {}
    errors: dict[uuid.UUID, Exception] = {}
    for claim, made in zip(creators, _parallel(runtime, create, creators), strict=True):
        if isinstance(made, Exception):
            errors[claim.user_id] = made
        else:
            created[claim.user_id] = made
    with runtime.database.session() as session:
        stored = ledger.record_accounts(session, created)
    for claim in claims:
        if claim.account_id is not None:
            continue
        if claim.user_id in stored:
            accounts[claim.withdrawal_id] = stored[claim.user_id]
        elif claim.user_id in errors:  # the account creation failed: every withdrawal waiting on it ends alike
            with context.bound(claim.request_id):
                outcomes[claim.withdrawal_id] = _on_error(runtime, claim, errors[claim.user_id])
        else:  # created but not stored (the user row is gone): nothing to pay through; try again later
            missing = TransientPayoutError("account_not_recorded", "the connected account could not be stored")
            outcomes[claim.withdrawal_id] = _on_error(runtime, claim, missing)
    return accounts


def _finish(runtime: Runtime, claim: ledger.Claim, instruction: PayoutInstruction, account_id: str) -> AttemptOutcome:
    """Attach the bank account, transfer, pay out: the steps not yet recorded, in order, stopping at an error."""
    gateway = runtime.gateway
    progress = {"account_id": account_id, "bank_account_id": claim.bank_account_id, "transfer_id": claim.transfer_id}
    try:
        if progress["bank_account_id"] is None:
            progress["bank_account_id"] = gateway.attach_bank_account(instruction, account_id)
        if progress["transfer_id"] is None:
            # Stripe forgets idempotency keys after 24 hours: after a first attempt, look for the transfer it
            # may have made (by transfer_group) before making one, so a late retry cannot transfer twice.
            found = gateway.find_transfer(instruction, account_id) if claim.transfer_key_used else None
            progress["transfer_id"] = found or gateway.create_transfer(instruction, account_id)
        bank_account_id = progress["bank_account_id"]
        assert bank_account_id is not None
        payout_id = gateway.create_payout(instruction, account_id, bank_account_id)
    except Exception as exc:
        return _on_error(runtime, claim, exc, **progress)
    return AttemptOutcome(claim, WithdrawalStatus.PAID, payout_id=payout_id, **progress)


def _on_error(runtime: Runtime, claim: ledger.Claim, exc: Exception, **progress: str | None) -> AttemptOutcome:
    config = runtime.config
    if isinstance(exc, PermanentPayoutError):
        log.warning("withdrawal %s failed permanently: %s", claim.withdrawal_id, exc)
        return AttemptOutcome(
            claim, WithdrawalStatus.FAILED, failure_code=exc.code, failure_message=exc.message, **progress
        )
    if not isinstance(exc, TransientPayoutError):
        log.error("withdrawal %s: unexpected error from the provider call", claim.withdrawal_id, exc_info=exc)
        exc = TransientPayoutError(UNEXPECTED_ERROR, f"{type(exc).__name__}: {exc}")
    assert isinstance(exc, PayoutError)
    if claim.attempt >= config.payout_max_attempts:
        log.warning("withdrawal %s: giving up after attempt %d: %s", claim.withdrawal_id, claim.attempt, exc)
        message = f"last error {exc.code}: {exc.message}"
        return AttemptOutcome(
            claim, WithdrawalStatus.FAILED, failure_code=ledger.RETRIES_EXHAUSTED, failure_message=message, **progress
        )
    delay = backoff_seconds(claim.attempt, config.payout_retry_base_ms, config.payout_retry_max_ms)
    log.info("withdrawal %s attempt %d: %s; retrying in %.1fs", claim.withdrawal_id, claim.attempt, exc, delay)
    return AttemptOutcome(
        claim,
        WithdrawalStatus.PENDING,
        failure_code=exc.code,
        failure_message=exc.message,
        retry_in_seconds=delay,
        **progress,
    )


def _result(outcome: AttemptOutcome, recorded: bool, seconds: float) -> Attempt:
    claim = outcome.claim
    with context.bound(claim.request_id):
        result = _logged_result(outcome, recorded)
    return Attempt(claim.withdrawal_id, claim.request_id, result, seconds)


def _logged_result(outcome: AttemptOutcome, recorded: bool) -> Result:
    claim = outcome.claim
    if not recorded:
        # Our lease was taken over (we were too slow) or a webhook/operator decided first.
        log.warning("withdrawal %s: result not recorded: this worker no longer holds it", claim.withdrawal_id)
        result = Result(Outcome.SKIPPED, detail="this worker no longer holds the withdrawal")
    elif outcome.status == WithdrawalStatus.PAID:
        log.info("withdrawal %s paid (payout %s, attempt %d)", claim.withdrawal_id, outcome.payout_id, claim.attempt)
        result = Result(Outcome.PAID, detail=outcome.payout_id or "")
    elif outcome.status == WithdrawalStatus.FAILED:
        result = Result(Outcome.FAILED, detail=outcome.failure_code or "")
    else:
        result = Result(Outcome.RETRY, retry_in=outcome.retry_in_seconds, detail=outcome.failure_code or "")
    return result


def _parallel(runtime: Runtime, call: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``call`` on each item, on the provider-call threads when there is more than one (results in order)."""
    items = list(items)
    if len(items) <= 1:
        return [call(item) for item in items]
    return list(runtime.provider_calls.map(call, items))
