"""on_commit(): follow-up work runs after the real commit only, also inside a unit of work."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from shared import ledger
from shared.db import Database, on_commit, unit_of_work
from shared.models import Material
from tests.factories import DEFAULT_RATES, make_account

pytest_plugins = ["tests.backends"]


def test_outside_a_unit_of_work_the_ledger_has_committed_so_callbacks_run_at_once(backend: Database) -> None:
    ran: list[str] = []
    with backend.session() as session:
        account = make_account(session)
        ledger.deposit(session, account, Material.PLASTIC, 1, DEFAULT_RATES)  # commits
        on_commit(session, lambda: ran.append("enqueued"))
        assert ran == ["enqueued"]


def test_callbacks_wait_for_the_outermost_commit(backend: Database) -> None:
    ran: list[str] = []
    with backend.session() as session:
        account = make_account(session)
        with unit_of_work(session):
            ledger.deposit(session, account, Material.PLASTIC, 1, DEFAULT_RATES)  # SAVEPOINT, not a commit
            on_commit(session, lambda: ran.append("enqueued"))
            assert ran == []
        assert ran == ["enqueued"]
        session.execute(text("SELECT 1"))
        session.commit()
        assert ran == ["enqueued"]  # once


def test_callbacks_are_dropped_on_rollback(backend: Database) -> None:
    ran: list[str] = []
    with backend.session() as session:
        account = make_account(session)
        with pytest.raises(RuntimeError), unit_of_work(session):
            ledger.deposit(session, account, Material.PLASTIC, 1, DEFAULT_RATES)
            on_commit(session, lambda: ran.append("enqueued"))
            raise RuntimeError("refused later in the request")
        session.execute(text("SELECT 1"))
        session.commit()
        assert ran == []


def test_a_failing_callback_does_not_hide_the_commit(backend: Database, caplog: pytest.LogCaptureFixture) -> None:
    def broker_down() -> None:
        raise ConnectionError("redis is down")

    ran: list[str] = []
    with backend.session() as session:
        account = make_account(session)
        with caplog.at_level(logging.ERROR, logger="shared.db"), unit_of_work(session):
            ledger.deposit(session, account, Material.PLASTIC, 1, DEFAULT_RATES)
            on_commit(session, broker_down)
            on_commit(session, lambda: ran.append("next one still runs"))
        assert ledger.get_wallet(session, account).balance_cents == 5
    assert ran == ["next one still runs"]
    assert "on_commit() failed" in caplog.text


def test_a_refusal_rolled_back_to_its_savepoint_keeps_earlier_callbacks(backend: Database) -> None:
    ran: list[str] = []
    with backend.session() as session:
        account = make_account(session)
        with unit_of_work(session):
            ledger.deposit(session, account, Material.PLASTIC, 1, DEFAULT_RATES)
            on_commit(session, lambda: ran.append("deposit follow-up"))
            with pytest.raises(ledger.InsufficientFunds):
                ledger.request_withdrawal(session, account, 10_000, "tok", ledger.WithdrawalPolicy(min_cents=1))
        assert ran == ["deposit follow-up"]
