"""Ledger verification: every wallet's balance equals the sum of its transactions, and withdrawals agree."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.models import Transaction, TransactionType, Wallet, Withdrawal, WithdrawalStatus


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

    # Each withdrawal holds its amount exactly once, and only a canceled one has given it back (once).
    held = (
        select(
            Withdrawal.id,
            Withdrawal.amount_cents,
            Withdrawal.status,
            func.coalesce(func.sum(Transaction.amount_cents), 0),
        )
        .outerjoin(Transaction, Transaction.withdrawal_id == Withdrawal.id)
        .where(Transaction.transaction_type.in_([TransactionType.WITHDRAWAL, TransactionType.WITHDRAWAL_REVERSAL]))
        .group_by(Withdrawal.id, Withdrawal.amount_cents, Withdrawal.status)
    )
    seen: set[uuid.UUID] = set()
    for withdrawal_id, amount, status, net in session.execute(held):
        seen.add(withdrawal_id)
        expected = 0 if status == WithdrawalStatus.CANCELED else -int(amount)
        if int(net) != expected:
            mismatches.append(Mismatch("withdrawal_hold", withdrawal_id, expected, int(net)))
    for (withdrawal_id,) in session.execute(select(Withdrawal.id)):
        if withdrawal_id not in seen:
            mismatches.append(Mismatch("withdrawal_hold", withdrawal_id, -1, 0))
    session.rollback()
    return mismatches
