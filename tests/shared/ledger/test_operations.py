"""Operator requeue and cancel: every allowed transition, every refusal, the audit trail, refunds once."""

from __future__ import annotations

import contextlib
import threading

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared import ledger
from shared.db import Database
from shared.models import Transaction
from shared.payouts.keys import idempotency_key
from tests.shared.ledger.payout_helpers import balance, claimed, failed, make_withdrawal, reload


def test_requeue_after_a_definite_failure_gets_a_new_generation_and_an_audit_row(db_session: Session) -> None:
    withdrawal = failed(db_session)
    requeued = ledger.requeue(db_session, withdrawal.id, "cli:alice", "bank fixed")
    assert (requeued.status, requeued.attempt_generation, requeued.attempts, requeued.failure_code) == (
        "pending",
        1,
        0,
        None,
    )
    assert claimed(db_session, requeued).payout_key == idempotency_key(withdrawal.id, 1, "payout")
    (action,) = ledger.operator_actions(db_session, withdrawal.id)
    assert (action.action, action.actor, action.from_status, action.to_status, action.reason) == (
        "requeue",
        "cli:alice",
        "failed",
        "pending",
        "bank fixed",
    )


def test_requeue_after_retries_exhausted_keeps_the_keys(db_session: Session) -> None:
    withdrawal = failed(db_session, code=ledger.RETRIES_EXHAUSTED)
    requeued = ledger.requeue(db_session, withdrawal.id, "cli:alice")
    assert requeued.attempt_generation == 0  # outcome unknown: the same keys let Stripe replay a success


@pytest.mark.parametrize("state", ["pending", "processing", "paid"])
def test_only_failed_withdrawals_can_be_requeued(db_session: Session, state: str) -> None:
    withdrawal = make_withdrawal(db_session)
    if state != "pending":
        claim = claimed(db_session, withdrawal)
        if state == "paid":
            ledger.mark_paid(db_session, claim, "po_1")
    with pytest.raises(ledger.InvalidTransition):
        ledger.requeue(db_session, withdrawal.id, "cli:alice")
    assert ledger.operator_actions(db_session, withdrawal.id) == []


def test_unknown_withdrawal_is_not_found(db_session: Session) -> None:
    import uuid

    with pytest.raises(ledger.NotFound):
        ledger.requeue(db_session, uuid.uuid4(), "cli:alice")
    with pytest.raises(ledger.NotFound):
        ledger.cancel(db_session, uuid.uuid4(), "cli:alice")


def test_cancel_refunds_exactly_once(db_session: Session) -> None:
    withdrawal = failed(db_session)
    assert balance(db_session, withdrawal) == 700
    canceled = ledger.cancel(db_session, withdrawal.id, "admin:bob", "user asked")
    assert canceled.status == "canceled"
    assert balance(db_session, withdrawal) == 1000
    with pytest.raises(ledger.InvalidTransition):
        ledger.cancel(db_session, withdrawal.id, "admin:bob")
    assert balance(db_session, withdrawal) == 1000
    reversals = db_session.execute(
        select(Transaction).where(Transaction.withdrawal_id == withdrawal.id, Transaction.amount_cents > 0)
    ).scalars()
    assert [(t.transaction_type, t.amount_cents) for t in reversals] == [("withdrawal_reversal", 300)]
    assert [a.action for a in ledger.operator_actions(db_session, withdrawal.id)] == ["cancel"]
    assert ledger.verify(db_session) == []


def test_concurrent_cancels_refund_once(database: Database, db_session: Session) -> None:
    withdrawal = failed(db_session)
    barrier = threading.Barrier(6)
    wins: list[str] = []

    def operator() -> None:
        with database.session() as session:
            barrier.wait()
            with contextlib.suppress(ledger.InvalidTransition):
                wins.append(ledger.cancel(session, withdrawal.id, "cli:race").status)

    threads = [threading.Thread(target=operator) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wins == ["canceled"]
    assert balance(db_session, withdrawal) == 1000
    assert ledger.verify(db_session) == []


def test_a_pending_withdrawal_never_started_can_be_canceled(db_session: Session) -> None:
    withdrawal = make_withdrawal(db_session)
    assert ledger.cancel(db_session, withdrawal.id, "cli:alice").status == "canceled"
    assert balance(db_session, withdrawal) == 1000


def test_a_pending_withdrawal_already_tried_cannot_be_canceled(db_session: Session) -> None:
    withdrawal = make_withdrawal(db_session)
    ledger.release_for_retry(db_session, claimed(db_session, withdrawal), 30)
    with pytest.raises(ledger.InvalidTransition, match="already been tried"):
        ledger.cancel(db_session, withdrawal.id, "cli:alice")


@pytest.mark.parametrize("state", ["processing", "paid"])
def test_processing_and_paid_cannot_be_canceled(db_session: Session, state: str) -> None:
    withdrawal = make_withdrawal(db_session)
    claim = claimed(db_session, withdrawal)
    if state == "paid":
        ledger.mark_paid(db_session, claim, "po_1")
    with pytest.raises(ledger.InvalidTransition):
        ledger.cancel(db_session, withdrawal.id, "cli:alice", force=True)
    assert balance(db_session, withdrawal) == 700


@pytest.mark.parametrize(
    ("code", "transfer", "why"),
    [(ledger.RETRIES_EXHAUSTED, None, "unknown"), ("payout_failed", "tr_1", "already transferred")],
)
def test_cancel_that_could_refund_money_already_sent_needs_force(
    db_session: Session, code: str, transfer: str | None, why: str
) -> None:
    withdrawal = failed(db_session, code=code, transfer=transfer)
    with pytest.raises(ledger.InvalidTransition, match=why):
        ledger.cancel(db_session, withdrawal.id, "cli:alice")
    assert balance(db_session, withdrawal) == 700
    ledger.cancel(db_session, withdrawal.id, "cli:alice", "checked Stripe: reversed", force=True)
    assert balance(db_session, withdrawal) == 1000
    assert [a.action for a in ledger.operator_actions(db_session, withdrawal.id)] == ["cancel_forced"]
    assert reload(db_session, withdrawal).status == "canceled"


def test_a_requeued_unknown_outcome_is_not_a_pending_withdrawal_never_started(db_session: Session) -> None:
    # retries_exhausted -> requeue keeps the generation and resets attempts to 0; the transfer whose outcome is
    # unknown may have gone through, so a cancel before the worker looks again could refund money already sent.
    withdrawal = failed(db_session, code=ledger.RETRIES_EXHAUSTED)
    ledger.requeue(db_session, withdrawal.id, "cli:alice")
    with pytest.raises(ledger.InvalidTransition, match="already been tried"):
        ledger.cancel(db_session, withdrawal.id, "cli:bob")
    assert balance(db_session, withdrawal) == 700
    assert reload(db_session, withdrawal).status == "pending"
