"""Requeueing an outcome-unknown withdrawal whose keys are about to expire at Stripe (24 h) needs force: a retry
with a forgotten key could pay again. Ledger, CLI and admin HTTP alike."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import update
from sqlalchemy.orm import Session

from shared import ledger
from shared.db import utcnow
from shared.models import Withdrawal
from shared.payouts.gateway import IDEMPOTENCY_CONFLICT
from tests.shared.ledger.payout_helpers import failed, reload

OLD = timedelta(hours=23, minutes=5)


def _first_attempt_ago(session: Session, withdrawal: Withdrawal, ago: timedelta) -> None:
    session.execute(update(Withdrawal).where(Withdrawal.id == withdrawal.id).values(created_at=utcnow() - ago))
    session.commit()


@pytest.mark.parametrize("code", [ledger.RETRIES_EXHAUSTED, IDEMPOTENCY_CONFLICT])
def test_an_old_unknown_outcome_needs_force(db_session: Session, code: str) -> None:
    withdrawal = failed(db_session, code=code)
    _first_attempt_ago(db_session, withdrawal, OLD)
    with pytest.raises(ledger.InvalidTransition, match="idempotency keys"):
        ledger.requeue(db_session, withdrawal.id, "cli:alice")
    assert reload(db_session, withdrawal).status == "failed"
    assert ledger.operator_actions(db_session, withdrawal.id) == []
    requeued = ledger.requeue(db_session, withdrawal.id, "cli:alice", "checked Stripe", force=True)
    assert (requeued.status, requeued.attempt_generation) == ("pending", 0)
    assert [a.action for a in ledger.operator_actions(db_session, withdrawal.id)] == ["requeue_forced"]


def test_a_recent_unknown_outcome_or_an_old_definite_failure_needs_no_force(db_session: Session) -> None:
    recent = failed(db_session, code=ledger.RETRIES_EXHAUSTED)
    _first_attempt_ago(db_session, recent, timedelta(hours=22))
    assert ledger.requeue(db_session, recent.id, "cli:alice").status == "pending"
    definite = failed(db_session, code="account_closed")  # new keys anyway: nothing to forget
    _first_attempt_ago(db_session, definite, timedelta(days=3))
    assert ledger.requeue(db_session, definite.id, "cli:alice").attempt_generation == 1
    assert [a.action for a in ledger.operator_actions(db_session, recent.id)] == ["requeue"]


def test_cli_requeue_needs_force_with_a_clear_message(app: Flask, db_session: Session) -> None:
    withdrawal = failed(db_session, code=ledger.RETRIES_EXHAUSTED)
    _first_attempt_ago(db_session, withdrawal, OLD)
    runner = app.test_cli_runner()
    refused = runner.invoke(args=["payouts", "requeue", str(withdrawal.id)])
    assert refused.exit_code == 1
    assert "Stripe forgets idempotency keys after 24 hours" in refused.output and "--force" in refused.output
    forced = runner.invoke(args=["payouts", "requeue", str(withdrawal.id), "--force", "--reason", "checked"])
    assert forced.exit_code == 0, forced.output
    assert reload(db_session, withdrawal).status == "pending"
