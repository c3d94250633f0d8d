"""Claiming and recording withdrawals in batches: every transition and refusal, on PostgreSQL and SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from shared import ledger
from shared.db import Database, utcnow
from shared.models import User, Withdrawal, WithdrawalStatus
from shared.observability import context
from shared.payouts.keys import idempotency_key
from tests.shared.ledger.payout_helpers import POLICY, balance, claimed, make_withdrawal, reload

pytestmark = pytest.mark.parametrize("any_database", ["postgresql", "sqlite"], indirect=True)


@pytest.fixture
def session(any_database: Database) -> Iterator[Session]:
    with any_database.session() as session:
        yield session


def _outcome(claim: ledger.Claim, status: WithdrawalStatus, **fields: object) -> ledger.AttemptOutcome:
    return ledger.AttemptOutcome(claim, status, **fields)  # type: ignore[arg-type]


def test_claim_due_takes_the_oldest_due_pending_withdrawals_up_to_the_limit(session: Session) -> None:
    with context.bound("req-batch-1"):
        oldest, middle, newest = (make_withdrawal(session) for _ in range(3))
    deferred = make_withdrawal(session)
    session.execute(
        update(Withdrawal).where(Withdrawal.id == deferred.id).values(next_attempt_at=utcnow() + timedelta(minutes=5))
    )
    session.commit()
    held = make_withdrawal(session)
    claimed(session, held)  # processing: not due

    now = utcnow()
    batch = ledger.claim_due(session, POLICY, limit=2, now=now)
    assert [claim.withdrawal_id for claim in batch.claims] == [oldest.id, middle.id]
    assert batch.exhausted == []
    first = batch.claims[0]
    assert (first.attempt, first.generation, first.request_id) == (1, 0, "req-batch-1")
    assert first.payout_key == idempotency_key(oldest.id, 0, "payout") and not first.transfer_key_used
    row = reload(session, oldest)
    assert (row.status, row.attempts, row.lease_expires_at) == ("processing", 1, now + timedelta(seconds=60))
    assert row.transfer_idempotency_key == first.transfer_key

    rest = ledger.claim_due(session, POLICY, limit=10)
    assert [claim.withdrawal_id for claim in rest.claims] == [newest.id]
    assert ledger.claim_due(session, POLICY, limit=10).size == 0
    assert reload(session, deferred).status == "pending"


def test_a_retry_is_due_once_its_backoff_has_passed(session: Session) -> None:
    withdrawal = make_withdrawal(session)
    (claim,) = ledger.claim_due(session, POLICY, limit=1).claims
    retry = _outcome(claim, WithdrawalStatus.PENDING, transfer_id="tr_1", retry_in_seconds=30)
    assert ledger.record_outcomes(session, [retry]) == [True]
    assert ledger.claim_due(session, POLICY, limit=5).size == 0
    later = ledger.claim_due(session, POLICY, limit=5, now=utcnow() + timedelta(seconds=31))
    (again,) = later.claims
    assert (again.attempt, again.transfer_id, again.transfer_key_used) == (2, "tr_1", True)
    assert again.payout_key == claim.payout_key  # an unknown outcome is retried with the same keys
    assert reload(session, withdrawal).attempts == 2


def test_a_due_withdrawal_past_its_attempt_budget_fails_instead_of_being_claimed(session: Session) -> None:
    withdrawal = make_withdrawal(session)
    session.execute(update(Withdrawal).where(Withdrawal.id == withdrawal.id).values(attempts=POLICY.max_attempts))
    session.commit()
    batch = ledger.claim_due(session, POLICY, limit=5)
    assert (batch.claims, batch.exhausted) == ([], [withdrawal.id])
    row = reload(session, withdrawal)
    assert (row.status, row.failure_code) == ("failed", ledger.RETRIES_EXHAUSTED)
    assert balance(session, withdrawal) == 700  # held for an operator


def test_outcomes_are_recorded_together_with_how_far_each_got(session: Session) -> None:
    paid, refused, flaky = (make_withdrawal(session) for _ in range(3))
    claims = {claim.withdrawal_id: claim for claim in ledger.claim_due(session, POLICY, limit=5).claims}
    outcomes = [
        _outcome(claims[paid.id], WithdrawalStatus.PAID, account_id="acct_1", bank_account_id="ba_1",
                 transfer_id="tr_1", payout_id="po_1"),
        _outcome(claims[refused.id], WithdrawalStatus.FAILED, account_id="acct_2", failure_code="account_closed",
                 failure_message="closed"),
        _outcome(claims[flaky.id], WithdrawalStatus.PENDING, account_id="acct_3", bank_account_id="ba_3",
                 failure_code="provider_error", retry_in_seconds=5),
    ]  # fmt: skip
    assert ledger.record_outcomes(session, outcomes) == [True, True, True]
    row = reload(session, paid)
    assert (row.status, row.provider_payout_id, row.provider_transfer_id, row.lease_expires_at) == (
        "paid", "po_1", "tr_1", None,
    )  # fmt: skip
    assert row.paid_at is not None
    row = reload(session, refused)
    assert (row.status, row.failure_code, row.provider_account_id, row.provider_bank_account_id) == (
        "failed", "account_closed", "acct_2", None,
    )  # fmt: skip
    row = reload(session, flaky)
    assert (row.status, row.failure_code, row.provider_bank_account_id) == ("pending", None, "ba_3")
    assert row.next_attempt_at is not None and row.lease_expires_at is None
    assert ledger.verify(session) == []


def test_a_worker_that_lost_its_lease_records_nothing(session: Session) -> None:
    withdrawal = make_withdrawal(session)
    (stale,) = ledger.claim_due(session, POLICY, limit=1).claims
    later = utcnow() + timedelta(seconds=POLICY.lease_seconds + 1)
    current = claimed(session, withdrawal, later)  # the sweeper's worker took it over
    lost = _outcome(stale, WithdrawalStatus.FAILED, failure_code="account_closed", failure_message="closed")
    kept = _outcome(current, WithdrawalStatus.PAID, payout_id="po_current")
    assert ledger.record_outcomes(session, [lost]) == [False]
    assert reload(session, withdrawal).status == "processing"
    assert ledger.record_outcomes(session, [kept]) == [True]
    assert reload(session, withdrawal).provider_payout_id == "po_current"


def test_paid_by_a_webhook_first_with_the_same_payout_counts_as_recorded(session: Session) -> None:
    first, second = make_withdrawal(session), make_withdrawal(session)
    claims = ledger.claim_due(session, POLICY, limit=2).claims
    for claim, payout in zip(claims, ("po_a", "po_b"), strict=True):
        ledger.mark_paid(session, claim, payout)  # as the webhook path does
    outcomes = [
        _outcome(claims[0], WithdrawalStatus.PAID, payout_id="po_a"),
        _outcome(claims[1], WithdrawalStatus.PAID, payout_id="po_other"),
    ]
    assert ledger.record_outcomes(session, outcomes) == [True, False]
    assert reload(session, second).provider_payout_id == "po_b"
    assert reload(session, first).status == "paid"


def test_the_first_connected_account_stored_for_a_user_wins(session: Session) -> None:
    one, two = make_withdrawal(session), make_withdrawal(session)
    assert ledger.record_accounts(session, {one.user_id: "acct_one", two.user_id: "acct_two"}) == {
        one.user_id: "acct_one",
        two.user_id: "acct_two",
    }
    assert ledger.record_accounts(session, {one.user_id: "acct_later"}) == {one.user_id: "acct_one"}
    assert ledger.record_accounts(session, {}) == {}
    session.expire_all()
    assert session.get(User, one.user_id).stripe_account_id == "acct_one"  # type: ignore[union-attr]
    (claim,) = [c for c in ledger.claim_due(session, POLICY, limit=5).claims if c.withdrawal_id == one.id]
    assert claim.account_id == "acct_one"
