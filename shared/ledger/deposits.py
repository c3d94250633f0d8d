"""Deposits: recycled units become cents in the wallet, with their transaction row, atomically."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from shared.db import atomic, utcnow
from shared.ledger.accounts import Account
from shared.models import Material, Transaction, TransactionType, Wallet
from shared.observability import metrics


@dataclass(frozen=True, slots=True)
class DepositResult:
    transaction: Transaction
    new_balance_cents: int


def credit_wallet(session: Session, wallet_id: uuid.UUID, amount_cents: int, now: datetime) -> int:
    """Add ``amount_cents`` (> 0) in one UPDATE and return the new balance. Caller owns the transaction."""
    return session.execute(
        update(Wallet)
        .where(Wallet.id == wallet_id)
        .values(balance_cents=Wallet.balance_cents + amount_cents, updated_at=now)
        .returning(Wallet.balance_cents)
        .execution_options(synchronize_session=False)
    ).scalar_one()


def deposit(session: Session, account: Account, material: Material, units: int, rates: dict[str, int]) -> DepositResult:
    """Credit ``units`` of ``material`` at its configured rate. Commits."""
    if units < 1:
        raise ValueError("units must be positive")  # the API validates first; this guards other callers
    amount_cents = rates[material] * units
    with atomic(session):
        now = utcnow()
        new_balance = credit_wallet(session, account.wallet_id, amount_cents, now)
        txn = Transaction(
            id=uuid.uuid4(),
            user_id=account.user_id,
            wallet_id=account.wallet_id,
            transaction_type=TransactionType.DEPOSIT,
            material=material,
            units=units,
            amount_cents=amount_cents,
            created_at=now,
        )
        session.add(txn)
    metrics.record_deposit(material, amount_cents)
    return DepositResult(txn, new_balance)
