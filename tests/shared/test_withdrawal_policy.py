"""Withdrawal caps (minimum, rolling 24 h maximum, pending count), on PostgreSQL and on embedded SQLite."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from shared import ledger
from shared.config import Config
from shared.db import Database, utcnow
from shared.models import Withdrawal, WithdrawalStatus
from tests.concurrency import run_together
from tests.factories import fund, make_account

pytest_plugins = ["tests.backends"]  # the `backend` fixture: PostgreSQL and SQLite

POLICY = ledger.WithdrawalPolicy(min_cents=100, daily_max_cents=1_000, max_pending=3)


def _set_status(
    session: Session, withdrawal_id: uuid.UUID, status: WithdrawalStatus, age: timedelta = timedelta()
) -> None:
    session.execute(
        update(Withdrawal)
        .where(Withdrawal.id == withdrawal_id)
        .values(status=status, created_at=utcnow() - age)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def _withdraw(
    session: Session, account: ledger.Account, cents: int, policy: ledger.WithdrawalPolicy = POLICY
) -> uuid.UUID:
    return ledger.request_withdrawal(session, account, cents, "tok_test", policy).withdrawal.id


def test_policy_from_config_reads_every_cap() -> None:
    config = Config.from_env(
        {"WITHDRAWAL_MIN_CENTS": "200", "WITHDRAWAL_DAILY_MAX_CENTS": "9000", "WITHDRAWAL_MAX_PENDING": "7"}
    )
    assert ledger.WithdrawalPolicy.from_config(config) == ledger.WithdrawalPolicy(200, 9000, 7)
    assert ledger.WithdrawalPolicy.from_config(Config.from_env({})) == ledger.WithdrawalPolicy(100, 50_000, 3)


def test_below_minimum_is_refused_and_moves_nothing(backend: Database) -> None:
    with backend.session() as session:
        account = make_account(session)
        fund(session, account, 1000)
        with pytest.raises(ledger.AmountBelowMinimum) as refused:
            _withdraw(session, account, 99)
        assert refused.value.details == {"min_cents": 100, "amount_cents": 99}
        assert ledger.get_wallet(session, account).balance_cents == 1000


def test_daily_maximum_counts_the_last_24_hours_except_canceled(backend: Database) -> None:
    with backend.session() as session:
        account = make_account(session)
        fund(session, account, 5000)
        old = _withdraw(session, account, 900)
        _set_status(session, old, WithdrawalStatus.PAID, age=timedelta(hours=24, minutes=1))  # outside the window
        canceled = _withdraw(session, account, 900)
        _set_status(session, canceled, WithdrawalStatus.CANCELED)
        failed = _withdraw(session, account, 300)
        _set_status(session, failed, WithdrawalStatus.FAILED)  # funds held, may be requeued: counts
        _withdraw(session, account, 600)  # 300 + 600 = 900 of 1000
        balance = ledger.get_wallet(session, account).balance_cents

        with pytest.raises(ledger.DailyLimitExceeded) as refused:
            _withdraw(session, account, 101)
        assert refused.value.code == "daily_limit_exceeded"
        assert refused.value.details == {
            "daily_max_cents": 1000,
            "withdrawn_last_24h_cents": 900,
            "remaining_cents": 100,
            "amount_cents": 101,
        }
        assert ledger.get_wallet(session, account).balance_cents == balance  # the debit was rolled back
        _withdraw(session, account, 100)  # exactly up to the maximum is fine


def test_an_amount_above_the_daily_maximum_is_refused_before_any_lookup(backend: Database) -> None:
    with backend.session() as session:
        account = make_account(session)
        with pytest.raises(ledger.DailyLimitExceeded) as refused:
            _withdraw(session, account, 1001)  # even with no money at all: the more useful answer
        assert refused.value.details == {"daily_max_cents": 1000, "amount_cents": 1001}


def test_pending_cap_counts_pending_and_processing_only(backend: Database) -> None:
    policy = ledger.WithdrawalPolicy(min_cents=100, daily_max_cents=None, max_pending=3)
    with backend.session() as session:
        account = make_account(session)
        fund(session, account, 5000)
        first = _withdraw(session, account, 100, policy)
        _set_status(session, first, WithdrawalStatus.PROCESSING)
        for status in (WithdrawalStatus.PAID, WithdrawalStatus.FAILED, WithdrawalStatus.CANCELED):
            _set_status(session, _withdraw(session, account, 100, policy), status)
        _withdraw(session, account, 100, policy)
        _withdraw(session, account, 100, policy)  # processing + 2 pending = 3
        balance = ledger.get_wallet(session, account).balance_cents

        with pytest.raises(ledger.TooManyPendingWithdrawals) as refused:
            _withdraw(session, account, 100, policy)
        assert refused.value.code == "too_many_pending_withdrawals"
        assert refused.value.details == {"max_pending": 3, "pending": 3}
        assert ledger.get_wallet(session, account).balance_cents == balance


def test_caps_are_per_user(backend: Database) -> None:
    with backend.session() as session:
        first, second = make_account(session), make_account(session)
        fund(session, first, 2000)
        fund(session, second, 2000)
        _withdraw(session, first, 1000)
        _withdraw(session, second, 1000)  # the first user's day does not count against the second's


def test_no_cap_slips_under_concurrent_requests(backend: Database) -> None:
    """Threads with their own sessions: the wallet lock (PostgreSQL) or BEGIN IMMEDIATE (SQLite) serializes."""
    with backend.session() as session:
        account = make_account(session)
        fund(session, account, 10_000)

    def attempt() -> str:
        with backend.session() as own:
            try:
                _withdraw(own, account, 300)  # daily max 1000 allows 3; the pending cap also allows 3
                return "accepted"
            except ledger.LedgerError as refused:
                return refused.code

    outcomes = run_together([attempt] * 8)
    assert outcomes.count("accepted") == 3
    with backend.session() as session:
        assert ledger.get_wallet(session, account).balance_cents == 10_000 - 900
        assert ledger.verify(session) == []
