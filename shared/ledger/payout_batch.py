"""The payout pipeline in batches: claim many due withdrawals at once, record many attempts' outcomes at once.

A batch costs a handful of transactions however many withdrawals it holds (claim, connected accounts,
outcomes), where paying withdrawals one by one costs several each; commits, not SQL, are what a payout worker
spends its time on (README, Benchmarks). The same fencing as one by one applies row by row: a claim wins only
on the row as it read it, and an outcome is recorded only while its claim still holds the lease.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from shared.db import atomic, utcnow
from shared.ledger.payouts import (
    RETRIES_EXHAUSTED,
    Claim,
    PayoutPolicy,
    fail,
    fenced,
    rowcount,
    same_state,
    take,
)
from shared.models import User, Withdrawal, WithdrawalStatus


@dataclass(frozen=True, slots=True)
class ClaimedBatch:
    claims: list[Claim]
    # Due withdrawals whose attempt budget was already spent (their worker died holding them): marked failed.
    exhausted: list[uuid.UUID]

    @property
    def size(self) -> int:
        return len(self.claims) + len(self.exhausted)


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """What one attempt ended in: ``paid``, ``failed``, or back to ``pending`` for a retry; and how far it got."""

    claim: Claim
    status: WithdrawalStatus
    account_id: str | None = None
    bank_account_id: str | None = None
    transfer_id: str | None = None
    payout_id: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    retry_in_seconds: float | None = None


def claim_due(session: Session, policy: PayoutPolicy, limit: int, now: datetime | None = None) -> ClaimedBatch:
    """Up to ``limit`` due ``pending`` withdrawals -> ``processing`` with a lease, oldest first. Commits once.

    Due: never attempted, or a retry whose backoff has passed. Rows other workers have locked are skipped
    (``SKIP LOCKED`` on PostgreSQL), so workers claiming at once split the work instead of queueing on locks;
    a ``processing`` withdrawal whose worker died is the sweeper's (it waits for the lease to run out).
    """
    now = now or utcnow()
    due = [
        Withdrawal.status == WithdrawalStatus.PENDING,
        or_(Withdrawal.next_attempt_at.is_(None), Withdrawal.next_attempt_at <= now),
    ]
    query = (
        select(Withdrawal, User.email, User.stripe_account_id)
        .join(User, User.id == Withdrawal.user_id)
        .where(*due)
        .order_by(Withdrawal.updated_at)
        .limit(limit)
        .with_for_update(of=Withdrawal, skip_locked=True)
        .execution_options(populate_existing=True)
    )
    claims: list[Claim] = []
    exhausted: list[uuid.UUID] = []
    with atomic(session):
        for withdrawal, email, account_id in session.execute(query).all():
            if withdrawal.attempts >= policy.max_attempts:
                message = f"gave up after {withdrawal.attempts} attempts"
                if fail(session, same_state(withdrawal), RETRIES_EXHAUSTED, message, now) == 1:
                    exhausted.append(withdrawal.id)
                continue
            claim = take(session, withdrawal, email, account_id, policy, now)
            if claim is not None:  # None: another worker (SQLite has no row locks) moved it after our read
                claims.append(claim)
    return ClaimedBatch(claims, exhausted)


def record_accounts(session: Session, created: dict[uuid.UUID, str]) -> dict[uuid.UUID, str]:
    """Remember each user's new connected account (first writer wins); return the one to pay, by user. Commits.

    Two first withdrawals of one user, in one batch or in two workers, may each create an account; all of
    them then pay the account stored first.
    """
    if not created:
        return {}
    now = utcnow()
    with atomic(session):
        for user_id, account_id in created.items():
            session.execute(
                update(User)
                .where(User.id == user_id, User.stripe_account_id.is_(None))
                .values(stripe_account_id=account_id, updated_at=now)
                .execution_options(synchronize_session=False)
            )
        stored = session.execute(select(User.id, User.stripe_account_id).where(User.id.in_(list(created)))).all()
    return {user_id: account_id for user_id, account_id in stored if account_id is not None}


def record_outcomes(session: Session, outcomes: list[AttemptOutcome], now: datetime | None = None) -> list[bool]:
    """Record every attempt's outcome and progress in one transaction. Commits.

    Per outcome: True when recorded (or already true: a webhook marked it paid with the same payout first);
    False when this worker no longer held the withdrawal (its lease was taken over, or an operator or webhook
    decided first): nothing is written for it, and whoever holds it now decides.
    """
    now = now or utcnow()
    recorded: list[bool] = []
    with atomic(session):
        for outcome in outcomes:
            won = rowcount(
                session,
                update(Withdrawal)
                .where(*fenced(outcome.claim))
                .values(**_values(outcome, now))
                .execution_options(synchronize_session=False),
            )
            recorded.append(won == 1 or _already_paid(session, outcome))
    return recorded


def _values(outcome: AttemptOutcome, now: datetime) -> dict[str, object]:
    values: dict[str, object] = {"updated_at": now, "lease_expires_at": None}
    progress = {
        "provider_account_id": outcome.account_id,
        "provider_bank_account_id": outcome.bank_account_id,
        "provider_transfer_id": outcome.transfer_id,
    }
    values.update({column: value for column, value in progress.items() if value is not None})
    if outcome.status == WithdrawalStatus.PAID:
        values.update(
            status=WithdrawalStatus.PAID,
            provider_payout_id=outcome.payout_id,
            paid_at=now,
            failure_code=None,
            failure_message=None,
        )
    elif outcome.status == WithdrawalStatus.FAILED:
        values.update(
            status=WithdrawalStatus.FAILED,
            failure_code=(outcome.failure_code or "unknown")[:64],
            failure_message=outcome.failure_message,
            next_attempt_at=None,
        )
    elif outcome.status == WithdrawalStatus.PENDING:
        # The keys stay: the next attempt repeats the same provider calls, which the provider deduplicates.
        values.update(
            status=WithdrawalStatus.PENDING,
            next_attempt_at=now + timedelta(seconds=outcome.retry_in_seconds or 0),
        )
    else:
        raise ValueError(f"an attempt cannot end in {outcome.status}")
    return values


def _already_paid(session: Session, outcome: AttemptOutcome) -> bool:
    if outcome.status != WithdrawalStatus.PAID:
        return False
    row = session.execute(
        select(Withdrawal.status, Withdrawal.provider_payout_id).where(Withdrawal.id == outcome.claim.withdrawal_id)
    ).one_or_none()
    return row is not None and tuple(row) == (WithdrawalStatus.PAID, outcome.payout_id)
