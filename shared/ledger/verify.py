"""Ledger verification: every wallet's balance equals the sum of its transactions, and withdrawals agree."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session

from shared.models import Transaction, TransactionType, Wallet, Withdrawal, WithdrawalStatus

_HOLD_TYPES = (TransactionType.WITHDRAWAL, TransactionType.WITHDRAWAL_REVERSAL)


@dataclass(frozen=True, slots=True)
class Mismatch:
    kind: str
    subject_id: uuid.UUID
    expected: int
    actual: int

    def __str__(self) -> str:
        return f"{self.kind} {self.subject_id}: expected {self.expected}, found {self.actual}"


def verify(session: Session) -> list[Mismatch]:
    """Return every inconsistency; an empty list means the books balance."""
    mismatches: list[Mismatch] = []
    sums = (
        select(Wallet.id, Wallet.balance_cents, func.coalesce(func.sum(Transaction.amount_cents), 0))
        .outerjoin(Transaction, Transaction.wallet_id == Wallet.id)
        .group_by(Wallet.id, Wallet.balance_cents)
    )
    for wallet_id, balance, total in session.execute(sums):
        if balance != total or balance < 0:
            mismatches.append(Mismatch("wallet_balance", wallet_id, int(total), int(balance)))
    mismatches += _withdrawal_holds(session)
    mismatches += _misplaced_transactions(session)
    session.rollback()
    return mismatches


def _withdrawal_holds(session: Session) -> list[Mismatch]:
    """Each withdrawal holds its amount with exactly one debit, in its own wallet, and gives it back with exactly
    one reversal if and only if it was canceled. Sums alone would miss a second debit netted by a reversal."""

    def of_type(kind: TransactionType, value: Any) -> ColumnElement[Any]:
        return func.coalesce(func.sum(case((Transaction.transaction_type == kind, value), else_=0)), 0)

    per_withdrawal = (
        select(
            Withdrawal.id,
            Withdrawal.amount_cents,
            Withdrawal.status,
            of_type(TransactionType.WITHDRAWAL, 1),
            of_type(TransactionType.WITHDRAWAL, Transaction.amount_cents),
            of_type(TransactionType.WITHDRAWAL_REVERSAL, 1),
            of_type(TransactionType.WITHDRAWAL_REVERSAL, Transaction.amount_cents),
            func.count(Transaction.id).filter(Transaction.wallet_id != Withdrawal.wallet_id),
        )
        .outerjoin(
            Transaction,
            and_(Transaction.withdrawal_id == Withdrawal.id, Transaction.transaction_type.in_(_HOLD_TYPES)),
        )
        .group_by(Withdrawal.id, Withdrawal.amount_cents, Withdrawal.status)
    )
    mismatches: list[Mismatch] = []
    for withdrawal_id, amount, status, debits, debited, reversals, reversed_, elsewhere in session.execute(
        per_withdrawal
    ):
        amount = int(amount)
        if (int(debits), int(debited)) != (1, -amount):
            mismatches.append(Mismatch("withdrawal_debit", withdrawal_id, -amount, int(debited)))
        expected_reversal = amount if status == WithdrawalStatus.CANCELED else 0
        if (int(reversals), int(reversed_)) != (1 if expected_reversal else 0, expected_reversal):
            mismatches.append(Mismatch("withdrawal_reversal", withdrawal_id, expected_reversal, int(reversed_)))
        if int(elsewhere):
            mismatches.append(Mismatch("withdrawal_wallet", withdrawal_id, 0, int(elsewhere)))
    return mismatches


def _misplaced_transactions(session: Session) -> list[Mismatch]:
    """Debits and reversals belong to a withdrawal; deposits are positive and belong to none."""
    misplaced = select(Transaction.id, Transaction.amount_cents).where(
        or_(
            and_(Transaction.transaction_type.in_(_HOLD_TYPES), Transaction.withdrawal_id.is_(None)),
            and_(
                Transaction.transaction_type == TransactionType.DEPOSIT,
                or_(Transaction.withdrawal_id.is_not(None), Transaction.amount_cents <= 0),
            ),
            Transaction.transaction_type.not_in((TransactionType.DEPOSIT, *_HOLD_TYPES)),
        )
    )
    return [Mismatch("orphan_transaction", txn_id, 0, int(amount)) for txn_id, amount in session.execute(misplaced)]
