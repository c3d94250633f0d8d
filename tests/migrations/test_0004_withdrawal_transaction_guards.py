"""Migration 0004: the database itself refuses a second debit or a second reversal for one withdrawal.

The ledger's conditional UPDATEs already make each happen once; these partial unique indexes are the last line
of defence against a future bug (or a hand-written SQL fix) that would move a withdrawal's money twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import IntegrityError

from shared import ledger
from shared.db import Base, Database
from shared.migrations import alembic_config
from shared.models import Transaction, TransactionType, Withdrawal
from tests.conftest import scratch_postgresql_database
from tests.shared.ledger.payout_helpers import claimed, make_withdrawal

pytest_plugins = ["tests.backends"]

GUARDS = {"uq_transactions_withdrawal_debit", "uq_transactions_withdrawal_reversal"}


def _row(withdrawal: Withdrawal, kind: TransactionType, amount: int) -> Transaction:
    return Transaction(
        id=uuid.uuid4(),
        user_id=withdrawal.user_id,
        wallet_id=withdrawal.wallet_id,
        transaction_type=kind,
        amount_cents=amount,
        withdrawal_id=withdrawal.id,
    )


@pytest.mark.parametrize(
    ("kind", "amount"), [(TransactionType.WITHDRAWAL, -300), (TransactionType.WITHDRAWAL_REVERSAL, 300)]
)
def test_a_second_debit_or_reversal_for_one_withdrawal_is_refused(
    backend: Database, kind: TransactionType, amount: int
) -> None:
    with backend.session() as session:
        withdrawal = make_withdrawal(session)
        ledger.mark_failed(session, claimed(session, withdrawal), "account_closed", "refused")
        ledger.cancel(session, withdrawal.id, "cli:alice")  # one debit and one reversal: allowed
        session.add(_row(withdrawal, kind, amount))
        with pytest.raises(IntegrityError):
            session.commit()
        session.rollback()
        # Deposits (no withdrawal) and other withdrawals are untouched by the guard.
        other = make_withdrawal(session)
        assert other.id != withdrawal.id
        assert ledger.verify(session) == []


@pytest.fixture
def scratch_database() -> Iterator[str]:
    with scratch_postgresql_database("wallet_mig") as url:
        yield url


def _indexes(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return {index["name"] for index in sa.inspect(conn).get_indexes("transactions")}


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_0004_up_matches_the_models_and_down_restores_0003(
    dialect: str, scratch_database: str, tmp_path: object
) -> None:
    url = scratch_database if dialect == "postgresql" else f"sqlite:///{tmp_path}/wallet.sqlite3"
    config = alembic_config(url)
    command.upgrade(config, "0003")
    engine = sa.create_engine(url)
    try:
        assert not GUARDS & _indexes(engine)
        command.upgrade(config, "0004")
        assert _indexes(engine) >= GUARDS
        command.upgrade(config, "head")
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
        command.downgrade(config, "0003")
        assert not GUARDS & _indexes(engine)
        command.upgrade(config, "head")
    finally:
        engine.dispose()
