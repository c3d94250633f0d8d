"""Deposits: recycled units become cents in the wallet, with their transaction row, atomically."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy.orm import Session

from shared.db import UTCDateTime, atomic, utcnow
from shared.ledger.accounts import Account
from shared.models import Material, Transaction, TransactionType, Wallet
from shared.observability import metrics

# The deposit hot path runs Core statements built once at import: building a statement, computing its cache key
# and going through the ORM's bulk-update and unit-of-work machinery cost more Python per request than the SQL
# itself (see README, Benchmarks). Table-level statements also skip the ORM plugin on execute.
_wallets: Any = Wallet.__table__
_transactions: Any = Transaction.__table__
CREDIT_WALLET = (
    update(_wallets)
    .where(_wallets.c.id == bindparam("wallet_id"))
    .values(
        balance_cents=_wallets.c.balance_cents + bindparam("amount_cents", type_=_wallets.c.balance_cents.type),
        updated_at=bindparam("now", type_=UTCDateTime()),
    )
    .returning(_wallets.c.balance_cents)
)
INSERT_TRANSACTION = insert(_transactions)


@dataclass(frozen=True, slots=True)
class DepositResult:
    transaction: Transaction
    new_balance_cents: int


def credit_wallet(session: Session, wallet_id: uuid.UUID, amount_cents: int, now: datetime) -> int:
    """Add ``amount_cents`` (> 0) in one UPDATE and return the new balance. Caller owns the transaction."""
    params = {"wallet_id": wallet_id, "amount_cents": amount_cents, "now": now}
    balance: int = session.execute(CREDIT_WALLET, params).scalar_one()
    return balance


def deposit(session: Session, account: Account, material: Material, units: int, rates: dict[str, int]) -> DepositResult:
    """Credit ``units`` of ``material`` at its configured rate. Commits."""
    if units < 1:
        raise ValueError("units must be positive")  # the API validates first; this guards other callers
    amount_cents = rates[material] * units
    with atomic(session):
        now = utcnow()
        new_balance = credit_wallet(session, account.wallet_id, amount_cents, now)
        row = {
            "id": uuid.uuid4(),
            "user_id": account.user_id,
            "wallet_id": account.wallet_id,
            "transaction_type": TransactionType.DEPOSIT.value,
            "material": Material(material).value,
            "units": units,
            "amount_cents": amount_cents,
            "withdrawal_id": None,
            "created_at": now,
        }
        session.execute(INSERT_TRANSACTION, row)
    metrics.record_deposit(material, amount_cents)
    # Not added to the session: the row is already written; this object only carries it to the caller.
    return DepositResult(Transaction(**row), new_balance)
