"""Payout events from the provider: applied once per event id, paid-then-failed, stale events ignored."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared import ledger
from shared.models import AppliedWebhookEvent
from tests.shared.ledger.payout_helpers import balance, claimed, make_withdrawal, reload


def paid_withdrawal(session: Session):  # type: ignore[no-untyped-def]
    withdrawal = make_withdrawal(session)
    ledger.mark_paid(session, claimed(session, withdrawal), "po_1")
    return withdrawal


def test_a_duplicate_event_is_applied_once(db_session: Session) -> None:
    withdrawal = make_withdrawal(db_session)
    claimed(db_session, withdrawal)
    event = ledger.PayoutEvent("evt_1", "payout.paid", "po_1", withdrawal.id, 0)
    assert ledger.apply_payout_event(db_session, event) == "applied"
    assert ledger.apply_payout_event(db_session, event) == "duplicate"
    rows = db_session.execute(select(AppliedWebhookEvent)).scalars().all()
    assert [(r.event_id, r.outcome, r.withdrawal_id) for r in rows] == [("evt_1", "applied", withdrawal.id)]


def test_paid_then_failed_becomes_failed_with_funds_held(db_session: Session) -> None:
    withdrawal = paid_withdrawal(db_session)
    event = ledger.PayoutEvent("evt_2", "payout.failed", "po_1", None, None, "account_closed", "closed")
    assert ledger.apply_payout_event(db_session, event) == "applied"
    row = reload(db_session, withdrawal)
    assert (row.status, row.failure_code, row.failure_message) == ("failed", "account_closed", "closed")
    assert balance(db_session, withdrawal) == 700
    assert ledger.verify(db_session) == []


def test_failed_never_goes_back_to_paid(db_session: Session) -> None:
    withdrawal = paid_withdrawal(db_session)
    ledger.apply_payout_event(db_session, ledger.PayoutEvent("evt_1", "payout.failed", "po_1"))
    assert ledger.apply_payout_event(db_session, ledger.PayoutEvent("evt_2", "payout.paid", "po_1")) == "ignored"
    assert reload(db_session, withdrawal).status == "failed"


def test_events_for_unknown_payouts_or_types_are_ignored(db_session: Session) -> None:
    withdrawal = paid_withdrawal(db_session)
    assert ledger.apply_payout_event(db_session, ledger.PayoutEvent("evt_1", "payout.failed", "po_other")) == "ignored"
    assert ledger.apply_payout_event(db_session, ledger.PayoutEvent("evt_2", "charge.succeeded", None)) == "ignored"
    assert reload(db_session, withdrawal).status == "paid"


def test_an_event_about_the_previous_generation_does_not_decide_a_requeued_withdrawal(db_session: Session) -> None:
    withdrawal = paid_withdrawal(db_session)
    ledger.apply_payout_event(db_session, ledger.PayoutEvent("evt_1", "payout.failed", "po_1"))
    ledger.requeue(db_session, withdrawal.id, "cli:alice")
    claimed(db_session, withdrawal)
    late = ledger.PayoutEvent("evt_2", "payout.paid", "po_1", withdrawal.id, 0)
    assert ledger.apply_payout_event(db_session, late) == "ignored"
    assert reload(db_session, withdrawal).status == "processing"
