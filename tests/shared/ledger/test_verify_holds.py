"""``ledger.verify`` sees every way a withdrawal's hold or reversal can be wrong, in every status.

Each test makes books that the ledger would never write (a bug, a manual UPDATE) by editing rows directly, and
checks that verify names the withdrawal or transaction at fault, even where the per-wallet sums still agree.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Index, delete, insert, update
from sqlalchemy.orm import Session

from shared import ledger
from shared.db import Database, utcnow
from shared.models import Transaction, TransactionType, Wallet, Withdrawal
from tests.factories import fund, make_account
from tests.shared.ledger.payout_helpers import claimed, failed, make_withdrawal

pytest_plugins = ["tests.backends"]


def _kinds(session: Session) -> list[tuple[str, uuid.UUID]]:
    return sorted((m.kind, m.subject_id) for m in ledger.verify(session))


@contextmanager
def duplicates_allowed(session: Session) -> Iterator[list[uuid.UUID]]:
    """Drop migration 0004's one-debit/one-reversal indexes (as on a database before 0004, or after a manual
    DROP INDEX) so a test can write the duplicates verify must still find; the ids it yields are deleted and the
    indexes recreated afterwards."""
    guards = [i for i in Transaction.__table__.indexes if isinstance(i, Index) and i.name.startswith("uq_")]
    assert len(guards) == 2
    engine = session.get_bind()
    session.rollback()
    with engine.begin() as conn:
        for guard in guards:
            guard.drop(conn)
    added: list[uuid.UUID] = []
    try:
        yield added
    finally:
        session.rollback()
        with engine.begin() as conn:
            conn.execute(delete(Transaction).where(Transaction.id.in_(added)))
            for guard in guards:
                guard.create(conn)


def _add_transaction(
    session: Session, withdrawal: Withdrawal | None, wallet_id: uuid.UUID, user_id: uuid.UUID, kind: str, amount: int
) -> uuid.UUID:
    """A transaction row and its balance change, so the per-wallet sum still agrees."""
    txn_id = uuid.uuid4()
    session.execute(
        insert(Transaction).values(
            id=txn_id,
            user_id=user_id,
            wallet_id=wallet_id,
            transaction_type=kind,
            amount_cents=amount,
            withdrawal_id=withdrawal.id if withdrawal is not None else None,
            created_at=utcnow(),
        )
    )
    session.execute(update(Wallet).where(Wallet.id == wallet_id).values(balance_cents=Wallet.balance_cents + amount))
    session.commit()
    return txn_id


@pytest.mark.parametrize("state", ["pending", "processing", "paid", "failed", "canceled"])
def test_clean_books_in_every_status(db_session: Session, state: str) -> None:
    withdrawal = failed(db_session) if state in ("failed", "canceled") else make_withdrawal(db_session)
    if state in ("processing", "paid"):
        claim = claimed(db_session, withdrawal)
        if state == "paid":
            ledger.mark_paid(db_session, claim, "po_1")
    if state == "canceled":
        ledger.cancel(db_session, withdrawal.id, "cli:test")
    assert ledger.verify(db_session) == []


def test_a_reversal_with_no_withdrawal_is_money_from_nowhere(db_session: Session) -> None:
    account = make_account(db_session)
    fund(db_session, account, 100)
    txn = _add_transaction(
        db_session, None, account.wallet_id, account.user_id, TransactionType.WITHDRAWAL_REVERSAL, 500
    )
    assert ("orphan_transaction", txn) in _kinds(db_session)


def test_a_reversal_credited_to_another_wallet(db_session: Session) -> None:
    withdrawal = failed(db_session)
    ledger.cancel(db_session, withdrawal.id, "cli:test")
    other = make_account(db_session)
    # Move the reversal (and its credit) to another user's wallet: every sum per wallet and per withdrawal agrees.
    db_session.execute(
        update(Transaction)
        .where(Transaction.withdrawal_id == withdrawal.id, Transaction.amount_cents > 0)
        .values(wallet_id=other.wallet_id, user_id=other.user_id)
    )
    db_session.execute(update(Wallet).where(Wallet.id == withdrawal.wallet_id).values(balance_cents=700))
    db_session.execute(update(Wallet).where(Wallet.id == other.wallet_id).values(balance_cents=300))
    db_session.commit()
    assert ("withdrawal_wallet", withdrawal.id) in _kinds(db_session)


def test_a_second_debit_and_a_second_reversal_netting_out(db_session: Session) -> None:
    withdrawal = make_withdrawal(db_session)  # pending: one debit of -300 expected, no reversal
    w, wallet, user = withdrawal, withdrawal.wallet_id, withdrawal.user_id
    with duplicates_allowed(db_session) as added:
        added.append(_add_transaction(db_session, w, wallet, user, TransactionType.WITHDRAWAL, -300))
        added.append(_add_transaction(db_session, w, wallet, user, TransactionType.WITHDRAWAL_REVERSAL, 300))
        kinds = _kinds(db_session)
    assert ("withdrawal_debit", w.id) in kinds
    assert ("withdrawal_reversal", w.id) in kinds


def test_a_withdrawal_with_no_debit_reports_its_amount(db_session: Session) -> None:
    withdrawal = make_withdrawal(db_session)
    db_session.execute(update(Transaction).where(Transaction.withdrawal_id == withdrawal.id).values(withdrawal_id=None))
    db_session.commit()
    mismatches = [m for m in ledger.verify(db_session) if m.subject_id == withdrawal.id]
    assert [(m.kind, m.expected, m.actual) for m in mismatches] == [("withdrawal_debit", -300, 0)]


def test_the_hold_checks_run_on_both_databases(backend: Database) -> None:
    with backend.session() as session:
        withdrawal = failed(session)
        ledger.cancel(session, withdrawal.id, "cli:test")
        assert ledger.verify(session) == []
        w, wallet, user = withdrawal, withdrawal.wallet_id, withdrawal.user_id
        with duplicates_allowed(session) as added:
            added.append(_add_transaction(session, w, wallet, user, TransactionType.WITHDRAWAL, -10))
            assert _kinds(session) == [("withdrawal_debit", w.id)]
