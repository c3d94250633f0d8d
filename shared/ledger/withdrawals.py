"""Withdrawals: the debit, its transaction row and the pending withdrawal, in one database transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from shared.config import Config
from shared.db import atomic, utcnow
from shared.ledger.accounts import Account
from shared.ledger.errors import (
    AmountBelowMinimum,
    DailyLimitExceeded,
    InsufficientFunds,
    NotFound,
    TooManyPendingWithdrawals,
)
from shared.models import Transaction, TransactionType, Wallet, Withdrawal, WithdrawalStatus
from shared.observability import context, metrics

DAILY_WINDOW = timedelta(hours=24)
# Still on their way to the bank. A failed withdrawal is not: it waits for an operator with its funds held,
# and the daily maximum already bounds it.
IN_FLIGHT_STATUSES = (WithdrawalStatus.PENDING, WithdrawalStatus.PROCESSING)
# Every withdrawal counts toward the daily maximum except a canceled one, whose money came back; a failed
# one may still be requeued and paid.
NOT_COUNTED_TOWARD_DAILY_MAX = (WithdrawalStatus.CANCELED,)


@dataclass(frozen=True, slots=True)
class WithdrawalPolicy:
    """Limits on withdrawals. ``None`` disables a cap (for callers that only need the minimum)."""

    min_cents: int
    daily_max_cents: int | None = None
    max_pending: int | None = None

    @classmethod
    def from_config(cls, config: Config) -> WithdrawalPolicy:
        return cls(
            min_cents=config.withdrawal_min_cents,
            daily_max_cents=config.withdrawal_daily_max_cents,
            max_pending=config.withdrawal_max_pending,
        )


@dataclass(frozen=True, slots=True)
class WithdrawalResult:
    withdrawal: Withdrawal
    new_balance_cents: int


def request_withdrawal(
    session: Session, account: Account, amount_cents: int, bank_token: str, policy: WithdrawalPolicy
) -> WithdrawalResult:
    """Hold ``amount_cents`` for a payout: debit, transaction row and pending withdrawal. Commits.

    The debit is one conditional UPDATE, so concurrent requests on any number of pods can never take the
    balance below zero; on PostgreSQL it also locks the wallet row until commit, which serializes the
    per-user caps checked after it (one wallet per user); SQLite's BEGIN IMMEDIATE serializes every writer.
    """
    _check_amount(amount_cents, policy)
    with atomic(session):
        now = utcnow()
        new_balance = session.execute(
            update(Wallet)
            .where(Wallet.id == account.wallet_id, Wallet.balance_cents >= amount_cents)
            .values(balance_cents=Wallet.balance_cents - amount_cents, updated_at=now)
            .returning(Wallet.balance_cents)
            .execution_options(synchronize_session=False)
        ).scalar_one_or_none()
        if new_balance is None:
            balance = session.execute(select(Wallet.balance_cents).where(Wallet.id == account.wallet_id)).scalar_one()
            raise InsufficientFunds(
                "the wallet balance is lower than the amount requested",
                balance_cents=balance,
                amount_cents=amount_cents,
            )
        _check_caps(session, account, amount_cents, policy, now)
        withdrawal = Withdrawal(
            id=uuid.uuid4(),
            user_id=account.user_id,
            wallet_id=account.wallet_id,
            amount_cents=amount_cents,
            status=WithdrawalStatus.PENDING,
            bank_token=bank_token,
            attempts=0,
            attempt_generation=0,
            created_at=now,
            updated_at=now,
            request_id=context.current_request_id(),
        )
        session.add(withdrawal)
        session.flush()  # the transaction row references the withdrawal
        session.add(
            Transaction(
                id=uuid.uuid4(),
                user_id=account.user_id,
                wallet_id=account.wallet_id,
                transaction_type=TransactionType.WITHDRAWAL,
                amount_cents=-amount_cents,
                withdrawal_id=withdrawal.id,
                created_at=now,
            )
        )
    metrics.record_withdrawal_status(WithdrawalStatus.PENDING)
    return WithdrawalResult(withdrawal, new_balance)


def _check_amount(amount_cents: int, policy: WithdrawalPolicy) -> None:
    """Checks that need no database: refuse before taking any lock."""
    if amount_cents < policy.min_cents:
        raise AmountBelowMinimum(
            f"withdrawals start at {policy.min_cents} cents", min_cents=policy.min_cents, amount_cents=amount_cents
        )
    if policy.daily_max_cents is not None and amount_cents > policy.daily_max_cents:
        raise DailyLimitExceeded(
            f"at most {policy.daily_max_cents} cents can be withdrawn in 24 hours",
            daily_max_cents=policy.daily_max_cents,
            amount_cents=amount_cents,
        )


def _check_caps(session: Session, account: Account, amount_cents: int, policy: WithdrawalPolicy, now: datetime) -> None:
    """Per-user caps, read after the debit has locked the wallet, so concurrent requests see each other."""
    if policy.daily_max_cents is not None:
        withdrawn = session.execute(
            select(func.coalesce(func.sum(Withdrawal.amount_cents), 0)).where(
                Withdrawal.user_id == account.user_id,
                Withdrawal.created_at > now - DAILY_WINDOW,
                Withdrawal.status.not_in(NOT_COUNTED_TOWARD_DAILY_MAX),
            )
        ).scalar_one()
        if withdrawn + amount_cents > policy.daily_max_cents:
            raise DailyLimitExceeded(
                f"at most {policy.daily_max_cents} cents can be withdrawn in 24 hours",
                daily_max_cents=policy.daily_max_cents,
                withdrawn_last_24h_cents=int(withdrawn),
                remaining_cents=max(0, policy.daily_max_cents - int(withdrawn)),
                amount_cents=amount_cents,
            )
    if policy.max_pending is not None:
        pending = session.execute(
            select(func.count()).where(Withdrawal.user_id == account.user_id, Withdrawal.status.in_(IN_FLIGHT_STATUSES))
        ).scalar_one()
        if pending >= policy.max_pending:
            raise TooManyPendingWithdrawals(
                f"at most {policy.max_pending} withdrawals can be pending at once; wait for one to finish",
                max_pending=policy.max_pending,
                pending=int(pending),
            )


def get_withdrawal(session: Session, account: Account, withdrawal_id: uuid.UUID) -> Withdrawal:
    """The caller's own withdrawal; another user's id is indistinguishable from an unknown one."""
    withdrawal = session.execute(
        select(Withdrawal).where(Withdrawal.id == withdrawal_id, Withdrawal.user_id == account.user_id)
    ).scalar_one_or_none()
    if withdrawal is None:
        raise NotFound("no such withdrawal", withdrawal_id=str(withdrawal_id))
    return withdrawal
