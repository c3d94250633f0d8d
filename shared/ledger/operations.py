"""Operator actions on withdrawals: requeue and cancel, each recorded in the operator_actions audit table.

A cancel gives the held amount back to the wallet as a ``withdrawal_reversal`` transaction in the same
database transaction as the status change, so a withdrawal is refunded at most once however many operators
click at the same time.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.db import atomic, utcnow
from shared.ledger.deposits import credit_wallet
from shared.ledger.errors import InvalidTransition, NotFound
from shared.ledger.payouts import outcome_unknown, rowcount
from shared.models import OperatorAction, Transaction, TransactionType, Withdrawal, WithdrawalStatus
from shared.observability import metrics

REQUEUE = "requeue"
CANCEL = "cancel"
# A cancel that overrode a safety refusal (unknown outcome, or money already transferred); see cancel().
FORCED_CANCEL = "cancel_forced"
# A requeue that overrode the key-expiry refusal; see requeue().
FORCED_REQUEUE = "requeue_forced"
# Stripe keeps an idempotency key for 24 hours after its first use, then a call with it runs again. A requeue
# that keeps old keys is refused past this age (an hour of margin for the queue, retries and clock skew).
# The age is counted from the withdrawal's creation: never later than its current keys' first use, so the
# check can ask for force too early but never too late.
KEY_RETENTION_MARGIN = timedelta(hours=23)


def list_for_operator(
    session: Session, status: WithdrawalStatus | None = None, limit: int = 50
) -> Sequence[Withdrawal]:
    query = select(Withdrawal).order_by(Withdrawal.updated_at.desc(), Withdrawal.id.desc()).limit(limit)
    if status is not None:
        query = query.where(Withdrawal.status == status)
    return session.execute(query).scalars().all()


def operator_actions(session: Session, withdrawal_id: uuid.UUID) -> Sequence[OperatorAction]:
    query = select(OperatorAction).where(OperatorAction.withdrawal_id == withdrawal_id)
    return session.execute(query.order_by(OperatorAction.created_at)).scalars().all()


def _audit(
    session: Session, withdrawal: Withdrawal, action: str, actor: str, to_status: str, reason: str | None, now: datetime
) -> None:
    if not actor.strip():
        raise ValueError("operator actions need an actor")
    session.add(
        OperatorAction(
            id=uuid.uuid4(),
            withdrawal_id=withdrawal.id,
            action=action,
            actor=actor,
            from_status=withdrawal.status,
            to_status=to_status,
            reason=reason,
            created_at=now,
        )
    )


def _load(session: Session, withdrawal_id: uuid.UUID) -> Withdrawal:
    withdrawal = session.get(Withdrawal, withdrawal_id, populate_existing=True)
    if withdrawal is None:
        raise NotFound("no such withdrawal", withdrawal_id=str(withdrawal_id))
    return withdrawal


def _requeue_refusal(withdrawal: Withdrawal, now: datetime) -> str | None:
    """Why retrying with the kept keys could pay twice (None: safe to requeue)."""
    if outcome_unknown(withdrawal.failure_code) and withdrawal.created_at <= now - KEY_RETENTION_MARGIN:
        return (
            f"its first attempt is older than {KEY_RETENTION_MARGIN.total_seconds() / 3600:.0f} h and Stripe forgets "
            "idempotency keys after 24 hours, so a retry could pay a second time; check Stripe for this "
            f"withdrawal's payout (transfer group withdrawal-{withdrawal.id}), then requeue with --force (or "
            '"force": true), or cancel with force if it never paid'
        )
    return None


def requeue(
    session: Session, withdrawal_id: uuid.UUID, actor: str, reason: str | None = None, *, force: bool = False
) -> Withdrawal:
    """``failed`` -> ``pending`` with a fresh attempt budget. Commits; the caller enqueues afterwards.

    After a definite failure the attempt generation is bumped, so the next calls carry NEW idempotency keys
    (the provider would replay the stored error for the old ones). After ``retries_exhausted`` the outcome of
    the last call is unknown, so the generation and its keys stay: if that call did go through, the provider
    replays its success instead of paying twice (the same for an idempotency conflict, see
    ``OUTCOME_UNKNOWN_CODES``). A transfer already made is never repeated (recovery point).

    Keeping keys Stripe may already have forgotten needs ``force=True`` (see :data:`KEY_RETENTION_MARGIN`).
    """
    now = utcnow()
    with atomic(session):
        withdrawal = _load(session, withdrawal_id)
        if withdrawal.status != WithdrawalStatus.FAILED:
            raise InvalidTransition(f"only a failed withdrawal can be requeued, this one is {withdrawal.status}")
        refusal = _requeue_refusal(withdrawal, now)
        if refusal and not force:
            raise InvalidTransition(f"refusing to requeue: {refusal}", reason=refusal)
        unknown = outcome_unknown(withdrawal.failure_code)
        generation = withdrawal.attempt_generation + (0 if unknown else 1)
        won = rowcount(
            session,
            update(Withdrawal)
            .where(Withdrawal.id == withdrawal_id, Withdrawal.status == WithdrawalStatus.FAILED)
            .values(
                status=WithdrawalStatus.PENDING,
                attempt_generation=generation,
                attempts=0,
                failure_code=None,
                failure_message=None,
                provider_payout_id=None,
                paid_at=None,
                lease_expires_at=None,
                next_attempt_at=None,
                updated_at=now,
            )
            .execution_options(synchronize_session=False),
        )
        if won != 1:
            raise InvalidTransition("the withdrawal changed while it was being requeued; look again")
        action = FORCED_REQUEUE if refusal else REQUEUE
        _audit(session, withdrawal, action, actor, WithdrawalStatus.PENDING, reason, now)
    metrics.record_withdrawal_status(WithdrawalStatus.PENDING)
    return _load(session, withdrawal_id)


def _cancel_refusal(withdrawal: Withdrawal) -> str | None:
    """Why cancelling could refund money that has already left (None: safe to cancel)."""
    if withdrawal.provider_transfer_id:
        return (
            f"money was already transferred to the connected account ({withdrawal.provider_transfer_id}); "
            "reverse that transfer in Stripe first"
        )
    if outcome_unknown(withdrawal.failure_code):
        return "the outcome of the last payout call is unknown; requeue it to learn it, or check Stripe first"
    return None


def cancel(
    session: Session, withdrawal_id: uuid.UUID, actor: str, reason: str | None = None, *, force: bool = False
) -> Withdrawal:
    """``failed`` (or ``pending`` never started) -> ``canceled``, refunding the wallet once. Commits.

    A failed withdrawal that may have paid out after all (see :func:`_cancel_refusal`) is only cancelled
    with ``force=True``, after the operator has checked the provider.
    """
    now = utcnow()
    with atomic(session):
        withdrawal = _load(session, withdrawal_id)
        if withdrawal.status == WithdrawalStatus.FAILED:
            refusal = _cancel_refusal(withdrawal)
            if refusal and not force:
                raise InvalidTransition(f"refusing to cancel: {refusal} (then cancel with force)", reason=refusal)
            guard = [Withdrawal.status == WithdrawalStatus.FAILED]
            action = FORCED_CANCEL if refusal else CANCEL
        elif withdrawal.status == WithdrawalStatus.PENDING:
            # A claim sets the keys, and nothing clears them: a requeue after retries_exhausted resets attempts
            # to 0 but the outcome of its calls is still unknown.
            started = (
                withdrawal.attempts > 0
                or withdrawal.attempt_generation > 0
                or withdrawal.provider_transfer_id
                or withdrawal.transfer_idempotency_key is not None
            )
            if started:
                raise InvalidTransition("this pending withdrawal has already been tried; wait for it to finish")
            guard = [
                Withdrawal.status == WithdrawalStatus.PENDING,
                Withdrawal.attempts == 0,
                Withdrawal.transfer_idempotency_key.is_(None),
            ]
            action = CANCEL
        else:
            raise InvalidTransition(f"a {withdrawal.status} withdrawal cannot be canceled", status=withdrawal.status)
        generation = withdrawal.attempt_generation
        won = rowcount(
            session,
            update(Withdrawal)
            .where(Withdrawal.id == withdrawal_id, Withdrawal.attempt_generation == generation, *guard)
            .values(status=WithdrawalStatus.CANCELED, lease_expires_at=None, next_attempt_at=None, updated_at=now)
            .execution_options(synchronize_session=False),
        )
        if won != 1:
            raise InvalidTransition("the withdrawal changed while it was being canceled; look again")
        credit_wallet(session, withdrawal.wallet_id, withdrawal.amount_cents, now)
        session.add(
            Transaction(
                id=uuid.uuid4(),
                user_id=withdrawal.user_id,
                wallet_id=withdrawal.wallet_id,
                transaction_type=TransactionType.WITHDRAWAL_REVERSAL,
                amount_cents=withdrawal.amount_cents,
                withdrawal_id=withdrawal.id,
                created_at=now,
            )
        )
        _audit(session, withdrawal, action, actor, WithdrawalStatus.CANCELED, reason, now)
    metrics.record_withdrawal_status(WithdrawalStatus.CANCELED)
    return _load(session, withdrawal_id)
