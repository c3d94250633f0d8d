"""The deposit and account-lookup hot path (prebuilt Core statements) behaves the same on PostgreSQL and SQLite."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared import ledger
from shared.db import Base, Database, unit_of_work
from shared.models import Material, Transaction, TransactionType, Wallet
from tests.factories import DEFAULT_RATES, make_account


@pytest.fixture(params=["postgresql", "sqlite"])
def session(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Session]:
    if request.param == "postgresql":
        yield request.getfixturevalue("db_session")
        return
    database = Database(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    Base.metadata.create_all(database.engine)
    with database.session() as sqlite_session:
        yield sqlite_session
    database.dispose()


def test_deposit_credits_the_wallet_and_writes_its_row(session: Session) -> None:
    account = make_account(session)

    first = ledger.deposit(session, account, Material.PLASTIC, 7, DEFAULT_RATES)
    second = ledger.deposit(session, account, Material.ALUMINUM, 3, DEFAULT_RATES)

    assert (first.new_balance_cents, second.new_balance_cents) == (35, 65)
    stored = session.execute(sa.select(Transaction).where(Transaction.id == second.transaction.id)).scalar_one()
    returned = second.transaction
    for name in ("id", "user_id", "wallet_id", "transaction_type", "material", "units", "amount_cents"):
        assert getattr(stored, name) == getattr(returned, name)
    assert (stored.transaction_type, stored.material, stored.amount_cents) == (TransactionType.DEPOSIT, "aluminum", 30)
    assert stored.withdrawal_id is None
    assert stored.created_at == returned.created_at
    assert stored.created_at.tzinfo is not None and stored.created_at.utcoffset() == UTC.utcoffset(None)
    wallet = session.execute(sa.select(Wallet).where(Wallet.id == account.wallet_id)).scalar_one()
    assert wallet.balance_cents == 65
    assert wallet.updated_at == stored.created_at
    assert ledger.verify(session) == []
    if session.get_bind().dialect.name == "sqlite":  # stored as offset-free UTC text, so text order is time order
        raw = session.execute(sa.text("SELECT created_at FROM transactions UNION ALL SELECT updated_at FROM wallets"))
        assert all("+" not in value for (value,) in raw)


def test_deposit_is_not_left_in_the_session(session: Session) -> None:
    account = make_account(session)
    result = ledger.deposit(session, account, Material.PLASTIC, 1, DEFAULT_RATES)
    assert result.transaction not in session
    session.commit()  # nothing pending: committing again writes no second row
    count = session.execute(sa.select(sa.func.count()).select_from(Transaction)).scalar_one()
    assert count == 1


def test_deposit_to_an_unknown_wallet_moves_nothing(session: Session) -> None:
    account = make_account(session)
    ghost = ledger.Account(account.user_id, uuid.uuid4(), account.firebase_uid, account.email)
    with pytest.raises(sa.exc.NoResultFound):
        ledger.deposit(session, ghost, Material.PLASTIC, 1, DEFAULT_RATES)
    assert session.execute(sa.select(sa.func.count()).select_from(Transaction)).scalar_one() == 0


def test_account_lookup_finds_creates_and_keeps_email_current(session: Session) -> None:
    created = ledger.get_or_create_account(session, "uid-hot-path", "old@example.com")
    again = ledger.get_or_create_account(session, "uid-hot-path", "old@example.com")
    renamed = ledger.get_or_create_account(session, "uid-hot-path", "new@example.com")

    assert again == created
    assert (renamed.user_id, renamed.wallet_id) == (created.user_id, created.wallet_id)
    assert renamed.email == "new@example.com"
    assert ledger.get_or_create_account(session, "uid-hot-path", None).email == "new@example.com"


@contextmanager
def _recording_queries(session: Session) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    engine = session.get_bind()
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def test_history_pages_walk_every_row_once_newest_first_including_equal_timestamps(session: Session) -> None:
    account = make_account(session)
    stamp = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    stamps = [stamp] * 4 + [stamp + timedelta(seconds=s) for s in (1, 1, 2)] + [stamp - timedelta(seconds=1)]
    rows = [
        {
            "id": uuid.uuid4(),
            "user_id": account.user_id,
            "wallet_id": account.wallet_id,
            "transaction_type": "deposit",
            "material": "plastic",
            "units": 1,
            "amount_cents": 5,
            "created_at": created_at,
        }
        for created_at in stamps
    ]
    session.execute(sa.insert(Transaction), rows)
    session.commit()
    expected = [r["id"] for r in sorted(rows, key=lambda r: (r["created_at"], r["id"].hex), reverse=True)]

    seen: list[uuid.UUID] = []
    cursor = None
    while True:
        page = ledger.list_transactions(session, account, limit=3, cursor=cursor)
        seen += [t.id for t in page.items]
        if page.next_cursor is None:
            break
        if len(seen) == 3:  # a newer row arriving mid-walk must not shift the pages that follow
            ledger.deposit(session, account, Material.PLASTIC, 1, DEFAULT_RATES)
        cursor = page.next_cursor
    assert seen == expected


# -- deposit_as: the caller known only by identity ---------------------------------------------------------


def _balance(session: Session, account: ledger.Account) -> int:
    balance: int = session.execute(sa.select(Wallet.balance_cents).where(Wallet.id == account.wallet_id)).scalar_one()
    session.commit()
    return balance


def test_deposit_as_creates_the_caller_then_credits_the_same_wallet(session: Session) -> None:
    first_account, first = ledger.deposit_as(session, "uid-as", "as@example.com", Material.PLASTIC, 2, DEFAULT_RATES)
    again_account, again = ledger.deposit_as(session, "uid-as", "as@example.com", Material.ALUMINUM, 1, DEFAULT_RATES)

    assert first_account == again_account == ledger.get_or_create_account(session, "uid-as", "as@example.com")
    assert (first.new_balance_cents, again.new_balance_cents) == (10, 20)
    stored = session.execute(sa.select(Transaction).where(Transaction.id == again.transaction.id)).scalar_one()
    for name in ("id", "user_id", "wallet_id", "transaction_type", "material", "units", "amount_cents", "created_at"):
        assert getattr(stored, name) == getattr(again.transaction, name)
    assert (stored.user_id, stored.wallet_id) == (again_account.user_id, again_account.wallet_id)
    assert stored.withdrawal_id is None and again.transaction.withdrawal_id is None
    assert _balance(session, again_account) == 20
    assert ledger.verify(session) == []


def test_deposit_as_keeps_the_email_current_and_accepts_no_email(session: Session) -> None:
    ledger.deposit_as(session, "uid-mail", "old@example.com", Material.PLASTIC, 1, DEFAULT_RATES)
    renamed, _ = ledger.deposit_as(session, "uid-mail", "new@example.com", Material.PLASTIC, 1, DEFAULT_RATES)
    anonymous, result = ledger.deposit_as(session, "uid-mail", None, Material.PLASTIC, 1, DEFAULT_RATES)

    assert renamed.email == anonymous.email == "new@example.com"
    assert ledger.get_or_create_account(session, "uid-mail", None).email == "new@example.com"
    assert result.new_balance_cents == 15
    assert ledger.verify(session) == []


def test_deposit_as_recreates_a_wallet_removed_under_it(session: Session) -> None:
    account, _ = ledger.deposit_as(session, "uid-gone", "gone@example.com", Material.PLASTIC, 1, DEFAULT_RATES)
    session.execute(sa.delete(Transaction).where(Transaction.wallet_id == account.wallet_id))
    session.execute(sa.delete(Wallet).where(Wallet.id == account.wallet_id))
    session.commit()

    again, result = ledger.deposit_as(session, "uid-gone", "gone@example.com", Material.PLASTIC, 1, DEFAULT_RATES)

    assert again.user_id == account.user_id and again.wallet_id != account.wallet_id
    assert result.new_balance_cents == 5
    assert ledger.verify(session) == []


def test_deposit_as_is_one_statement_for_a_known_caller_on_postgresql(db_session: Session) -> None:
    session = db_session  # PostgreSQL only: SQLite takes the account lookup and two statements
    ledger.get_or_create_account(session, "uid-one", "one@example.com")
    session.commit()
    with _recording_queries(session) as statements:
        _, result = ledger.deposit_as(session, "uid-one", "one@example.com", Material.ALUMINUM, 2, DEFAULT_RATES)
    assert len(statements) == 1 and statements[0].lstrip().startswith("WITH credited AS")
    assert not session.in_transaction()
    # Committed by itself: another connection sees the money and its row.
    with session.get_bind().connect() as other:
        count = other.execute(
            sa.text("SELECT count(*) FROM transactions WHERE id = :id"), {"id": result.transaction.id}
        )
        assert count.scalar_one() == 1
    assert result.new_balance_cents == 20


def test_deposit_as_joins_an_enclosing_unit_of_work(session: Session) -> None:
    account = ledger.get_or_create_account(session, "uid-unit", "unit@example.com")
    session.commit()
    with pytest.raises(RuntimeError, match="after the deposit"), unit_of_work(session):
        ledger.deposit_as(session, "uid-unit", "unit@example.com", Material.PLASTIC, 3, DEFAULT_RATES)
        raise RuntimeError("the unit fails after the deposit")
    assert _balance(session, account) == 0
    assert session.execute(sa.select(sa.func.count()).select_from(Transaction)).scalar_one() == 0
