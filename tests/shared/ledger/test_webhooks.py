"""Payout events from the provider: applied once per event id, paid-then-failed, stale events ignored."""

from __future__ import annotations

import pytest
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


def test_a_failed_payout_reported_while_the_withdrawal_awaits_a_retry_is_not_lost(db_session: Session) -> None:
    # The payout call timed out but the payout was made; it fails at the bank before the worker's retry.
    # The retry replays Stripe's stored creation response (a payout id, never "failed"): without the event
    # the withdrawal would be recorded paid although the money came back.
    withdrawal = make_withdrawal(db_session)
    ledger.release_for_retry(db_session, claimed(db_session, withdrawal), 30)
    event = ledger.PayoutEvent("evt_1", "payout.failed", "po_1", withdrawal.id, 0, "account_closed", "closed")
    assert ledger.apply_payout_event(db_session, event) == "applied"
    row = reload(db_session, withdrawal)
    assert (row.status, row.failure_code, row.provider_payout_id) == ("failed", "account_closed", "po_1")
    with pytest.raises(ledger.InvalidTransition):
        claimed(db_session, withdrawal)  # the queued retry finds it decided
    assert balance(db_session, withdrawal) == 700
    assert ledger.verify(db_session) == []


def test_a_paid_payout_reported_after_retries_ran_out_settles_the_withdrawal(db_session: Session) -> None:
    withdrawal = make_withdrawal(db_session)
    ledger.mark_failed(db_session, claimed(db_session, withdrawal), ledger.RETRIES_EXHAUSTED, "timeouts")
    event = ledger.PayoutEvent("evt_1", "payout.paid", "po_1", withdrawal.id, 0)
    assert ledger.apply_payout_event(db_session, event) == "applied"
    row = reload(db_session, withdrawal)
    assert (row.status, row.failure_code, row.provider_payout_id) == ("paid", None, "po_1")
    assert row.paid_at is not None


def test_a_definite_failure_is_not_overturned_by_an_event(db_session: Session) -> None:
    withdrawal = make_withdrawal(db_session)
    ledger.mark_failed(db_session, claimed(db_session, withdrawal), "account_closed", "refused")
    event = ledger.PayoutEvent("evt_1", "payout.paid", "po_1", withdrawal.id, 0)
    assert ledger.apply_payout_event(db_session, event) == "ignored"
    assert reload(db_session, withdrawal).status == "failed"


def test_a_failed_event_racing_the_workers_mark_paid_is_not_lost(
    db_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The interleaving forced: the webhook reads "processing", then the worker's mark_paid commits before the
    # webhook's conditional UPDATE, which then matches nothing.
    from shared.ledger import webhooks

    withdrawal = make_withdrawal(db_session)
    claim = claimed(db_session, withdrawal)
    real_find = webhooks._find
    calls = []

    def find_then_worker_commits(session, event):  # type: ignore[no-untyped-def]
        found = real_find(session, event)
        if not calls:
            calls.append(found.status)
            with Session(session.get_bind()) as worker_session:
                ledger.mark_paid(worker_session, claim, "po_1")
        return found

    monkeypatch.setattr(webhooks, "_find", find_then_worker_commits)
    event = ledger.PayoutEvent("evt_1", "payout.failed", "po_1", withdrawal.id, 0, "account_closed", "closed")
    assert ledger.apply_payout_event(db_session, event) == "applied"
    assert calls == ["processing"]
    assert reload(db_session, withdrawal).status == "failed"
