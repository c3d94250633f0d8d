"""``idempotency_conflict`` means an earlier call with that key happened: its outcome is unknown, like
``retries_exhausted``, so requeue keeps the keys, cancel needs force, and a webhook may still decide it."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from shared import ledger
from shared.payouts.gateway import IDEMPOTENCY_CONFLICT
from tests.shared.ledger.payout_helpers import balance, failed, reload

UNKNOWN = [ledger.RETRIES_EXHAUSTED, IDEMPOTENCY_CONFLICT]


@pytest.mark.parametrize("code", UNKNOWN)
def test_requeue_keeps_the_keys(db_session: Session, code: str) -> None:
    withdrawal = failed(db_session, code=code)
    assert ledger.requeue(db_session, withdrawal.id, "cli:alice").attempt_generation == 0


@pytest.mark.parametrize("code", UNKNOWN)
def test_cancel_needs_force(db_session: Session, code: str) -> None:
    withdrawal = failed(db_session, code=code)
    with pytest.raises(ledger.InvalidTransition, match="outcome of the last payout call is unknown"):
        ledger.cancel(db_session, withdrawal.id, "cli:alice")
    assert (reload(db_session, withdrawal).status, balance(db_session, withdrawal)) == ("failed", 700)
    forced = ledger.cancel(db_session, withdrawal.id, "cli:alice", "checked Stripe", force=True)
    assert (forced.status, balance(db_session, withdrawal)) == ("canceled", 1000)
    assert [a.action for a in ledger.operator_actions(db_session, withdrawal.id)] == ["cancel_forced"]


@pytest.mark.parametrize("code", UNKNOWN)
@pytest.mark.parametrize("kind", ["payout.paid", "payout.failed"])
def test_a_webhook_decides_it(db_session: Session, code: str, kind: str) -> None:
    withdrawal = failed(db_session, code=code)
    event = ledger.PayoutEvent("evt_1", kind, "po_1", withdrawal.id, 0, "account_closed", "closed")
    assert ledger.apply_payout_event(db_session, event) == "applied"
    assert reload(db_session, withdrawal).status == kind.removeprefix("payout.")


def test_a_definite_failure_is_not_decided_by_a_webhook(db_session: Session) -> None:
    withdrawal = failed(db_session, code="account_closed")
    event = ledger.PayoutEvent("evt_1", "payout.paid", "po_1", withdrawal.id, 0)
    assert ledger.apply_payout_event(db_session, event) == "ignored"
