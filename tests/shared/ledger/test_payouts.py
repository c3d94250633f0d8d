"""Every worker-side transition of a withdrawal, and every refusal, against real PostgreSQL."""

from __future__ import annotations

import contextlib
import threading
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from shared import ledger
from shared.db import Database, utcnow
from shared.models import WithdrawalStatus
from shared.payouts.keys import idempotency_key
from tests.shared.ledger.payout_helpers import POLICY, age, balance, claimed, make_withdrawal, reload


def test_claim_moves_pending_to_processing_with_a_lease_and_generation_keys(db_session: Session) -> None:
    withdrawal = make_withdrawal(db_session)
    now = utcnow()
    claim = claimed(db_session, withdrawal, now)
    row = reload(db_session, withdrawal)
    assert (row.status, row.attempts, claim.attempt, claim.generation) == ("processing", 1, 1, 0)
    assert row.lease_expires_at == now + timedelta(seconds=POLICY.lease_seconds)
    assert row.transfer_idempotency_key == claim.transfer_key == idempotency_key(withdrawal.id, 0, "transfer")
    assert row.payout_idempotency_key == claim.payout_key == idempotency_key(withdrawal.id, 0, "payout")


def test_a_live_lease_cannot_be_claimed_but_an_expired_one_is_retaken_with_the_same_keys(db_session: Session) -> None:
    withdrawal = make_withdrawal(db_session)
    first = claimed(db_session, withdrawal)
    with pytest.raises(ledger.InvalidTransition, match="another worker holds"):
        claimed(db_session, withdrawal)
    later = utcnow() + timedelta(seconds=POLICY.lease_seconds + 1)
    second = claimed(db_session, withdrawal, later)
    assert (second.attempt, second.payout_key) == (2, first.payout_key)
    # The first worker, fenced out, can no longer record anything.
    with pytest.raises(ledger.InvalidTransition, match="no longer holds"):
        ledger.mark_paid(db_session, first, "po_1")
    ledger.mark_paid(db_session, second, "po_1")
    assert reload(db_session, withdrawal).status == "paid"


@pytest.mark.parametrize("final", ["paid", "failed", "canceled"])
def test_final_states_cannot_be_claimed(db_session: Session, final: str) -> None:
    withdrawal = make_withdrawal(db_session)
    claim = claimed(db_session, withdrawal)
    if final == "paid":
        ledger.mark_paid(db_session, claim, "po_1")
    else:
        ledger.mark_failed(db_session, claim, "account_closed", "closed")
        if final == "canceled":
            ledger.cancel(db_session, withdrawal.id, "cli:test")
    with pytest.raises(ledger.InvalidTransition):
        claimed(db_session, withdrawal)


def test_claiming_past_the_attempt_budget_fails_as_retries_exhausted(db_session: Session) -> None:
    withdrawal = make_withdrawal(db_session)
    for _ in range(POLICY.max_attempts):
        ledger.release_for_retry(db_session, claimed(db_session, withdrawal), 0)
    with pytest.raises(ledger.RetriesExhausted):
        claimed(db_session, withdrawal)
    row = reload(db_session, withdrawal)
    assert (row.status, row.failure_code, row.attempts) == ("failed", "retries_exhausted", POLICY.max_attempts)
    assert balance(db_session, withdrawal) == 700  # still held


def test_concurrent_claims_let_exactly_one_worker_in(database: Database, db_session: Session) -> None:
    withdrawal = make_withdrawal(db_session)
    winners: list[int] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        with database.session() as session:
            barrier.wait()
            with contextlib.suppress(ledger.InvalidTransition):
                winners.append(ledger.claim_withdrawal(session, withdrawal.id, POLICY).attempt)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert winners == [1]


def test_mark_paid_records_provider_ids(db_session: Session) -> None:
    withdrawal = make_withdrawal(db_session)
    ledger.mark_paid(db_session, claimed(db_session, withdrawal), "po_1", account_id="acct_1", transfer_id="tr_1")
    row = reload(db_session, withdrawal)
    assert (row.status, row.provider_account_id, row.provider_transfer_id, row.provider_payout_id) == (
        "paid",
        "acct_1",
        "tr_1",
        "po_1",
    )
    assert row.paid_at is not None and row.lease_expires_at is None


