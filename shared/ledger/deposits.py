"""Deposits: recycled units become cents in the wallet, with their transaction row, atomically."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Engine, Integer, String, Uuid, bindparam, insert, text, update
from sqlalchemy.orm import Session

from shared.db import UTCDateTime, atomic, autocommit, owns_no_transaction, utcnow
from shared.ledger.accounts import Account, get_or_create_account
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

# PostgreSQL: the whole deposit of a caller known only by their Firebase uid as ONE statement. It finds the wallet
# through users.firebase_uid (unique), credits it and inserts its transaction row; run on its own in autocommit
# it is one round trip and one atomic transaction (a data-modifying WITH always runs to completion with the rest
# of the statement, or not at all). It matches nothing (no row back, nothing written) when the user or the wallet
# does not exist yet or the stored email differs from the caller's: the caller then takes the slow path
# (get_or_create_account, which also keeps the email current, then the two statements above). CTEs with an
# UPDATE inside are PostgreSQL-only; SQLite always takes the slow path.
DEPOSIT_BY_FIREBASE_UID = (
    text(
        """
WITH credited AS (
    UPDATE wallets
    SET balance_cents = wallets.balance_cents + :amount_cents, updated_at = :now
    FROM users
    WHERE users.firebase_uid = :firebase_uid
      AND wallets.user_id = users.id
      AND users.email IS NOT DISTINCT FROM coalesce(:email, users.email)
    RETURNING wallets.id AS wallet_id, wallets.user_id AS user_id, wallets.balance_cents AS balance_cents,
              users.email AS email
), recorded AS (
    INSERT INTO transactions
        (id, user_id, wallet_id, transaction_type, material, units, amount_cents, withdrawal_id, created_at)
    SELECT :transaction_id, credited.user_id, credited.wallet_id, :transaction_type, :material, :units,
           :amount_cents, NULL, :now
    FROM credited
)
SELECT wallet_id, user_id, balance_cents, email FROM credited
"""
    )
    .bindparams(
        bindparam("amount_cents", type_=BigInteger()),
        bindparam("now", type_=UTCDateTime()),
        bindparam("firebase_uid", type_=String()),
        bindparam("email", type_=String()),
        bindparam("transaction_id", type_=Uuid()),
        bindparam("transaction_type", type_=String()),
        bindparam("material", type_=String()),
        bindparam("units", type_=Integer()),
    )
    .columns(wallet_id=Uuid(), user_id=Uuid(), balance_cents=BigInteger(), email=String())
)


@dataclass(frozen=True, slots=True)
class TransactionRecord:
    """A transaction row just written, as plain data: what :func:`deposit_as` returns on its one-statement path
    (building an ORM ``Transaction`` only to carry the row to the caller cost 4% of a deposit)."""

    id: uuid.UUID
    user_id: uuid.UUID
    wallet_id: uuid.UUID
    transaction_type: str
    material: str | None
    units: int | None
    amount_cents: int
    withdrawal_id: uuid.UUID | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DepositResult:
    # Not in any session either way: the row is already written; this only carries it to the caller.
    transaction: Transaction | TransactionRecord
    new_balance_cents: int


def credit_wallet(session: Session, wallet_id: uuid.UUID, amount_cents: int, now: datetime) -> int:
    """Add ``amount_cents`` (> 0) in one UPDATE and return the new balance. Caller owns the transaction."""
    params = {"wallet_id": wallet_id, "amount_cents": amount_cents, "now": now}
    balance: int = session.execute(CREDIT_WALLET, params).scalar_one()
    return balance


def _amount_cents(material: Material, units: int, rates: dict[str, int]) -> int:
    if units < 1:
        raise ValueError("units must be positive")  # the API validates first; this guards other callers
    return rates[material] * units


def deposit_params(
    firebase_uid: str, email: str | None, material: Material, units: int, amount_cents: int
) -> dict[str, Any]:
    """The parameters of :data:`DEPOSIT_BY_FIREBASE_UID` (a new transaction id each call)."""
    return {
        "amount_cents": amount_cents,
        "now": utcnow(),
        "firebase_uid": firebase_uid,
        "email": email,
        "transaction_id": uuid.uuid4(),
        "transaction_type": TransactionType.DEPOSIT.value,
        "material": Material(material).value,
        "units": units,
    }


def deposit_as(
    session: Session, firebase_uid: str, email: str | None, material: Material, units: int, rates: dict[str, int]
) -> tuple[Account, DepositResult]:
    """Deposit for a caller known only by identity, creating their user and wallet on first sight. Commits.

    On PostgreSQL, when ``session`` has no transaction of its own, the known caller's deposit is one
    autocommitted statement (:data:`DEPOSIT_BY_FIREBASE_UID`): one round trip instead of the account lookup,
    BEGIN, UPDATE, INSERT and COMMIT. Otherwise (SQLite, a unit of work, a new user, a changed email) it is
    :func:`get_or_create_account` then :func:`deposit`. Returns the caller's account with the result.
    """
    amount_cents = _amount_cents(material, units, rates)
    bind = session.get_bind()
    # A session bound to one connection (a caller's own transaction) rather than an engine joins it instead.
    if isinstance(bind, Engine) and bind.dialect.name == "postgresql" and owns_no_transaction(session):
        params = deposit_params(firebase_uid, email, material, units, amount_cents)
        # Straight on a pooled connection, not through the session (which has nothing open): the statement
        # commits itself, so the session's transaction bookkeeping would be pure overhead.
        with bind.connect() as conn, autocommit(conn):
            row = conn.execute(DEPOSIT_BY_FIREBASE_UID, params).first()
        if row is not None:
            metrics.record_deposit(material, amount_cents)
            account = Account(row.user_id, row.wallet_id, firebase_uid, row.email)
            transaction = TransactionRecord(
                id=params["transaction_id"],
                user_id=row.user_id,
                wallet_id=row.wallet_id,
                transaction_type=params["transaction_type"],
                material=params["material"],
                units=units,
                amount_cents=amount_cents,
                withdrawal_id=None,
                created_at=params["now"],
            )
            return account, DepositResult(transaction, row.balance_cents)
    account = get_or_create_account(session, firebase_uid, email)
    return account, deposit(session, account, material, units, rates)


def deposit(session: Session, account: Account, material: Material, units: int, rates: dict[str, int]) -> DepositResult:
    """Credit ``units`` of ``material`` at its configured rate. Commits."""
    amount_cents = _amount_cents(material, units, rates)
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
