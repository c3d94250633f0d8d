"""Withdrawals: one conditional debit, its transaction row and a pending withdrawal, or nothing at all."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared import ledger
from shared.db import Database
from shared.models import Transaction, TransactionType, Withdrawal, WithdrawalStatus
from tests.factories import DEFAULT_POLICY, fund, make_account, make_withdrawal


def _count(session: Session, model: type) -> int:
    return session.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()


def test_withdrawal_debits_and_records_a_pending_withdrawal(any_session: Session) -> None:
    account = make_account(any_session)
    fund(any_session, account, 1000)

    result = ledger.request_withdrawal(any_session, account, 300, "tok_bank", DEFAULT_POLICY)

    assert result.new_balance_cents == 700
    withdrawal = any_session.get(Withdrawal, result.withdrawal.id)
    assert withdrawal is not None
    assert (withdrawal.status, withdrawal.amount_cents, withdrawal.bank_token) == ("pending", 300, "tok_bank")
    assert withdrawal.status == WithdrawalStatus.PENDING
    debit = any_session.execute(
        sa.select(Transaction).where(Transaction.transaction_type == TransactionType.WITHDRAWAL)
    ).scalar_one()
    assert (debit.amount_cents, debit.withdrawal_id, debit.material, debit.units) == (-300, withdrawal.id, None, None)
    assert ledger.get_wallet(any_session, account).balance_cents == 700
    assert ledger.verify(any_session) == []


def test_withdrawing_the_whole_balance_leaves_zero(any_session: Session) -> None:
    account = make_account(any_session)
    fund(any_session, account, 500)
    assert ledger.request_withdrawal(any_session, account, 500, "tok", DEFAULT_POLICY).new_balance_cents == 0


@pytest.mark.parametrize(("balance", "amount"), [(0, 100), (990, 1000), (100, 101)])
def test_insufficient_funds_moves_nothing(any_session: Session, balance: int, amount: int) -> None:
    account = make_account(any_session)
    if balance:
        fund(any_session, account, balance)

    with pytest.raises(ledger.InsufficientFunds) as excinfo:
        ledger.request_withdrawal(any_session, account, amount, "tok", DEFAULT_POLICY)

    assert excinfo.value.code == "insufficient_funds"
    assert excinfo.value.details == {"balance_cents": balance, "amount_cents": amount}
    assert ledger.get_wallet(any_session, account).balance_cents == balance
    assert _count(any_session, Withdrawal) == 0
    assert _count(any_session, Transaction) == (1 if balance else 0)


@pytest.mark.parametrize("amount", [99, 1, 0, -100])
def test_amount_below_minimum_moves_nothing(any_session: Session, amount: int) -> None:
    account = make_account(any_session)
    fund(any_session, account, 1000)

    with pytest.raises(ledger.AmountBelowMinimum):
        ledger.request_withdrawal(any_session, account, amount, "tok", DEFAULT_POLICY)

    assert ledger.get_wallet(any_session, account).balance_cents == 1000
    assert _count(any_session, Withdrawal) == 0


@contextmanager
def _captured_sql(db: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(" ".join(statement.split()))

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)


def test_the_debit_is_one_conditional_update_never_read_modify_write(any_database: Database) -> None:
    session = any_database.session()
    account = make_account(session)
    fund(session, account, 1000)
    session.commit()

    with _captured_sql(any_database) as statements:
        ledger.request_withdrawal(session, account, 200, "tok", DEFAULT_POLICY)
    session.close()

    wallet_statements = [s for s in statements if "wallets" in s]
    assert len(wallet_statements) == 1, wallet_statements  # no SELECT of the balance before the UPDATE
    (debit,) = wallet_statements
    assert debit.startswith("UPDATE wallets SET balance_cents=(wallets.balance_cents - ")
    assert "WHERE wallets.id = " in debit
    assert "AND wallets.balance_cents >= " in debit
    assert "RETURNING " in debit  # the new balance comes back from the same statement


def test_a_stale_caller_cannot_overdraw(any_database: Database) -> None:
    """Two sessions that both "saw" 1000 each try to take 600: the second debit finds the condition false."""
    first, second = any_database.session(), any_database.session()
    account = make_account(first)
    fund(first, account, 1000)
    assert ledger.get_wallet(second, account).balance_cents == 1000  # second session has read the balance
    second.rollback()

    ledger.request_withdrawal(first, account, 600, "tok", DEFAULT_POLICY)
    with pytest.raises(ledger.InsufficientFunds):
        ledger.request_withdrawal(second, account, 600, "tok", DEFAULT_POLICY)

    assert ledger.get_wallet(first, account).balance_cents == 400
    assert ledger.verify(first) == []
    first.close()
    second.close()


def test_concurrent_withdrawals_never_overdraw(any_database: Database) -> None:
    setup = any_database.session()
    account = make_account(setup)
    fund(setup, account, 1000)
    setup.close()
    attempts = 10
    barrier = threading.Barrier(attempts)
    outcomes: list[str] = []

    def withdraw() -> None:
        with any_database.session() as session:
            barrier.wait()
            try:
                ledger.request_withdrawal(session, account, 200, "tok", DEFAULT_POLICY)
                outcomes.append("accepted")
            except ledger.InsufficientFunds:
                outcomes.append("insufficient_funds")

    threads = [threading.Thread(target=withdraw) for _ in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes) == ["accepted"] * 5 + ["insufficient_funds"] * 5
    with any_database.session() as session:
        assert ledger.get_wallet(session, account).balance_cents == 0
        assert ledger.verify(session) == []


def test_get_withdrawal_only_finds_the_callers_own(any_session: Session) -> None:
    owner, stranger = make_account(any_session), make_account(any_session)
    fund(any_session, owner, 500)
    withdrawal = make_withdrawal(any_session, owner, 200)

    assert ledger.get_withdrawal(any_session, owner, withdrawal.id).id == withdrawal.id
    with pytest.raises(ledger.NotFound):
        ledger.get_withdrawal(any_session, stranger, withdrawal.id)