def test_mark_paid_accepts_a_webhook_that_came_first_with_the_same_payout(db_session: Session) -> None:
    withdrawal = make_withdrawal(db_session)
    claim = claimed(db_session, withdrawal)
    ledger.apply_payout_event(db_session, ledger.PayoutEvent("evt_1", "payout.paid", "po_1", withdrawal.id, 0))
    ledger.mark_paid(db_session, claim, "po_1")  # the webhook already said so: success, not an error
    with pytest.raises(ledger.InvalidTransition, match="a paid withdrawal cannot be marked paid"):
        ledger.mark_paid(db_session, claim, "po_other")  # a different payout is not the same fact
    assert reload(db_session, withdrawal).provider_payout_id == "po_1"


def test_mark_paid_refuses_a_withdrawal_a_webhook_failed(db_session: Session) -> None:
    withdrawal = make_withdrawal(db_session)
    claim = claimed(db_session, withdrawal)
    event = ledger.PayoutEvent("evt_1", "payout.failed", "po_1", withdrawal.id, 0, "account_closed")
    assert ledger.apply_payout_event(db_session, event) == "applied"
    with pytest.raises(ledger.InvalidTransition):
        ledger.mark_paid(db_session, claim, "po_1")
    assert reload(db_session, withdrawal).status == "failed"


def test_mark_failed_keeps_the_funds_held(db_session: Session) -> None:
    withdrawal = make_withdrawal(db_session)
    ledger.mark_failed(db_session, claimed(db_session, withdrawal), "account_closed", "closed")
    row = reload(db_session, withdrawal)
    assert (row.status, row.failure_code, row.failure_message) == ("failed", "account_closed", "closed")
    assert balance(db_session, withdrawal) == 700
    assert ledger.verify(db_session) == []


def test_release_for_retry_goes_back_to_pending_due_later(db_session: Session) -> None:
    withdrawal = make_withdrawal(db_session)
    now = utcnow()
    ledger.release_for_retry(db_session, claimed(db_session, withdrawal), 30, now)
    row = reload(db_session, withdrawal)
    assert (row.status, row.attempts, row.lease_expires_at) == ("pending", 1, None)
    assert row.next_attempt_at == now + timedelta(seconds=30)


def test_the_first_connected_account_stored_wins(db_session: Session) -> None:
    one, two = make_withdrawal(db_session), make_withdrawal(db_session)
    claim = claimed(db_session, one)
    assert ledger.record_accounts(db_session, {claim.user_id: "acct_first"}) == {claim.user_id: "acct_first"}
    assert ledger.record_accounts(db_session, {claim.user_id: "acct_second"}) == {claim.user_id: "acct_first"}
    assert claimed(db_session, two).account_id is None  # another user


def test_sweeper_takes_only_stranded_withdrawals_and_not_twice_within_the_grace(db_session: Session) -> None:
    fresh = make_withdrawal(db_session)
    stranded = make_withdrawal(db_session)
    age(db_session, stranded, 120)
    working = make_withdrawal(db_session)
    claimed(db_session, working)
    dead = make_withdrawal(db_session)
    claimed(db_session, dead, utcnow() - timedelta(seconds=POLICY.lease_seconds + 5))
    backing_off = make_withdrawal(db_session)
    ledger.release_for_retry(db_session, claimed(db_session, backing_off), 300)

    taken = ledger.take_stranded(db_session, grace_seconds=60, limit=100)
    assert set(taken) == {stranded.id, dead.id}
    assert fresh.id not in taken
    assert ledger.take_stranded(db_session, grace_seconds=60, limit=100) == []
    assert reload(db_session, working).status == WithdrawalStatus.PROCESSING
    later = utcnow() + timedelta(seconds=400)  # every grace, backoff and lease has run out by then
    everyone = {fresh.id, stranded.id, working.id, dead.id, backing_off.id}
    assert set(ledger.take_stranded(db_session, 60, 100, later)) == everyone
