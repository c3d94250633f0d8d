"""ledger.verify() and `flask ledger verify`: clean books pass, every kind of corruption is reported."""

from __future__ import annotations

import subprocess

import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared import ledger
from shared.db import Database
from shared.models import Transaction, Wallet, Withdrawal
from tests.commands import flask
from tests.factories import fund, make_account, make_withdrawal


def _books_with_activity(session: Session) -> tuple[ledger.Account, ledger.Account]:
    rich, empty = make_account(session), make_account(session)
    fund(session, rich, 1000)
    make_withdrawal(session, rich, 300)
    return rich, empty


def test_clean_books_verify(any_session: Session) -> None:
    _books_with_activity(any_session)
    assert ledger.verify(any_session) == []


def test_a_corrupted_balance_is_reported(any_session: Session) -> None:
    rich, _ = _books_with_activity(any_session)
    any_session.execute(sa.update(Wallet).where(Wallet.id == rich.wallet_id).values(balance_cents=701))
    any_session.commit()

    (mismatch,) = ledger.verify(any_session)

    assert (mismatch.kind, mismatch.subject_id, mismatch.expected, mismatch.actual) == (
        "wallet_balance",
        rich.wallet_id,
        700,
        701,
    )
    assert str(rich.wallet_id) in str(mismatch)


def test_a_wallet_with_money_but_no_transactions_is_reported(any_session: Session) -> None:
    _, empty = _books_with_activity(any_session)
    any_session.execute(sa.update(Wallet).where(Wallet.id == empty.wallet_id).values(balance_cents=50))
    any_session.commit()
    assert [(m.kind, m.subject_id) for m in ledger.verify(any_session)] == [("wallet_balance", empty.wallet_id)]


def test_a_withdrawal_whose_hold_disagrees_is_reported(any_session: Session) -> None:
    rich, _ = _books_with_activity(any_session)
    withdrawal_id = any_session.execute(sa.select(Withdrawal.id)).scalar_one()
    # The withdrawal claims more than its debit held (balance and transactions still agree).
    any_session.execute(sa.update(Withdrawal).values(amount_cents=400))
    any_session.commit()

    mismatches = ledger.verify(any_session)

    assert [(m.kind, m.subject_id, m.expected, m.actual) for m in mismatches] == [
        ("withdrawal_debit", withdrawal_id, -400, -300)
    ]
    assert rich.wallet_id not in {m.subject_id for m in mismatches}


def test_a_withdrawal_without_its_debit_is_reported(any_session: Session) -> None:
    rich, _ = _books_with_activity(any_session)
    withdrawal_id = any_session.execute(sa.select(Withdrawal.id)).scalar_one()
    any_session.execute(sa.delete(Transaction).where(Transaction.withdrawal_id == withdrawal_id))
    any_session.commit()

    mismatches = {(m.kind, m.subject_id): (m.expected, m.actual) for m in ledger.verify(any_session)}

    assert mismatches[("withdrawal_debit", withdrawal_id)] == (-300, 0)
    assert mismatches[("wallet_balance", rich.wallet_id)] == (1000, 700)  # and the balance no longer adds up


def _flask_verify(database_url: str) -> subprocess.CompletedProcess[str]:
    return flask(["ledger", "verify"], database_url)


def test_flask_ledger_verify_exits_zero_when_clean_and_non_zero_on_a_mismatch(
    database: Database, database_url: str, db_session: Session
) -> None:
    rich, _ = _books_with_activity(db_session)

    clean = _flask_verify(database_url)
    assert clean.returncode == 0, clean.stderr
    assert "ledger OK" in clean.stdout

    db_session.execute(sa.update(Wallet).where(Wallet.id == rich.wallet_id).values(balance_cents=0))
    db_session.commit()
    broken = _flask_verify(database_url)
    assert broken.returncode == 1
    assert f"MISMATCH wallet_balance {rich.wallet_id}: expected 700, found 0" in broken.stderr
    assert "1 mismatch(es) found" in broken.stderr
