"""Withdrawals: the debit, its transaction row and the pending withdrawal, in one database transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.db import atomic, utcnow
from shared.ledger.accounts import Account
from shared.ledger.errors import AmountBelowMinimum, InsufficientFunds, NotFound
from shared.models import Transaction, TransactionType, Wallet, Withdrawal, WithdrawalStatus


@dataclass(frozen=True, slots=True)
class WithdrawalPolicy:
    min_cents: int


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
    per-wallet policy checks that follow it.
    """
    if amount_cents < policy.min_cents:
        raise AmountBelowMinimum(
            f"withdrawals start at {policy.min_cents} cents", min_cents=policy.min_cents, amount_cents=amount_cents
        )
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
    return WithdrawalResult(withdrawal, new_balance)


def get_withdrawal(session: Session, account: Account, withdrawal_id: uuid.UUID) -> Withdrawal:
    """The caller's own withdrawal; another user's id is indistinguishable from an unknown one."""
    withdrawal = session.execute(
        select(Withdrawal).where(Withdrawal.id == withdrawal_id, Withdrawal.user_id == account.user_id)
    ).scalar_one_or_none()
    if withdrawal is None:
        raise NotFound("no such withdrawal", withdrawal_id=str(withdrawal_id))
    return withdrawal
