"""Deposits: units become cents at the configured rate, balance and transaction row together."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared import ledger
from shared.models import Material, Transaction, TransactionType, Wallet
from tests.factories import DEFAULT_RATES, make_account


@pytest.mark.parametrize(("material", "units", "cents"), [("plastic", 1, 5), ("plastic", 10, 50), ("aluminum", 7, 70)])
def test_deposit_credits_the_rate_times_units(any_session: Session, material: str, units: int, cents: int) -> None:
    account = make_account(any_session)

    result = ledger.deposit(any_session, account, Material(material), units, DEFAULT_RATES)

    assert result.new_balance_cents == cents
    txn = any_session.execute(sa.select(Transaction)).scalar_one()
    assert (txn.transaction_type, txn.material, txn.units, txn.amount_cents) == (
        TransactionType.DEPOSIT,
        material,
        units,
        cents,
    )
    assert (txn.wallet_id, txn.user_id, txn.withdrawal_id) == (account.wallet_id, account.user_id, None)
    assert any_session.get(Wallet, account.wallet_id).balance_cents == cents  # type: ignore[union-attr]


def test_deposits_accumulate_and_rates_come_from_the_caller(any_session: Session) -> None:
    account = make_account(any_session)
    ledger.deposit(any_session, account, Material.PLASTIC, 3, DEFAULT_RATES)
    result = ledger.deposit(any_session, account, Material.ALUMINUM, 2, {"plastic": 5, "aluminum": 25})
    assert result.new_balance_cents == 15 + 50
    assert ledger.verify(any_session) == []


@pytest.mark.parametrize("units", [0, -1])
def test_non_positive_units_are_refused_and_nothing_is_written(any_session: Session, units: int) -> None:
    account = make_account(any_session)
    with pytest.raises(ValueError):
        ledger.deposit(any_session, account, Material.PLASTIC, units, DEFAULT_RATES)
    assert any_session.execute(sa.select(sa.func.count()).select_from(Transaction)).scalar_one() == 0
    assert ledger.get_wallet(any_session, account).balance_cents == 0


def test_deposit_is_one_unit_of_work(any_session: Session) -> None:
    """If writing the transaction row fails, the credit is rolled back with it."""
    account = make_account(any_session)
    # The wallet exists, so the credit succeeds; the unknown user_id then fails the row's foreign key.
    broken = ledger.Account(uuid.uuid4(), account.wallet_id, account.firebase_uid, account.email)
    with pytest.raises(sa.exc.IntegrityError):
        ledger.deposit(any_session, broken, Material.PLASTIC, 10, DEFAULT_RATES)
    any_session.rollback()
    assert ledger.get_wallet(any_session, account).balance_cents == 0
    assert any_session.execute(sa.select(sa.func.count()).select_from(Transaction)).scalar_one() == 0
